import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, StoreError } from "../../src/core/errors.js";
import createLocalStore, { TEMP_SUFFIX } from "../../src/objectstores/local.js";
import type { ObjectStore, StoreContext } from "../../src/objectstores/types.js";
import { runStoreContract, sourceFromBuffer } from "./contract.js";

function contextFor(repoRoot: string): StoreContext {
  return { repoRoot, cacheDir: join(repoRoot, ".cache"), env: {}, log: () => undefined };
}

async function localStore(path: unknown, repoRoot: string): Promise<ObjectStore> {
  return createLocalStore({ path }, contextFor(repoRoot));
}

runStoreContract("local", async () => {
  const root = await mkdtemp(join(tmpdir(), "pantri-local-"));
  return { store: await localStore("store", root), cleanup: () => rm(root, { recursive: true, force: true }) };
});

describe("local store", () => {
  let root: string;
  let store: ObjectStore;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "pantri-local-"));
    store = await localStore(".pantri/store", root);
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it("keeps object K as the plain file <path>/K, path relative to the repo root", async () => {
    const buf = randomBytes(100);
    await store.put("pkgs/a b/x.deb", sourceFromBuffer(buf));
    expect((await readFile(join(root, ".pantri/store/pkgs/a b/x.deb"))).equals(buf)).toBe(true);
    expect(await readdir(join(root, ".pantri/store/pkgs/a b"))).toEqual(["x.deb"]);
    expect(store.description).toBe(`local store ${join(root, ".pantri/store")}`);
  });

  it("refuses bytes that do not match the announced sha256 or size, storing nothing", async () => {
    const source = { ...sourceFromBuffer(randomBytes(50)), open: () => sourceFromBuffer(randomBytes(50)).open() };
    const err: unknown = await store.put("lies/x.bin", source).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).retryable).toBe(false);
    expect(err).toMatchObject({ message: expect.stringContaining("refused") });
    expect(await readdir(join(root, ".pantri/store/lies"))).toEqual([]);

    const short = { ...sourceFromBuffer(randomBytes(50)), size: 51 };
    await expect(store.put("lies/y.bin", short)).rejects.toBeInstanceOf(StoreError);
    expect(await readdir(join(root, ".pantri/store/lies"))).toEqual([]);
  });

  it("refuses hostile keys", async () => {
    const hostile = ["/etc/passwd", "../outside", "a/../../b", "a//b", "a/./b", "a/", "", "a\0b", "a\\..\\b", `x${TEMP_SUFFIX}`];
    for (const key of hostile) {
      await expect(store.head(key), key).rejects.toBeInstanceOf(StoreError);
      await expect(store.get(key), key).rejects.toBeInstanceOf(StoreError);
      await expect(store.put(key, sourceFromBuffer(Buffer.from("x"))), key).rejects.toBeInstanceOf(StoreError);
    }
    await expect(readdir(join(root, "outside"))).rejects.toThrow();
  });

  it("list skips unfinished uploads", async () => {
    await mkdir(join(root, ".pantri/store/tmpdir"), { recursive: true });
    await writeFile(join(root, ".pantri/store/tmpdir", `.x.bin.0123${TEMP_SUFFIX}`), "partial");
    await store.put("tmpdir/x.bin", sourceFromBuffer(Buffer.from("whole")));
    const keys: { key: string; size: number }[] = [];
    for await (const meta of store.list?.("tmpdir/") ?? []) keys.push(meta);
    expect(keys).toEqual([{ key: "tmpdir/x.bin", size: 5 }]);
  });

  it("lists keys in string order across folders", async () => {
    for (const key of ["order/a/b", "order/a-c", "order/a0"]) await store.put(key, sourceFromBuffer(Buffer.from(key)));
    const keys: string[] = [];
    for await (const meta of store.list?.("order/") ?? []) keys.push(meta.key);
    expect(keys).toEqual(["order/a-c", "order/a/b", "order/a0"]);
  });

  it("needs objectStore.path", async () => {
    for (const path of [undefined, 42, ""]) {
      const err: unknown = await localStore(path, root).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toContain("objectStore.path");
    }
  });
});
