import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { PantriError, PointerError } from "../../src/core/errors.js";
import {
  MAX_POINTER_BYTES,
  POINTER_SUFFIX,
  binaryRelFor,
  contentKey,
  objectKey,
  parsePointer,
  pointerRelFor,
  serializePointer,
  validateRelPath,
} from "../../src/core/pointer.js";

const SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SHA1 = "a94a8fe5ccb19ba61c4c0873d391e987982fc684";
const LOC = "a/b/pkg.deb.pitem";
const base = { path: "a/b/pkg.deb", size: 1048576, sha256: SHA256, sha1: SHA1, mtime: 1700000000 };

function v1(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({ pantri: 1, ...base, ...overrides });
}

function legacy(inner: Record<string, unknown> = {}, path = "a/b/pkg.deb"): string {
  return JSON.stringify({
    [path]: { file_size: 1048576, modified_time: 1700000000, sha1_hash: SHA1, sha256_hash: SHA256, ...inner },
  });
}

/** Parses expecting a PointerError that names the file; returns its message. */
function rejection(text: string, loc = LOC): string {
  try {
    parsePointer(text, loc);
  } catch (err) {
    expect(err).toBeInstanceOf(PointerError);
    const e = err as PointerError;
    expect(e.file).toBe(`shelves/${loc}`);
    expect(e.message.startsWith(`shelves/${loc}: `)).toBe(true);
    return e.message;
  }
  throw new Error(`accepted: ${text}`);
}

describe("serializePointer", () => {
  it("writes exactly the SPEC bytes", () => {
    expect(serializePointer(base)).toBe(
      `{
  "pantri": 1,
  "path": "a/b/pkg.deb",
  "size": 1048576,
  "sha256": "${SHA256}",
  "sha1": "${SHA1}",
  "mtime": 1700000000
}
`,
    );
  });

  it("keeps key order whatever order the input has, and floors mtime", () => {
    const shuffled = { mtime: 1700000000.9, sha1: SHA1, sha256: SHA256, size: 1048576, path: "a/b/pkg.deb" };
    expect(serializePointer(shuffled)).toBe(serializePointer(base));
  });

  it("round-trips", () => {
    expect(parsePointer(serializePointer(base), LOC)).toEqual({ format: "v1", ...base });
  });

  it("refuses to write what it would refuse to read", () => {
    expect(() => serializePointer({ ...base, path: "a/../b" })).toThrow(PantriError);
    expect(() => serializePointer({ ...base, sha256: "xyz" })).toThrow(PantriError);
    expect(() => serializePointer({ ...base, size: -1 })).toThrow(PantriError);
  });
});

describe("parsePointer v1", () => {
  it("ignores unknown keys", () => {
    expect(parsePointer(v1({ comment: "hi", extra: { nested: [1] } }), LOC)).toEqual({ format: "v1", ...base });
  });

  it("lowercases hashes and floors a float mtime", () => {
    const p = parsePointer(v1({ sha256: SHA256.toUpperCase(), sha1: SHA1.toUpperCase(), mtime: 12.75 }), LOC);
    expect(p.sha256).toBe(SHA256);
    expect(p.sha1).toBe(SHA1);
    expect(p.mtime).toBe(12);
  });

  it("accepts a UTF-8 byte order mark and size 0", () => {
    expect(parsePointer(`\uFEFF${v1({ size: 0 })}`, LOC).size).toBe(0);
  });

  it("rejects a newer format with an upgrade hint", () => {
    expect(rejection(v1({ pantri: 2 }))).toContain("written by a newer pantri (format 2); upgrade pantri");
  });

  it.each([0, -1, 1.5, "1", null, true])("rejects pantri version %j", (version) => {
    expect(rejection(v1({ pantri: version }))).toMatch(/unknown pointer format/);
  });
});

describe("parsePointer legacy", () => {
  it("reads the original tool's pointers", () => {
    expect(parsePointer(legacy(), LOC)).toEqual({ format: "legacy", ...base });
  });

  it("floors a float modified_time", () => {
    expect(parsePointer(legacy({ modified_time: 1700000000.987654 }), LOC).mtime).toBe(1700000000);
  });

  it("ignores unknown inner keys", () => {
    expect(parsePointer(legacy({ owner: "x" }), LOC).format).toBe("legacy");
  });

  it("needs exactly one key holding an object", () => {
    const two = JSON.stringify({ ...JSON.parse(legacy()), "a/other": {} });
    expect(rejection(two)).toMatch(/not a pointer/);
    expect(rejection("{}")).toMatch(/not a pointer/);
    expect(rejection(JSON.stringify({ "a/b/pkg.deb": "x" }))).toMatch(/not a pointer/);
  });

  it.each([
    ["file_size", { file_size: "12" }],
    ["sha256_hash", { sha256_hash: undefined }],
    ["sha1_hash", { sha1_hash: "zz" }],
    ["modified_time", { modified_time: -5 }],
  ])("names the bad field %s", (name, inner) => {
    expect(rejection(legacy(inner))).toContain(name);
  });

  it("rejects a legacy path that is not its location", () => {
    expect(rejection(legacy({}, "a/b/other.deb"))).toMatch(/does not match/);
    expect(rejection(legacy({}, "../etc/passwd"))).toMatch(/"\.\." segment/);
  });
});

describe("parsePointer rejects hostile input, naming the file", () => {
  const cases: [string, string, RegExp][] = [
    ["invalid JSON", "{ not json", /not valid JSON/],
    ["truncated JSON", v1().slice(0, 40), /not valid JSON/],
    ["an array", "[1,2]", /expected a JSON object, got an array/],
    ["null", "null", /expected a JSON object/],
    ["a number", "42", /expected a JSON object/],
    ["a string", '"x"', /expected a JSON object/],
    ["missing path", v1({ path: undefined }), /"path" must be a string/],
    ["numeric path", v1({ path: 7 }), /"path" must be a string/],
    ["missing size", v1({ size: undefined }), /"size"/],
    ["string size", v1({ size: "10" }), /"size"/],
    ["negative size", v1({ size: -1 }), /"size"/],
    ["fractional size", v1({ size: 1.5 }), /"size"/],
    ["unsafe size", v1({ size: 2 ** 53 }), /"size"/],
    ["short sha256", v1({ sha256: SHA256.slice(1) }), /"sha256" must be 64 hex/],
    ["non-hex sha256", v1({ sha256: `g${SHA256.slice(1)}` }), /"sha256"/],
    ["missing sha256", v1({ sha256: undefined }), /"sha256"/],
    ["long sha1", v1({ sha1: `${SHA1}0` }), /"sha1" must be 40 hex/],
    ["numeric sha1", v1({ sha1: 1 }), /"sha1"/],
    ["missing mtime", v1({ mtime: undefined }), /"mtime"/],
    ["negative mtime", v1({ mtime: -1 }), /"mtime"/],
    ["string mtime", v1({ mtime: "1700000000" }), /"mtime"/],
    ["huge mtime", v1({ mtime: 1e300 }), /"mtime"/],
    ["absolute path", v1({ path: "/a/b/pkg.deb" }), /is absolute/],
    ["dot-dot path", v1({ path: "a/../a/b/pkg.deb" }), /"\.\." segment/],
    ["dot path", v1({ path: "a/./b/pkg.deb" }), /"\." segment/],
    ["empty segment", v1({ path: "a//b/pkg.deb" }), /empty segment/],
    ["trailing slash", v1({ path: "a/b/pkg.deb/" }), /empty segment/],
    ["empty path", v1({ path: "" }), /is empty/],
    ["NUL", v1({ path: "a/b/pkg.deb\u0000" }), /NUL/],
    ["backslash", v1({ path: "a\\b\\pkg.deb" }), /backslash/],
    ["control char", v1({ path: "a/b/pkg\u001b[31m.deb" }), /control character/],
    ["DEL", v1({ path: "a/b/pkg\u007f.deb" }), /control character/],
    ["lone surrogate", v1({ path: "a/b/pkg\ud800.deb" }), /surrogate/],
    ["drive letter", v1({ path: "C:/a/b/pkg.deb" }), /drive letter/],
    ["other shelf", v1({ path: "z/b/pkg.deb" }), /not in shelf "a"/],
    ["other file", v1({ path: "a/b/other.deb" }), /does not match the pointer's location/],
    ["own pointer name", v1({ path: LOC }), /does not match/],
    ["__proto__ key", `{"pantri":1,"__proto__":{"x":1},${v1().slice(12)}`, /__proto__/],
    ["legacy __proto__ path", '{"__proto__": {"file_size": 1}}', /__proto__/],
    ["legacy inner __proto__", `{"a/b/pkg.deb": {"__proto__": {}, "file_size": 1}}`, /__proto__/],
  ];

  it.each(cases)("%s", (_name, text, pattern) => {
    expect(rejection(text)).toMatch(pattern);
  });

  it("never reads a missing field from Object.prototype", () => {
    Object.defineProperty(Object.prototype, "file_size", { value: 5, configurable: true });
    try {
      expect(rejection(legacy({ file_size: undefined }))).toContain("file_size");
    } finally {
      delete (Object.prototype as Record<string, unknown>)["file_size"];
    }
  });

  it("rejects oversized text before parsing it", () => {
    const huge = v1({ padding: "x".repeat(MAX_POINTER_BYTES) });
    expect(rejection(huge)).toMatch(/more than a pointer's limit of 65536/);
    // Counted in UTF-8 bytes, not characters.
    const wide = v1({ padding: "é".repeat(MAX_POINTER_BYTES / 2) });
    expect(wide.length).toBeLessThan(MAX_POINTER_BYTES);
    expect(rejection(wide)).toMatch(/limit/);
  });

  it("rejects pointers outside a shelf or at a bad location", () => {
    expect(rejection(v1({ path: "pkg.deb" }), "pkg.deb.pitem")).toMatch(/inside a shelf/);
    expect(rejection(v1(), "a/b/pkg.deb")).toMatch(/not a valid pointer location/);
    expect(rejection(v1(), "a/../b.pitem")).toMatch(/not a valid pointer location/);
  });

  it("quotes hostile values safely in messages", () => {
    const msg = rejection(v1({ path: "a/b/\u001b[2Jx" }));
    expect(msg).not.toContain("\u001b");
  });
});

describe("parsePointer property", () => {
  let accepted = 0;
  function outcome(text: string, loc: string): void {
    let p;
    try {
      p = parsePointer(text, loc);
    } catch (err) {
      expect(err).toBeInstanceOf(PointerError);
      return;
    }
    accepted++;
    expect(p.path).toBe(binaryRelFor(loc));
    expect(validateRelPath(p.path)).toBeNull();
  }

  it("on arbitrary strings returns a pointer at its location or throws PointerError", () => {
    fc.assert(fc.property(fc.string({ unit: "binary" }), fc.string(), (text, loc) => {
      outcome(text, LOC);
      outcome(text, loc);
    }), { numRuns: 1000 });
  });

  it("on arbitrary JSON values, too", () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => outcome(JSON.stringify(value), LOC)), { numRuns: 2000 });
  });

  it("on pointer-shaped objects with arbitrary field values, too", () => {
    // Valid values weighted up, so that both accepted and rejected pointers are common.
    const anyOr = <T>(good: T) => fc.oneof({ arbitrary: fc.constant(good), weight: 5 }, fc.jsonValue(), fc.anything());
    const path = fc.oneof(
      { arbitrary: fc.constant("a/b/pkg.deb"), weight: 5 },
      fc.string(),
      fc.constantFrom("a/b/../b/pkg.deb", "/a/b/pkg.deb", "a\\b\\pkg.deb", "a/b/pkg.deb/", "b/b/pkg.deb"),
    );
    const v1Shaped = fc.record(
      { pantri: anyOr(1), path, size: anyOr(5), sha256: anyOr(SHA256), sha1: anyOr(SHA1), mtime: anyOr(1.5) },
      { requiredKeys: [] },
    );
    const legacyShaped = fc
      .tuple(path, fc.record({ file_size: anyOr(5), sha256_hash: anyOr(SHA256), sha1_hash: anyOr(SHA1), modified_time: anyOr(1.5) }, { requiredKeys: [] }))
      .map(([key, inner]) => ({ [key]: inner }));
    fc.assert(
      fc.property(fc.oneof(v1Shaped, legacyShaped), fc.dictionary(fc.string(), fc.jsonValue()), (obj, extra) => {
        outcome(JSON.stringify({ ...extra, ...obj }), LOC);
        outcome(JSON.stringify(obj), LOC);
      }),
      { numRuns: 3000 },
    );
    expect(accepted).toBeGreaterThan(100);
  });
});

describe("keys and locations", () => {
  it("content-addresses v1 and keeps legacy on its path", () => {
    const p = parsePointer(v1(), LOC);
    expect(objectKey(p)).toBe(`sha256/9f/${SHA256}`);
    expect(objectKey(p, "pfx/")).toBe(`pfx/sha256/9f/${SHA256}`);
    expect(contentKey(SHA256, "x-")).toBe(`x-sha256/9f/${SHA256}`);
    const l = parsePointer(legacy(), LOC);
    expect(objectKey(l)).toBe("a/b/pkg.deb");
    expect(objectKey(l, "pfx/")).toBe("pfx/a/b/pkg.deb");
  });

  it("maps binaries and pointers both ways", () => {
    expect(POINTER_SUFFIX).toBe(".pitem");
    expect(pointerRelFor("a/b/pkg.deb")).toBe(LOC);
    expect(binaryRelFor(LOC)).toBe("a/b/pkg.deb");
    expect(() => binaryRelFor("a/b/pkg.deb")).toThrow(PantriError);
  });

  it("validateRelPath accepts ordinary names", () => {
    for (const ok of ["a", "a/b", "a/.hidden", "a/..x", "a/x..", "a/ünï cödé/📦.deb", "a/b c/d-e_f.tar.gz"]) {
      expect(validateRelPath(ok)).toBeNull();
    }
  });
});
