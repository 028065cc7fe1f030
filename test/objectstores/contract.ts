import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IntegrityError, StoreError } from "../../src/core/errors.js";
import type { ObjectMeta, ObjectStore, PutSource, RetrieveRequest, StoreRequest } from "../../src/objectstores/types.js";

/**
 * The one contract every object store passes (like rclone's fstests): the local store, custom
 * adapters, and the real Swift and S3 servers. Keys live under a random run prefix so a shared
 * bucket or container can host many runs; content-addressed keys use random content.
 */

export interface StoreContractOptions {
  /** false for a store without `list` (default true: list is then required). */
  supportsList?: boolean;
  /** The store implements the optional delete (default true). */
  supportsDelete?: boolean;
  /** Size of the object that exercises multipart/segmented uploads (default 3 MiB + 17 bytes). */
  bigObjectSize?: number;
}

export interface StoreContractSetup {
  /** Configure a small list page size here (e.g. 10) so the 25-key listing crosses pages. */
  store: ObjectStore;
  cleanup?: () => Promise<void>;
}

export function sha256Hex(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("hex");
}

/**
 * A PutSource over a Buffer. `open(start, end)` streams bytes start..end, `end` INCLUSIVE like
 * fs.createReadStream and HTTP ranges, in 64 KiB chunks as a file would arrive.
 */
export function sourceFromBuffer(buf: Buffer): PutSource {
  return {
    size: buf.length,
    sha256: sha256Hex(buf),
    sha1: createHash("sha1").update(buf).digest("hex"),
    open(start = 0, end?: number): Readable {
      const part = buf.subarray(start, end === undefined ? undefined : end + 1);
      return Readable.from(
        (function* () {
          for (let at = 0; at < part.length; at += 1 << 16) yield part.subarray(at, at + (1 << 16));
        })(),
        { objectMode: false },
      );
    },
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

const WEIRD_DIR = "pkgs/a b#c?d%e+f&g/";
const WEIRD_NAME = "ünï 日本.deb";

export function runStoreContract(
  name: string,
  setup: () => Promise<StoreContractSetup>,
  opts: StoreContractOptions = {},
): void {
  const supportsList = opts.supportsList ?? true;
  const bigObjectSize = opts.bigObjectSize ?? 3 * 1024 * 1024 + 17;

  describe(`object store contract: ${name}`, () => {
    let store: ObjectStore;
    let cleanup: (() => Promise<void>) | undefined;
    let tmp: string;
    const run = `pantri-contract-${randomBytes(4).toString("hex")}/`;
    const created = new Set<string>();

    const put = async (key: string, buf: Buffer): Promise<void> => {
      created.add(key);
      await store.put(key, sourceFromBuffer(buf));
    };
    const get = async (key: string, start?: number): Promise<Buffer> => readAll(await store.get(key, start === undefined ? {} : { start }));

    beforeAll(async () => {
      ({ store, cleanup } = await setup());
      tmp = await mkdtemp(join(tmpdir(), "pantri-contract-"));
    });

    afterAll(async () => {
      if (store?.delete) for (const key of created) await store.delete(key).catch(() => undefined);
      await store?.close?.();
      await cleanup?.();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    it("has a description", () => {
      expect(typeof store.description).toBe("string");
      expect(store.description.length).toBeGreaterThan(0);
    });

    it("head of a missing object is null", async () => {
      expect(await store.head(`${run}missing/nothing.bin`)).toBeNull();
    });

    it("put, then head gives the size and get the bytes", async () => {
      const key = `${run}basic/one.bin`;
      const buf = randomBytes(1000);
      await put(key, buf);
      expect(await store.head(key)).toEqual({ key, size: 1000 });
      expect((await get(key)).equals(buf)).toBe(true);
    });

    it("get with start returns the tail", async () => {
      const key = `${run}basic/range.bin`;
      const buf = randomBytes(5000);
      await put(key, buf);
      expect((await get(key, 1234)).equals(buf.subarray(1234))).toBe(true);
      expect((await get(key, 4999)).equals(buf.subarray(4999))).toBe(true);
    });

    it("get of a missing object throws StoreError with notFound", async () => {
      const err: unknown = await store.get(`${run}missing/nothing.bin`).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).notFound).toBe(true);
    });

    it("put of the same key twice is fine", async () => {
      const key = `${run}basic/twice.bin`;
      const buf = randomBytes(300);
      await put(key, buf);
      await put(key, buf);
      expect(await store.head(key)).toEqual({ key, size: 300 });
      expect((await get(key)).equals(buf)).toBe(true);
    });

    it("putIfAbsent, where the store has it, stores once and then finds the object present", async () => {
      if (!store.putIfAbsent) return; // an optional capability
      const key = `${run}basic/if-absent.bin`;
      created.add(key);
      const buf = randomBytes(500);
      expect(await store.putIfAbsent(key, sourceFromBuffer(buf))).toBe(true);
      expect(await store.putIfAbsent(key, sourceFromBuffer(buf))).toBe(false);
      expect(await store.head(key)).toEqual({ key, size: 500 });
      expect((await get(key)).equals(buf)).toBe(true);
    });

    it("stores an empty object", async () => {
      const key = `${run}basic/empty.bin`;
      await put(key, Buffer.alloc(0));
      expect(await store.head(key)).toEqual({ key, size: 0 });
      expect((await get(key)).length).toBe(0);
    });

    it("round-trips keys with spaces, #, ?, %, +, & and unicode", async () => {
      const key = `${run}${WEIRD_DIR}${WEIRD_NAME}`;
      const buf = randomBytes(777);
      await put(key, buf);
      expect(await store.head(key)).toEqual({ key, size: 777 });
      expect((await get(key)).equals(buf)).toBe(true);
      if (supportsList && store.list) {
        expect(await collect(store.list(`${run}${WEIRD_DIR}`))).toEqual([{ key, size: 777 }]);
      }
    });

    it("stores content-addressed keys sha256/<2 hex>/<64 hex>", async () => {
      const buf = randomBytes(2048);
      const hex = sha256Hex(buf);
      const key = `sha256/${hex.slice(0, 2)}/${hex}`;
      await put(key, buf);
      expect(await store.head(key)).toEqual({ key, size: 2048 });
      expect(sha256Hex(await get(key))).toBe(hex);
    });

    if (supportsList)
    it("lists exactly the keys under a prefix, with sizes", async () => {
      expect(store.list).toBeTypeOf("function");
      const list = (prefix: string) => collect((store.list as NonNullable<ObjectStore["list"]>)(prefix));
      const base = `${run}list/`;
      const expected: ObjectMeta[] = [];
      for (let i = 0; i < 25; i++) {
        const key = `${base}k${String(i).padStart(2, "0")}/item ${i}.bin`;
        await put(key, randomBytes(i + 1));
        expected.push({ key, size: i + 1 });
      }
      // Neighbours that share a string prefix but not the folder.
      await put(`${run}list-other/x.bin`, randomBytes(3));
      await put(`${run}listx.bin`, randomBytes(3));
      const byKey = (a: ObjectMeta, b: ObjectMeta) => (a.key < b.key ? -1 : 1);

      expect((await list(base)).sort(byKey)).toEqual(expected);
      expect((await list(`${base}k1`)).sort(byKey)).toEqual(expected.slice(10, 20));
      expect(await list(`${run}nothing-here/`)).toEqual([]);
    });

    it("storeObjects takes an async generator, yields each once, and skips what is present", async () => {
      const bufs = Array.from({ length: 20 }, (_, i) => randomBytes(100 + i));
      const keys = bufs.map((_, i) => `${run}batch/obj-${i}.bin`);
      keys.forEach((k) => created.add(k));
      async function* requests(): AsyncGenerator<StoreRequest<number>> {
        for (let i = 0; i < bufs.length; i++) {
          await new Promise((r) => setImmediate(r));
          yield { key: keys[i] as string, source: sourceFromBuffer(bufs[i] as Buffer), item: i };
        }
      }

      const first = await collect(store.storeObjects(requests(), { concurrency: 4 }));
      expect(first.map((o) => o.error)).toEqual(Array(20).fill(undefined));
      expect(first.map((o) => o.request.item).sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
      expect(first.every((o) => o.uploaded)).toBe(true);
      for (let i = 0; i < 20; i++) expect(await store.head(keys[i] as string)).toEqual({ key: keys[i], size: 100 + i });

      const second = await collect(store.storeObjects(requests(), { concurrency: 4 }));
      expect(second.map((o) => o.request.item).sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
      expect(second.map((o) => [o.uploaded, o.error])).toEqual(Array(20).fill([false, undefined]));
    });

    it("storeObjects of many small in-memory objects under content keys (as store sends them): each stored once, read back exact", async () => {
      const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");
      // 60 small ones (one empty, one twice), one over the size any store batches, one stored before.
      const bufs: Buffer[] = [Buffer.alloc(0), ...Array.from({ length: 59 }, (_, i) => randomBytes(1 + i * 97)), randomBytes(300 * 1024)];
      const before = randomBytes(77);
      bufs.push(before, bufs[5] as Buffer);
      const keyOf = (b: Buffer) => `${run}sha256/${sha256Hex(b).slice(0, 2)}/${sha256Hex(b)}`;
      await put(keyOf(before), before);
      bufs.forEach((b) => created.add(keyOf(b)));
      const requests = (): StoreRequest<number>[] =>
        bufs.map((b, i) => ({
          key: keyOf(b),
          // As store hands small files over: the content in memory, and (most) with the MD5 of their single part.
          source: { ...sourceFromBuffer(b), bytes: b, ...(i % 3 ? { md5Parts: [md5(b)] } : {}) },
          item: i,
        }));

      const first = await collect(store.storeObjects(requests(), { concurrency: 4 }));
      expect(first.map((o) => o.error?.message)).toEqual(Array(bufs.length).fill(undefined));
      expect(first.map((o) => o.request.item).sort((a, b) => a - b)).toEqual([...bufs.keys()]);
      const uploaded = first.filter((o) => o.uploaded).map((o) => o.request.item);
      // Everything new once; the object stored before and the second copy of bufs[5] not again.
      expect(uploaded.length).toBe(bufs.length - 2);
      expect(uploaded).not.toContain(bufs.length - 2);
      for (const b of bufs) {
        expect(await store.head(keyOf(b))).toEqual({ key: keyOf(b), size: b.length });
        expect((await get(keyOf(b))).equals(b)).toBe(true);
      }

      const second = await collect(store.storeObjects(requests(), { concurrency: 4 }));
      expect(second.map((o) => [o.uploaded, o.error])).toEqual(Array(bufs.length).fill([false, undefined]));
    });

    it("retrieveObjects writes exact bytes with the given mtime and leaves no temp files", async () => {
      const dest = join(tmp, "retrieve");
      await mkdir(dest, { recursive: true });
      // Small ones are received in memory; the last, over 1 MiB, streams through a partial file.
      const bufs = [...Array.from({ length: 5 }, (_, i) => randomBytes(1000 * i + 1)), randomBytes(1024 * 1024 + 5)];
      const requests: RetrieveRequest<number>[] = [];
      for (let i = 0; i < bufs.length; i++) {
        const buf = bufs[i] as Buffer;
        const key = `${run}retrieve/r${i}.bin`;
        await put(key, buf);
        requests.push({ key, size: buf.length, sha256: sha256Hex(buf), file: join(dest, `r${i}.bin`), mtime: 1_700_000_000 + i, item: i });
      }
      const outcomes = await collect(store.retrieveObjects(requests, { concurrency: 3 }));
      expect(outcomes.map((o) => o.error)).toEqual(Array(6).fill(undefined));
      expect(outcomes.map((o) => o.request.item).sort()).toEqual([0, 1, 2, 3, 4, 5]);
      for (const [i, buf] of bufs.entries()) {
        const file = join(dest, `r${i}.bin`);
        expect((await readFile(file)).equals(buf)).toBe(true);
        expect(Math.floor((await stat(file)).mtimeMs / 1000)).toBe(1_700_000_000 + i);
      }
      expect((await readdir(dest)).sort()).toEqual(bufs.map((_, i) => `r${i}.bin`).sort());
    });

    it("retrieveObjects fails only the object whose sha256 does not match, and keeps the old file", async () => {
      const dest = join(tmp, "integrity");
      await mkdir(dest, { recursive: true });
      const good = randomBytes(4000);
      const stored = randomBytes(4000);
      // Over 1 MiB: the streamed path (a partial file, removed on the mismatch).
      const storedBig = randomBytes(1024 * 1024 + 3);
      await put(`${run}integrity/good.bin`, good);
      await put(`${run}integrity/bad.bin`, stored);
      await put(`${run}integrity/bad-big.bin`, storedBig);
      const badFile = join(dest, "bad.bin");
      const badBigFile = join(dest, "bad-big.bin");
      await writeFile(badFile, "the old content");
      await writeFile(badBigFile, "the old big content");
      const lie = sha256Hex(randomBytes(4000));
      const requests: RetrieveRequest<string>[] = [
        { key: `${run}integrity/good.bin`, size: good.length, sha256: sha256Hex(good), file: join(dest, "good.bin"), mtime: 1_700_000_000, item: "good" },
        { key: `${run}integrity/bad.bin`, size: stored.length, sha256: lie, file: badFile, mtime: 1_700_000_000, item: "bad" },
        { key: `${run}integrity/bad-big.bin`, size: storedBig.length, sha256: lie, file: badBigFile, mtime: 1_700_000_000, item: "bad-big" },
      ];
      const outcomes = await collect(store.retrieveObjects(requests, { concurrency: 2 }));
      const byItem = new Map(outcomes.map((o) => [o.request.item, o]));
      expect(outcomes).toHaveLength(3);
      expect(byItem.get("good")?.error).toBeUndefined();
      expect(byItem.get("bad")?.error).toBeInstanceOf(IntegrityError);
      expect(byItem.get("bad-big")?.error).toBeInstanceOf(IntegrityError);
      expect(await readFile(badFile, "utf8")).toBe("the old content");
      expect(await readFile(badBigFile, "utf8")).toBe("the old big content");
      expect((await readFile(join(dest, "good.bin"))).equals(good)).toBe(true);
      expect((await readdir(dest)).sort()).toEqual(["bad-big.bin", "bad.bin", "good.bin"]);
    });

    it(`round-trips a big object (${bigObjectSize} bytes)`, async () => {
      const buf = randomBytes(bigObjectSize);
      const key = `${run}big/object.bin`;
      await put(key, buf);
      expect(await store.head(key)).toEqual({ key, size: bigObjectSize });
      expect(sha256Hex(await get(key))).toBe(sha256Hex(buf));
    });

    if (opts.supportsDelete ?? true)
    it("delete removes an object", async () => {
      if (!store.delete) throw new Error("this store has no delete: pass supportsDelete: false");
      const key = `${run}delete/gone.bin`;
      await put(key, randomBytes(10));
      await store.delete(key);
      expect(await store.head(key)).toBeNull();
      await expect(store.get(key)).rejects.toMatchObject({ notFound: true });
    });
  });
}
