// The accept path under miniflare (real workerd and its R2 simulator).

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { afterEach, beforeEach, test } from "node:test";
import { getBytes, listObjects, rawMessage, sendEmail, startWorker } from "../testing/harness.mjs";

const sha256 = (data) => createHash("sha256").update(data).digest("hex");
const expectedKey = (raw, rcpt) => `pending/${sha256(raw)}-${sha256(rcpt.toLowerCase()).slice(0, 16)}.eml`;

let worker;
beforeEach(async () => {
  worker = await startWorker();
});
afterEach(async () => {
  await worker.mf.dispose();
});

test("accepts a message and stores its exact bytes under pending/<sha256>-<rcpt hash>.eml with all metadata", async () => {
  const raw = rawMessage({ subject: "Lunch on Friday?", messageId: "<lunch.1@sender.example>" });
  const before = Date.now();
  const result = await sendEmail(worker.mf, { from: "alice@sender.example", to: "bob@mail.example", raw });
  const after = Date.now();

  assert.equal(result.status, 200, result.text);
  const objects = await listObjects(worker.mf);
  assert.equal(objects.length, 1);
  const [object] = objects;
  assert.equal(object.key, expectedKey(raw, "bob@mail.example"));
  assert.deepEqual(await getBytes(worker.mf, object.key), raw);
  assert.equal(object.httpMetadata.contentType, "message/rfc822");

  const { receivedms, ...rest } = object.customMetadata;
  assert.deepEqual(rest, {
    to: "bob@mail.example",
    from: "alice@sender.example",
    sha256: sha256(raw),
    rawsize: String(raw.byteLength),
    subject: "Lunch on Friday?",
    messageid: "<lunch.1@sender.example>",
  });
  assert.match(receivedms, /^\d+$/);
  assert.ok(Number(receivedms) >= before - 1000 && Number(receivedms) <= after + 1000, receivedms);
});

test("stores one object per recipient when the same message goes to two recipients", async () => {
  const raw = rawMessage({ to: "bob@mail.example, carol@mail.example" });
  for (const to of ["bob@mail.example", "carol@mail.example"]) {
    const result = await sendEmail(worker.mf, { from: "alice@sender.example", to, raw });
    assert.equal(result.status, 200, result.text);
  }

  const objects = await listObjects(worker.mf);
  assert.deepEqual(
    objects.map((o) => o.key).sort(),
    [expectedKey(raw, "bob@mail.example"), expectedKey(raw, "carol@mail.example")].sort(),
  );
  assert.deepEqual(objects.map((o) => o.customMetadata.to).sort(), ["bob@mail.example", "carol@mail.example"]);
});

test("accepts a retry of the same message to the same recipient and keeps a single object", async () => {
  const raw = rawMessage();
  const first = await sendEmail(worker.mf, { from: "alice@sender.example", to: "bob@mail.example", raw });
  const firstObject = (await listObjects(worker.mf))[0];
  const retry = await sendEmail(worker.mf, { from: "alice@sender.example", to: "bob@mail.example", raw });

  assert.equal(first.status, 200, first.text);
  assert.equal(retry.status, 200, retry.text);
  const objects = await listObjects(worker.mf);
  assert.equal(objects.length, 1);
  // Put-if-absent: the retry did not overwrite the first copy.
  assert.equal(objects[0].version, firstObject.version);
  assert.equal(objects[0].customMetadata.receivedms, firstObject.customMetadata.receivedms);
});

test("cuts a 20 KiB UTF-8 subject to at most 256 bytes without splitting a character", async () => {
  // 1 ASCII byte then 4-byte characters: byte 256 falls inside a character, so
  // a naive byte cut would leave a broken UTF-8 sequence.
  const subject = "a" + "😀".repeat(5119); // 20477 bytes
  const raw = rawMessage({ subject });
  const result = await sendEmail(worker.mf, { from: "alice@sender.example", to: "bob@mail.example", raw });

  assert.equal(result.status, 200, result.text);
  const [object] = await listObjects(worker.mf);
  const stored = object.customMetadata.subject;
  const bytes = Buffer.from(stored, "utf8");
  assert.ok(bytes.byteLength <= 256, `${bytes.byteLength} bytes`);
  assert.ok(stored.isWellFormed(), "no lone surrogates");
  assert.doesNotThrow(() => new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  // The longest whole-character prefix that fits: "a" + 63 × 4 bytes = 253 bytes.
  assert.equal(stored, "a" + "😀".repeat(63));
  // The message itself is stored untouched.
  assert.deepEqual(await getBytes(worker.mf, object.key), raw);
});
