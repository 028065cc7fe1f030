import { PantriError, PointerError } from "./errors.js";
import type { Pointer } from "./types.js";

export const POINTER_SUFFIX = ".pitem";

/**
 * A pointer is ~250 bytes. Anything far bigger is a binary committed under a `.pitem` name or a
 * hostile file; refusing it before JSON.parse keeps one bad file from costing memory and time.
 */
export const MAX_POINTER_BYTES = 64 * 1024;

const SHA256_RE = /^[0-9a-fA-F]{64}$/;
const SHA1_RE = /^[0-9a-fA-F]{40}$/;
const DRIVE_RE = /^[A-Za-z]:/;
const CONTROL_RE = /\p{Cc}/u;
// In a /u regex a well-formed surrogate pair is one code point, so this matches only lone halves,
// which no file name on disk can hold (they become U+FFFD when encoded to UTF-8).
const LONE_SURROGATE_RE = /\p{Cs}/u;

/**
 * Why `path` (relative, `/`-separated) is unsafe to join under a directory, or null when it is
 * safe. The reason reads after the path: `"a/../b" has a ".." segment`.
 */
export function validateRelPath(path: string): string | null {
  if (path === "") return "is empty";
  if (path.includes("\0")) return "contains a NUL byte";
  if (path.includes("\\")) return "contains a backslash";
  if (CONTROL_RE.test(path)) return "contains a control character";
  if (LONE_SURROGATE_RE.test(path)) return "contains an unpaired UTF-16 surrogate";
  if (path.startsWith("/")) return "is absolute";
  // Harmless on POSIX, but on Windows `C:x` resolves outside the directory it is joined to.
  if (DRIVE_RE.test(path)) return "starts with a drive letter";
  for (const segment of path.split("/")) {
    if (segment === "") return "has an empty segment";
    if (segment === ".") return 'has a "." segment';
    if (segment === "..") return 'has a ".." segment';
  }
  return null;
}

export function pointerRelFor(binaryRel: string): string {
  return binaryRel + POINTER_SUFFIX;
}

export function binaryRelFor(pointerRel: string): string {
  if (!pointerRel.endsWith(POINTER_SUFFIX)) throw new PantriError(`${pointerRel} is not a pointer file (no ${POINTER_SUFFIX} suffix)`);
  return pointerRel.slice(0, -POINTER_SUFFIX.length);
}

export function contentKey(sha256: string, prefix = ""): string {
  return `${prefix}sha256/${sha256.slice(0, 2)}/${sha256}`;
}

/** Where a pointer's object lives: by content for v1, by path for the original tool's layout. */
export function objectKey(p: Pointer, prefix = ""): string {
  return p.format === "legacy" ? prefix + p.path : contentKey(p.sha256, prefix);
}

/** A value quoted for a message: JSON escapes control characters, and long input is cut. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

type Fail = (message: string) => never;

interface PointerFields {
  path: unknown;
  size: unknown;
  sha256: unknown;
  sha1: unknown;
  mtime: unknown;
}

/** Checks and normalises the fields both formats share; `names` are the keys as the file spells them. */
function checkFields(raw: PointerFields, names: Record<keyof PointerFields, string>, fail: Fail): Omit<Pointer, "format"> {
  const { path, size, sha256, sha1, mtime } = raw;
  if (typeof path !== "string") fail(`"${names.path}" must be a string, got ${show(path)}`);
  const unsafe = validateRelPath(path);
  if (unsafe !== null) fail(`path ${show(path)} ${unsafe}`);
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    fail(`"${names.size}" must be a non-negative integer number of bytes, got ${show(size)}`);
  }
  if (typeof sha256 !== "string" || !SHA256_RE.test(sha256)) fail(`"${names.sha256}" must be 64 hex digits, got ${show(sha256)}`);
  if (typeof sha1 !== "string" || !SHA1_RE.test(sha1)) fail(`"${names.sha1}" must be 40 hex digits, got ${show(sha1)}`);
  // Python's os.path.getmtime gave the original tool float seconds; whole seconds are the contract.
  if (typeof mtime !== "number" || !Number.isFinite(mtime) || mtime < 0 || mtime > Number.MAX_SAFE_INTEGER) {
    fail(`"${names.mtime}" must be a non-negative number of seconds, got ${show(mtime)}`);
  }
  return { path, size, sha256: sha256.toLowerCase(), sha1: sha1.toLowerCase(), mtime: Math.floor(mtime) };
}

const V1_NAMES = { path: "path", size: "size", sha256: "sha256", sha1: "sha1", mtime: "mtime" } as const;
const LEGACY_NAMES = { path: "<path key>", size: "file_size", sha256: "sha256_hash", sha1: "sha1_hash", mtime: "modified_time" } as const;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads only own properties, so a key missing from the file can never come from Object.prototype. */
function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/**
 * Parses and validates the text of a pointer found at `shelves/<pointerRel>`. Pointers are
 * untrusted input (anyone who can push to the repo writes them): every field is checked, and
 * the path must name the pointer's own location, so a pointer can only ever stand for the file
 * beside it.
 */
export function parsePointer(text: string, pointerRel: string): Pointer {
  const file = `shelves/${pointerRel}`;
  const fail: Fail = (message) => {
    throw new PointerError(file, message);
  };
  // length counts UTF-16 units, never more than the UTF-8 bytes: a cheap first test.
  if (text.length > MAX_POINTER_BYTES || Buffer.byteLength(text) > MAX_POINTER_BYTES) {
    fail(`is ${Buffer.byteLength(text)} bytes, more than a pointer's limit of ${MAX_POINTER_BYTES}; is it a binary committed under a ${POINTER_SUFFIX} name?`);
  }
  const badLocation = validateRelPath(pointerRel);
  if (badLocation !== null || !pointerRel.endsWith(POINTER_SUFFIX)) {
    fail(`not a valid pointer location (${badLocation ?? `no ${POINTER_SUFFIX} suffix`})`);
  }
  const expected = pointerRel.slice(0, -POINTER_SUFFIX.length);
  const [shelf] = expected.split("/");
  if (expected === shelf) fail("a pointer must be inside a shelf (shelves/<shelf>/...), not directly in shelves/");

  let data: unknown;
  try {
    data = JSON.parse(text.startsWith("\uFEFF") ? text.slice(1) : text);
  } catch (err) {
    fail(`not valid JSON (${show(err instanceof Error ? err.message : String(err))}); restore it from git history or re-run pantri store`);
  }
  if (!isPlainObject(data)) fail(`not a pointer: expected a JSON object, got ${Array.isArray(data) ? "an array" : show(data)}`);
  // JSON.parse makes "__proto__" an own data property (no pollution), but no pantri writes one:
  // its presence means a crafted file, and any Object.assign or copy loop over it would set a prototype.
  if (Object.hasOwn(data, "__proto__")) fail('has a "__proto__" key; refusing a crafted pointer');

  let pointer: Pointer;
  if (Object.hasOwn(data, "pantri")) {
    const version = data.pantri;
    if (version !== 1) {
      if (typeof version === "number" && Number.isInteger(version) && version > 1) {
        fail(`written by a newer pantri (format ${version}); upgrade pantri`);
      }
      fail(`unknown pointer format ${show(version)} (this pantri reads format 1)`);
    }
    const fields = { path: own(data, "path"), size: own(data, "size"), sha256: own(data, "sha256"), sha1: own(data, "sha1"), mtime: own(data, "mtime") };
    pointer = { format: "v1", ...checkFields(fields, V1_NAMES, fail) };
  } else {
    const keys = Object.keys(data);
    const [key] = keys;
    const inner = key === undefined ? undefined : data[key];
    if (key === undefined || keys.length !== 1 || !isPlainObject(inner)) {
      fail('not a pointer: expected {"pantri": 1, ...} or a legacy {"<path>": {"sha1_hash", ...}} object');
    }
    if (Object.hasOwn(inner, "__proto__")) fail('has a "__proto__" key; refusing a crafted pointer');
    const fields = {
      path: key,
      size: own(inner, "file_size"),
      sha256: own(inner, "sha256_hash"),
      sha1: own(inner, "sha1_hash"),
      mtime: own(inner, "modified_time"),
    };
    pointer = { format: "legacy", ...checkFields(fields, LEGACY_NAMES, fail) };
  }

  if (pointer.path.split("/")[0] !== shelf) {
    fail(`path ${show(pointer.path)} is not in shelf "${shelf}" where the pointer is`);
  }
  if (pointer.path !== expected) fail(`path ${show(pointer.path)} does not match the pointer's location (expected ${show(expected)})`);
  return pointer;
}

/**
 * The exact bytes of a v1 pointer (SPEC section 2): fixed key order, 2-space indent, trailing
 * newline, so that re-storing an unchanged file leaves a byte-identical pointer and git diffs
 * show only what changed. Validates like the reader does, so pantri never writes a pointer it
 * would refuse to read.
 */
export function serializePointer(p: { path: string; size: number; sha256: string; sha1: string; mtime: number }): string {
  const fail: Fail = (message) => {
    throw new PantriError(`refusing to write a pointer for ${show(p.path)}: ${message}`);
  };
  const f = checkFields(p, V1_NAMES, fail);
  const ordered = { pantri: 1, path: f.path, size: f.size, sha256: f.sha256, sha1: f.sha1, mtime: f.mtime };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}
