import { mkdir, mkdtemp, readFile, realpath, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GitError, UsageError } from "../../src/core/errors.js";
import { Git, findRepoRoot } from "../../src/core/git.js";
import { makeRepos, randomBinary, type Repos } from "../helpers/gitdir.js";

/** Spaces, a tab, a newline and non-ASCII: must come back from git byte for byte. */
const WEIRD = "shelves/pkgs/we ird\tdir/new\nline näme ✓ 日本.bin.pitem";

let repos: Repos;
let git: Git;

beforeEach(async () => {
  repos = await makeRepos({ shelves: ["pkgs", "other"] });
  git = new Git(repos.packager);
});

afterEach(async () => {
  await repos.cleanup();
});

describe("findRepoRoot", () => {
  it("finds the root from a nested folder, symlinks resolved", async () => {
    const nested = join(repos.packager, "shelves", "pkgs", "a", "b");
    await mkdir(nested, { recursive: true });
    expect(await findRepoRoot(nested)).toBe(await realpath(repos.packager));
    expect(await findRepoRoot(repos.packager)).toBe(repos.packager);
  });

  it("is a usage error outside a git working copy", async () => {
    const outside = await mkdtemp(join(tmpdir(), "pantri-nogit-"));
    try {
      const err: unknown = await findRepoRoot(outside).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toContain("is not inside a git working copy with a shelves/ folder");
      expect((err as Error).message).toContain(outside);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it("agrees with git where the repo is not the plain case: a linked worktree, a symlink across repos, a moved work tree", async () => {
    // A linked worktree has a .git file: its own folder is the root.
    const linked = join(repos.root, "linked");
    await repos.git(repos.packager, "worktree", "add", "--quiet", "-b", "side", linked);
    expect(await findRepoRoot(join(linked, "shelves", "pkgs"))).toBe(linked);
    // A symlink inside another repo pointing into the packager: git walks the real path.
    const other = join(repos.root, "other");
    await repos.git(repos.root, "init", "--quiet", other);
    await mkdir(join(other, "shelves"));
    await symlink(join(repos.packager, "shelves", "pkgs"), join(other, "shelves", "into-packager"));
    expect(await findRepoRoot(join(other, "shelves", "into-packager"))).toBe(repos.packager);
    expect(await findRepoRoot(join(other, "shelves"))).toBe(other);
    // core.worktree moves the work tree away from the folder holding .git.
    const moved = join(repos.root, "moved");
    await mkdir(join(moved, "shelves"), { recursive: true });
    await repos.git(other, "config", "core.worktree", moved);
    expect(await findRepoRoot(other)).toBe(moved);
  });

  it("is a usage error inside .git, with git's reason", async () => {
    const err: unknown = await findRepoRoot(join(repos.packager, ".git", "refs")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain("git: ");
  });

  it("is a usage error in a working copy without shelves/", async () => {
    await rm(join(repos.packager, "shelves"), { recursive: true });
    await expect(findRepoRoot(repos.packager)).rejects.toThrow(UsageError);
    await expect(findRepoRoot(join(repos.root, "missing"))).rejects.toThrow(UsageError);
  });
});

describe("commits and branches", () => {
  it("head, resolveCommit, commitExists", async () => {
    const sha = await repos.git(repos.packager, "rev-parse", "HEAD");
    expect(await git.head()).toBe(sha);
    expect(await git.resolveCommit("HEAD")).toBe(sha);
    expect(await git.resolveCommit("main")).toBe(sha);
    expect(await git.resolveCommit(sha.slice(0, 10))).toBe(sha);
    await repos.git(repos.packager, "tag", "-a", "-m", "v1", "v1");
    expect(await git.resolveCommit("v1")).toBe(sha);
    await expect(git.resolveCommit("no-such-branch")).rejects.toThrow(/no-such-branch/);
    await expect(git.resolveCommit("no-such-branch")).rejects.toThrow(GitError);
    await expect(git.resolveCommit("--all")).rejects.toThrow(GitError);
    expect(await git.commitExists(sha)).toBe(true);
    expect(await git.commitExists("0".repeat(40))).toBe(false);
    expect(await git.commitExists("main")).toBe(false);
    const tree = await repos.git(repos.packager, "rev-parse", "HEAD^{tree}");
    expect(await git.commitExists(tree)).toBe(false);
  });

  it("head is null in a repository without commits", async () => {
    const empty = join(repos.root, "empty");
    await repos.git(repos.root, "init", "--quiet", "--initial-branch=main", empty);
    const g = new Git(empty);
    expect(await g.head()).toBeNull();
    expect(await g.currentBranch()).toBe("main");
    expect(await g.upstream()).toBeNull();
  });

  it("currentBranch and upstream", async () => {
    expect(await git.currentBranch()).toBe("main");
    expect(await git.upstream()).toBe("origin/main");
    await repos.git(repos.packager, "switch", "--quiet", "-c", "topic");
    expect(await git.currentBranch()).toBe("topic");
    expect(await git.upstream()).toBeNull();
    await repos.git(repos.packager, "switch", "--quiet", "--detach", "HEAD");
    expect(await git.currentBranch()).toBeNull();
    expect(await git.upstream()).toBeNull();
  });
});

describe("diffTree", () => {
  it("reports add, modify, delete, rename and type change, limited to the pathspecs", async () => {
    const p = repos.packager;
    await repos.writeFile(p, "shelves/pkgs/keep.pitem", "keep\n");
    await repos.writeFile(p, "shelves/pkgs/change.pitem", "v1\n");
    await repos.writeFile(p, "shelves/pkgs/gone.pitem", "gone\n");
    await repos.writeFile(p, "shelves/pkgs/old name.pitem", "same content, new name\n");
    await repos.writeFile(p, "shelves/pkgs/link", "a file that becomes a symlink\n");
    await repos.writeFile(p, "shelves/other/x.pitem", "x\n");
    const from = await repos.commitAll(p, "before");

    await repos.writeFile(p, "shelves/pkgs/change.pitem", "v2\n");
    await unlink(join(p, "shelves/pkgs/gone.pitem"));
    await mkdir(join(p, "shelves/pkgs/sub"));
    await repos.git(p, "mv", "shelves/pkgs/old name.pitem", "shelves/pkgs/sub/new name.pitem");
    await repos.writeFile(p, WEIRD, "weird\n");
    await unlink(join(p, "shelves/pkgs/link"));
    await repos.git(p, "add", "-A");
    await symlink("keep.pitem", join(p, "shelves/pkgs/link"));
    await repos.writeFile(p, "shelves/other/x.pitem", "x2\n");
    const to = await repos.commitAll(p, "after");

    const changes = await git.diffTree(from, to, ["shelves/pkgs"]);
    const byPath = new Map(changes.map((c) => [c.path, c]));
    expect(changes).toHaveLength(5);
    expect(byPath.get("shelves/pkgs/change.pitem")).toMatchObject({ status: "M", mode: "100644", oldMode: "100644" });
    expect(byPath.get("shelves/pkgs/gone.pitem")).toMatchObject({ status: "D", mode: "000000", oid: "0".repeat(40) });
    expect(byPath.get("shelves/pkgs/sub/new name.pitem")).toMatchObject({
      status: "R",
      oldPath: "shelves/pkgs/old name.pitem",
      similarity: 100,
    });
    const renamed = byPath.get("shelves/pkgs/sub/new name.pitem");
    expect(renamed?.oid).toBe(renamed?.oldOid);
    expect(byPath.get(WEIRD)).toMatchObject({ status: "A", oldMode: "000000", oldOid: "0".repeat(40) });
    expect(byPath.get("shelves/pkgs/link")).toMatchObject({ status: "T", mode: "120000", oldMode: "100644" });

    // The oids are the blobs' real ids.
    const weirdOid = await repos.git(p, "rev-parse", `${to}:${WEIRD}`);
    expect(byPath.get(WEIRD)?.oid).toBe(weirdOid);

    expect(await git.diffTree(to, to, ["shelves/pkgs"])).toEqual([]);
    expect((await git.diffTree(from, to, ["shelves/other"])).map((c) => c.path)).toEqual(["shelves/other/x.pitem"]);
    expect(await git.diffTree(from, to, [])).toHaveLength(6);
  });

  it("fails with a GitError naming the operation and repo for an unknown commit", async () => {
    const err: unknown = await git.diffTree("0".repeat(40), "HEAD", []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitError);
    expect((err as Error).message).toMatch(/git diff-tree failed in .*packager/);
  });
});

describe("lsTree and lsFiles", () => {
  it("lists blobs under the pathspecs with exact names", async () => {
    const p = repos.packager;
    await repos.writeFile(p, WEIRD, "weird\n");
    await repos.writeFile(p, "shelves/pkgs/a.pitem", "a\n");
    await repos.writeFile(p, "shelves/other/b.pitem", "b\n");
    await repos.writeFile(p, "README.md", "top\n");
    const head = await repos.commitAll(p, "files");

    const entries = await git.lsTree(head, ["shelves/pkgs"]);
    expect(entries.map((e) => e.path).sort()).toEqual(["shelves/pkgs/.gitkeep", WEIRD, "shelves/pkgs/a.pitem"].sort());
    const a = entries.find((e) => e.path === "shelves/pkgs/a.pitem");
    expect(a).toEqual({
      path: "shelves/pkgs/a.pitem",
      mode: "100644",
      type: "blob",
      oid: await repos.git(p, "rev-parse", "HEAD:shelves/pkgs/a.pitem"),
    });
    expect((await git.lsTree(head, ["shelves/pkgs", "shelves/other"])).length).toBe(5);
    expect((await git.lsTree(head, [])).map((e) => e.path)).toContain("README.md");
    // Literal pathspecs: a glob character only matches itself.
    expect(await git.lsTree(head, ["shelves/*"])).toEqual([]);

    // From a nested folder the tree is still listed from the root.
    expect((await new Git(join(p, "shelves", "pkgs")).lsTree(head, ["shelves/pkgs"])).length).toBe(3);

    await repos.writeFile(p, "shelves/pkgs/staged.pitem", "s\n");
    await repos.git(p, "add", "shelves/pkgs/staged.pitem");
    await repos.writeFile(p, "shelves/pkgs/untracked.pitem", "u\n");
    const tracked = await git.lsFiles(["shelves/pkgs"]);
    expect(tracked.sort()).toEqual(
      ["shelves/pkgs/.gitkeep", WEIRD, "shelves/pkgs/a.pitem", "shelves/pkgs/staged.pitem"].sort(),
    );
  });
});

describe("readBlobs and blobToFile", () => {
  it("reads 500 blobs, binary and empty ones included, in one call", async () => {
    const p = repos.packager;
    const expected = new Map<string, Buffer>();
    for (let i = 0; i < 500; i++) {
      const content =
        i === 0 ? Buffer.alloc(0) : i % 50 === 0 ? randomBinary(70_000 + i, i) : Buffer.from(`pointer ${i}\n`.repeat(i % 7));
      const rel = `shelves/pkgs/d${i % 10}/f${i}.pitem`;
      await repos.writeFile(p, rel, content);
      expected.set(rel, content);
    }
    const head = await repos.commitAll(p, "many");
    const entries = (await git.lsTree(head, ["shelves/pkgs"])).filter((e) => e.path.endsWith(".pitem"));
    expect(entries).toHaveLength(500);

    const blobs = await git.readBlobs(entries.map((e) => e.oid));
    for (const e of entries) {
      expect(blobs.get(e.oid)?.equals(expected.get(e.path) ?? Buffer.from("?"))).toBe(true);
    }
    expect((await git.readBlobs([])).size).toBe(0);
  });

  it("fails on a missing or non-blob object", async () => {
    const blob = await repos.git(repos.packager, "rev-parse", "HEAD:shelves/pkgs/.gitkeep");
    const tree = await repos.git(repos.packager, "rev-parse", "HEAD^{tree}");
    await expect(git.readBlobs([blob, "1".repeat(40)])).rejects.toThrow(/1{40} missing/);
    await expect(git.readBlobs([tree])).rejects.toThrow(/not a blob/);
    await expect(git.readBlobs(["HEAD"])).rejects.toThrow(GitError);
  });

  it("streams one blob to a file", async () => {
    const content = Buffer.from("line of text\n".repeat(100_000));
    await repos.writeFile(repos.packager, "shelves/pkgs/big.txt", content);
    await repos.commitAll(repos.packager, "big");
    const oid = await repos.git(repos.packager, "rev-parse", "HEAD:shelves/pkgs/big.txt");
    const out = join(repos.root, "big.tmp");
    await git.blobToFile(oid, out);
    expect((await readFile(out)).equals(content)).toBe(true);
    await expect(git.blobToFile("2".repeat(40), out)).rejects.toThrow(GitError);
  });
});

describe("isIgnored", () => {
  it("reports ignored paths in one batch, none ignored is not an error", async () => {
    const p = repos.packager;
    await repos.writeFile(p, "shelves/pkgs/.gitignore", "/big file.deb\n/we ird\n");
    const paths = ["shelves/pkgs/big file.deb", "shelves/pkgs/other.deb", "shelves/pkgs/we ird"];
    expect([...(await git.isIgnored(paths))].sort()).toEqual(["shelves/pkgs/big file.deb", "shelves/pkgs/we ird"]);
    expect((await git.isIgnored(["shelves/pkgs/other.deb"])).size).toBe(0);
    expect((await git.isIgnored([])).size).toBe(0);
  });
});

describe("add and commit", () => {
  it("commits only the named paths; another staged file stays staged", async () => {
    const p = repos.packager;
    await repos.writeFile(p, "notes.txt", "user's own work\n");
    await repos.git(p, "add", "notes.txt");
    await repos.writeFile(p, "shelves/pkgs/a.pitem", "a\n");
    await repos.writeFile(p, WEIRD, "w\n");
    await repos.writeFile(p, "shelves/pkgs/not-named.pitem", "n\n");

    const before = await git.head();
    const sha = await git.commit("pantri: store 2 items in pkgs", ["shelves/pkgs/a.pitem", WEIRD]);
    expect(sha).not.toBeNull();
    expect(sha).toBe(await git.head());
    expect(await repos.git(p, "rev-parse", "HEAD~1")).toBe(before);
    const committed = (await repos.git(p, "show", "-z", "--name-only", "--format=", "HEAD")).split("\0").filter(Boolean);
    expect(committed.sort()).toEqual(["shelves/pkgs/a.pitem", WEIRD].sort());
    expect(await repos.git(p, "log", "-1", "--format=%s")).toBe("pantri: store 2 items in pkgs");
    expect(await repos.git(p, "diff", "--cached", "--name-only")).toBe("notes.txt");
    expect(await repos.git(p, "status", "--porcelain", "--", "shelves/pkgs/not-named.pitem")).toBe(
      "?? shelves/pkgs/not-named.pitem",
    );

    // Nothing changed under the paths: no commit.
    expect(await git.commit("again", ["shelves/pkgs/a.pitem"])).toBeNull();
    expect(await git.commit("none", [])).toBeNull();
    expect(await git.head()).toBe(sha);
  });

  it("commits deletions and many paths, folders as paths", async () => {
    const p = repos.packager;
    const many = Array.from({ length: 600 }, (_, i) => `shelves/pkgs/deep/folder/name-${"x".repeat(200)}-${i}.pitem`);
    for (const rel of many) await repos.writeFile(p, rel, `${rel}\n`);
    await git.add(many);
    expect((await git.lsFiles(["shelves/pkgs/deep"])).length).toBe(600);
    const first = await git.commit("many", many);
    expect(first).not.toBeNull();
    expect((await git.lsTree("HEAD", ["shelves/pkgs/deep"])).length).toBe(600);

    // A deleted file (not git rm'd) is committed as a deletion; a folder path covers its files.
    const gone = many[0] ?? "";
    await unlink(join(p, gone));
    await repos.writeFile(p, "shelves/other/z.pitem", "z\n");
    const second = await git.commit("delete", [gone, "shelves/other/"]);
    expect(second).not.toBeNull();
    const changes = await git.diffTree(first ?? "", second ?? "", []);
    expect(changes.map((c) => [c.status, c.path])).toEqual([
      ["A", "shelves/other/z.pitem"],
      ["D", gone],
    ]);
  });

  it("commits in a repository without commits", async () => {
    const dir = join(repos.root, "fresh");
    await repos.git(repos.root, "init", "--quiet", "--initial-branch=main", dir);
    await repos.git(dir, "config", "user.name", "T");
    await repos.git(dir, "config", "user.email", "t@example.invalid");
    await repos.git(dir, "config", "commit.gpgsign", "false");
    await repos.writeFile(dir, "shelves/s/a.pitem", "a\n");
    await repos.writeFile(dir, "other.txt", "o\n");
    const g = new Git(dir);
    const sha = await g.commit("first", ["shelves"]);
    expect(sha).toBe(await g.head());
    expect((await g.lsTree(sha ?? "", [])).map((e) => e.path)).toEqual(["shelves/s/a.pitem"]);
  });
});

describe("pullFastForward and push", () => {
  it("updates, then is up to date; local-only commits are up to date", async () => {
    const host = await repos.cloneBuildHost();
    const hostGit = new Git(host);
    expect(await hostGit.pullFastForward()).toBe("up-to-date");

    await repos.writeFile(repos.packager, "shelves/pkgs/a.pitem", "a\n");
    const sha = await git.commit("add a", ["shelves/pkgs/a.pitem"]);
    await git.push();
    expect(await repos.git(repos.origin, "rev-parse", "main")).toBe(sha);

    expect(await hostGit.pullFastForward()).toBe("updated");
    expect(await hostGit.head()).toBe(sha);
    expect(await readFile(join(host, "shelves/pkgs/a.pitem"), "utf8")).toBe("a\n");
    expect(await hostGit.pullFastForward()).toBe("up-to-date");

    await repos.writeFile(host, "local.txt", "l\n");
    await repos.commitAll(host, "local only");
    expect(await hostGit.pullFastForward()).toBe("up-to-date");
  });

  it("returns no-upstream when detached or the branch tracks nothing", async () => {
    const host = await repos.cloneBuildHost("host2");
    const hostGit = new Git(host);
    await repos.git(host, "switch", "--quiet", "--detach", "HEAD");
    expect(await hostGit.pullFastForward()).toBe("no-upstream");
    await repos.git(host, "switch", "--quiet", "-c", "local");
    expect(await hostGit.pullFastForward()).toBe("no-upstream");
  });

  it("refuses a diverged branch and says to reconcile by hand", async () => {
    const host = await repos.cloneBuildHost();
    await repos.writeFile(host, "host.txt", "h\n");
    const local = await repos.commitAll(host, "host commit");
    await repos.writeFile(repos.packager, "shelves/pkgs/p.pitem", "p\n");
    await repos.commitAll(repos.packager, "packager commit");
    await git.push();

    const err: unknown = await new Git(host).pullFastForward().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitError);
    expect((err as Error).message).toMatch(/diverged from origin\/main/);
    expect((err as Error).message).toMatch(/reconcile them by hand/);
    expect(await repos.git(host, "rev-parse", "HEAD")).toBe(local);
  });

  it("push fails with a hint when there is no upstream, and with git's reason when rejected", async () => {
    await repos.git(repos.packager, "switch", "--quiet", "-c", "topic");
    await expect(git.push()).rejects.toThrow(/git push -u origin topic/);

    const host = await repos.cloneBuildHost();
    await repos.writeFile(host, "host.txt", "h\n");
    await repos.commitAll(host, "host commit");
    await new Git(host).push();
    await repos.git(repos.packager, "switch", "--quiet", "main");
    await repos.writeFile(repos.packager, "p.txt", "p\n");
    await repos.commitAll(repos.packager, "packager commit");
    const err: unknown = await git.push().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitError);
    expect((err as Error).message).toMatch(/git push failed in .*packager: .*rejected/s);
  });
});

describe("ensureExcluded", () => {
  it("appends only missing lines, idempotently, also without info/", async () => {
    const exclude = join(repos.packager, ".git", "info", "exclude");
    await rm(join(repos.packager, ".git", "info"), { recursive: true, force: true });
    await git.ensureExcluded(["/.pantri/", "/dest_sync/"]);
    await git.ensureExcluded(["/dest_sync/", "/.pantri/"]);
    expect(await readFile(exclude, "utf8")).toBe("/.pantri/\n/dest_sync/\n");

    await writeFile(exclude, "# mine\n*.swp");
    await git.ensureExcluded(["/.pantri/", "*.swp"]);
    await git.ensureExcluded(["/.pantri/", "*.swp"]);
    expect(await readFile(exclude, "utf8")).toBe("# mine\n*.swp\n/.pantri/\n");
    expect(await git.isIgnored([".pantri/state.json"])).toEqual(new Set([".pantri/state.json"]));
  });

  it("writes to the common git dir from a linked worktree", async () => {
    const wt = join(repos.root, "wt");
    await repos.git(repos.packager, "worktree", "add", "--quiet", "-b", "wt", wt);
    await new Git(wt).ensureExcluded(["/.pantri/"]);
    expect(await readFile(join(repos.packager, ".git", "info", "exclude"), "utf8")).toContain("/.pantri/\n");
  });
});
