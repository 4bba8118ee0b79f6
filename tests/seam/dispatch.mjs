// The Worker half of the seam test (seam_e2e_test.cc): runs the real Email
// Worker (worker/email-worker.js) under miniflare (real workerd, its R2
// simulator and email trigger), dispatches a fixed set of emails into it, and
// exports every object it wrote to R2 exactly as the Workers R2 API holds it:
// key, bytes, customMetadata, httpMetadata.contentType.
//
//   PM_WORKER_DIR=/abs/worker node dispatch.mjs OUT_DIR [NAME ...]
//
// Environment:
//   PM_WORKER_DIR    the repo's worker/ directory (required; miniflare and the
//                    test harness are imported from there, so this script runs
//                    from the Bazel runfiles tree as well as from the repo)
//   PM_CONTRACT_DIR  the fixture (default: $PM_WORKER_DIR/../tests/contract)
//   WAKE_URL, WAKE_SECRET
//                    when both are set they become the Worker's bindings, so it
//                    sends its real signed wake-up ping. The Worker sends it in
//                    ctx.waitUntil, which the email trigger does not wait for;
//                    a thin entry module then also waits for those promises
//                    before answering, so the ping has been answered (or has
//                    failed and been logged) when this script exits.
//
// NAMEs restrict the run to those messages (default: all). Writes to OUT_DIR:
//   raw-<name>.eml       the bytes dispatched for message <name>
//   <n>.eml, <n>.json    object n: its bytes; {key, customMetadata, contentType, size}
//   manifest.json        {dispatches: [{name, from, to, raw, status, text}],
//                         objects: [{eml, json, key}], logs: [worker log lines]}
// Exit status 0 when every dispatch got an answer (the test judges the statuses).

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const workerDir = process.env.PM_WORKER_DIR;
if (!workerDir) {
  console.error("dispatch.mjs: PM_WORKER_DIR (the repo's worker/ directory) is not set");
  process.exit(2);
}
const outDir = process.argv[2];
if (!outDir) {
  console.error("usage: dispatch.mjs OUT_DIR [NAME ...]");
  process.exit(2);
}
const only = new Set(process.argv.slice(3));
const contractDir = process.env.PM_CONTRACT_DIR || path.join(workerDir, "..", "tests", "contract");

const { startWorker, sendEmail } = await import(
  pathToFileURL(path.join(workerDir, "testing", "harness.mjs")).href
);

const encoder = new TextEncoder();

/** A CRLF message as UTF-8 bytes; `headers` are complete "Name: value" lines (may be folded). */
function message(headers, body) {
  return encoder.encode(`${headers.join("\r\n")}\r\n\r\n${body}\r\n`);
}

// The messages, in dispatch order. Each entry is one Email Routing delivery
// (one envelope recipient); a message to two recipients is two deliveries, a
// retry is the same delivery twice.
function deliveries() {
  const list = [];
  const cases = JSON.parse(readFileSync(path.join(contractDir, "cases.json"), "utf8"));
  for (const c of cases) {
    if (c.legacy) continue; // the current Worker never writes that format
    list.push({
      name: c.name,
      from: c.envelope.from,
      to: c.envelope.to,
      raw: new Uint8Array(readFileSync(path.join(contractDir, c.raw))),
    });
  }

  const twoRcpt = message(
    [
      "From: Frank <frank@sender.example>",
      "To: bob@mail.example, Carol Smith <carol.smith@mail.example>",
      "Subject: One message, two local recipients",
      "Message-ID: <two-recipients.7@sender.example>",
      "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=utf-8",
    ],
    "Bob and Carol each get their own copy.",
  );
  list.push({ name: "two-recipients-bob", from: "frank@sender.example", to: "bob@mail.example", raw: twoRcpt });
  list.push({
    name: "two-recipients-carol",
    from: "frank@sender.example",
    to: "carol.smith@mail.example",
    raw: twoRcpt,
  });

  const retry = message(
    [
      "From: Grace <grace@sender.example>",
      "To: bob@mail.example",
      "Subject: Sent twice by an impatient MTA",
      "Message-ID: <retry.8@sender.example>",
      "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=utf-8",
    ],
    "The sender retried after a timeout; Bob must get this once.",
  );
  list.push({ name: "retry-first", from: "grace@sender.example", to: "bob@mail.example", raw: retry });
  list.push({ name: "retry-again", from: "grace@sender.example", to: "bob@mail.example", raw: retry });

  // A 20 KiB UTF-8 Subject (2-, 3- and 4-byte characters). RFC 5322 limits a
  // line to 998 bytes, so it is folded (CRLF + space) the way a real MTA
  // would send it; Email Routing hands the Worker the unfolded value.
  const words = ["Grüße", "東京", "🎉🎉", "Ünïcödé", "テキスト"];
  const subjectWords = [];
  let bytes = 0;
  for (let i = 0; bytes < 20 * 1024; i++) {
    const w = words[i % words.length];
    subjectWords.push(w);
    bytes += encoder.encode(w).length + 1;
  }
  const lines = [];
  let line = "Subject:";
  for (const w of subjectWords) {
    if (encoder.encode(line).length + 1 + encoder.encode(w).length > 900) {
      lines.push(line);
      line = "";
    }
    line += ` ${w}`;
  }
  lines.push(line);
  const huge = message(
    [
      "From: Heidi <heidi@sender.example>",
      "To: carol.smith@mail.example",
      lines.join("\r\n"),
      "Message-ID: <huge-subject.9@sender.example>",
      "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=utf-8",
    ],
    "The subject is 20 KiB; the metadata keeps at most 256 bytes of it.",
  );
  list.push({ name: "huge-subject", from: "heidi@sender.example", to: "carol.smith@mail.example", raw: huge });

  return only.size === 0 ? list : list.filter((d) => only.has(d.name));
}

const todo = deliveries();
if (only.size !== 0 && todo.length !== only.size) {
  console.error(`dispatch.mjs: unknown message name among ${[...only].join(", ")}`);
  process.exit(2);
}

const bindings = {};
let entryModule;
if (process.env.WAKE_URL && process.env.WAKE_SECRET) {
  bindings.WAKE_URL = process.env.WAKE_URL;
  bindings.WAKE_SECRET = process.env.WAKE_SECRET;
  // The real handler, with ctx.waitUntil observed: the answer waits until the
  // Worker's own background work (the wake ping) has settled.
  entryModule = `
    import worker from "./email-worker.js";
    export default {
      async email(message, env, ctx) {
        const background = [];
        const observed = {
          waitUntil(promise) { background.push(promise); ctx.waitUntil(promise); },
          passThroughOnException() { ctx.passThroughOnException(); },
        };
        await worker.email(message, env, observed);
        await Promise.allSettled(background);
      },
    };`;
}

mkdirSync(outDir, { recursive: true });
const { mf, logs } = await startWorker({ bindings, entryModule });
try {
  const dispatches = [];
  for (const d of todo) {
    const rawFile = `raw-${d.name}.eml`;
    writeFileSync(path.join(outDir, rawFile), d.raw);
    const result = await sendEmail(mf, { from: d.from, to: d.to, raw: d.raw });
    dispatches.push({ name: d.name, from: d.from, to: d.to, raw: rawFile, status: result.status, text: result.text });
  }

  const bucket = await mf.getR2Bucket("MAILBUCKET");
  const keys = [];
  let cursor;
  do {
    const page = await bucket.list({ cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);

  const objects = [];
  for (const [n, key] of keys.entries()) {
    const object = await bucket.get(key);
    const body = new Uint8Array(await object.arrayBuffer());
    const meta = {
      key,
      customMetadata: object.customMetadata ?? {},
      contentType: object.httpMetadata?.contentType ?? "",
      size: body.byteLength,
    };
    writeFileSync(path.join(outDir, `${n}.eml`), body);
    writeFileSync(path.join(outDir, `${n}.json`), JSON.stringify(meta, null, 2));
    objects.push({ eml: `${n}.eml`, json: `${n}.json`, key });
  }

  // Let the last log lines of workerd's stdout reach the collector.
  await new Promise((resolve) => setTimeout(resolve, 100));
  writeFileSync(
    path.join(outDir, "manifest.json"),
    JSON.stringify({ dispatches, objects, logs: [...logs] }, null, 2),
  );
  console.log(`dispatched ${dispatches.length}, exported ${objects.length} objects to ${outDir}`);
} finally {
  await mf.dispose();
}
