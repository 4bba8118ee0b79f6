// Plain-node stand-ins for the Email Routing message and the R2 binding, for the
// cases the simulator cannot produce (an unreadable stream, a message over its
// 1 MiB cap, header values the simulator's Headers object refuses).

/** A stream yielding `chunks` (Uint8Arrays) and then, if `error` is set, failing. */
export function streamOf(chunks, error) {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else if (error) controller.error(error);
      else controller.close();
    },
  });
}

/**
 * A ForwardableEmailMessage look-alike. `headers` is a plain object (lowercase
 * names), so values can hold characters a real Headers object would refuse.
 * `rejections` records every setReject reason.
 */
export function fakeMessage({ from = "alice@sender.example", to = "bob@mail.example", raw, rawSize, headers = {} }) {
  const rejections = [];
  let readCount = 0;
  const stream = raw instanceof ReadableStream ? raw : streamOf([raw]);
  const message = {
    from,
    to,
    rawSize: rawSize ?? (raw instanceof Uint8Array ? raw.byteLength : undefined),
    get raw() {
      readCount++;
      return stream;
    },
    headers: { get: (name) => headers[name.toLowerCase()] ?? null },
    async setReject(reason) {
      rejections.push(reason);
    },
  };
  return { message, rejections, readCount: () => readCount };
}

/**
 * An R2 bucket look-alike honouring put-if-absent. `failWith` makes every put
 * reject with that error, like the binding does when R2 is unavailable.
 */
export function fakeBucket({ failWith } = {}) {
  const objects = new Map();
  const puts = [];
  return {
    objects,
    puts,
    async put(key, value, options = {}) {
      puts.push({ key, value, options });
      if (failWith) throw failWith;
      if (options.onlyIf?.etagDoesNotMatch === "*" && objects.has(key)) return null;
      objects.set(key, { value: new Uint8Array(value), options });
      return { key };
    },
  };
}

/** An execution context that records waitUntil promises. */
export function fakeContext() {
  const waited = [];
  return { waited, waitUntil: (promise) => waited.push(promise) };
}
