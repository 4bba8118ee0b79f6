// The CPU benchmark (bench/cpu-per-mib.mjs, `npm run bench`) is not part of
// the tests: it takes minutes. This only checks that its smoke mode runs the
// real handler in workerd and prints every figure the README quotes.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { WORKER_DIR } from "../testing/harness.mjs";

test("the CPU benchmark's smoke mode runs and prints its figures", async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [path.join(WORKER_DIR, "bench", "cpu-per-mib.mjs"), "--smoke"],
    { cwd: WORKER_DIR, timeout: 60_000 },
  );
  const figures = new Map(
    [...stdout.matchAll(/^bench: (\w+)=(-?[\d.]+) (ms|ms\/MiB|MiB)/gm)].map((m) => [m[1], Number(m[2])]),
  );
  for (const name of ["worker_cpu_per_mib", "worker_cpu_fixed", "cpu_handler_4KiB", "cpu_r2_64KiB"]) {
    assert.ok(Number.isFinite(figures.get(name)), `${name} missing in:\n${stdout}`);
  }
  // A real put per delivery costs something even at 4 KiB.
  assert.ok(figures.get("cpu_r2_4KiB") > 0, stdout);
});
