// Metadata values come from hostile input (headers, envelope). The simulator's
// Headers object refuses NUL/CR/LF before the worker sees them, so this drives
// handleEmail in plain node with a headers stand-in that does not.

import assert from "node:assert/strict";
import { test } from "node:test";
import { handleEmail } from "../email-worker.js";
import { fakeBucket, fakeContext, fakeMessage } from "../testing/fakes.mjs";
import { rawMessage } from "../testing/harness.mjs";

test("replaces control characters (CR, LF, NUL, TAB, DEL) in metadata values with spaces", async (t) => {
  t.mock.method(console, "log", () => {});
  const { message } = fakeMessage({
    from: "evil\r\nx-amz-meta-to: victim@mail.example@sender.example",
    to: "bob@mail.example",
    raw: rawMessage(),
    headers: {
      subject: "Hello\r\nX-Injected: yes\x00tail\tend\x7f",
      "message-id": "<id\n1@sender.example>",
    },
  });
  const bucket = fakeBucket();

  await handleEmail(message, { MAILBUCKET: bucket }, fakeContext());

  const { customMetadata } = [...bucket.objects.values()][0].options;
  for (const value of Object.values(customMetadata)) {
    assert.doesNotMatch(value, /[\x00-\x1f\x7f]/, JSON.stringify(value));
  }
  assert.equal(customMetadata.subject, "Hello  X-Injected: yes tail end");
  assert.equal(customMetadata.messageid, "<id 1@sender.example>");
  assert.equal(customMetadata.from, "evil  x-amz-meta-to: victim@mail.example@sender.example");
});

test("keeps the whole metadata within R2's limit when every header is hostile and huge", async (t) => {
  t.mock.method(console, "log", () => {});
  const huge = "é".repeat(50_000);
  const { message } = fakeMessage({
    from: `${"x".repeat(10_000)}@sender.example`,
    to: "bob@mail.example",
    raw: rawMessage(),
    headers: { subject: huge, "message-id": huge },
  });
  const bucket = fakeBucket();

  await handleEmail(message, { MAILBUCKET: bucket }, fakeContext());

  const { customMetadata } = [...bucket.objects.values()][0].options;
  const total = Object.entries(customMetadata).reduce(
    (n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v),
    0,
  );
  // 2 KiB is the local simulator's limit and the stricter of the two (R2: 8 KiB).
  assert.ok(total <= 2048, `${total} bytes of metadata`);
  for (const field of ["from", "subject", "messageid"]) {
    assert.ok(Buffer.byteLength(customMetadata[field]) <= 256, field);
  }
});

test("leaves the optional subject and messageid fields out when the headers are absent or blank", async (t) => {
  t.mock.method(console, "log", () => {});
  const { message } = fakeMessage({ raw: rawMessage(), headers: { subject: " \t " } });
  const bucket = fakeBucket();

  await handleEmail(message, { MAILBUCKET: bucket }, fakeContext());

  const { customMetadata } = [...bucket.objects.values()][0].options;
  assert.deepEqual(Object.keys(customMetadata).sort(), ["from", "rawsize", "receivedms", "sha256", "to"]);
});
