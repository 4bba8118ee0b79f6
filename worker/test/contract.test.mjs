// The shared Worker ↔ fetcher fixture (tests/contract/cases.json): the worker
// must write exactly the recorded key and metadata for each recorded raw
// message. The C++ fetcher tests read the same file.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { CONTRACT_DIR, getBytes, listObjects, sendEmail, startWorker } from "../testing/harness.mjs";

const cases = JSON.parse(readFileSync(path.join(CONTRACT_DIR, "cases.json"), "utf8"));
const rawOf = (c) => new Uint8Array(readFileSync(path.join(CONTRACT_DIR, c.raw)));
const sha256 = (data) => createHash("sha256").update(data).digest("hex");
const ANY_INTEGER = "<any integer>";

/** How R2 shows a metadata value through the S3 API: ASCII as is, else one RFC 2047 B word. */
const s3View = (value) =>
  /^[\x00-\x7f]*$/.test(value) ? value : `=?UTF-8?B?${Buffer.from(value, "utf8").toString("base64")}?=`;

let worker;
before(async () => {
  worker = await startWorker();
});
after(async () => {
  await worker.mf.dispose();
});

// Legacy entries describe objects the original worker wrote; this worker never
// produces that format, so only the fetcher side tests them.
for (const c of cases.filter((c) => !c.legacy)) {
  test(`writes the fixture's key and metadata for contract case "${c.name}"`, async () => {
    const raw = rawOf(c);
    const result = await sendEmail(worker.mf, { ...c.envelope, raw });

    assert.equal(result.status, 200, result.text);
    const object = (await listObjects(worker.mf)).find((o) => o.key === c.key);
    assert.ok(object, `no object at ${c.key}`);
    assert.deepEqual(await getBytes(worker.mf, c.key), raw);
    assert.equal(object.httpMetadata.contentType, c.contentType);
    const actual = { ...object.customMetadata };
    assert.match(actual.receivedms, /^\d+$/);
    if (c.customMetadata.receivedms === ANY_INTEGER) actual.receivedms = ANY_INTEGER;
    assert.deepEqual(actual, c.customMetadata);
  });
}

test("every fixture key is derived from its raw message and recipient as the bucket contract says", () => {
  for (const c of cases) {
    const digest = sha256(rawOf(c));
    const expected = c.legacy
      ? `pending/${digest}.eml`
      : `pending/${digest}-${sha256(c.envelope.to.toLowerCase()).slice(0, 16)}.eml`;
    assert.equal(c.key, expected, c.name);
  }
});

test("every fixture's s3_headers are the S3 API view (RFC 2047 for non-ASCII) of its customMetadata", () => {
  for (const c of cases) {
    const expected = Object.fromEntries(
      Object.entries(c.customMetadata).map(([k, v]) => [`x-amz-meta-${k}`, s3View(v)]),
    );
    assert.deepEqual(c.s3_headers, expected, c.name);
  }
});
