import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IntegrityError } from "../../src/core/errors.js";
import { downloadVerified, partialPath } from "../../src/core/transfer.js";
import createLocalStore from "../../src/objectstores/local.js";
import type { ObjectStore, RetrieveRequest } from "../../src/objectstores/types.js";
import { sourceFromBuffer } from "../objectstores/contract.js";

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

let root: string;
let dest: string;
let store: ObjectStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "pantri-transfer-"));
  dest = join(root, "dest");
  await import("node:fs/promises").then((fs) => fs.mkdir(dest));
  store = await createLocalStore({ path: "store" }, { repoRoot: root, cacheDir: join(root, "cache"), env: {}, log: () => undefined });
});
afterEach(() => rm(root, { recursive: true, force: true }));

async function stored(bytes: Buffer, name: string): Promise<RetrieveRequest> {
  await store.put(name, sourceFromBuffer(bytes));
  return { key: name, size: bytes.length, sha256: sha256(bytes), file: join(dest, name), mtime: 1_700_000_123, item: undefined };
}

describe("downloadVerified of a small object (through memory)", () => {
  it("writes the exact bytes with the pointer's mtime, and nothing else", async () => {
    const bytes = randomBytes(4096);
    const req = await stored(bytes, "a.bin");
    await downloadVerified(store, req);
    expect((await readFile(req.file)).equals(bytes)).toBe(true);
    expect((await stat(req.file)).mtimeMs).toBe(1_700_000_123_000);
    expect(await readdir(dest)).toEqual(["a.bin"]);
  });

  it("writes nothing on a mismatch: the old file stays and no partial file is left", async () => {
    const req = await stored(randomBytes(4096), "b.bin");
    await writeFile(req.file, "old");
    const err: unknown = await downloadVerified(store, { ...req, sha256: sha256(randomBytes(8)) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toContain(`${req.file} was left as it was`);
    expect(await readFile(req.file, "utf8")).toBe("old");
    expect(await readdir(dest)).toEqual(["b.bin"]);
    // More bytes than the pointer promises: refused as well.
    await expect(downloadVerified(store, { ...req, size: 100 })).rejects.toThrow(/more than the 100 bytes/);
    expect(await readdir(dest)).toEqual(["b.bin"]);
  });

  it("resumes a partial file an earlier run left, through the streamed path", async () => {
    const bytes = randomBytes(5000);
    const req = await stored(bytes, "c.bin");
    await writeFile(partialPath(req.file, req.sha256), bytes.subarray(0, 1234));
    await downloadVerified(store, req);
    expect((await readFile(req.file)).equals(bytes)).toBe(true);
    expect(await readdir(dest)).toEqual(["c.bin"]);
  });

  it("does not write through a symlink found at the temporary name: the item fails, naming it", async () => {
    const bytes = randomBytes(3000);
    const req = await stored(bytes, "d.bin");
    const outside = join(root, "outside.txt");
    await writeFile(outside, "outside");
    await symlink(outside, partialPath(req.file, req.sha256));
    const err: unknown = await downloadVerified(store, req).catch((e: unknown) => e);
    expect(await readFile(outside, "utf8")).toBe("outside");
    expect((err as Error).message).toMatch(/is a symbolic link inside dest; pantri never follows links there/);
  });
});
