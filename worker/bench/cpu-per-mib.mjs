// CPU cost of the Email Worker per message and per MiB, measured in workerd.
//
//   npm run bench                      # full run, ~2-3 min on 2 cores
//   npm run bench -- --quick           # fewer rounds, for development
//   npm run bench -- --smoke           # one tiny round: checks the script runs
//   npm run bench -- --sizes=4K,1M --rounds=9 --json=out.json
//
// How (README.md, "CPU cost"): miniflare runs the real email-worker.js in
// workerd with the R2 simulator bound as MAILBUCKET. A bench entry module
// (below) imports the Worker's default export and calls its `email()` K times
// inside one request, with a message whose `raw` is a stream of 64 KiB chunks
// over bytes already in the isolate, so neither node nor miniflare's email
// trigger (which refuses bodies over 1 MiB and MIME-parses every message in JS)
// is in the measured work. CPU is the workerd process's on-CPU time from
// /proc/<pid>/task/*/schedstat (nanoseconds, all threads) before and after the
// request, divided by K. Every variant is measured the same way, so the
// differences isolate the parts:
//
//   empty   the bench loop builds the message and does not read it
//   drain   + reads the stream to the end (what delivering the bytes costs)
//   sha256  crypto.subtle.digest over the whole message, nothing else
//   handler the real handler; MAILBUCKET is a stub whose put() returns at once:
//           read + concatenate + SHA-256 + key + metadata + log line
//   r2      the real handler with the R2 simulator: + put. workerd runs the
//           simulator on the same thread, so this also counts its own work
//           (it hashes the body again, MD5 for the ETag, stores the blob);
//           on Cloudflare that runs in R2, not in the Worker. An upper bound.
//
// Prints `bench: <name>=<value> <unit>` lines and, with --json, writes them.

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { startWorker } from "../testing/harness.mjs";

const MiB = 1024 * 1024;
const FREE_PLAN_CPU_MS = 10;
const MAX_RAW_BYTES = 25 * MiB;
const VARIANTS = ["empty", "drain", "sha256", "handler", "r2"];

// The bench entry. `import worker from "./email-worker.js"` is the deployed
// default export, so the measured handler is byte for byte the one in
// production; only the message object and (for "handler") the bucket are
// stand-ins.
const BENCH_ENTRY = `
import worker from "./email-worker.js";

const CHUNK = 64 * 1024;
const messages = new Map(); // size -> Uint8Array
let serial = 0;

function makeMessage(size) {
  // A plain RFC 5322 message padded to exactly \`size\` bytes with base64-like
  // text lines (what a large attachment looks like on the wire).
  const head = new TextEncoder().encode(
    "From: alice@sender.example\\r\\nTo: bob@mail.example\\r\\nSubject: bench\\r\\n" +
    "Message-ID: <bench.0000000000@sender.example>\\r\\nMIME-Version: 1.0\\r\\n" +
    "Content-Type: text/plain; charset=us-ascii\\r\\n\\r\\n");
  const bytes = new Uint8Array(size);
  bytes.set(head.subarray(0, size));
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = head.length, col = 0; i < size; i++, col++) {
    if (col === 76) { bytes[i] = 13; if (++i < size) bytes[i] = 10; col = -1; continue; }
    bytes[i] = alphabet.charCodeAt((i * 2654435761) >>> 26);
  }
  return bytes;
}

// Makes each delivery's bytes (and so its key) unique: a counter in the Message-ID.
const ID_AT = "From: alice@sender.example\\r\\nTo: bob@mail.example\\r\\nSubject: bench\\r\\nMessage-ID: <bench.".length;
function stamp(bytes) {
  const digits = String(++serial).padStart(10, "0");
  for (let i = 0; i < 10 && ID_AT + i < bytes.length; i++) bytes[ID_AT + i] = digits.charCodeAt(i);
}

function rawStream(bytes) {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) { controller.close(); return; }
      controller.enqueue(bytes.subarray(offset, offset + CHUNK));
      offset += CHUNK;
    },
  });
}

function emailMessage(bytes) {
  return {
    from: "alice@sender.example",
    to: "bob@mail.example",
    rawSize: bytes.length,
    raw: rawStream(bytes),
    headers: new Headers({ subject: "bench", "message-id": "<bench@sender.example>" }),
    async setReject(reason) { throw new Error("unexpected setReject: " + reason); },
  };
}

const stubBucket = { async put(key) { return { key }; } };

async function once(variant, bytes, env, ctx) {
  stamp(bytes);
  const message = emailMessage(bytes);
  switch (variant) {
    case "empty": return;
    case "drain": {
      const reader = message.raw.getReader();
      for (;;) { const { done } = await reader.read(); if (done) return; }
    }
    case "sha256": await crypto.subtle.digest("SHA-256", bytes); return;
    case "handler": return worker.email(message, { ...env, MAILBUCKET: stubBucket }, ctx);
    case "r2": return worker.email(message, env, ctx);
    default: throw new Error("unknown variant " + variant);
  }
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const size = Number(url.searchParams.get("size"));
    if (url.pathname === "/prepare") {
      if (!messages.has(size)) messages.set(size, makeMessage(size));
      return new Response("ok");
    }
    if (url.pathname === "/clear") {
      // Deletes what the "r2" runs stored and says how many objects that was.
      let count = 0;
      for (;;) {
        const listed = await env.MAILBUCKET.list({ limit: 1000 });
        if (listed.objects.length === 0) break;
        count += listed.objects.length;
        await env.MAILBUCKET.delete(listed.objects.map((o) => o.key));
      }
      return new Response(String(count));
    }
    const variant = url.searchParams.get("variant");
    const reps = Number(url.searchParams.get("reps"));
    const bytes = messages.get(size);
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) await once(variant, bytes, env, ctx);
    return Response.json({ wallMs: performance.now() - t0 });
  },
};
`;

function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)([KM]?)$/i.exec(text.trim());
  if (!m) throw new Error(`bad size ${text}`);
  const unit = { "": 1, K: 1024, M: MiB }[m[2].toUpperCase()];
  return Math.round(Number(m[1]) * unit);
}

function label(bytes) {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB}MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024}KiB`;
  return `${bytes}B`;
}

function parseArgs(argv) {
  const opts = { sizes: "4K,64K,256K,1M,5M,10M,25M", rounds: 9, targetMiB: 48, json: null, variants: VARIANTS };
  for (const arg of argv) {
    const [k, v] = arg.replace(/^--/, "").split("=");
    if (k === "quick") Object.assign(opts, { rounds: 5, targetMiB: 16 });
    else if (k === "smoke") Object.assign(opts, { sizes: "4K,64K", rounds: 1, targetMiB: 0 });
    else if (k === "sizes") opts.sizes = v;
    else if (k === "rounds") opts.rounds = Number(v);
    else if (k === "target-mib") opts.targetMiB = Number(v);
    else if (k === "variants") opts.variants = v.split(",");
    else if (k === "json") opts.json = v;
    else throw new Error(`unknown flag ${arg}`);
  }
  opts.sizes = opts.sizes.split(",").map(parseSize);
  for (const s of opts.sizes) if (s > MAX_RAW_BYTES) throw new Error(`${s} is over the 25 MiB limit`);
  return opts;
}

/** The workerd child of this process (miniflare spawns it). */
function workerdPid() {
  const children = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, "utf8").trim().split(/\s+/);
  const pid = children.find((p) => p && readFileSync(`/proc/${p}/comm`, "utf8").trim() === "workerd");
  if (!pid) throw new Error("workerd process not found");
  return pid;
}

/** On-CPU nanoseconds of every thread of `pid` (first field of schedstat). */
function cpuNs(pid) {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // A thread that exited between readdir and read: its time is gone from
      // both samples' view of the live threads, so skip it.
    }
  }
  return total;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * y = fixed + perMiB * x. The slope is the least-squares fit over all sizes
 * (the large ones dominate it, as they should); the fixed part is the
 * smallest size's measurement minus its per-MiB share, because the fitted
 * intercept is at the mercy of the large sizes' noise (tens of ms) while the
 * fixed cost is a fraction of a millisecond.
 */
function fit(points) {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const perMiB = sxx === 0 ? 0 : sxy / sxx;
  const smallest = points.reduce((a, p) => (p.x < a.x ? p : a));
  return { fixed: smallest.y - perMiB * smallest.x, perMiB };
}

const fmt = (x, digits = 3) => Number(x.toFixed(digits));

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { mf } = await startWorker({ entryModule: BENCH_ENTRY });
  const out = [];
  const emit = (name, value, unit, extra = "") => {
    out.push({ name, value, unit });
    console.log(`bench: ${name}=${value}${unit ? ` ${unit}` : ""}${extra}`);
  };
  try {
    const pid = workerdPid();
    const call = async (path) => {
      const response = await mf.dispatchFetch(`http://bench${path}`);
      const text = await response.text();
      if (!response.ok) throw new Error(`${path}: ${response.status} ${text}`);
      return text;
    };
    // results[variant][size] = per-invocation CPU ms, one per round
    const results = Object.fromEntries(opts.variants.map((v) => [v, new Map()]));
    for (const size of opts.sizes) {
      await call(`/prepare?size=${size}`);
      const reps = Math.max(3, Math.min(2000, Math.ceil((opts.targetMiB * MiB) / size)));
      // Warm-up: JIT and allocator, not measured.
      for (const v of opts.variants) await call(`/run?variant=${v}&size=${size}&reps=${Math.min(reps, 3)}`);
      await call("/clear");
      for (const v of opts.variants) results[v].set(size, []);
      for (let round = 0; round < opts.rounds; round++) {
        // Interleave the variants so drift (other load, CPU frequency) hits all alike.
        for (const v of opts.variants) {
          const before = cpuNs(pid);
          await call(`/run?variant=${v}&size=${size}&reps=${reps}`);
          const after = cpuNs(pid);
          results[v].get(size).push((after - before) / 1e6 / reps);
          // Every "r2" delivery must have been a real put of a new object (a
          // duplicate would skip the body and understate the cost).
          if (v === "r2") {
            const stored = Number(await call("/clear"));
            if (stored !== reps) throw new Error(`r2 run stored ${stored} objects, expected ${reps}`);
          }
        }
      }
      const line = opts.variants.map((v) => `${v}=${fmt(median(results[v].get(size)))}`).join(" ");
      console.log(`# ${label(size)} (${reps} per round, ${opts.rounds} rounds, median ms per invocation): ${line}`);
    }

    for (const v of opts.variants) {
      for (const size of opts.sizes) emit(`cpu_${v}_${label(size)}`, fmt(median(results[v].get(size))), "ms");
    }
    // The handler's own cost: the real handler minus the bench loop's (building
    // the message object). "handler" leaves the put out; "r2" adds it with the
    // simulator's work. Lines fitted over the sizes: fixed + per MiB.
    const own = (v) =>
      opts.sizes.map((size) => ({
        x: size / MiB,
        y: median(results[v].get(size)) - (results.empty ? median(results.empty.get(size)) : 0),
      }));
    const lines = {};
    for (const v of ["sha256", "drain", "handler", "r2"].filter((v) => results[v])) {
      lines[v] = fit(own(v));
      emit(`${v}_cpu_per_mib`, fmt(lines[v].perMiB), "ms/MiB");
      emit(`${v}_cpu_fixed`, fmt(lines[v].fixed), "ms");
    }
    const main = lines.handler ?? lines.r2;
    if (main) {
      emit("worker_cpu_per_mib", fmt(main.perMiB), "ms/MiB", " (real handler, put excluded)");
      emit("worker_cpu_fixed", fmt(main.fixed), "ms");
      for (const [name, l] of [["worker", main], ["worker_with_r2_simulator", lines.r2]]) {
        if (!l) continue;
        if (!(l.perMiB > 0)) {
          console.log(`# ${name}: no positive slope over these sizes (too few or too small), no 10 ms size`);
          continue;
        }
        const bytes = ((FREE_PLAN_CPU_MS - l.fixed) / l.perMiB) * MiB;
        emit(`${name}_largest_under_10ms`, fmt(bytes / MiB, 2), "MiB");
      }
      for (const size of opts.sizes) {
        const ms = main.fixed + main.perMiB * (size / MiB);
        const over = ms > FREE_PLAN_CPU_MS ? " (over Free's 10 ms)" : "";
        console.log(`# ${label(size)}: ~${fmt(ms, 2)} ms by the fitted line${over}`);
      }
    }
    if (opts.json) {
      writeFileSync(opts.json, `${JSON.stringify({ options: { ...opts }, figures: out, rounds: Object.fromEntries(
        Object.entries(results).map(([v, m]) => [v, Object.fromEntries([...m].map(([s, xs]) => [label(s), xs.map((x) => fmt(x, 4))]))]),
      ) }, null, 2)}\n`);
    }
  } finally {
    await mf.dispose();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
