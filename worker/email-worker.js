// pocketmail Email Worker.
//
// Exports: the default handler and `handleEmail` (for plain-node tests). Keep
// other exports out: workerd treats every named export of the main module as an
// entrypoint and refuses to start on a non-function one.
//
// Cloudflare Email Routing calls `email()` once per envelope recipient. The only
// job here is to make a durable copy of the message in R2 before Email Routing
// answers the sender with 2xx; the phone drains the bucket later over the S3 API
// (see docs/DESIGN.md, "The bucket contract"). Everything that is not needed for
// that durable copy (the wake-up ping) is best effort and must never delay or
// fail the accept.

// Email Routing's own size limit. We enforce it too, so the behaviour does not
// depend on Cloudflare checking first, and so a lying stream cannot make us
// buffer an unbounded amount of memory.
const MAX_RAW_BYTES = 25 * 1024 * 1024; // 26214400

// Per-value cap for metadata. R2 allows 8 KiB of metadata per object in total
// (and the local simulator enforces 2 KiB), so a hostile Subject must not be
// able to make the put fail. 256 bytes is also well above RFC 5321's 256-octet
// path limit, so a real envelope address is never cut.
const MAX_META_VALUE_BYTES = 256;

const WAKE_TIMEOUT_MS = 10_000;

const encoder = new TextEncoder();

/** Lowercase hex of a byte buffer. */
function toHex(buffer) {
  const bytes = new Uint8Array(buffer);
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Hex sha256 of bytes (Uint8Array) or of a string's UTF-8 encoding. */
async function sha256Hex(data) {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return toHex(await crypto.subtle.digest("SHA-256", bytes));
}

/** Hex lowercase HMAC-SHA256 of `message` keyed by the UTF-8 bytes of `secret`. */
async function hmacSha256Hex(secret, message) {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return toHex(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
}

/**
 * The object key for one (message, recipient) delivery:
 * `pending/<sha256(raw)>-<first 16 hex of sha256(lowercased rcpt)>.eml`.
 * The recipient part makes a message to two local recipients two objects, while
 * a retry of the same delivery maps onto the same key (put-if-absent dedupes it).
 * Lowercasing uses JavaScript's String.prototype.toLowerCase(), which for ASCII
 * addresses is plain A-Z → a-z.
 */
async function objectKey(rawSha256, rcpt) {
  const rcptHash = await sha256Hex(String(rcpt).toLowerCase());
  return `pending/${rawSha256}-${rcptHash.slice(0, 16)}.eml`;
}

/**
 * Makes an untrusted string safe as an R2 metadata value.
 *
 * 1. Control characters (C0 and DEL, so CR, LF, NUL and TAB included) become
 *    a space: CR/LF could split the `x-amz-meta-*` header the phone reads
 *    through the S3 API, NUL truncates C strings, and no control character is
 *    valid in an HTTP header value.
 * 2. Leading and trailing spaces are dropped, because HTTP strips them from
 *    header values: the S3 view would otherwise differ from what we stored.
 * 3. The result is cut to at most `maxBytes` of UTF-8 on a character boundary,
 *    so it stays valid UTF-8 (a lone surrogate becomes U+FFFD via TextEncoder).
 */
function metaValue(value, maxBytes = MAX_META_VALUE_BYTES) {
  const clean = String(value)
    // eslint-disable-next-line no-control-regex
    .replace(/[\x00-\x1f\x7f]/g, " ")
    .replace(/^ +| +$/g, "");
  const bytes = encoder.encode(clean);
  if (bytes.length <= maxBytes) return new TextDecoder().decode(bytes);
  let end = maxBytes;
  // Step back over UTF-8 continuation bytes (10xxxxxx) so the cut lands on the
  // first byte of a character, never inside one.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end)).replace(/ +$/, "");
}

/**
 * Reads the whole message stream once, stopping as soon as it exceeds `limit`.
 * Returns {bytes} or {tooLarge: true}; throws if the stream itself fails.
 */
async function readRaw(stream, limit) {
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const chunk = value instanceof Uint8Array ? value : new Uint8Array(value);
    total += chunk.byteLength;
    if (total > limit) {
      // Best effort: we are rejecting anyway, a failing cancel changes nothing.
      await reader.cancel().catch(() => {});
      return { tooLarge: true };
    }
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { bytes };
}

/** One structured log line; hostile values are JSON fields, never raw text. */
function log(level, event, fields) {
  const line = JSON.stringify({ event, ...fields });
  if (level === "error") console.error(line);
  else console.log(line);
}

/**
 * Sends the signed wake-up ping (wire format in README.md). Never throws:
 * the message is already durable, a lost ping only means the phone finds the
 * object on its next regular poll.
 */
async function sendWakePing(env, key) {
  try {
    const ts = Math.floor(Date.now() / 1000);
    const signature = await hmacSha256Hex(env.WAKE_SECRET, `${ts}\n${key}`);
    const response = await fetch(env.WAKE_URL, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-pocketmail-timestamp": String(ts),
        "x-pocketmail-signature": signature,
      },
      body: JSON.stringify({ key, ts }),
      signal: AbortSignal.timeout(WAKE_TIMEOUT_MS),
    });
    // Drain the body so the connection is released; the content is irrelevant.
    await response.arrayBuffer().catch(() => {});
    if (!response.ok) log("error", "wake_ping_rejected", { key, status: response.status });
  } catch (err) {
    log("error", "wake_ping_failed", { key, error: String(err) });
  }
}

/**
 * The handler logic, separated from the default export so tests can drive it
 * with fake messages (an unreadable stream, a 26 MiB rawSize) that the local
 * simulator cannot produce.
 *
 * Outcomes:
 *  - stored (or already stored by an earlier attempt): returns normally → 2xx;
 *  - unreadable or oversize message: `setReject` → permanent SMTP rejection;
 *  - R2 failure: throws → Email Routing answers with a temporary error and the
 *    sender retries. We never accept without a durable copy.
 */
export async function handleEmail(message, env, ctx) {
  const receivedMs = Date.now();

  // Cheap check first: Email Routing tells us the size before we read anything.
  if (typeof message.rawSize === "number" && message.rawSize > MAX_RAW_BYTES) {
    log("error", "reject_too_large", { to: message.to, rawsize: message.rawSize });
    await message.setReject(`Message too large (limit ${MAX_RAW_BYTES} bytes)`);
    return;
  }

  let read;
  try {
    read = await readRaw(message.raw, MAX_RAW_BYTES);
  } catch (err) {
    log("error", "reject_unreadable", { to: message.to, error: String(err) });
    await message.setReject("Message could not be read");
    return;
  }
  if (read.tooLarge) {
    // rawSize understated the stream; the bytes are what counts.
    log("error", "reject_too_large", { to: message.to, rawsize: message.rawSize });
    await message.setReject(`Message too large (limit ${MAX_RAW_BYTES} bytes)`);
    return;
  }
  const bytes = read.bytes;

  const rawSha256 = await sha256Hex(bytes);
  const key = await objectKey(rawSha256, message.to);

  const customMetadata = {
    to: metaValue(message.to),
    from: metaValue(message.from),
    sha256: rawSha256,
    rawsize: String(bytes.byteLength),
    receivedms: String(receivedMs),
  };
  // Optional fields, for the phone's logs and the webmail list. The header
  // value is stored as Email Routing hands it over: an RFC 2047 encoded-word
  // Subject stays encoded. Absent or blank headers are left out.
  for (const [field, header] of [["subject", "subject"], ["messageid", "message-id"]]) {
    const value = message.headers?.get(header);
    if (value == null) continue;
    const clean = metaValue(value);
    if (clean !== "") customMetadata[field] = clean;
  }

  // Put-if-absent: an existing object means an earlier attempt of this same
  // (message, recipient) already stored it, so overwriting would only change
  // receivedms and could race the phone moving it out of pending/. R2 returns
  // null when the condition fails. Passing the sha256 makes R2 verify the bytes
  // it stored against what we hashed. A throw propagates on purpose.
  const stored = await env.MAILBUCKET.put(key, bytes, {
    onlyIf: { etagDoesNotMatch: "*" },
    httpMetadata: { contentType: "message/rfc822" },
    customMetadata,
    sha256: rawSha256,
  });
  log("info", stored === null ? "duplicate" : "stored", {
    key,
    to: message.to,
    rawsize: bytes.byteLength,
  });

  // The object is durable either way (a duplicate means an earlier attempt
  // stored it and may have died before pinging), so wake the phone in both cases.
  if (env.WAKE_URL && env.WAKE_SECRET) {
    ctx.waitUntil(sendWakePing(env, key));
  }
}

export default {
  async email(message, env, ctx) {
    await handleEmail(message, env, ctx);
  },
};
