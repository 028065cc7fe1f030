import { describe, expect, it } from "vitest";
import {
  classifyEntry,
  planFullRetrieve,
  planIncrementalRetrieve,
  planStaged,
  planStoreFile,
  needsSniff,
  pathsToInspect,
  type DestFile,
  type PointerRead,
  type StoreCandidate,
} from "../../src/core/plan.js";
import type { Pointer } from "../../src/core/types.js";

const sha = (c: string) => c.repeat(64);
const ptr = (path: string, over: Partial<Pointer> = {}): Pointer => ({ format: "v1", path, size: 10, sha256: sha("a"), sha1: "b".repeat(40), mtime: 1000, ...over });
const file = (over: Partial<DestFile> = {}): DestFile => ({ kind: "file", size: 10, mtime: 1000, ...over });
const none = () => false;

describe("classifyEntry", () => {
  it("tells pointers, text files, the shelf's .gitignore and unsupported modes apart", () => {
    expect(classifyEntry("shelves/p/a.deb.pitem", "100644", "p")).toBe("pointer");
    expect(classifyEntry("shelves/p/a.txt", "100755", "p")).toBe("text");
    expect(classifyEntry("shelves/p/.gitignore", "100644", "p")).toBe("repo-only");
    expect(classifyEntry("shelves/p/sub/.gitignore", "100644", "p")).toBe("text");
    expect(classifyEntry("shelves/p/link", "120000", "p")).toBe("unsupported");
    expect(classifyEntry("shelves/p/mod", "160000", "p")).toBe("unsupported");
  });
});

describe("planFullRetrieve", () => {
  const pointers = new Map<string, PointerRead>([
    ["shelves/p/a.deb.pitem", ptr("p/a.deb")],
    ["shelves/p/b.deb.pitem", ptr("p/b.deb", { mtime: 2000 })],
    ["shelves/p/bad.pitem", { error: "shelves/p/bad.pitem: not JSON" }],
  ]);
  const files = [
    { repoPath: "shelves/p/a.deb.pitem", mode: "100644", oid: "1" },
    { repoPath: "shelves/p/b.deb.pitem", mode: "100644", oid: "2" },
    { repoPath: "shelves/p/bad.pitem", mode: "100644", oid: "3" },
    { repoPath: "shelves/p/readme.txt", mode: "100644", oid: "t1" },
    { repoPath: "shelves/p/.gitignore", mode: "100644", oid: "g" },
  ];

  it("downloads missing and stale binaries, copies changed text, skips what matches, fails bad pointers", () => {
    const dest = new Map<string, DestFile>([
      ["p/a.deb", file()],
      ["p/b.deb", file({ mtime: 1999 })],
      ["p/readme.txt", file({ blobOid: "old" })],
    ]);
    const actions = planFullRetrieve({ shelf: "p", pointers, dest, checksum: false, files, destListing: [...dest.keys()], keep: none });
    const by = Object.fromEntries(actions.map((a) => [a.path, a.kind]));
    expect(by).toEqual({ "p/a.deb": "skip", "p/b.deb": "download", "p/bad": "fail", "p/readme.txt": "copy" });
    expect(actions.find((a) => a.path === "p/.gitignore")).toBeUndefined();
  });

  it("removes unmanaged files under dest/<shelf>/ only, except keepFiles and wanted partial downloads", () => {
    const dest = new Map<string, DestFile>([
      ["p/stray.bin", file()],
      ["p/keep/me.log", file()],
      ["p/.a.deb.0123.pantri-part", file()],
      ["p/.old.bin.ffff.pantri-part", file()],
      ["other/x", file()],
    ]);
    const actions = planFullRetrieve({
      shelf: "p",
      pointers,
      dest,
      checksum: false,
      files,
      destListing: [...dest.keys()],
      keep: (rel) => rel.startsWith("keep/"),
      partials: new Set(["p/.a.deb.0123.pantri-part"]),
    });
    const removed = actions.filter((a) => a.kind === "remove").map((a) => a.path).sort();
    expect(removed).toEqual(["p/.old.bin.ffff.pantri-part", "p/stray.bin"]);
  });

  it("fails an item whose dest path is a symlink instead of following it", () => {
    const dest = new Map<string, DestFile>([["p/a.deb", file({ kind: "symlink" })]]);
    const actions = planFullRetrieve({ shelf: "p", pointers, dest, checksum: false, files, destListing: [], keep: none });
    expect(actions.find((a) => a.path === "p/a.deb")).toMatchObject({ kind: "fail", error: expect.stringContaining("symbolic link") });
  });

  it("with --checksum, same size and mtime but another sha256 is downloaded", () => {
    const dest = new Map<string, DestFile>([["p/a.deb", file({ sha256: sha("c") })]]);
    const actions = planFullRetrieve({ shelf: "p", pointers, dest, checksum: true, files: files.slice(0, 1), destListing: [], keep: none });
    expect(actions).toEqual([expect.objectContaining({ kind: "download", path: "p/a.deb", reason: "checksum differs" })]);
  });
});

describe("planIncrementalRetrieve", () => {
  it("fetches added/modified, removes deleted and the old side of renames, keeps paths rewritten", () => {
    const pointers = new Map<string, PointerRead>([
      ["shelves/p/new.deb.pitem", ptr("p/new.deb")],
      ["shelves/p/moved.deb.pitem", ptr("p/moved.deb")],
    ]);
    const changes = [
      { status: "A" as const, path: "shelves/p/new.deb.pitem", mode: "100644", oldMode: "000000", oid: "1" },
      { status: "R" as const, path: "shelves/p/moved.deb.pitem", oldPath: "shelves/p/orig.deb.pitem", mode: "100644", oldMode: "100644", oid: "2" },
      { status: "D" as const, path: "shelves/p/gone.deb.pitem", mode: "000000", oldMode: "100644", oid: "0" },
      // A binary turned into a text file of the same name: the copy wins over the deletion.
      { status: "D" as const, path: "shelves/p/x.cfg.pitem", mode: "000000", oldMode: "100644", oid: "0" },
      { status: "A" as const, path: "shelves/p/x.cfg", mode: "100644", oldMode: "000000", oid: "t" },
      { status: "D" as const, path: "shelves/p/never-there.deb.pitem", mode: "000000", oldMode: "100644", oid: "0" },
    ];
    const dest = new Map<string, DestFile>([
      ["p/orig.deb", file()],
      ["p/gone.deb", file()],
      ["p/x.cfg", file()],
    ]);
    const actions = planIncrementalRetrieve({ shelf: "p", pointers, dest, checksum: false, changes });
    const summary = actions.map((a) => `${a.kind} ${a.path}`).sort();
    expect(summary).toEqual(["copy p/x.cfg", "download p/moved.deb", "download p/new.deb", "remove p/gone.deb", "remove p/orig.deb"]);
    expect(pathsToInspect(changes, "p").sort()).toEqual(["p/gone.deb", "p/moved.deb", "p/never-there.deb", "p/new.deb", "p/orig.deb", "p/x.cfg"]);
  });

  it("skips a changed pointer whose dest copy already matches (an interrupted run's leftovers)", () => {
    const pointers = new Map<string, PointerRead>([["shelves/p/a.deb.pitem", ptr("p/a.deb")]]);
    const changes = [{ status: "M" as const, path: "shelves/p/a.deb.pitem", mode: "100644", oldMode: "100644", oid: "1" }];
    const actions = planIncrementalRetrieve({ shelf: "p", pointers, dest: new Map([["p/a.deb", file()]]), checksum: false, changes });
    expect(actions).toEqual([{ kind: "skip", path: "p/a.deb", reason: "up to date" }]);
  });
});

describe("planStoreFile", () => {
  const base: StoreCandidate = { path: "p/a.bin", kind: "file", size: 10, mtime: 1000, pointer: null, ignored: false, override: false, binary: true };
  it("stores new binaries, leaves text to git, honours ignore and override", () => {
    expect(planStoreFile(base, false)).toMatchObject({ kind: "store", reason: "new" });
    expect(planStoreFile({ ...base, binary: false }, false)).toMatchObject({ kind: "skip", reason: "text file, left for git" });
    expect(planStoreFile({ ...base, binary: false, override: true }, false)).toMatchObject({ kind: "store" });
    expect(planStoreFile({ ...base, ignored: true }, false)).toMatchObject({ kind: "skip", reason: "matches ignorePatterns" });
    expect(planStoreFile({ ...base, kind: "symlink" }, false)).toMatchObject({ kind: "skip" });
  });
  it("does not re-hash a file whose size and mtime match its pointer, unless --checksum", () => {
    const c = { ...base, pointer: ptr("p/a.bin") };
    expect(planStoreFile(c, false)).toMatchObject({ kind: "skip", reason: "unchanged" });
    expect(planStoreFile(c, true)).toMatchObject({ kind: "store", reason: "checksum" });
    expect(planStoreFile({ ...c, mtime: 1001 }, false)).toMatchObject({ kind: "store", reason: "changed" });
  });
  it("fails a file whose pointer cannot be read, and sniffs only when it decides", () => {
    expect(planStoreFile({ ...base, pointer: { error: "bad" } }, false)).toEqual({ kind: "fail", path: "p/a.bin", error: "bad" });
    expect(needsSniff({ ...base, pointer: ptr("p/a.bin") })).toBe(false);
    expect(needsSniff({ ...base, override: true })).toBe(false);
    expect(needsSniff(base)).toBe(true);
  });
});

describe("planStaged", () => {
  const range = { min: 100, max: 1000 };
  const f = (name: string, size: number) => ({ name, size });
  it("stages files in range whose size no pointer and no other file has", () => {
    const files = [f("small", 99), f("min", 100), f("max", 1000), f("over", 1001), f("known", 500), f("twin-a", 700), f("twin-b", 700), f("new", 600)];
    expect(planStaged(files, new Set([500, 42]), range).map((x) => x.name)).toEqual(["min", "max", "new"]);
  });
  it("stages nothing when every size is known", () => {
    expect(planStaged([f("a", 200), f("b", 300)], new Set([200, 300]), range)).toEqual([]);
  });
});
