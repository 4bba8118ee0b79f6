// Shared test support: runs email-worker.js under miniflare (real workerd) and
// builds raw messages. Kept outside test/ because `node --test test/` treats
// every module under test/ as a test file.

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

export const WORKER_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const WORKER_SCRIPT = path.join(WORKER_DIR, "email-worker.js");
export const CONTRACT_DIR = path.join(WORKER_DIR, "..", "tests", "contract");

// Same compatibility date as the deployed worker, so tests cannot drift from it.
const COMPATIBILITY_DATE = readFileSync(path.join(WORKER_DIR, "wrangler.toml"), "utf8")
  .match(/^compatibility_date\s*=\s*"([^"]+)"/m)[1];

/**
 * Starts the worker under miniflare with an in-memory R2 bucket bound as
 * MAILBUCKET. `bindings` adds plain-text vars (WAKE_URL, WAKE_SECRET).
 * `entryModule`, when given, is the source of an extra ES module that becomes
 * the entrypoint and may import "./email-worker.js" (used to wrap env).
 * Returns { mf, logs }: `logs` collects the worker's console output lines.
 */
export async function startWorker({ bindings = {}, entryModule } = {}) {
  const logs = [];
  const collect = (stream) => {
    let pending = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop();
      logs.push(...lines.filter((l) => l.trim() !== ""));
    });
  };
  const modules = entryModule
    ? [
        { type: "ESModule", path: path.join(WORKER_DIR, "test-entry.js"), contents: entryModule },
        { type: "ESModule", path: WORKER_SCRIPT },
      ]
    : true;
  const mf = new Miniflare({
    cf: false,
    host: "127.0.0.1",
    port: 0,
    compatibilityDate: COMPATIBILITY_DATE,
    modules,
    modulesRoot: WORKER_DIR,
    ...(entryModule ? {} : { scriptPath: WORKER_SCRIPT }),
    r2Buckets: ["MAILBUCKET"],
    unsafeTriggerHandlers: true,
    bindings,
    // Keep the worker's structured log lines out of the TAP stream, but
    // available to tests that assert on them.
    handleRuntimeStdio: (stdout, stderr) => {
      collect(stdout);
      collect(stderr);
    },
  });
  await mf.ready;
  return { mf, logs };
}

/**
 * Delivers one message the way Email Routing does, through miniflare's email
 * trigger. Returns { status, text }: 200 = accepted, 400 = setReject (or the
 * simulator refused the input), 500 = the handler threw (a temporary failure).
 */
export async function sendEmail(mf, { from, to, raw }) {
  const url = new URL("http://localhost/cdn-cgi/handler/email");
  url.searchParams.set("from", from);
  url.searchParams.set("to", to);
  const response = await mf.dispatchFetch(url, { method: "POST", body: raw });
  return { status: response.status, text: await response.text() };
}

/** A minimal RFC 5322 message with CRLF line ends, as UTF-8 bytes. */
export function rawMessage({
  from = "alice@sender.example",
  to = "bob@mail.example",
  subject = "Hello",
  messageId = "<test.1@sender.example>",
  body = "Hi Bob.",
} = {}) {
  const headers = [`From: ${from}`, `To: ${to}`];
  if (subject !== null) headers.push(`Subject: ${subject}`);
  headers.push(`Message-ID: ${messageId}`, "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8");
  return new TextEncoder().encode(`${headers.join("\r\n")}\r\n\r\n${body}\r\n`);
}

/** All objects in the bucket, with their metadata. */
export async function listObjects(mf) {
  const bucket = await mf.getR2Bucket("MAILBUCKET");
  const listed = await bucket.list({ include: ["httpMetadata", "customMetadata"] });
  return listed.objects;
}

/** An object's bytes (or null when absent). */
export async function getBytes(mf, key) {
  const bucket = await mf.getR2Bucket("MAILBUCKET");
  const object = await bucket.get(key);
  return object === null ? null : new Uint8Array(await object.arrayBuffer());
}
