// The optional wake-up ping: signed, fire-and-forget, never in the accept path.
// The receiver is a real node HTTP server on 127.0.0.1 that verifies the
// signature the way the phone's receiver must (README.md "Wake-up ping").

import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import { test } from "node:test";
import { handleEmail } from "../email-worker.js";
import { fakeBucket, fakeContext, fakeMessage } from "../testing/fakes.mjs";
import { listObjects, rawMessage, sendEmail, startWorker } from "../testing/harness.mjs";

const SECRET = "wake-secret-for-tests";
const FRESHNESS_SECONDS = 300;

/**
 * Starts a wake receiver. Each request is verified and recorded; its response
 * is held for `holdMs` (or until `close()`), and
 * `events` records the order of "ping received" / "ping answered".
 */
async function startReceiver({ holdMs = 0 } = {}) {
  const events = [];
  const pings = [];
  const releases = [];
  let notify;
  const firstPing = new Promise((resolve) => (notify = resolve));
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const ping = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
      pings.push(ping);
      events.push("ping received");
      notify(ping);
      let answered = false;
      let timer;
      const answer = () => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        events.push("ping answered");
        res.writeHead(204).end();
      };
      releases.push(answer);
      timer = setTimeout(answer, holdMs);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/wake`,
    events,
    pings,
    firstPing,
    close: () =>
      new Promise((resolve) => {
        releases.forEach((answer) => answer());
        server.close(resolve);
        // Idle keep-alive connections from workerd would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

/** The phone-side check: HMAC over "<ts>\n<key>", hex, constant-time compare, 5-minute window. */
function verifyPing(ping, secret, nowSeconds) {
  const ts = ping.headers["x-pocketmail-timestamp"];
  const signature = ping.headers["x-pocketmail-signature"];
  const body = JSON.parse(ping.body);
  if (!/^\d+$/.test(ts) || !/^[0-9a-f]{64}$/.test(signature)) return "malformed headers";
  if (Math.abs(nowSeconds - Number(ts)) > FRESHNESS_SECONDS) return "stale";
  if (body.ts !== Number(ts) || typeof body.key !== "string") return "body does not match headers";
  const expected = createHmac("sha256", secret).update(`${ts}\n${body.key}`).digest();
  if (!timingSafeEqual(expected, Buffer.from(signature, "hex"))) return "bad signature";
  return "ok";
}

test("sends a wake ping signed with HMAC-SHA256 over '<ts>\\n<key>' after storing the message", async (t) => {
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  const { mf } = await startWorker({ bindings: { WAKE_URL: receiver.url, WAKE_SECRET: SECRET } });
  t.after(() => mf.dispose());

  const result = await sendEmail(mf, { from: "alice@sender.example", to: "bob@mail.example", raw: rawMessage() });
  const ping = await receiver.firstPing;

  assert.equal(result.status, 200, result.text);
  assert.equal(ping.method, "POST");
  assert.equal(ping.url, "/wake");
  assert.equal(ping.headers["content-type"], "application/json");
  assert.equal(verifyPing(ping, SECRET, Math.floor(Date.now() / 1000)), "ok");
  assert.equal(verifyPing(ping, "some-other-secret", Math.floor(Date.now() / 1000)), "bad signature");
  const [object] = await listObjects(mf);
  assert.deepEqual(Object.keys(JSON.parse(ping.body)).sort(), ["key", "ts"]);
  assert.equal(JSON.parse(ping.body).key, object.key);
});

test("accepts the message without waiting for the wake receiver to answer", async (t) => {
  // The receiver holds its answer for 3 s (or until the test ends). If the accept
  // waited for the ping, "accepted" would come after "ping answered".
  const receiver = await startReceiver({ holdMs: 3000 });
  t.after(() => receiver.close());
  const { mf } = await startWorker({ bindings: { WAKE_URL: receiver.url, WAKE_SECRET: SECRET } });
  t.after(() => mf.dispose());

  const result = await sendEmail(mf, { from: "alice@sender.example", to: "bob@mail.example", raw: rawMessage() });
  receiver.events.push("accepted");
  await receiver.firstPing;

  assert.equal(result.status, 200, result.text);
  assert.equal(receiver.events.indexOf("ping answered"), -1, receiver.events.join(", "));
  assert.deepEqual(receiver.events.filter((e) => e !== "ping received"), ["accepted"]);
});

test("accepts the message when the wake receiver is unreachable, and logs the failure", async (t) => {
  // Take a free port and close it again, so the connection is refused.
  const closed = await startReceiver();
  await closed.close();
  const { mf, logs } = await startWorker({ bindings: { WAKE_URL: closed.url, WAKE_SECRET: SECRET } });
  t.after(() => mf.dispose());

  const result = await sendEmail(mf, { from: "alice@sender.example", to: "bob@mail.example", raw: rawMessage() });

  assert.equal(result.status, 200, result.text);
  assert.equal((await listObjects(mf)).length, 1);
  // The failure is logged from waitUntil, after the accept: wait for it to arrive.
  const deadline = Date.now() + 10_000;
  while (!logs.some((l) => l.includes('"event":"wake_ping_failed"')) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(logs.some((l) => l.includes('"event":"wake_ping_failed"')), logs.join("\n"));
  assert.ok(!logs.some((l) => l.includes(SECRET)), "the secret never reaches the logs");
});

test("sends no wake ping unless both WAKE_URL and WAKE_SECRET are set", async (t) => {
  t.mock.method(console, "log", () => {});
  for (const env of [{}, { WAKE_URL: "http://127.0.0.1:9/" }, { WAKE_SECRET: SECRET }]) {
    const { message } = fakeMessage({ raw: rawMessage() });
    const ctx = fakeContext();
    const bucket = fakeBucket();

    await handleEmail(message, { ...env, MAILBUCKET: bucket }, ctx);

    assert.equal(bucket.objects.size, 1);
    assert.equal(ctx.waited.length, 0, JSON.stringify(env));
  }
});
