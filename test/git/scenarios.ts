/**
 * The end-to-end store/retrieve suite (SPEC sections 2-4, 6, 7), run against every object store
 * (STYLE 11): real temporary git repos from test/helpers/gitdir.ts (STYLE 12), the REAL command
 * line spawned through test/helpers/cli.ts, `--json` documents and exit codes checked.
 *
 * Each test gets a fresh bare origin, a packager clone that stores, build-host clones that
 * retrieve, its own state and cache folders (PANTRI_STATE_DIR / PANTRI_CACHE_DIR), and a fresh
 * store from `storeConfig()`. Files are small, seeded and given explicit mtimes.
 */
import { createHash } from "node:crypto";
import { lstat, mkdir, readFile, readdir, rename, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createStore } from "../../src/objectstores/index.js";
import type { ObjectStore, PutSource } from "../../src/objectstores/types.js";
import {
  contentKeyOf,
  describeRun,
  expectedPointer,
  pathsOf,
  runPantri,
  sha256Hex,
  writeConfig,
  type ItemJson,
  type ResultJson,
  type RunPantriResult,
} from "../helpers/cli.js";
import { makeRepos, randomBinary, type Repos } from "../helpers/gitdir.js";
import { walkFiles } from "../helpers/tree.js";

export interface ScenarioStore {
  /** The `objectStore` section written to pantri.config.json (keyPrefix honoured when set). */
  objectStore: Record<string, unknown>;
  cleanup?: () => Promise<void>;
}

/**
 * Direct access to the store behind pantri's back, for tests that damage or seed it. Each hook
 * gets the full key (keyPrefix included) and the test's objectStore section. Missing hooks go
 * through the store's own adapter (put / delete).
 */
export interface ScenarioHooks {
  /** Replace the object's bytes with `data` (also used to restore it). */
  corrupt?: (key: string, data: Buffer, objectStore: Record<string, unknown>) => Promise<void>;
  /** Place an object under `key` (legacy objects, keyed by path). */
  put?: (key: string, data: Buffer, objectStore: Record<string, unknown>) => Promise<void>;
  /** Remove the object. */
  remove?: (key: string, objectStore: Record<string, unknown>) => Promise<void>;
}

interface FileSpec {
  data: Buffer;
  mtime: number;
}

/** Binaries of the standard fixture, by path relative to shelves/. */
function fixtureBinaries(): Record<string, FileSpec> {
  return {
    "pkgs/a.bin": { data: randomBinary(3000, 11), mtime: 1_600_000_011 },
    "pkgs/sub/b.bin": { data: randomBinary(5000, 12), mtime: 1_600_000_012 },
    "pkgs/sub/deep/c.bin": { data: randomBinary(1500, 13), mtime: 1_600_000_013 },
    // Spaces, glob characters and non-ASCII: escaped in .gitignore, byte-exact through git.
    "pkgs/we ird/[1] ü.bin": { data: randomBinary(700, 14), mtime: 1_600_000_014 },
  };
}

/** Text files of the standard fixture (committed to git by the packager, copied to dest). */
const FIXTURE_TEXT: Record<string, string> = {
  "pkgs/readme.txt": "read me\n",
  "pkgs/sub/notes.txt": "some notes\n",
};

function sourceOf(buf: Buffer): PutSource {
  return {
    size: buf.length,
    sha256: sha256Hex(buf),
    sha1: createHash("sha1").update(buf).digest("hex"),
    path: undefined,
    open(start = 0, end?: number) {
      return Readable.from([buf.subarray(start, end === undefined ? undefined : end + 1)]);
    },
  };
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

async function mtimeOf(path: string): Promise<number> {
  return Math.floor((await stat(path)).mtimeMs / 1000);
}

function item(list: ItemJson[] | undefined, path: string): ItemJson | undefined {
  return (list ?? []).find((i) => i.path === path);
}

export function runScenarios(name: string, storeConfig: () => Promise<ScenarioStore>, hooks: ScenarioHooks = {}): void {
  describe(`end to end: ${name}`, () => {
    let repos: Repos;
    let root: string;
    let packager: string;
    let env: Record<string, string>;
    let scenario: ScenarioStore;
    let objectStore: Record<string, unknown>;
    let prefix: string;
    let adapter: ObjectStore | null = null;
    let jsonOutDir: string;

    beforeEach(async () => {
      repos = await makeRepos({ shelves: ["pkgs"] });
      root = repos.root;
      packager = repos.packager;
      env = {
        PANTRI_STATE_DIR: join(root, "state"),
        PANTRI_CACHE_DIR: join(root, "cache"),
        PANTRI_LOCK_TIMEOUT: "60",
      };
      scenario = await storeConfig();
      objectStore = scenario.objectStore;
      prefix = typeof objectStore.keyPrefix === "string" ? objectStore.keyPrefix : "";
      jsonOutDir = join(root, "json-out");
      await writeConfig(packager, {
        objectStore,
        ignorePatterns: [".DS_Store", "*.pyc"],
        binaryOverrides: ["*.forced"],
        keepFiles: ["keep.me", "logs/**"],
        jsonOutputDir: jsonOutDir,
      });
      await repos.commitAll(packager, "pantri config");
      await repos.git(packager, "push", "--quiet");
    });

    afterEach(async () => {
      await adapter?.close?.();
      adapter = null;
      await scenario.cleanup?.();
      await repos.cleanup();
    });

    // ------------------------------------------------------------ helpers over the fixtures

    /** `pantri <args> --json` in cwd with this test's state and cache. */
    const pantri = (cwd: string, ...args: string[]): Promise<RunPantriResult> => runPantri([...args, "--json"], { cwd, env });

    /** Runs pantri and insists on exit 0 and an ok document; returns the document. */
    async function ok(cwd: string, ...args: string[]): Promise<ResultJson> {
      const r = await pantri(cwd, ...args);
      expect(r.code, describeRun(r)).toBe(0);
      expect(r.json, describeRun(r)).not.toBeNull();
      expect(r.json?.ok, describeRun(r)).toBe(true);
      return r.json as ResultJson;
    }

    /** The store as the test sees it, through pantri's own adapter (never through the CLI). */
    async function storeAdapter(): Promise<ObjectStore> {
      adapter ??= await createStore(
        { ...objectStore, type: String(objectStore.type) },
        { repoRoot: packager, cacheDir: env.PANTRI_CACHE_DIR ?? join(root, "cache"), env: { ...process.env, ...env }, log: () => undefined },
      );
      return adapter;
    }

    /** The object's bytes, or null when the store lacks it. For the local store: its plain file. */
    async function readObject(key: string): Promise<Buffer | null> {
      if (objectStore.type === "local") {
        return readFile(join(String(objectStore.path), key)).catch(() => null);
      }
      const s = await storeAdapter();
      if (!(await s.head(key))) return null;
      const chunks: Buffer[] = [];
      for await (const c of await s.get(key)) chunks.push(Buffer.from(c as Buffer));
      return Buffer.concat(chunks);
    }

    async function corruptObject(key: string, data: Buffer): Promise<void> {
      if (hooks.corrupt) return hooks.corrupt(key, data, objectStore);
      const s = await storeAdapter();
      await s.delete?.(key);
      await s.put(key, sourceOf(data));
    }

    async function putObject(key: string, data: Buffer): Promise<void> {
      if (hooks.put) return hooks.put(key, data, objectStore);
      await (await storeAdapter()).put(key, sourceOf(data));
    }

    async function removeObject(key: string): Promise<void> {
      if (hooks.remove) return hooks.remove(key, objectStore);
      const s = await storeAdapter();
      if (!s.delete) throw new Error(`${s.description} cannot delete: give runScenarios a remove hook`);
      await s.delete(key);
    }

    /** Writes shelves/<path> in repo with content and mtime. */
    const writeShelf = (repo: string, path: string, data: Buffer | string, mtime?: number) => repos.writeFile(repo, `shelves/${path}`, data, mtime);

    /**
     * The standard packager state, published: binaries stored by pantri (pointers committed),
     * text files committed by hand, everything pushed. Returns the binaries.
     */
    async function publish(): Promise<Record<string, FileSpec>> {
      const bins = fixtureBinaries();
      for (const [p, f] of Object.entries(bins)) await writeShelf(packager, p, f.data, f.mtime);
      for (const [p, t] of Object.entries(FIXTURE_TEXT)) await writeShelf(packager, p, t, 1_600_000_100);
      const res = await ok(packager, "store");
      expect(pathsOf(res.stored)).toEqual(Object.keys(bins).sort());
      await repos.commitAll(packager, "text files");
      await repos.git(packager, "push", "--quiet");
      return bins;
    }

    /** Checks dest/<path> holds exactly these bytes with this mtime. */
    async function expectDestFile(dest: string, path: string, f: FileSpec): Promise<void> {
      const file = join(dest, path);
      const data = await readFile(file).catch(() => null);
      expect(data, `${file} missing`).not.toBeNull();
      expect(data?.equals(f.data), `${file} has the wrong bytes`).toBe(true);
      expect(await mtimeOf(file), `${file} mtime`).toBe(f.mtime);
    }

    /** Each item's `file` is the absolute path join(dest, path). */
    function expectFilesIn(dest: string, items: ItemJson[]): void {
      for (const i of items) {
        expect(i.file, `${i.path} has no file`).toBeDefined();
        expect(isAbsolute(i.file ?? ""), `${i.file} is not absolute`).toBe(true);
        expect(i.file).toBe(join(dest, i.path));
      }
    }

    function standardTree(): string[] {
      return ["pkgs/.gitkeep", ...Object.keys(fixtureBinaries()), ...Object.keys(FIXTURE_TEXT)].sort();
    }

    // ------------------------------------------------------------------------------- store

    describe("store", () => {
      it("writes exact pointers and anchored ignore entries, commits only them, skips text and ignored files, stores identical content once", async () => {
        const bins: Record<string, FileSpec> = {
          "pkgs/a.bin": { data: randomBinary(3000, 1), mtime: 1_600_000_001 },
          "pkgs/sub/b.bin": { data: randomBinary(4100, 2), mtime: 1_600_000_002 },
          "pkgs/sub/dup.bin": { data: randomBinary(3000, 1), mtime: 1_600_000_003 }, // same bytes as a.bin
          "pkgs/plain.forced": { data: Buffer.from("text, but binaryOverrides says store it\n"), mtime: 1_600_000_004 },
          "pkgs/we ird/#[x]*.bin": { data: randomBinary(500, 5), mtime: 1_600_000_008 },
        };
        for (const [p, f] of Object.entries(bins)) await writeShelf(packager, p, f.data, f.mtime);
        const notes = await writeShelf(packager, "pkgs/notes.txt", "a text file stays git's\n", 1_600_000_005);
        // Binary content, but ignorePatterns: never stored.
        await writeShelf(packager, "pkgs/.DS_Store", randomBinary(600, 3), 1_600_000_006);
        await writeShelf(packager, "pkgs/sub/mod.pyc", randomBinary(700, 4), 1_600_000_007);
        // An unrelated staged change must stay staged, not ride along in pantri's commit.
        await repos.writeFile(packager, "unrelated.txt", "staged by the user\n");
        await repos.git(packager, "add", "unrelated.txt");
        const before = await repos.git(packager, "rev-parse", "HEAD");

        const res = await ok(packager, "store");

        expect(pathsOf(res.stored)).toEqual(Object.keys(bins).sort());
        expect(res.failed).toEqual([]);
        for (const p of ["pkgs/notes.txt", "pkgs/.DS_Store", "pkgs/sub/mod.pyc"]) {
          expect(item(res.skipped, p), `${p} should be skipped`).toBeDefined();
          expect(item(res.skipped, p)?.reason).toBeTruthy();
          expect(await exists(join(packager, "shelves", `${p}.pitem`)), `${p} got a pointer`).toBe(false);
        }

        // Pointers: exact bytes (key order, 2-space indent, trailing newline, real hashes).
        for (const [p, f] of Object.entries(bins)) {
          const text = await readFile(join(packager, "shelves", `${p}.pitem`), "utf8");
          expect(text).toBe(expectedPointer(p, f.data, f.mtime));
        }

        // Ignore entries: exactly the stored files, anchored, in the shelf's own .gitignore.
        const ignore = (await readFile(join(packager, "shelves/pkgs/.gitignore"), "utf8")).split("\n").filter(Boolean).sort();
        expect(ignore.filter((l) => !l.startsWith("/we ird/"))).toEqual(["/a.bin", "/plain.forced", "/sub/b.bin", "/sub/dup.bin"]);
        expect(ignore.filter((l) => l.startsWith("/we ird/"))).toHaveLength(1); // escaped as git likes it
        // Glob characters in a name are escaped: the entry matches that one file only.
        await expect(repos.git(packager, "check-ignore", "shelves/pkgs/we ird/#x1.bin")).rejects.toThrow();
        const ignored = await repos.git(packager, "check-ignore", ...Object.keys(bins).map((p) => `shelves/${p}`));
        expect(ignored.split("\n").sort()).toEqual(Object.keys(bins).map((p) => `shelves/${p}`).sort());
        await expect(repos.git(packager, "check-ignore", "shelves/pkgs/notes.txt")).rejects.toThrow();
        await expect(repos.git(packager, "check-ignore", "shelves/pkgs/other.bin")).rejects.toThrow();

        // One commit holding only the pointers and the ignore file, message naming shelf and count.
        expect(await repos.git(packager, "rev-parse", "HEAD~1")).toBe(before);
        const committed = (await repos.git(packager, "show", "--name-only", "--format=", "HEAD")).split("\n").filter(Boolean).sort();
        expect(committed).toEqual(["shelves/pkgs/.gitignore", ...Object.keys(bins).map((p) => `shelves/${p}.pitem`)].sort());
        const message = await repos.git(packager, "log", "-1", "--format=%s");
        expect(message).toContain("pkgs");
        expect(message).toContain("5");
        expect(await repos.git(packager, "diff", "--cached", "--name-only")).toBe("unrelated.txt");

        // Text files are left alone: same bytes, untracked, not ignored.
        expect(await readFile(notes, "utf8")).toBe("a text file stays git's\n");
        expect(await repos.git(packager, "status", "--porcelain", "--", "shelves/pkgs/notes.txt")).toBe("?? shelves/pkgs/notes.txt");

        // Objects are content-addressed, the duplicate stored once.
        const keys = new Set(Object.values(bins).map((f) => contentKeyOf(f.data, prefix)));
        expect(keys.size).toBe(4);
        for (const [p, f] of Object.entries(bins)) {
          const key = contentKeyOf(f.data, prefix);
          expect(key).toBe(`${prefix}sha256/${sha256Hex(f.data).slice(0, 2)}/${sha256Hex(f.data)}`);
          expect((await readObject(key))?.equals(f.data), `object ${key}`).toBe(true);
          expect(item(res.stored, p)?.key).toBe(key);
        }
        const s = await storeAdapter();
        if (s.list) {
          const listed: string[] = [];
          for await (const o of s.list(`${prefix}sha256/`)) listed.push(o.key);
          expect(listed.sort()).toEqual([...keys].sort());
        }
      });

      // On Swift these go up in bulk archives (the store's own tests count them): here the whole
      // path through the CLI, pointers written only for verified objects, must hold as well.
      it("stores a shelf of 150 small binaries in one run, each object exact, and a build host gets them all", async () => {
        const bins: Record<string, FileSpec> = {};
        for (let i = 0; i < 150; i++) bins[`pkgs/many/f${String(i).padStart(3, "0")}.bin`] = { data: randomBinary(200 + 37 * i, 1000 + i), mtime: 1_600_001_000 + i };
        bins["pkgs/many/same-as-f007.bin"] = { data: randomBinary(200 + 37 * 7, 1007), mtime: 1_600_002_000 };
        bins["pkgs/many/big.bin"] = { data: randomBinary(300 * 1024, 999), mtime: 1_600_002_001 };
        for (const [p, f] of Object.entries(bins)) await writeShelf(packager, p, f.data, f.mtime);

        const res = await ok(packager, "store");
        expect(pathsOf(res.stored)).toEqual(Object.keys(bins).sort());
        expect(res.failed).toEqual([]);
        // The same content twice is uploaded once.
        expect(res.stored.filter((s) => s.uploaded).length).toBe(Object.keys(bins).length - 1);
        for (const [p, f] of Object.entries(bins)) {
          expect(await readFile(join(packager, "shelves", `${p}.pitem`), "utf8")).toBe(expectedPointer(p, f.data, f.mtime));
          expect((await readObject(contentKeyOf(f.data, prefix)))?.equals(f.data), `object of ${p}`).toBe(true);
        }
        await repos.git(packager, "push", "--quiet");
        const build = await repos.cloneBuildHost();
        const dest = join(root, "dest");
        const got = await ok(build, "retrieve", "-d", dest);
        expect(pathsOf(got.retrieved)).toEqual(Object.keys(bins).sort());
        for (const [p, f] of Object.entries(bins)) await expectDestFile(dest, p, f);
      });

      it("is incremental: nothing to do twice, re-stores changed content, --checksum re-hashes, --no-commit stages", async () => {
        const a1 = randomBinary(2000, 21);
        const b1 = randomBinary(2500, 22);
        await writeShelf(packager, "pkgs/a.bin", a1, 1_600_000_021);
        await writeShelf(packager, "pkgs/b.bin", b1, 1_600_000_022);
        await ok(packager, "store");
        const first = await repos.git(packager, "rev-parse", "HEAD");

        // Nothing changed: nothing uploaded, no commit.
        const again = await ok(packager, "store");
        expect(again.stored).toEqual([]);
        expect(pathsOf(again.skipped)).toEqual(["pkgs/a.bin", "pkgs/b.bin"]);
        expect(await repos.git(packager, "rev-parse", "HEAD")).toBe(first);

        // New content (new size and mtime): stored again, pointer and commit updated.
        const a2 = randomBinary(2100, 23);
        await writeShelf(packager, "pkgs/a.bin", a2, 1_600_000_031);
        // Same size and mtime as the pointer, other bytes: invisible without --checksum.
        const b2 = randomBinary(2500, 24);
        await writeShelf(packager, "pkgs/b.bin", b2, 1_600_000_022);
        const changed = await ok(packager, "store");
        expect(pathsOf(changed.stored)).toEqual(["pkgs/a.bin"]);
        expect(await readFile(join(packager, "shelves/pkgs/a.bin.pitem"), "utf8")).toBe(expectedPointer("pkgs/a.bin", a2, 1_600_000_031));
        expect((await readObject(contentKeyOf(a2, prefix)))?.equals(a2)).toBe(true);
        expect((await readObject(contentKeyOf(a1, prefix)))?.equals(a1), "old objects stay").toBe(true);
        const second = await repos.git(packager, "rev-parse", "HEAD");
        expect(second).not.toBe(first);
        expect(await repos.git(packager, "status", "--porcelain", "--", "shelves")).toBe("");

        const checksum = await ok(packager, "store", "--checksum");
        expect(pathsOf(checksum.stored)).toEqual(["pkgs/b.bin"]);
        expect(await readFile(join(packager, "shelves/pkgs/b.bin.pitem"), "utf8")).toBe(expectedPointer("pkgs/b.bin", b2, 1_600_000_022));
        expect((await readObject(contentKeyOf(b2, prefix)))?.equals(b2)).toBe(true);
        const third = await repos.git(packager, "rev-parse", "HEAD");
        expect(third).not.toBe(second);

        // --no-commit: the pointer is written and staged, HEAD stays.
        const a3 = randomBinary(2200, 25);
        await writeShelf(packager, "pkgs/a.bin", a3, 1_600_000_041);
        const staged = await ok(packager, "store", "--no-commit");
        expect(pathsOf(staged.stored)).toEqual(["pkgs/a.bin"]);
        expect(await repos.git(packager, "rev-parse", "HEAD")).toBe(third);
        expect(await repos.git(packager, "diff", "--cached", "--name-only")).toBe("shelves/pkgs/a.bin.pitem");
        expect(await readFile(join(packager, "shelves/pkgs/a.bin.pitem"), "utf8")).toBe(expectedPointer("pkgs/a.bin", a3, 1_600_000_041));
      });

      it("--dry-run changes nothing; a path outside shelves/ is a usage error; a named path with --push stores only it and pushes", async () => {
        const x = randomBinary(1800, 31);
        const y = randomBinary(1900, 32);
        await writeShelf(packager, "pkgs/x.bin", x, 1_600_000_031);
        await writeShelf(packager, "pkgs/y.bin", y, 1_600_000_032);
        const head = await repos.git(packager, "rev-parse", "HEAD");

        const dry = await ok(packager, "store", "--dry-run");
        expect(dry.dryRun).toBe(true);
        expect(pathsOf(dry.stored)).toEqual(["pkgs/x.bin", "pkgs/y.bin"]);
        expect(await exists(join(packager, "shelves/pkgs/x.bin.pitem"))).toBe(false);
        expect(await exists(join(packager, "shelves/pkgs/.gitignore"))).toBe(false);
        expect(await repos.git(packager, "rev-parse", "HEAD")).toBe(head);
        expect(await repos.git(packager, "diff", "--cached", "--name-only")).toBe("");
        expect(await readObject(contentKeyOf(x, prefix))).toBeNull();

        await repos.writeFile(packager, "outside.bin", randomBinary(500, 33));
        const outside = await pantri(packager, "store", "outside.bin");
        expect(outside.code, describeRun(outside)).toBe(2);
        expect(outside.json?.ok).toBe(false);
        expect(outside.stderr).toContain("outside.bin");
        expect(await repos.git(packager, "rev-parse", "HEAD")).toBe(head);

        const pushed = await ok(packager, "store", "shelves/pkgs/x.bin", "--push");
        expect(pathsOf(pushed.stored)).toEqual(["pkgs/x.bin"]);
        expect(await exists(join(packager, "shelves/pkgs/y.bin.pitem"))).toBe(false);
        const now = await repos.git(packager, "rev-parse", "HEAD");
        expect(now).not.toBe(head);
        expect(await repos.git(repos.origin, "rev-parse", "main")).toBe(now);
      });
    });

    // ---------------------------------------------------------------------------- retrieve

    describe("retrieve", () => {
      it("full, then nothing, then exactly the added, modified, renamed and deleted items after a pull", async () => {
        const bins = await publish();
        const build = await repos.cloneBuildHost();
        const dest = join(root, "dest");

        const first = await ok(build, "retrieve", "-d", dest);
        expect(pathsOf(first.retrieved)).toEqual(Object.keys(bins).sort());
        expect(pathsOf(first.copied)).toEqual(["pkgs/.gitkeep", ...Object.keys(FIXTURE_TEXT)].sort());
        expect(first.removed).toEqual([]);
        expectFilesIn(dest, [...first.retrieved, ...first.copied]);
        for (const [p, f] of Object.entries(bins)) await expectDestFile(dest, p, f);
        for (const [p, t] of Object.entries(FIXTURE_TEXT)) expect(await readFile(join(dest, p), "utf8")).toBe(t);
        // Exactly the shelf's files: no pointers, no .gitignore, nothing else.
        expect(await walkFiles(dest)).toEqual(standardTree());

        const second = await ok(build, "retrieve", "-d", dest);
        expect([...second.retrieved, ...second.copied, ...second.removed, ...second.failed]).toEqual([]);

        // The packager modifies one, deletes one, adds one, renames one, changes and deletes text.
        const b2: FileSpec = { data: randomBinary(5200, 42), mtime: 1_600_000_042 };
        await writeShelf(packager, "pkgs/sub/b.bin", b2.data, b2.mtime);
        await repos.git(packager, "rm", "--quiet", "shelves/pkgs/a.bin.pitem");
        await rm(join(packager, "shelves/pkgs/a.bin"));
        const added: FileSpec = { data: randomBinary(2600, 43), mtime: 1_600_000_043 };
        await writeShelf(packager, "pkgs/new.bin", added.data, added.mtime);
        const c = bins["pkgs/sub/deep/c.bin"] as FileSpec;
        await mkdir(join(packager, "shelves/pkgs/moved"));
        await repos.git(packager, "mv", "shelves/pkgs/sub/deep/c.bin.pitem", "shelves/pkgs/moved/c.bin.pitem");
        await rename(join(packager, "shelves/pkgs/sub/deep/c.bin"), join(packager, "shelves/pkgs/moved/c.bin"));
        // The moved pointer must name its new place; same content, same mtime.
        await writeShelf(packager, "pkgs/moved/c.bin.pitem", expectedPointer("pkgs/moved/c.bin", c.data, c.mtime));
        await writeShelf(packager, "pkgs/readme.txt", "read me, version 2\n");
        await repos.git(packager, "rm", "--quiet", "shelves/pkgs/sub/notes.txt");
        const stored = await ok(packager, "store");
        expect(pathsOf(stored.stored)).toEqual(["pkgs/new.bin", "pkgs/sub/b.bin"]);
        await repos.commitAll(packager, "change the shelf");
        await repos.git(packager, "push", "--quiet");
        const renames = await repos.git(packager, "diff", "--name-status", "-M", "HEAD~2", "HEAD", "--", "shelves/pkgs");
        expect(renames).toMatch(/^R\d*\tshelves\/pkgs\/sub\/deep\/c\.bin\.pitem\tshelves\/pkgs\/moved\/c\.bin\.pitem$/m);

        // An unrelated folder in dest is none of the shelf's business.
        await mkdir(join(dest, "other"), { recursive: true });
        await writeFile(join(dest, "other", "file.txt"), "not pantri's\n");

        const third = await ok(build, "retrieve", "-d", dest);
        expect(await repos.git(build, "rev-parse", "HEAD"), "retrieve pulls by itself").toBe(await repos.git(packager, "rev-parse", "HEAD"));
        expect(pathsOf(third.retrieved)).toEqual(["pkgs/moved/c.bin", "pkgs/new.bin", "pkgs/sub/b.bin"]);
        expect(pathsOf(third.removed)).toEqual(["pkgs/a.bin", "pkgs/sub/deep/c.bin", "pkgs/sub/notes.txt"]);
        expect(pathsOf(third.copied)).toEqual(["pkgs/readme.txt"]);
        expect(third.failed).toEqual([]);
        expectFilesIn(dest, [...third.retrieved, ...third.copied, ...third.removed]);
        await expectDestFile(dest, "pkgs/sub/b.bin", b2);
        await expectDestFile(dest, "pkgs/new.bin", added);
        await expectDestFile(dest, "pkgs/moved/c.bin", c);
        expect(await readFile(join(dest, "pkgs/readme.txt"), "utf8")).toBe("read me, version 2\n");
        expect(await walkFiles(dest)).toEqual(
          ["other/file.txt", "pkgs/.gitkeep", "pkgs/moved/c.bin", "pkgs/new.bin", "pkgs/readme.txt", "pkgs/sub/b.bin", "pkgs/we ird/[1] ü.bin"].sort(),
        );
      });

      it("-f compares everything: removes strays under dest/<shelf>/ except keepFiles, never anything outside it", async () => {
        const bins = await publish();
        const build = await repos.cloneBuildHost();
        const dest = join(root, "dest");
        await ok(build, "retrieve", "-d", dest);

        await writeFile(join(dest, "pkgs/stray.bin"), "stray\n");
        await mkdir(join(dest, "pkgs/logs"), { recursive: true });
        await writeFile(join(dest, "pkgs/logs/run.log"), "kept by keepFiles logs/**\n");
        await writeFile(join(dest, "pkgs/sub/keep.me"), "kept by keepFiles keep.me\n");
        await mkdir(join(dest, "other"), { recursive: true });
        await writeFile(join(dest, "other/file.txt"), "outside the shelf\n");
        await writeFile(join(dest, "top.txt"), "outside the shelf\n");
        // A damaged copy with another size and mtime: the full comparison notices it.
        await writeFile(join(dest, "pkgs/a.bin"), "damaged\n");

        // The incremental run only looks at what git changed: nothing.
        const quiet = await ok(build, "retrieve", "-d", dest);
        expect([...quiet.retrieved, ...quiet.removed, ...quiet.copied]).toEqual([]);
        expect(await exists(join(dest, "pkgs/stray.bin"))).toBe(true);

        const forced = await ok(build, "retrieve", "-f", "-d", dest);
        expect(pathsOf(forced.removed)).toEqual(["pkgs/stray.bin"]);
        expect(pathsOf(forced.retrieved)).toEqual(["pkgs/a.bin"]);
        expectFilesIn(dest, [...forced.removed, ...forced.retrieved]);
        await expectDestFile(dest, "pkgs/a.bin", bins["pkgs/a.bin"] as FileSpec);
        expect(await walkFiles(dest)).toEqual(
          [...standardTree(), "other/file.txt", "pkgs/logs/run.log", "pkgs/sub/keep.me", "top.txt"].sort(),
        );
      });

      it("--ref brings an older tag's version, and the next plain run comes back to HEAD", async () => {
        const bins = await publish();
        await repos.git(packager, "tag", "v1");
        await repos.git(packager, "push", "--quiet", "origin", "v1");
        const a2: FileSpec = { data: randomBinary(3300, 51), mtime: 1_600_000_051 };
        await writeShelf(packager, "pkgs/a.bin", a2.data, a2.mtime);
        await ok(packager, "store", "--push");
        const build = await repos.cloneBuildHost();
        const dest = join(root, "dest");

        await ok(build, "retrieve", "-d", dest);
        await expectDestFile(dest, "pkgs/a.bin", a2);

        const old = await ok(build, "retrieve", "--ref", "v1", "-d", dest);
        expect(pathsOf(old.retrieved)).toEqual(["pkgs/a.bin"]);
        await expectDestFile(dest, "pkgs/a.bin", bins["pkgs/a.bin"] as FileSpec);

        const back = await ok(build, "retrieve", "--dest_sync", dest);
        expect(pathsOf(back.retrieved)).toEqual(["pkgs/a.bin"]);
        await expectDestFile(dest, "pkgs/a.bin", a2);
      });

      it("-i retrieves one item next to its pointer, or into -d", async () => {
        const bins = await publish();
        const build = await repos.cloneBuildHost();
        const b = bins["pkgs/sub/b.bin"] as FileSpec;

        // A build host has pointers without binaries: store leaves them alone.
        const head = await repos.git(build, "rev-parse", "HEAD");
        const nothing = await ok(build, "store");
        expect([...nothing.stored, ...nothing.failed]).toEqual([]);
        expect(await repos.git(build, "rev-parse", "HEAD")).toBe(head);
        expect(await repos.git(build, "status", "--porcelain")).toBe("");

        const here = await ok(build, "retrieve", "-i", "shelves/pkgs/sub/b.bin.pitem");
        expect(pathsOf(here.retrieved)).toEqual(["pkgs/sub/b.bin"]);
        expect(item(here.retrieved, "pkgs/sub/b.bin")?.file).toBe(join(build, "shelves/pkgs/sub/b.bin"));
        await expectDestFile(join(build, "shelves"), "pkgs/sub/b.bin", b);
        expect(await exists(join(build, "shelves/pkgs/a.bin"))).toBe(false);
        expect(await repos.git(build, "status", "--porcelain"), "the retrieved binary is git-ignored").toBe("");

        const dest = join(root, "dest-one");
        const there = await ok(join(build, "shelves", "pkgs"), "retrieve", "-i", "sub/b.bin.pitem", "-d", dest);
        expect(pathsOf(there.retrieved)).toEqual(["pkgs/sub/b.bin"]);
        expectFilesIn(dest, there.retrieved);
        await expectDestFile(dest, "pkgs/sub/b.bin", b);
        expect(await walkFiles(dest)).toEqual(["pkgs/sub/b.bin"]);
      });

      it("-j writes <shelf>_updated_objects.json with absolute paths into jsonOutputDir", async () => {
        const bins = await publish();
        const build = await repos.cloneBuildHost();
        const dest = join(root, "dest");
        const legacyFile = join(jsonOutDir, "pkgs_updated_objects.json");

        const first = await ok(build, "retrieve", "-s", "pkgs", "-j", "-d", dest);
        const doc1 = JSON.parse(await readFile(legacyFile, "utf8")) as { retrieved: unknown; removed: unknown };
        expect(Object.keys(doc1).sort()).toEqual(["removed", "retrieved"]);
        expect(doc1.removed).toEqual([]);
        const retrieved1 = doc1.retrieved as string[];
        for (const p of Object.keys(bins)) expect(retrieved1).toContain(join(dest, p));
        for (const f of retrieved1) {
          expect(isAbsolute(f)).toBe(true);
          expect(f.startsWith(`${dest}/pkgs/`)).toBe(true);
        }
        expect(retrieved1.every((f) => !f.endsWith(".pitem"))).toBe(true);
        expect(first.retrieved.map((i) => i.file)).toEqual(expect.arrayContaining(retrieved1.filter((f) => f.endsWith(".bin"))));

        await repos.git(packager, "rm", "--quiet", "shelves/pkgs/a.bin.pitem");
        await repos.commitAll(packager, "drop a.bin");
        await repos.git(packager, "push", "--quiet");
        // Without -s the file is all_updated_objects.json.
        await ok(build, "retrieve", "-j", "-d", dest);
        const doc2 = JSON.parse(await readFile(join(jsonOutDir, "all_updated_objects.json"), "utf8")) as { retrieved: string[]; removed: string[] };
        expect(doc2).toEqual({ retrieved: [], removed: [join(dest, "pkgs/a.bin")] });
        expect(JSON.parse(await readFile(legacyFile, "utf8"))).toEqual(doc1);
        expect(await exists(join(dest, "pkgs/a.bin"))).toBe(false);
      });

      it("--dry-run creates nothing, not even dest; an unknown shelf is a usage error; --no-pull does not pull", async () => {
        const bins = await publish();
        const build = await repos.cloneBuildHost();
        const dest = join(root, "dest");

        const dry = await ok(build, "retrieve", "--dry-run", "-d", dest);
        expect(dry.dryRun).toBe(true);
        expect(pathsOf(dry.retrieved)).toEqual(Object.keys(bins).sort());
        expect(await exists(dest)).toBe(false);

        const unknown = await pantri(build, "retrieve", "-s", "nope", "-d", dest);
        expect(unknown.code, describeRun(unknown)).toBe(2);
        expect(unknown.json?.ok).toBe(false);
        expect(unknown.stderr).toContain("nope");
        expect(await exists(dest)).toBe(false);

        const n: FileSpec = { data: randomBinary(1200, 61), mtime: 1_600_000_061 };
        await writeShelf(packager, "pkgs/new.bin", n.data, n.mtime);
        await ok(packager, "store", "--push");
        const head = await repos.git(build, "rev-parse", "HEAD");

        // The dry run recorded nothing: this is still a full first sync, but of the old HEAD.
        const noPull = await ok(build, "retrieve", "--no-pull", "-d", dest);
        expect(await repos.git(build, "rev-parse", "HEAD")).toBe(head);
        expect(pathsOf(noPull.retrieved)).toEqual(Object.keys(bins).sort());
        expect(await exists(join(dest, "pkgs/new.bin"))).toBe(false);

        const pulled = await ok(build, "retrieve", "-d", dest);
        expect(pathsOf(pulled.retrieved)).toEqual(["pkgs/new.bin"]);
        await expectDestFile(dest, "pkgs/new.bin", n);
      });

      it("reads legacy (Facebook pantri) pointers and fetches their objects by path", async () => {
        const data = randomBinary(2200, 71);
        const legacy = {
          "pkgs/legacy/old.bin": {
            sha1_hash: createHash("sha1").update(data).digest("hex"),
            sha256_hash: sha256Hex(data),
            modified_time: 1_500_000_000.75,
            file_size: data.length,
          },
        };
        await writeShelf(packager, "pkgs/legacy/old.bin.pitem", `${JSON.stringify(legacy, null, 4)}\n`);
        await putObject(`${prefix}pkgs/legacy/old.bin`, data);
        await repos.commitAll(packager, "a legacy pointer");
        await repos.git(packager, "push", "--quiet");
        const build = await repos.cloneBuildHost();
        const dest = join(root, "dest");

        const res = await ok(build, "retrieve", "-d", dest);
        expect(pathsOf(res.retrieved)).toEqual(["pkgs/legacy/old.bin"]);
        expectFilesIn(dest, res.retrieved);
        await expectDestFile(dest, "pkgs/legacy/old.bin", { data, mtime: 1_500_000_000 });
      });
    });

    // ----------------------------------------------------------------- untrusted pointers

    describe("hostile pointers and dest", () => {
      it("fails each bad pointer by name, retrieves the others, writes nothing outside dest", async () => {
        const bins = await publish();
        const build = await repos.cloneBuildHost();
        const dest = join(root, "dest");
        await ok(build, "retrieve", "-d", dest);

        // Each one names a real object, so only validation stands between it and a write.
        const a = bins["pkgs/a.bin"] as FileSpec;
        const fields = { size: a.data.length, sha256: sha256Hex(a.data), sha1: createHash("sha1").update(a.data).digest("hex"), mtime: a.mtime };
        const hostile: Record<string, string> = {
          "pkgs/evil-dots.bin": JSON.stringify({ pantri: 1, path: "pkgs/../../escape-dots.bin", ...fields }),
          "pkgs/evil-abs.bin": JSON.stringify({ pantri: 1, path: join(root, "escape-abs.bin"), ...fields }),
          "pkgs/evil-elsewhere.bin": JSON.stringify({ pantri: 1, path: "pkgs/elsewhere.bin", ...fields }),
          "pkgs/evil-v2.bin": JSON.stringify({ pantri: 2, path: "pkgs/evil-v2.bin", ...fields }),
          "pkgs/evil-json.bin": '{"pantri": 1, "path": "pkgs/evil-json.bin",',
        };
        for (const [p, text] of Object.entries(hostile)) await writeShelf(packager, `${p}.pitem`, text);
        // A good item arriving with them (a text file) must still come through.
        await writeShelf(packager, "pkgs/good.txt", "good\n");
        await repos.commitAll(packager, "hostile pointers");
        await repos.git(packager, "push", "--quiet");

        const check = async (res: RunPantriResult, mode: string, d: string) => {
          expect(res.code, `${mode}: ${describeRun(res)}`).toBe(1);
          expect(res.json?.ok).toBe(false);
          for (const p of Object.keys(hostile)) {
            const f = item(res.json?.failed, p);
            expect(f, `${mode}: ${p} not in failed`).toBeDefined();
            expect(f?.error, `${mode}: ${p}'s error must name its pointer`).toContain(`${p.slice("pkgs/".length)}.pitem`);
          }
          expect(pathsOf(res.json?.failed)).toEqual(Object.keys(hostile).sort());
          expect(await readFile(join(d, "pkgs/good.txt"), "utf8")).toBe("good\n");
          for (const [p, f] of Object.entries(bins)) await expectDestFile(d, p, f);
          expect(await exists(join(root, "escape-dots.bin"))).toBe(false);
          expect(await exists(join(root, "escape-abs.bin"))).toBe(false);
          expect(await exists(join(d, "pkgs/elsewhere.bin"))).toBe(false);
          expect(await walkFiles(d)).toEqual([...standardTree(), "pkgs/good.txt"].sort());
        };

        const incremental = await pantri(build, "retrieve", "-d", dest);
        expect(pathsOf(incremental.json?.copied)).toEqual(["pkgs/good.txt"]);
        await check(incremental, "incremental", dest);
        // A first, full sync into a new dest: the binaries come, the hostile pointers fail.
        const fresh = join(root, "dest-full");
        const full = await pantri(build, "retrieve", "-d", fresh);
        expect(pathsOf(full.json?.retrieved)).toEqual(Object.keys(bins).sort());
        await check(full, "full", fresh);
      });

      it("never writes through a symlink inside dest: the items beneath it fail", async () => {
        const bins = await publish();
        const build = await repos.cloneBuildHost();
        const dest = join(root, "dest");
        const outside = join(root, "outside");
        await mkdir(outside);
        await mkdir(join(dest, "pkgs"), { recursive: true });
        await symlink(outside, join(dest, "pkgs/sub"));

        const linked = await pantri(build, "retrieve", "-d", dest);
        expect(linked.code, describeRun(linked)).toBe(1);
        expect(pathsOf(linked.json?.failed)).toEqual(["pkgs/sub/b.bin", "pkgs/sub/deep/c.bin", "pkgs/sub/notes.txt"]);
        await expectDestFile(dest, "pkgs/a.bin", bins["pkgs/a.bin"] as FileSpec);
        expect(await readdir(outside)).toEqual([]);
        expect((await lstat(join(dest, "pkgs/sub"))).isSymbolicLink(), "the link itself is left alone").toBe(true);

        // Without the link, the run completes; then a link appears and an update comes.
        await rm(join(dest, "pkgs/sub"));
        await ok(build, "retrieve", "-d", dest);
        expect(await walkFiles(dest)).toEqual(standardTree());
        await rename(join(dest, "pkgs/sub"), join(root, "old-sub"));
        await symlink(outside, join(dest, "pkgs/sub"));
        await writeShelf(packager, "pkgs/sub/b.bin", randomBinary(5100, 91), 1_600_000_091);
        await ok(packager, "store", "--push");

        const update = await pantri(build, "retrieve", "-d", dest);
        expect(update.code, describeRun(update)).toBe(1);
        expect(pathsOf(update.json?.failed)).toEqual(["pkgs/sub/b.bin"]);
        expect(await readdir(outside)).toEqual([]);
      });

      it("a corrupted object fails its item, leaves the old file, does not advance the sync record, and heals once restored", async () => {
        const bins = await publish();
        const build = await repos.cloneBuildHost();
        const dest = join(root, "dest");
        await ok(build, "retrieve", "-d", dest);
        const a1 = bins["pkgs/a.bin"] as FileSpec;

        const a2: FileSpec = { data: randomBinary(3000, 101), mtime: 1_600_000_101 };
        const d: FileSpec = { data: randomBinary(900, 102), mtime: 1_600_000_102 };
        await writeShelf(packager, "pkgs/a.bin", a2.data, a2.mtime);
        await writeShelf(packager, "pkgs/d.bin", d.data, d.mtime);
        await repos.git(packager, "rm", "--quiet", "shelves/pkgs/sub/b.bin.pitem");
        await rm(join(packager, "shelves/pkgs/sub/b.bin"));
        await ok(packager, "store");
        // store commits only its pointers and ignore entries: the staged deletion is ours to commit.
        await repos.commitAll(packager, "drop b.bin");
        await repos.git(packager, "push", "--quiet");
        const key = contentKeyOf(a2.data, prefix);
        const garbage = randomBinary(a2.data.length, 103);
        await corruptObject(key, garbage);

        for (const attempt of ["first", "second"]) {
          const res = await pantri(build, "retrieve", "-d", dest);
          expect(res.code, `${attempt}: ${describeRun(res)}`).toBe(1);
          expect(pathsOf(res.json?.failed), attempt).toEqual(["pkgs/a.bin"]);
          expect(item(res.json?.failed, "pkgs/a.bin")?.error).toBeTruthy();
          // The old version is untouched, and nothing holds the bad bytes under any name.
          await expectDestFile(dest, "pkgs/a.bin", a1);
          await expectDestFile(dest, "pkgs/d.bin", d);
          // Deletions wait until every download succeeded.
          await expectDestFile(dest, "pkgs/sub/b.bin", bins["pkgs/sub/b.bin"] as FileSpec);
          expect(res.json?.removed).toEqual([]);
          for (const f of await walkFiles(dest)) {
            expect((await readFile(join(dest, f))).equals(garbage), `${f} holds the corrupt bytes`).toBe(false);
          }
          expect(await walkFiles(dest)).toEqual([...standardTree(), "pkgs/d.bin"].sort());
        }

        await corruptObject(key, a2.data);
        const healed = await ok(build, "retrieve", "-d", dest);
        expect(pathsOf(healed.retrieved)).toEqual(["pkgs/a.bin"]);
        expect(pathsOf(healed.removed)).toEqual(["pkgs/sub/b.bin"]);
        await expectDestFile(dest, "pkgs/a.bin", a2);
        expect(await walkFiles(dest)).toEqual([...standardTree().filter((p) => p !== "pkgs/sub/b.bin"), "pkgs/d.bin"].sort());
      });
    });

    // ------------------------------------------------------------------------- concurrency

    it("two retrieves into one dest at the same time both succeed and leave dest right", async () => {
      const bins = fixtureBinaries();
      for (let i = 0; i < 6; i++) bins[`pkgs/more/m${i}.bin`] = { data: randomBinary(4000 + i, 110 + i), mtime: 1_600_000_110 + i };
      for (const [p, f] of Object.entries(bins)) await writeShelf(packager, p, f.data, f.mtime);
      await ok(packager, "store", "--push");
      const build = await repos.cloneBuildHost();
      const dest = join(root, "dest");

      const [one, two] = await Promise.all([pantri(build, "retrieve", "-d", dest), pantri(build, "retrieve", "-d", dest)]);
      for (const r of [one, two]) {
        expect(r.code, describeRun(r)).toBe(0);
        expect(r.json?.ok).toBe(true);
      }
      for (const [p, f] of Object.entries(bins)) await expectDestFile(dest, p, f);
      expect(await walkFiles(dest)).toEqual(["pkgs/.gitkeep", ...Object.keys(bins)].sort());
    });

    // ------------------------------------------------------------------- status and verify

    it("status shows unstored, modified and missing-in-dest files; --remote names objects missing from the store", async () => {
      const bins = await publish();
      await writeShelf(packager, "pkgs/unstored.bin", randomBinary(800, 121), 1_600_000_121);
      await writeShelf(packager, "pkgs/a.bin", randomBinary(3100, 122), 1_600_000_122);
      const build = await repos.cloneBuildHost();
      const dest = join(root, "dest");

      const [pk, bh] = await Promise.all([pantri(packager, "status", "-d", dest), pantri(build, "status", "--remote", "-d", dest)]);
      expect(pk.code, describeRun(pk)).toBe(0);
      expect(pk.json?.unstored).toEqual(["pkgs/unstored.bin"]);
      expect(pk.json?.modified).toEqual(["pkgs/a.bin"]);
      expect(bh.code, describeRun(bh)).toBe(0);
      expect(bh.json?.missingInDest).toEqual(Object.keys(bins).sort());
      expect(bh.json?.missingInStore).toEqual([]);
      expect(await exists(dest), "status changes nothing").toBe(false);

      const key = contentKeyOf((bins["pkgs/sub/b.bin"] as FileSpec).data, prefix);
      await removeObject(key);
      const missing = await pantri(build, "status", "--remote", "-d", dest);
      expect(missing.code, describeRun(missing)).toBe(1);
      expect(missing.json?.missingInStore).toEqual(["pkgs/sub/b.bin"]);
      expect(pathsOf(missing.json?.failed)).toEqual(["pkgs/sub/b.bin"]);
      expect(item(missing.json?.failed, "pkgs/sub/b.bin")?.error).toContain(key);
    });

    it("verify finds a tampered dest file and --repair fixes it", async () => {
      const bins = await publish();
      const build = await repos.cloneBuildHost();
      const dest = join(root, "dest");
      await ok(build, "retrieve", "-d", dest);

      // Same size and mtime, other bytes: only re-hashing sees it.
      const a = bins["pkgs/a.bin"] as FileSpec;
      const file = join(dest, "pkgs/a.bin");
      await writeFile(file, randomBinary(a.data.length, 131));
      await utimes(file, a.mtime, a.mtime);

      const bad = await pantri(build, "verify", "-d", dest);
      expect(bad.code, describeRun(bad)).toBe(1);
      expect(pathsOf(bad.json?.failed)).toEqual(["pkgs/a.bin"]);

      const repaired = await ok(build, "verify", "--repair", "-d", dest);
      expect(pathsOf(repaired.retrieved)).toEqual(["pkgs/a.bin"]);
      await expectDestFile(dest, "pkgs/a.bin", a);
      await ok(build, "verify", "-d", dest);
    });
  });
}
