import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { appendFile, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SNIFF_BYTES, hashFile, isBinaryFile, md5PartsOf, readAndHash, sha256File, sniffFile } from "../../src/core/hash.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pantri-hash-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function openssl(algorithm: "sha1" | "sha256", file: string): string {
  // "SHA2-256(file)= <hex>" or "SHA256(file)= <hex>" depending on the OpenSSL version.
  const out = execFileSync("openssl", ["dgst", `-${algorithm}`, file], { encoding: "utf8" });
  return out.trim().split("= ").at(-1) ?? "";
}

describe("hashFile", () => {
  it.each([
    ["17 MiB + 12345 bytes (on worker threads)", 17 * 1024 * 1024 + 12345],
    ["3 MiB + 12345 bytes", 3 * 1024 * 1024 + 12345],
    ["exactly 2 MiB", 2 * 1024 * 1024],
    ["one byte past 1 MiB", 1024 * 1024 + 1],
    ["a few bytes", 7],
  ])("matches openssl on %s", async (_name, size) => {
    const file = join(dir, `f${size}`);
    await writeFile(file, randomBytes(size));
    let reported = 0;
    const result = await hashFile(file, (n) => (reported += n));
    expect(result).toEqual({ size, sha1: openssl("sha1", file), sha256: openssl("sha256", file) });
    expect(reported).toBe(size);
  });

  it("hashes an empty file to the well-known empty digests", async () => {
    const file = join(dir, "empty");
    await writeFile(file, "");
    expect(await hashFile(file)).toEqual({
      size: 0,
      sha1: "da39a3ee5e6b4b0d3255bfef95601890afd80709",
      sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    });
  });

  it("matches a known digest", async () => {
    const file = join(dir, "abc");
    await writeFile(file, "abc");
    const r = await hashFile(file);
    expect(r.sha1).toBe("a9993e364706816aba3e25717850c26c9cd0d89d");
    expect(r.sha256).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("rejects for a missing file", async () => {
    await expect(hashFile(join(dir, "nope"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("hashes several big files at once (they share the hash workers)", async () => {
    const files = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const file = join(dir, `parallel-${i}`);
        await writeFile(file, randomBytes(17 * 1024 * 1024 + i * 1000));
        return file;
      }),
    );
    const results = await Promise.all(files.map((f) => hashFile(f)));
    results.forEach((r, i) => {
      const file = files[i] ?? "";
      expect(r).toEqual({ size: 17 * 1024 * 1024 + i * 1000, sha1: openssl("sha1", file), sha256: openssl("sha256", file) });
    });
  });
});

describe("md5 parts", () => {
  const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");
  const partsOf = (b: Buffer, n: number) => {
    const out: string[] = [];
    for (let i = 0; i < b.length; i += n) out.push(md5(b.subarray(i, i + n)));
    return out.length ? out : [md5(Buffer.alloc(0))];
  };

  it.each([
    ["on workers, parts not a multiple of the read size", 17 * 1024 * 1024 + 5, 5 * 1024 * 1024 + 3],
    ["on workers, an exact multiple", 20 * 1024 * 1024, 4 * 1024 * 1024],
    ["on workers, one part bigger than the file", 17 * 1024 * 1024, 1024 ** 3],
    ["on this thread, parts smaller than a read", 3 * 1024 * 1024 + 1, 100_000],
    ["an empty file", 0, 1024],
  ])("gives the MD5 of each part %s", async (_name, size, partSize) => {
    const bytes = randomBytes(size);
    const file = join(dir, `md5-${size}-${partSize}`);
    await writeFile(file, bytes);
    const r = await hashFile(file, { md5PartSize: partSize });
    expect(r.md5Parts).toEqual(partsOf(bytes, partSize));
    expect(r.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(md5PartsOf(bytes, partSize)).toEqual(partsOf(bytes, partSize));
    expect((await readAndHash(file, partSize)).md5Parts).toEqual(partsOf(bytes, partSize));
  });

  it("leaves them out unless asked", async () => {
    const file = join(dir, "no-md5");
    await writeFile(file, randomBytes(17 * 1024 * 1024));
    expect((await hashFile(file)).md5Parts).toBeUndefined();
  });
});

describe("a file that changes while it is hashed", () => {
  it.each([
    ["hashFile", hashFile],
    ["sha256File", (f: string) => sha256File(f)],
  ])("fails %s, naming the file, instead of describing bytes that were never there together", async (_name, hash) => {
    const file = join(dir, `growing-${_name}`);
    await writeFile(file, randomBytes(64 * 1024 * 1024));
    let settled = false;
    const hashing = hash(file).finally(() => (settled = true));
    hashing.catch(() => undefined);
    // Keeps appending until the hash is done, so the file changes while it is read.
    while (!settled) {
      await appendFile(file, randomBytes(1024));
      await new Promise((r) => setTimeout(r, 1));
    }
    await expect(hashing).rejects.toThrow(new RegExp(`growing-${_name} changed while it was being hashed`));
  });
});

describe("sha256File", () => {
  it.each([
    ["17 MiB + 5 bytes (on this thread, reads ahead)", 17 * 1024 * 1024 + 5],
    ["3 MiB + 5 bytes (on this thread)", 3 * 1024 * 1024 + 5],
    ["exactly 2 MiB (reads end on a chunk boundary)", 2 * 1024 * 1024],
    ["one byte past 1 MiB", 1024 * 1024 + 1],
    ["a few bytes (read whole)", 9],
    ["nothing", 0],
  ])("matches openssl on %s, and reports every byte", async (_name, size) => {
    const file = join(dir, `sha256-${size}`);
    await writeFile(file, randomBytes(size));
    let reported = 0;
    const h = await sha256File(file, (n) => (reported += n));
    expect(h).toEqual({ size, sha256: openssl("sha256", file) });
    expect(reported).toBe(size);
  });
});

describe("sha256File on several big files at once", () => {
  it("hashes one on this thread and the others on workers, each right", async () => {
    const sizes = [17 * 1024 * 1024 + 1, 18 * 1024 * 1024 + 2, 3 * 1024 * 1024 + 3, 17 * 1024 * 1024 + 4];
    const files = await Promise.all(
      sizes.map(async (size, i) => {
        const file = join(dir, `sha256-parallel-${i}`);
        await writeFile(file, randomBytes(size));
        return file;
      }),
    );
    const results = await Promise.all(files.map((f) => sha256File(f)));
    expect(results).toEqual(files.map((f, i) => ({ size: sizes[i], sha256: openssl("sha256", f) })));
  });
});

describe("readAndHash", () => {
  it("gives the bytes and the same digests as hashFile", async () => {
    const file = join(dir, "small-whole");
    const bytes = randomBytes(4096 + 7);
    await writeFile(file, bytes);
    const r = await readAndHash(file);
    expect(r.data.equals(bytes)).toBe(true);
    const { data: _data, mtimeMs, ...digests } = r;
    expect(digests).toEqual(await hashFile(file));
    expect(mtimeMs).toBe((await stat(file)).mtimeMs);
  });
});

describe("sniffFile", () => {
  it("gives the whole bytes of a file up to the keep size, with its mtime, and the same verdict as isBinaryFile", async () => {
    const small = join(dir, "sniff-keep-small");
    const bytes = Buffer.concat([Buffer.from("ab\0cd"), randomBytes(4000)]);
    await writeFile(small, bytes);
    const kept = sniffFile(small, SNIFF_BYTES);
    expect(kept.binary).toBe(true);
    expect(kept.whole?.data.equals(bytes)).toBe(true);
    expect(kept.whole?.mtimeMs).toBe((await stat(small)).mtimeMs);
    // Not asked to keep, or bigger than asked or than the sniff: the verdict alone.
    expect(sniffFile(small, 0)).toEqual({ binary: true });
    expect(sniffFile(small, 100)).toEqual({ binary: true });
    const big = join(dir, "sniff-keep-big");
    await writeFile(big, Buffer.concat([Buffer.alloc(SNIFF_BYTES, "a"), Buffer.from([0])]));
    expect(sniffFile(big, 1 << 20)).toEqual({ binary: false });
    const text = join(dir, "sniff-keep-text");
    await writeFile(text, "plain text\n");
    expect(sniffFile(text, SNIFF_BYTES)).toMatchObject({ binary: false, whole: { data: Buffer.from("plain text\n") } });
  });
});

describe("isBinaryFile", () => {
  async function withNulAt(index: number | null, size: number): Promise<boolean> {
    const bytes = Buffer.alloc(size, "a");
    if (index !== null) bytes[index] = 0;
    const file = join(dir, `sniff-${index}-${size}`);
    await writeFile(file, bytes);
    return isBinaryFile(file);
  }

  it("looks at exactly the first 8 KiB", async () => {
    expect(SNIFF_BYTES).toBe(8192);
    expect(await withNulAt(SNIFF_BYTES - 1, 20000)).toBe(true);
    expect(await withNulAt(SNIFF_BYTES, 20000)).toBe(false);
    expect(await withNulAt(0, 20000)).toBe(true);
    // Between git's 8000 and our 8192: binary for pantri.
    expect(await withNulAt(8100, 20000)).toBe(true);
  });

  it("handles short and empty files", async () => {
    expect(await withNulAt(null, 0)).toBe(false);
    expect(await withNulAt(null, 100)).toBe(false);
    expect(await withNulAt(99, 100)).toBe(true);
    expect(await withNulAt(null, SNIFF_BYTES)).toBe(false);
  });

  it("calls UTF-8 text text", async () => {
    const file = join(dir, "utf8.txt");
    await writeFile(file, "héllo wörld ✓ 📦\n".repeat(1000));
    expect(await isBinaryFile(file)).toBe(false);
  });
});
