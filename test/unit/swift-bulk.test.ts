import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  BULK_GROUP_OBJECTS,
  BULK_MAX_OBJECTS,
  BULK_MAX_PENDING_BYTES,
  BULK_MIN_OBJECTS,
  bulkUnits,
  groupDigits,
  groupPrefix,
  md5Of,
  parseBulkReport,
  tarArchive,
  type BulkUnit,
} from "../../src/objectstores/swift-bulk.js";
import type { StoreRequest } from "../../src/objectstores/types.js";

const hex = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const keyOf = (sha: string, prefix = "") => `${prefix}sha256/${sha.slice(0, 2)}/${sha}`;

/** Reads an archive as Swift's bulk middleware does: Python's tarfile in stream mode ('r|'). */
async function readLikeSwift(archive: Buffer): Promise<Array<{ name: string; size: number; sha256: string }>> {
  const script = [
    "import sys, tarfile, hashlib, json",
    "out = []",
    "tar = tarfile.open(mode='r|', fileobj=sys.stdin.buffer)",
    "for info in tar:",
    "    data = tar.extractfile(info).read() if info.isfile() else b''",
    "    out.append({'name': info.name, 'size': info.size, 'sha256': hashlib.sha256(data).hexdigest(), 'file': info.isfile()})",
    "print(json.dumps(out))",
  ].join("\n");
  const child = execFile("python3", ["-c", script], { maxBuffer: 64 << 20 });
  const stdout = new Promise<string>((resolve, reject) => {
    let text = "";
    child.stdout?.on("data", (d: Buffer) => (text += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(text) : reject(new Error(`python3 exited ${code}`))));
  });
  child.stdin?.end(archive);
  const entries = JSON.parse(await stdout) as Array<{ name: string; size: number; sha256: string; file: boolean }>;
  expect(entries.every((e) => e.file)).toBe(true);
  return entries.map(({ name, size, sha256 }) => ({ name, size, sha256 }));
}

describe("tarArchive", () => {
  it("writes an archive that Python's tarfile (Swift's reader) and GNU tar read back exactly, long and non-ASCII names too", async () => {
    const files = [
      { name: keyOf(hex("a")), data: randomBytes(4096) },
      { name: keyOf(hex("b")), data: Buffer.alloc(0) },
      { name: keyOf(hex("c"), "a/rather/long/key/prefix/that/pushes/the/name/past/one/hundred/bytes/"), data: randomBytes(513) },
      { name: keyOf(hex("d"), "präfix/"), data: randomBytes(511) },
    ];
    expect(Buffer.byteLength(files[2]?.name ?? "")).toBeGreaterThan(100);
    const archive = tarArchive(files);
    expect(archive.length % 512).toBe(0);
    expect(await readLikeSwift(archive)).toEqual(files.map((f) => ({ name: f.name, size: f.data.length, sha256: hex(f.data) })));
    const listed = await new Promise<string>((resolve, reject) => {
      const child = execFile("tar", ["-tf", "-"], (err, out) => (err ? reject(err) : resolve(out)));
      child.stdin?.end(archive);
    });
    expect(listed.trim().split("\n")).toEqual(files.map((f) => f.name));
  });

  it("is just the end-of-archive blocks when empty", () => {
    expect(tarArchive([]).equals(Buffer.alloc(1024))).toBe(true);
  });
});

describe("groupDigits and groupPrefix", () => {
  it("takes as many hex digits as keep about one archive's worth of the container's objects per group", () => {
    expect(groupDigits(0)).toBe(0);
    expect(groupDigits(BULK_GROUP_OBJECTS)).toBe(0);
    expect(groupDigits(BULK_GROUP_OBJECTS + 1)).toBe(1);
    expect(groupDigits(16 * BULK_GROUP_OBJECTS)).toBe(1);
    expect(groupDigits(16 * BULK_GROUP_OBJECTS + 1)).toBe(2);
    expect(groupDigits(4096 * BULK_GROUP_OBJECTS)).toBe(3);
    // A huge container: groups would rarely fill, so no bulk upload.
    expect(groupDigits(4096 * BULK_GROUP_OBJECTS + 1)).toBeNull();
  });

  it("names the listing prefix holding every content key that starts with the same digits", () => {
    const sha = hex("x");
    expect(groupPrefix(keyOf(sha, "p/"), 0)).toBe("p/sha256/");
    expect(groupPrefix(keyOf(sha, "p/"), 1)).toBe(`p/sha256/${sha.slice(0, 1)}`);
    expect(groupPrefix(keyOf(sha), 2)).toBe(`sha256/${sha.slice(0, 2)}/${sha.slice(0, 2)}`);
    expect(groupPrefix(keyOf(sha), 3)).toBe(`sha256/${sha.slice(0, 2)}/${sha.slice(0, 3)}`);
    for (let d = 0; d <= 3; d++) expect(keyOf(sha).startsWith(groupPrefix(keyOf(sha), d) ?? "\0")).toBe(true);
    // Not content keys (legacy paths, a folder that does not match the hash): on their own.
    expect(groupPrefix("a/b/pkg.deb", 1)).toBeNull();
    expect(groupPrefix(`sha256/00/${sha.replace(/^../, "ff")}`, 1)).toBeNull();
  });
});

describe("bulkUnits", () => {
  const req = (key: string, size = 10): StoreRequest<string> => ({
    key,
    item: key,
    source: { size, sha256: "", sha1: "", open: () => null as never },
  });
  async function unitsOf(reqs: StoreRequest<string>[], groupOf: (r: StoreRequest<string>) => string | null): Promise<Array<string | string[]>> {
    const out: Array<string | string[]> = [];
    for await (const u of bulkUnits(reqs, groupOf) as AsyncGenerator<BulkUnit<string>>) out.push("single" in u ? u.single.item : u.group.map((r) => r.item));
    return out;
  }

  it("groups by prefix, hands a group out when full and the rest at the end; small leftovers and ungroupable ones go alone", async () => {
    const reqs = [
      ...Array.from({ length: BULK_MAX_OBJECTS + 3 }, (_, i) => req(`a${i}`)),
      ...Array.from({ length: BULK_MIN_OBJECTS - 1 }, (_, i) => req(`b${i}`)),
      req("legacy"),
    ];
    const units = await unitsOf(reqs, (r) => (r.key === "legacy" ? null : r.key.slice(0, 1)));
    expect(units[0]).toEqual(Array.from({ length: BULK_MAX_OBJECTS }, (_, i) => `a${i}`));
    expect(units[1]).toBe("legacy");
    // At the end: 3 a's are under the minimum, so are the b's: all alone.
    expect(units.slice(2).sort()).toEqual([...[0, 1, 2].map((i) => `a${BULK_MAX_OBJECTS + i}`), ...Array.from({ length: BULK_MIN_OBJECTS - 1 }, (_, i) => `b${i}`)].sort());
  });

  it("hands out the fullest group when too many bytes wait, so memory stays bounded", async () => {
    const MiB = 1 << 20;
    // Six groups of 8 objects just under 1 MiB, one after the other: none is full (BULK_MAX_BYTES),
    // but the bytes waiting pass 32 MiB with the fifth group's first.
    const reqs = Array.from({ length: 6 }, (_, g) => Array.from({ length: 8 }, (_, i) => req(`${g}-${i}`, MiB - 1024))).flat();
    let pulled = 0;
    async function* input(): AsyncGenerator<StoreRequest<string>> {
      for (const r of reqs) {
        pulled++;
        yield r;
      }
    }
    const units: Array<string | string[]> = [];
    const pulledAt: number[] = [];
    for await (const u of bulkUnits(input(), (r) => r.key.slice(0, 1))) {
      units.push("single" in u ? u.single.item : u.group.map((r) => r.item));
      pulledAt.push(pulled);
    }
    expect(BULK_MAX_PENDING_BYTES).toBe(32 * MiB);
    // Group 0 left when the 33rd object came in, not at the end.
    expect(units[0]).toEqual(Array.from({ length: 8 }, (_, i) => `0-${i}`));
    expect(pulledAt[0]).toBe(33);
    expect(units.length).toBe(6);
    expect(units.flat().sort()).toEqual(reqs.map((r) => r.item).sort());
  });
});

describe("parseBulkReport", () => {
  it("reads the status, the count and the failed paths (%-decoded) of the bulk middleware's JSON report, after its keep-alive spaces", () => {
    const text = `   \r\n\r\n${JSON.stringify({
      "Response Status": "400 Bad Request",
      "Response Body": "",
      "Number Files Created": 3,
      Errors: [["c/sha256/ab/x%20y", "503 Service Unavailable"]],
    })}`;
    expect(parseBulkReport(text)).toEqual({ status: 400, created: 3, errors: [{ path: "c/sha256/ab/x y", status: "503 Service Unavailable" }] });
    expect(parseBulkReport(JSON.stringify({ "Response Status": "201 Created", "Number Files Created": 2, Errors: [] }))).toEqual({
      status: 201,
      created: 2,
      errors: [],
    });
    expect(parseBulkReport("<html>not json</html>")).toBeNull();
    expect(parseBulkReport(JSON.stringify({ hello: 1 }))).toBeNull();
  });
});

describe("md5Of", () => {
  it("takes the MD5 from the hashing pass, else computes it from the bytes; unknown without either", () => {
    const b = randomBytes(100);
    const md5 = createHash("md5").update(b).digest("hex");
    expect(md5Of({ size: 100, md5Parts: ["x".repeat(32)] })).toBe("x".repeat(32));
    expect(md5Of({ size: 100, bytes: b })).toBe(md5);
    expect(md5Of({ size: 0 })).toBe("d41d8cd98f00b204e9800998ecf8427e");
    expect(md5Of({ size: 100 })).toBeUndefined();
  });
});
