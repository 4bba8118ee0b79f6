// Permanent rejections (setReject). The simulator refuses bodies over 1 MiB
// with its own 400 before the worker runs, and its streams cannot be made to
// fail, so these cases drive handleEmail in plain node with fake messages.

import assert from "node:assert/strict";
import { test } from "node:test";
import { handleEmail } from "../email-worker.js";
import { fakeBucket, fakeContext, fakeMessage, streamOf } from "../testing/fakes.mjs";

const LIMIT = 26214400; // 25 MiB, Email Routing's limit

/** `total` bytes of 'x' as a stream of 1 MiB chunks (one shared buffer). */
function bigStream(total) {
  const chunk = new Uint8Array(1024 * 1024).fill(0x78);
  const chunks = [];
  for (let left = total; left > 0; left -= chunk.byteLength) {
    chunks.push(left >= chunk.byteLength ? chunk : chunk.subarray(0, left));
  }
  return streamOf(chunks);
}

test("rejects a message whose rawSize is over 25 MiB without reading or storing it", async (t) => {
  t.mock.method(console, "error", () => {});
  const { message, rejections, readCount } = fakeMessage({ raw: bigStream(LIMIT + 1), rawSize: LIMIT + 1 });
  const bucket = fakeBucket();

  await handleEmail(message, { MAILBUCKET: bucket }, fakeContext());

  assert.equal(rejections.length, 1);
  assert.match(rejections[0], /too large/i);
  assert.equal(readCount(), 0);
  assert.equal(bucket.puts.length, 0);
});

test("rejects a message whose stream yields more than 25 MiB even when rawSize claims less", async (t) => {
  t.mock.method(console, "error", () => {});
  const { message, rejections } = fakeMessage({ raw: bigStream(LIMIT + 1), rawSize: 1000 });
  const bucket = fakeBucket();

  await handleEmail(message, { MAILBUCKET: bucket }, fakeContext());

  assert.equal(rejections.length, 1);
  assert.match(rejections[0], /too large/i);
  assert.equal(bucket.puts.length, 0);
});

test("accepts and stores a message of exactly 25 MiB", async (t) => {
  t.mock.method(console, "log", () => {});
  const { message, rejections } = fakeMessage({ raw: bigStream(LIMIT), rawSize: LIMIT });
  const bucket = fakeBucket();

  await handleEmail(message, { MAILBUCKET: bucket }, fakeContext());

  assert.deepEqual(rejections, []);
  assert.equal(bucket.objects.size, 1);
  const [stored] = bucket.objects.values();
  assert.equal(stored.value.byteLength, LIMIT);
  assert.equal(stored.options.customMetadata.rawsize, String(LIMIT));
});

test("rejects a message whose stream fails while being read, and stores nothing", async (t) => {
  t.mock.method(console, "error", () => {});
  const raw = streamOf([new TextEncoder().encode("Subject: half a message\r\n")], new Error("stream reset"));
  const { message, rejections } = fakeMessage({ raw, rawSize: 5000 });
  const bucket = fakeBucket();

  await handleEmail(message, { MAILBUCKET: bucket }, fakeContext());

  assert.equal(rejections.length, 1);
  assert.match(rejections[0], /could not be read/i);
  assert.equal(bucket.puts.length, 0);
});
