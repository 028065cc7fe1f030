// A pantri object store adapter in plain JavaScript: the template for writing your own.
//
// Use it from pantri.config.json (or .ts/.mjs/.js):
//   { "objectStore": { "type": "./stores/memory-store.mjs", "name": "demo" } }
// `type` is a path relative to the repo root (.mjs/.js, or .ts loaded through jiti) or the name
// of a package installed in the repo. Every other key of `objectStore` reaches the factory as
// `options`.
//
// The module's default export is a factory `(options, context) => store` (it may be async).
// `context` holds `repoRoot`, `cacheDir` (for tokens), `env` (read credentials from it, not from
// process.env) and `log(message)` (shown with --verbose; never log a secret).
//
// A store needs only `description`, `head`, `put` and `get`; `list` and `delete` are optional
// capabilities pantri detects. pantri adds the batch generators (`storeObjects`,
// `retrieveObjects`) itself, with bounded concurrency, retries and verified downloads, so an
// adapter never has to. No pantri import is needed: this file runs with nothing installed.
//
// This one keeps objects in memory, shared by every instance with the same `name` option, so
// tests can see what was stored. A real adapter would talk to its service in the same four
// methods.

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";

// On globalThis, so that copies of this module loaded twice (native import, jiti) share data.
const SPACES = Symbol.for("pantri.example.memory-store");
globalThis[SPACES] ??= new Map();

/** The objects stored under `name` (a Map of key -> Buffer), for tests. */
export function memoryObjects(name) {
  let objects = globalThis[SPACES].get(name);
  if (!objects) globalThis[SPACES].set(name, (objects = new Map()));
  return objects;
}

export default function createMemoryStore(options, context) {
  const name = typeof options.name === "string" ? options.name : "default";
  const objects = memoryObjects(name);
  const description = `memory store "${name}"`;
  context.log(`memory store "${name}" holds ${objects.size} objects`);

  return {
    // Names the store in messages; never put a secret (a token, a URL with a password) here.
    description,

    // The object's { key, size }, or null when it does not exist (never throw for "missing").
    async head(key) {
      const buf = objects.get(key);
      return buf ? { key, size: buf.length } : null;
    },

    // Stores source.open()'s bytes under key. `source` also carries size, sha256 and sha1, so a
    // real store can choose single or multipart upload and send checksums; open(start, end)
    // reopens a byte range (end inclusive) for a retried part. Must be create-or-same: storing
    // a key again with the same bytes is fine. Hash what you read and refuse a mismatch: a file
    // that changed while being stored must not become the object its pointer names.
    async put(key, source, opts = {}) {
      const hash = createHash("sha256");
      const chunks = [];
      for await (const chunk of source.open()) {
        hash.update(chunk);
        chunks.push(chunk);
        opts.onBytes?.(chunk.length);
      }
      const buf = Buffer.concat(chunks);
      if (buf.length !== source.size || hash.digest("hex") !== source.sha256) {
        throw new Error(`${description}, object ${key}: the source did not match its announced size and sha256`);
      }
      objects.set(key, buf);
    },

    // A Readable of the object's bytes from opts.start (for resuming a download). When the
    // object is missing, throw an error with `notFound: true` (or `status: 404`): pantri turns
    // it into its own StoreError. pantri verifies size and sha256 of what you return.
    async get(key, opts = {}) {
      const buf = objects.get(key);
      if (!buf) throw Object.assign(new Error(`${description}, object ${key}: not found`), { notFound: true });
      const tail = buf.subarray(opts.start ?? 0);
      return Readable.from(tail.length ? [tail] : [], { objectMode: false });
    },

    // Optional: every { key, size } whose key starts with prefix. An async generator, so a real
    // store can fetch page after page as the caller consumes them. `pantri status --remote`
    // uses it to check many objects at once instead of one head each.
    async *list(prefix) {
      for (const key of [...objects.keys()].sort()) {
        if (key.startsWith(prefix)) yield { key, size: objects.get(key).length };
      }
    },
  };
}
