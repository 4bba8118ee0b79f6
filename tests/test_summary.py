#!/usr/bin/python3
"""Prints the closing `N passed, N failed` line for ./pocketmail test.

Counts every test case of the targets this Bazel invocation reported (its
`//pkg:name  PASSED|FAILED|...` lines): each <testcase> in the target's
test.xml (gtest writes one per TEST; our Python tests one per method), or one
failure for a target that timed out or failed to build. Adds node's `# pass N`
/ `# fail N` from the worker tests, and the <testcase>s of each --junit file
written outside Bazel (tests/arm64, the checks in tests/checks; a missing file
counts as one failure).
Just above that line it repeats every suite's own summary line (crash-test:,
fault-test:, hostile-test:, maddy-e2e:, maddy-crash-test:, gateway-e2e:) from
the reported targets' test.log files, so the figures that prove delivery
guarantees are on the last screen of every run.
Exits non-zero when anything failed.
Reading only the reported targets keeps stale logs (old --runs_per_test
directories, deleted targets) out of the count.
"""
import argparse
import os
import re
import sys
import xml.etree.ElementTree as ET

SUITE_SUMMARY = re.compile(r"^(crash-test|fault-test|hostile-test|maddy-e2e|maddy-crash-test|gateway-e2e): .*$", re.M)
STATUS_LINE = re.compile(r"^(//[^\s:]*:\S+)\s+(?:\(cached\)\s+)?(PASSED|FAILED|FLAKY|TIMEOUT|NO STATUS|FAILED TO BUILD|INCOMPLETE)\b")


def count_xml(path):
    passed, failed, names = 0, 0, []
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            names.append(f"{case.get('classname')}.{case.get('name')}")
        elif case.get("status") == "notrun" or case.find("skipped") is not None:
            continue
        else:
            passed += 1
    return passed, failed, names


def reported_targets(bazel_log):
    """(target, status) for each target the Bazel log reported, once each."""
    seen = set()
    for line in open(bazel_log, errors="replace"):
        m = STATUS_LINE.match(line)
        if m and m.group(1) not in seen:
            seen.add(m.group(1))
            yield m.group(1), m.group(2)


def suite_summaries(testlogs, bazel_log):
    lines = []
    for target, _ in reported_targets(bazel_log):
        pkg, name = target[2:].split(":", 1)
        log = os.path.join(testlogs, pkg, name, "test.log")
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                lines += [m.group(0) for m in SUITE_SUMMARY.finditer(f.read())]
    return lines


def count_bazel(testlogs, bazel_log):
    passed = failed = 0
    names = []
    for target, status in reported_targets(bazel_log):
        pkg, name = target[2:].split(":", 1)
        xml = os.path.join(testlogs, pkg, name, "test.xml")
        if status in ("PASSED", "FAILED", "FLAKY") and os.path.exists(xml):
            try:
                p, f, n = count_xml(xml)
            except ET.ParseError:
                p, f, n = 0, 1, [target + " (unreadable test.xml)"]
            if status == "FAILED" and f == 0:  # died without recording a failing case
                f, n = 1, [target]
            passed, failed, names = passed + p, failed + f, names + n
        elif status == "PASSED":
            passed += 1
        else:
            failed += 1
            names.append(f"{target} ({status})")
    return passed, failed, names


def count_node(node_log):
    passed = failed = 0
    if node_log and os.path.exists(node_log):
        text = open(node_log, errors="replace").read()
        p = re.findall(r"^# pass (\d+)", text, re.M)
        f = re.findall(r"^# fail (\d+)", text, re.M)
        passed = int(p[-1]) if p else 0
        failed = int(f[-1]) if f else (0 if p else 1)
    return passed, failed


def count_junit(paths):
    passed = failed = 0
    names = []
    for path in paths or []:
        try:
            p, f, n = count_xml(path)
        except (OSError, ET.ParseError):
            p, f, n = 0, 1, [f"{path} (missing or unreadable)"]
        passed, failed, names = passed + p, failed + f, names + n
    return passed, failed, names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--testlogs", required=True)
    ap.add_argument("--bazel-log", required=True)
    ap.add_argument("--node-log")
    ap.add_argument("--junit", action="append", help="JUnit XML from a test run outside Bazel")
    a = ap.parse_args()
    bp, bf, names = count_bazel(a.testlogs, a.bazel_log)
    np_, nf = count_node(a.node_log)
    if nf:
        names.append("worker tests")
    jp, jf, jnames = count_junit(a.junit)
    names += jnames
    for n in names:
        print(f"FAILED: {n}")
    for line in suite_summaries(a.testlogs, a.bazel_log):
        print(line)
    passed, failed = bp + np_ + jp, bf + nf + jf
    if passed + failed == 0:
        print("no tests ran")
        failed = 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
