#!/usr/bin/python3
"""Prints the closing `N passed, N failed` line for ./pocketmail test.

Counts every test case: each <testcase> in Bazel's test.xml files (gtest writes
one per TEST; a shell test is one case), plus a target that failed to build or
timed out without a test.xml, plus node's `# pass N` / `# fail N` counts from
the worker tests. Exits non-zero when anything failed.
"""
import argparse
import os
import re
import sys
import xml.etree.ElementTree as ET


def count_bazel(testlogs):
    passed = failed = 0
    failed_names = []
    for dirpath, _, files in os.walk(testlogs):
        if "test.xml" not in files:
            continue
        try:
            root = ET.parse(os.path.join(dirpath, "test.xml")).getroot()
        except ET.ParseError:
            failed += 1
            failed_names.append(dirpath)
            continue
        for case in root.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
                failed_names.append(f"{case.get('classname')}.{case.get('name')}")
            elif case.get("status") == "notrun" or case.find("skipped") is not None:
                continue
            else:
                passed += 1
    return passed, failed, failed_names


def count_unbuilt(bazel_log):
    """Targets reported FAILED TO BUILD / NO STATUS have no fresh test.xml."""
    n = 0
    names = []
    if bazel_log and os.path.exists(bazel_log):
        for line in open(bazel_log, errors="replace"):
            m = re.match(r"^(//\S+)\s+(FAILED TO BUILD|NO STATUS)", line)
            if m:
                n += 1
                names.append(m.group(1))
    return n, names


def count_node(node_log):
    passed = failed = 0
    if node_log and os.path.exists(node_log):
        text = open(node_log, errors="replace").read()
        p = re.findall(r"^# pass (\d+)", text, re.M)
        f = re.findall(r"^# fail (\d+)", text, re.M)
        passed = int(p[-1]) if p else 0
        failed = int(f[-1]) if f else (0 if p else 1)
    return passed, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--testlogs", required=True)
    ap.add_argument("--bazel-log")
    ap.add_argument("--node-log")
    a = ap.parse_args()
    bp, bf, names = count_bazel(a.testlogs)
    ub, ubnames = count_unbuilt(a.bazel_log)
    np_, nf = count_node(a.node_log)
    passed, failed = bp + np_, bf + ub + nf
    for n in names + ubnames:
        print(f"FAILED: {n}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
