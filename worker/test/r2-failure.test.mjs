// An R2 failure must surface as a handler error (Email Routing then answers
// the sender with a temporary failure and the sender retries), never as an
// accept and never as a permanent rejection.

import assert from "node:assert/strict";
import { test } from "node:test";
import { handleEmail } from "../email-worker.js";
import { fakeBucket, fakeContext, fakeMessage } from "../testing/fakes.mjs";
import { rawMessage, sendEmail, startWorker } from "../testing/harness.mjs";

// Under workerd: the real handler with MAILBUCKET swapped for a binding whose
// put rejects the way the R2 binding does when R2 is unavailable.
const FAILING_BUCKET_ENTRY = `
import { handleEmail } from "./email-worker.js";
const unavailable = { async put() { throw new Error("R2 unavailable (test)"); } };
export default {
  email(message, env, ctx) {
    return handleEmail(message, { ...env, MAILBUCKET: unavailable }, ctx);
  },
};
`;

test("under workerd, a failing R2 put fails the email handler instead of accepting or rejecting", async (t) => {
  const { mf } = await startWorker({ entryModule: FAILING_BUCKET_ENTRY });
  t.after(() => mf.dispose());

  const result = await sendEmail(mf, { from: "alice@sender.example", to: "bob@mail.example", raw: rawMessage() });

  // 500 is the simulator's "handler threw"; 200 would be an accept and 400 a setReject.
  assert.equal(result.status, 500, result.text);
  assert.match(result.text, /R2 unavailable \(test\)/);
  const bucket = await mf.getR2Bucket("MAILBUCKET");
  assert.equal((await bucket.list()).objects.length, 0);
});

test("handleEmail rethrows the R2 error and does not call setReject", async () => {
  const failure = new Error("R2 unavailable");
  const bucket = fakeBucket({ failWith: failure });
  const { message, rejections } = fakeMessage({ raw: rawMessage() });
  const ctx = fakeContext();

  await assert.rejects(
    handleEmail(message, { MAILBUCKET: bucket, WAKE_URL: "http://127.0.0.1:9/", WAKE_SECRET: "s" }, ctx),
    failure,
  );
  assert.equal(bucket.puts.length, 1);
  assert.deepEqual(rejections, []);
  // Nothing was stored, so the phone must not be woken for it.
  assert.equal(ctx.waited.length, 0);
});
