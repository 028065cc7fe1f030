import { createHash } from "node:crypto";
import type { StoreRequest } from "./types.js";

/**
 * The pure parts of the Swift store's bulk upload: many small objects go up as one tar archive
 * that Swift's `bulk` middleware unpacks into objects (`PUT <container>?extract-archive=tar`).
 *
 * Why: every request costs the client a round trip and work of its own (a connection slot,
 * headers, a response to read and check); over thousands of small files that adds up, the more
 * so across a network. An archive of up to BULK_MAX_OBJECTS objects is one request instead of
 * that many: pantri's own CPU for 2,000 files of 4 KiB fell from ~4.4 s to ~2.2 s. Swift's work
 * per object stays what it was (measured on the project's Swift: each object of an archive still
 * passes the proxy's object pipeline, the object server and the container update), so where
 * Swift's CPU is the limit, as on one machine, the wall clock gains little.
 *
 * What bulk upload cannot do, and how pantri makes up for it: its objects get no create-only
 * precondition and no ETag check. So a group of objects goes up as (1) a listing of the group's
 * key range, and objects found there with their size are not sent again (not needed when the
 * container was empty when the run began); (2) the archive; (3) a
 * listing of the same range, in which every object sent must be found with the MD5 pantri
 * computed from the bytes it hashed (a HEAD asks about one that the listing does not show yet,
 * since container listings may lag). Whatever is not verified so, is removed when it holds other
 * bytes and goes up again the one-request way, with its precondition and ETag check. A pointer
 * is therefore written only for an object the store showed back with the right MD5, as for a
 * single PUT.
 *
 * Listings cost entries, so a group is the objects whose sha256 begins with the same few hex
 * digits, as many digits as keep the container's objects in that range around BULK_GROUP_OBJECTS
 * (groupDigits): a listing then costs about what it verifies. A group goes up as archives of up
 * to BULK_MAX_OBJECTS as it fills.
 */

/** Objects up to this size may go up in an archive; bigger ones are worth their own request. */
export const BULK_MAX_OBJECT_BYTES = 256 * 1024;
/**
 * An archive holds at most this many objects ... Swift unpacks an archive one object after the
 * other, so a big one is slow on its own: with 128 per archive, 2,000 files ended with one
 * archive unpacking alone for 3 s while the other workers had nothing left. 64 keeps the
 * --concurrency workers busier to the end, and lets the first archives go up while later files
 * are still being hashed, for few more requests (Swift's CPU per object was the same at 32 and
 * 128 per archive, within the noise).
 */
export const BULK_MAX_OBJECTS = 64;
/** ... and at most this many bytes of content. */
export const BULK_MAX_BYTES = 8 * 1024 * 1024;
/** A group smaller than this at the end goes up one object per request: two listings and an archive would cost more. */
export const BULK_MIN_OBJECTS = 8;
/** Small objects held back waiting for their group to fill, at most (then the fullest group goes). */
export const BULK_MAX_PENDING_BYTES = 32 * 1024 * 1024;
/** A group's key range should hold about this many of the container's objects: listing it then costs about one page of what it checks. */
export const BULK_GROUP_OBJECTS = 128;
/**
 * Hex digits of grouping at most: past that many (a container of over half a million objects)
 * groups would rarely fill, and each object goes up the one-request way.
 */
export const BULK_MAX_DIGITS = 3;

/**
 * How many leading hex digits of the sha256 make a group when the container holds about
 * `containerObjects` objects: the fewest that leave at most BULK_GROUP_OBJECTS of them per group
 * range, so listing a group's range costs about what it verifies. null: too many
 * objects for bulk upload to pay.
 */
export function groupDigits(containerObjects: number): number | null {
  for (let k = 0; k <= BULK_MAX_DIGITS; k++) if (containerObjects / 16 ** k <= BULK_GROUP_OBJECTS) return k;
  return null;
}

const CONTENT_KEY = /^(.*)sha256\/([0-9a-f]{2})\/([0-9a-f]{64})$/;

/**
 * The listing prefix that holds every content key whose sha256 begins like this one's first
 * `digits` hex digits, or null for a key that is not a content key (it goes up on its own).
 */
export function groupPrefix(key: string, digits: number): string | null {
  const m = CONTENT_KEY.exec(key);
  if (!m) return null;
  const [, prefix, dir, hex] = m as unknown as [string, string, string, string];
  if (!hex.startsWith(dir)) return null;
  return digits < 2 ? `${prefix}sha256/${hex.slice(0, digits)}` : `${prefix}sha256/${dir}/${hex.slice(0, digits)}`;
}

/** One unit of work for the batch: a request on its own, or a group for one archive. */
export type BulkUnit<T> = { single: StoreRequest<T> } | { group: StoreRequest<T>[]; prefix: string };

/**
 * Sorts a stream of requests into units as they come: `groupOf` names the group prefix of a
 * request that may go in an archive (null: on its own). A group is handed out once it is full
 * (BULK_MAX_OBJECTS or BULK_MAX_BYTES), when too many bytes wait (the fullest group), and at
 * the end (then a group under BULK_MIN_OBJECTS goes as singles). Lazy like its input: the
 * batch's workers pull units, so hashing still overlaps with uploads.
 */
export async function* bulkUnits<T>(
  requests: Iterable<StoreRequest<T>> | AsyncIterable<StoreRequest<T>>,
  groupOf: (req: StoreRequest<T>) => string | null,
): AsyncGenerator<BulkUnit<T>> {
  const groups = new Map<string, { reqs: StoreRequest<T>[]; bytes: number }>();
  let pending = 0;
  const take = (prefix: string): BulkUnit<T> => {
    const g = groups.get(prefix);
    groups.delete(prefix);
    pending -= g?.bytes ?? 0;
    return { group: g?.reqs ?? [], prefix };
  };
  for await (const req of requests) {
    const prefix = groupOf(req);
    if (prefix === null) {
      yield { single: req };
      continue;
    }
    let g = groups.get(prefix);
    if (!g) groups.set(prefix, (g = { reqs: [], bytes: 0 }));
    g.reqs.push(req);
    g.bytes += req.source.size;
    pending += req.source.size;
    if (g.reqs.length >= BULK_MAX_OBJECTS || g.bytes >= BULK_MAX_BYTES) yield take(prefix);
    else if (pending > BULK_MAX_PENDING_BYTES) {
      let fullest = prefix;
      for (const [p, other] of groups) if (other.bytes > (groups.get(fullest)?.bytes ?? 0)) fullest = p;
      yield take(fullest);
    }
  }
  for (const prefix of [...groups.keys()]) {
    const unit = take(prefix);
    if ("group" in unit && unit.group.length < BULK_MIN_OBJECTS) for (const single of unit.group) yield { single };
    else yield unit;
  }
}

const BLOCK = 512;

/** One 512-byte ustar header. */
function tarHeader(name: Buffer, size: number, type: "0" | "x"): Buffer {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0, 0, Math.min(name.length, 100));
  const octal = (value: number, at: number, width: number) => h.write(`${value.toString(8).padStart(width - 1, "0")}\0`, at, "ascii");
  octal(0o644, 100, 8); // mode
  octal(0, 108, 8); // uid
  octal(0, 116, 8); // gid
  octal(size, 124, 12);
  octal(0, 136, 12); // mtime: Swift gives each object its own timestamp
  h.fill(0x20, 148, 156); // the checksum counts its own field as spaces
  h.write(type, 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return h;
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** A pax record `<len> path=<name>\n`, whose length counts its own digits. */
function paxPath(name: string): Buffer {
  const body = ` path=${name}\n`;
  const bodyBytes = Buffer.byteLength(body);
  let len = bodyBytes + 1;
  while (String(len).length + bodyBytes !== len) len = String(len).length + bodyBytes;
  return Buffer.from(`${len}${body}`);
}

/**
 * A tar archive (ustar, pax for names over 100 bytes) of in-memory files. Written here rather
 * than with tar-stream or node-tar: those are streaming, file-system oriented packers with their
 * own stream stacks, and this is a 512-byte header and padding around buffers already in memory.
 */
export function tarArchive(entries: ReadonlyArray<{ name: string; data: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const { name, data } of entries) {
    const raw = Buffer.from(name);
    if (raw.length > 100) {
      const pax = paxPath(name);
      parts.push(tarHeader(Buffer.from("././@PaxHeader"), pax.length, "x"), pax, padding(pax.length));
    }
    parts.push(tarHeader(raw, data.length, "0"), data, padding(data.length));
  }
  parts.push(Buffer.alloc(2 * BLOCK)); // end of archive
  return Buffer.concat(parts);
}

/** What Swift's bulk middleware reported about one archive. */
export interface BulkReport {
  /** The status it reports for the whole archive, e.g. 201 (all created) or 400 (some failed). */
  status: number;
  created: number;
  /** Object paths (`<container>/<key>`, %-decoded) it failed to create, with its status. */
  errors: Array<{ path: string; status: string }>;
}

/**
 * Parses the bulk middleware's JSON report (asked for with `Accept: application/json`). It
 * answers 200 at once, sends spaces while it works so proxies keep the request open, then the
 * report; the report's own "Response Status" is the real outcome. null when it is not one.
 */
export function parseBulkReport(text: string): BulkReport | null {
  let data: unknown;
  try {
    data = JSON.parse(text.trim());
  } catch {
    return null;
  }
  if (typeof data !== "object" || data === null) return null;
  const r = data as Record<string, unknown>;
  const statusText = r["Response Status"];
  const created = r["Number Files Created"];
  if (typeof statusText !== "string" || typeof created !== "number") return null;
  const status = Number.parseInt(statusText, 10);
  if (!Number.isInteger(status)) return null;
  const errors: BulkReport["errors"] = [];
  for (const e of Array.isArray(r.Errors) ? r.Errors : []) {
    if (!Array.isArray(e) || typeof e[0] !== "string") continue;
    let path = e[0];
    try {
      path = decodeURIComponent(path);
    } catch {
      // leave it as Swift sent it
    }
    errors.push({ path, status: String(e[1]) });
  }
  return { status, created, errors };
}

/** The MD5 (hex) Swift will list for a small object: the one pantri computed when it hashed it, else from its bytes. */
export function md5Of(source: { size: number; md5Parts?: string[]; bytes?: Buffer }): string | undefined {
  if (source.md5Parts?.length === 1) return source.md5Parts[0];
  if (source.size === 0) return createHash("md5").digest("hex");
  return source.bytes ? createHash("md5").update(source.bytes).digest("hex") : undefined;
}
