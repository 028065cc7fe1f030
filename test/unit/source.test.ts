import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashFile } from "../../src/core/hash.js";
import { bufferSource, fileSource, stageSource } from "../../src/core/source.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pantri-source-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every chunk the stream gives before it ends or fails, and how it ended. */
async function drain(stream: Readable): Promise<{ bytes: Buffer; error: Error | null }> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of stream) chunks.push(c as Buffer);
    return { bytes: Buffer.concat(chunks), error: null };
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error: error as Error };
  }
}

describe("fileSource", () => {
  it("streams the whole file and any inclusive range of it", async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const file = join(dir, "ranges.bin");
    await writeFile(file, bytes);
    const source = fileSource(file, await hashFile(file));
    expect((await drain(source.open())).bytes.equals(bytes)).toBe(true);
    expect((await drain(source.open(5, 1024 * 1024 + 9))).bytes.equals(bytes.subarray(5, 1024 * 1024 + 10))).toBe(true);
    expect((await drain(source.open(bytes.length - 1, bytes.length - 1))).bytes.equals(bytes.subarray(-1))).toBe(true);
  });

  it("fails a whole read of a file that changed after hashing, before its last chunk leaves", async () => {
    const bytes = randomBytes(2 * 1024 * 1024 + 5);
    const file = join(dir, "changed.bin");
    await writeFile(file, bytes);
    const source = fileSource(file, await hashFile(file));
    const other = Buffer.from(bytes);
    other[10] = (other[10] ?? 0) ^ 1;
    await writeFile(file, other);
    const { bytes: sent, error } = await drain(source.open());
    expect(error?.message).toMatch(/changed\.bin changed while it was being stored/);
    // A store with a fixed Content-Length never got the final byte, so it commits nothing.
    expect(sent.length).toBeLessThan(bytes.length);
  });

  it("fails, naming the file, when it became shorter than hashed", async () => {
    const file = join(dir, "shrunk.bin");
    await writeFile(file, randomBytes(100_000));
    const source = fileSource(file, await hashFile(file));
    await writeFile(file, randomBytes(1000));
    expect((await drain(source.open(0, 50_000))).error?.message).toMatch(/shrunk\.bin ended 49001 bytes early/);
  });

  it("leaves the check to the store when it brings MD5s the store verifies (md5Parts)", async () => {
    const bytes = randomBytes(100_000);
    const file = join(dir, "md5.bin");
    await writeFile(file, bytes);
    const source = fileSource(file, await hashFile(file, { md5PartSize: 1 << 20 }));
    expect(source.md5Parts).toHaveLength(1);
    const other = randomBytes(100_000);
    await writeFile(file, other);
    // No re-hash here: the new bytes go out, and the server's MD5 check (Swift: 422) refuses them.
    const { bytes: sent, error } = await drain(source.open());
    expect(error).toBeNull();
    expect(sent.equals(other)).toBe(true);
  });
});

describe("chunks (reused buffers, for bytes the store checks)", () => {
  it("are offered only with MD5s the store checks, and for staged files; they give every byte of a range, and fail a file that ended early", async () => {
    const bytes = randomBytes(4 * 1024 * 1024 + 3);
    const file = join(dir, "chunks.bin");
    await writeFile(file, bytes);
    const digests = await hashFile(file);
    expect(fileSource(file, digests).chunks).toBeUndefined();
    const chunks = fileSource(file, { ...digests, md5Parts: ["x"] }).chunks ?? stageSource(file, bytes.length).chunks;
    if (!chunks) throw new Error("no chunks");
    // Copied as they come: each buffer is used again two chunks later.
    const got: Buffer[] = [];
    for await (const c of chunks(7, bytes.length - 1)) got.push(Buffer.from(c));
    expect(Buffer.concat(got).equals(bytes.subarray(7))).toBe(true);
    expect(got.length).toBe(4); // 1 MiB reads
    const staged = stageSource(file, bytes.length).chunks;
    await writeFile(file, bytes.subarray(0, 1000));
    const read = async () => {
      for await (const _ of staged?.(0, bytes.length - 1) ?? []) void _;
    };
    await expect(read()).rejects.toThrow(/chunks\.bin ended \d+ bytes early/);
  });
});

describe("bufferSource", () => {
  it("offers its bytes whole, and ranges as streams", async () => {
    const bytes = randomBytes(5000);
    const source = bufferSource("/x/y.bin", bytes, { size: bytes.length, sha256: "a", sha1: "b" });
    expect(source.bytes?.equals(bytes)).toBe(true);
    expect((await drain(source.open(10, 19))).bytes.equals(bytes.subarray(10, 20))).toBe(true);
  });
});
