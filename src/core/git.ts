/**
 * Every git call pantri makes, in one place.
 *
 * git's own start-up (~2-5 ms) dominates each call, so nothing here runs git once per file: file
 * lists go in as pathspecs or on stdin, object contents come out of one `cat-file --batch`.
 * Outputs that hold file names are read with `-z` as raw Buffers through `node:child_process`
 * (simple-git decodes everything as text and splits on newlines, which a file name may contain);
 * simple-git runs the network and history-changing commands (fetch, merge, push).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { appendFile, lstat, mkdir, readFile, realpath, rm, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import type { SimpleGit } from "simple-git";
import { GitError, UsageError, errorMessage } from "./errors.js";

export interface TreeEntry {
  /** Relative to the repo root, `/`-separated, exactly as git stores it. */
  path: string;
  mode: string;
  type: "blob" | "commit" | "tree";
  oid: string;
}

export interface TreeChange {
  status: "A" | "M" | "D" | "R" | "T" | "C";
  /** The path in `to` (for D: the deleted path). */
  path: string;
  /** The path in `from`, for R and C only. */
  oldPath?: string;
  /** `000000` for a deletion. */
  mode: string;
  /** `000000` for an addition. */
  oldMode: string;
  /** All zeros for a deletion. */
  oid: string;
  /** All zeros for an addition. */
  oldOid: string;
  /** Percentage of content kept, for R and C. */
  similarity?: number;
}

export type PullResult = "no-upstream" | "up-to-date" | "updated";

/**
 * Repository-local variables that git exports to hooks. A Git object is bound to one root, so an
 * inherited GIT_DIR (pantri or the test suite started from some other repo's hook) must not
 * redirect its commands elsewhere. Same list as `git rev-parse --local-env-vars`.
 */
const LOCAL_ENV_VARS = [
  "GIT_ALTERNATE_OBJECT_DIRECTORIES",
  "GIT_CONFIG",
  "GIT_CONFIG_PARAMETERS",
  "GIT_CONFIG_COUNT",
  "GIT_OBJECT_DIRECTORY",
  "GIT_DIR",
  "GIT_WORK_TREE",
  "GIT_IMPLICIT_WORK_TREE",
  "GIT_GRAFT_FILE",
  "GIT_INDEX_FILE",
  "GIT_NO_REPLACE_OBJECTS",
  "GIT_REPLACE_REF_BASE",
  "GIT_PREFIX",
  "GIT_INTERNAL_SUPER_PREFIX",
  "GIT_SHALLOW_FILE",
  "GIT_COMMON_DIR",
];

function gitEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of LOCAL_ENV_VARS) delete env[name];
  return env;
}

/** Prepended to every call: names verbatim in any output not yet in `-z` form. */
const GLOBAL_ARGS = ["-c", "core.quotepath=off"];

/**
 * Pathspecs taken literally: a file called `*.deb` or `:(glob)x` means only itself. Only for
 * commands that take pathspecs (check-ignore rejects the flag).
 */
const LITERAL = "--literal-pathspecs";

/** Linux caps one argument at 128 KiB and all of them at ~2 MiB; stay far below. */
const MAX_ARG_BYTES = 128 * 1024;

const HEX_OID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

interface RunOptions {
  /** Written to git's stdin, then stdin is closed. */
  input?: string | Buffer;
  /** Exit codes that are answers, not failures (e.g. 1 from `check-ignore`: nothing matched). */
  okCodes?: readonly number[];
}

interface RunResult {
  stdout: Buffer;
  stderr: string;
  code: number;
}

function spawnGit(cwd: string, args: string[], stdin: "pipe" | "ignore"): ChildProcess {
  return spawn("git", [...GLOBAL_ARGS, ...args], {
    cwd,
    env: gitEnv(),
    stdio: [stdin, "pipe", "pipe"],
    windowsHide: true,
  });
}

function failure(op: string, cwd: string, detail: string, cause?: unknown): GitError {
  const text = detail.trim();
  return new GitError(`git ${op} failed in ${cwd}${text ? `: ${text}` : ""}`, cause === undefined ? undefined : { cause });
}

function spawnFailure(op: string, cwd: string, err: unknown): GitError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") {
    return new GitError(`could not run git ${op} in ${cwd}: git was not found on PATH, or ${cwd} does not exist`, {
      cause: err,
    });
  }
  return failure(op, cwd, errorMessage(err), err);
}

/** Collects a child's stderr as text, for error messages. */
function collectStderr(child: ChildProcess): () => string {
  const parts: Buffer[] = [];
  child.stderr?.on("data", (chunk: Buffer) => parts.push(chunk));
  return () => Buffer.concat(parts).toString("utf8");
}

/** Resolves with the exit code once the child has exited and its pipes are drained. */
function exitOf(child: ChildProcess, op: string, cwd: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    child.once("error", (err) => reject(spawnFailure(op, cwd, err)));
    child.once("close", (code, signal) => resolvePromise(code ?? (signal ? 128 : 1)));
  });
}

function feed(child: ChildProcess, input: string | Buffer | undefined): void {
  if (!child.stdin) return;
  // git may exit before reading all of stdin (e.g. on a bad argument); its exit code and
  // stderr tell that story, the EPIPE would only hide it.
  child.stdin.on("error", () => undefined);
  child.stdin.end(input);
}

async function runGit(cwd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const op = args.find((a) => !a.startsWith("-")) ?? "";
  const child = spawnGit(cwd, args, opts.input === undefined ? "ignore" : "pipe");
  const out: Buffer[] = [];
  child.stdout?.on("data", (chunk: Buffer) => out.push(chunk));
  const stderr = collectStderr(child);
  const exited = exitOf(child, op, cwd);
  feed(child, opts.input);
  const code = await exited;
  const result = { stdout: Buffer.concat(out), stderr: stderr(), code };
  if (!(opts.okCodes ?? [0]).includes(code)) {
    throw failure(op, cwd, result.stderr || `exit code ${code}`);
  }
  return result;
}

/** Splits `-z` output into its records (UTF-8 names; the final terminator yields no record). */
function splitNul(buf: Buffer): string[] {
  const records: string[] = [];
  let start = 0;
  for (;;) {
    const end = buf.indexOf(0, start);
    if (end < 0) break;
    records.push(buf.toString("utf8", start, end));
    start = end + 1;
  }
  if (start < buf.length) records.push(buf.toString("utf8", start));
  return records;
}

function nulJoin(paths: readonly string[]): Buffer {
  return Buffer.from(paths.map((p) => `${p}\0`).join(""), "utf8");
}

/** Splits a path list so that no git command line grows past MAX_ARG_BYTES. */
function chunkPaths(paths: readonly string[]): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const p of paths) {
    const size = Buffer.byteLength(p) + 1;
    if (current.length > 0 && bytes + size > MAX_ARG_BYTES) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(p);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0] ?? "";
}

/**
 * The root of the git working copy that contains startDir, which must have a `shelves/` folder
 * at its root. Symlinks resolved, so paths derived from it compare equal.
 */
export async function findRepoRoot(startDir: string): Promise<string> {
  const dir = resolve(startDir);
  const notHere = (detail?: string): UsageError =>
    new UsageError(
      `${dir} is not inside a git working copy with a shelves/ folder at its root; run pantri there or pass --repo` +
        (detail ? ` (${detail})` : ""),
    );
  try {
    if (!(await stat(dir)).isDirectory()) throw notHere("not a directory");
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw notHere("it does not exist");
  }
  // plainTopLevel's answer is a real path already; git's is resolved below.
  let root = await plainTopLevel(dir);
  if (root === null) {
    const res = await runGit(dir, ["rev-parse", "--show-toplevel"], { okCodes: [0, 128] });
    if (res.code !== 0) {
      // "not a git repository" is the expected case; anything else (safe.directory, a bare repo,
      // inside .git) carries a hint from git worth showing.
      const said = firstLine(res.stderr);
      throw notHere(/not a git repository/i.test(said) ? undefined : `git: ${said}`);
    }
    root = await realpath(res.stdout.toString("utf8").replace(/\n$/, ""));
  }
  try {
    if ((await stat(join(root, "shelves"))).isDirectory()) return root;
  } catch {
    // fall through
  }
  throw notHere(`${root} has no shelves/ folder`);
}

/**
 * The top of the working copy around `dir` when it is the plain case, found without running git:
 * the nearest folder upwards (from its real path) holding a `.git` folder that is a repository owned by this user,
 * whose config moves no work tree and is not bare, with `dir` not inside that `.git`. Null for
 * anything else (a `.git` file of a linked worktree or submodule, GIT_CEILING_DIRECTORIES, another
 * owner's repository, no repository at all), where `git rev-parse` decides and words the error.
 * Every command starts here: git's process cost ~12 ms of a ~0.2 s start.
 */
async function plainTopLevel(startDir: string): Promise<string | null> {
  if (process.env.GIT_CEILING_DIRECTORIES !== undefined || process.env.GIT_DISCOVERY_ACROSS_FILESYSTEM !== undefined) return null;
  // git walks up the physical path (getcwd): so does this.
  const dir = await realpath(startDir).catch(() => null);
  if (dir === null) return null;
  for (let d = dir; ; d = dirname(d)) {
    const dotGit = join(d, ".git");
    const st = await lstat(dotGit).catch(() => null);
    if (st) {
      if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid())) return null;
      if (dir === dotGit || dir.startsWith(`${dotGit}${sep}`)) return null;
      const head = await lstat(join(dotGit, "HEAD")).catch(() => null);
      const config = await readFile(join(dotGit, "config"), "utf8").catch(() => null);
      if (!head?.isFile() || config === null || /^\s*(?:worktree\s*=|bare\s*=\s*true\b)/im.test(config)) return null;
      return d;
    }
    if (dirname(d) === d) return null;
  }
}

/** One git working copy. Paths in and out are relative to its root, `/`-separated. */
export class Git {
  readonly root: string;
  private simple: SimpleGit | undefined;

  constructor(root: string) {
    this.root = resolve(root);
  }

  private run(args: string[], opts?: RunOptions): Promise<RunResult> {
    return runGit(this.root, args, opts);
  }

  private async text(args: string[]): Promise<string> {
    return (await this.run(args)).stdout.toString("utf8").trim();
  }

  /**
   * simple-git, for the commands whose output we do not parse. Loaded on first use: most runs
   * (every store, a retrieve without an upstream) never fetch, merge or push.
   */
  private async sg(): Promise<SimpleGit> {
    const { simpleGit } = await import("simple-git");
    this.simple ??= simpleGit({
      baseDir: this.root,
      config: ["core.quotepath=off"],
      // Any non-zero exit is a failure (simple-git's default ignores one with an empty stderr);
      // keep only stderr for the message, stdout is progress noise.
      errors: (error, result) => {
        if (error) return error;
        if (result.exitCode === 0) return undefined;
        const stderr = Buffer.concat(result.stdErr).toString("utf8").trim();
        return Buffer.from(stderr || `exit code ${result.exitCode}`);
      },
      // These flags only stop simple-git from refusing to run when the *environment* names an
      // editor, pager, ssh command or askpass helper (EDITOR and PAGER are set on most desktops).
      // That environment is the user's own; the arguments we pass are fixed.
      unsafe: {
        allowUnsafeEditor: true,
        allowUnsafePager: true,
        allowUnsafeAskPass: true,
        allowUnsafeSshCommand: true,
        allowUnsafeGitProxy: true,
        allowUnsafeConfigPaths: true,
        allowUnsafeConfigEnvCount: true,
        allowUnsafeDiffExternal: true,
        allowUnsafeTemplateDir: true,
      },
    }).env(gitEnv());
    return this.simple;
  }

  private async simpleRaw(op: string, args: string[]): Promise<void> {
    try {
      await (await this.sg()).raw(args);
    } catch (err) {
      throw failure(op, this.root, errorMessage(err), err);
    }
  }

  /** Full sha of HEAD, or null in a repository without commits. */
  async head(): Promise<string | null> {
    const res = await this.run(["rev-parse", "-q", "--verify", "HEAD^{commit}"], { okCodes: [0, 1] });
    return res.code === 0 ? res.stdout.toString("utf8").trim() : null;
  }

  /** Full sha of the commit a rev (sha, tag, branch, `HEAD~2`...) names. */
  async resolveCommit(rev: string): Promise<string> {
    const sha = await this.tryResolve(rev);
    if (sha === null) {
      throw new GitError(`unknown revision "${rev}" in ${this.root}: no commit, tag or branch by that name`);
    }
    return sha;
  }

  private async tryResolve(rev: string): Promise<string | null> {
    // A leading "-" would be read as an option (`--end-of-options` needs git 2.30 here).
    if (rev === "" || rev.startsWith("-")) return null;
    const res = await this.run(["rev-parse", "-q", "--verify", `${rev}^{commit}`], { okCodes: [0, 1] });
    return res.code === 0 ? res.stdout.toString("utf8").trim() : null;
  }

  /** Whether this full sha is a commit present in the local object database. */
  async commitExists(sha: string): Promise<boolean> {
    if (!HEX_OID.test(sha)) return false;
    return (await this.tryResolve(sha)) !== null;
  }

  /** The checked-out branch (also when it has no commits yet), null when HEAD is detached. */
  async currentBranch(): Promise<string | null> {
    const res = await this.run(["symbolic-ref", "-q", "--short", "HEAD"], { okCodes: [0, 1] });
    const name = res.stdout.toString("utf8").trim();
    return res.code === 0 && name ? name : null;
  }

  /** The current branch's upstream, e.g. `origin/main`; null when detached or none is set. */
  async upstream(): Promise<string | null> {
    const branch = await this.currentBranch();
    if (branch === null) return null;
    return (await this.upstreamOf(branch))?.short ?? null;
  }

  private async upstreamOf(
    branch: string,
  ): Promise<{ ref: string; remote: string; remoteRef: string; short: string } | null> {
    const out = await this.text([
      "for-each-ref",
      "--format=%(upstream)%00%(upstream:remotename)%00%(upstream:remoteref)%00%(upstream:short)",
      `refs/heads/${branch}`,
    ]);
    const [ref = "", remote = "", remoteRef = "", short = ""] = out.split("\0");
    return ref ? { ref, remote, remoteRef, short } : null;
  }

  private async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    const res = await this.run(["merge-base", "--is-ancestor", ancestor, descendant], { okCodes: [0, 1] });
    return res.code === 0;
  }

  /**
   * Brings the current branch up to its upstream, fast-forward only: pantri never merges or
   * rebases on the user's behalf. Local commits not yet pushed are fine ("up-to-date").
   */
  async pullFastForward(): Promise<PullResult> {
    const branch = await this.currentBranch();
    if (branch === null) return "no-upstream";
    const up = await this.upstreamOf(branch);
    if (up === null) return "no-upstream";
    // Fetch only the branch we follow; git updates its remote-tracking ref from the refspec.
    if (up.remote !== ".") await this.simpleRaw("fetch", ["fetch", "--quiet", up.remote, up.remoteRef]);
    const target = await this.tryResolve(up.ref);
    if (target === null) {
      throw new GitError(
        `git pull failed in ${this.root}: the upstream ${up.short} of branch ${branch} does not exist; ` +
          `fix it with git branch --set-upstream-to, or run with --no-pull`,
      );
    }
    const head = await this.head();
    if (head === target) return "up-to-date";
    if (head !== null && (await this.isAncestor(target, head))) return "up-to-date";
    if (head !== null && !(await this.isAncestor(head, target))) {
      throw new GitError(
        `git pull failed in ${this.root}: branch ${branch} has diverged from ${up.short} (both have commits the ` +
          `other lacks); reconcile them by hand (git pull --rebase, or git merge ${up.short}), then run pantri again`,
      );
    }
    await this.simpleRaw("merge", ["merge", "--ff-only", "--quiet", target]);
    return "updated";
  }

  /**
   * Every entry (recursively) of a commit's tree under the pathspecs; [] lists the whole tree.
   * `recursive: false` lists only the entries directly in each folder named `dir/` (its trees
   * not expanded): what is in shelves/ without reading every file of every shelf.
   */
  async lsTree(commit: string, paths: string[], opts: { recursive?: boolean } = {}): Promise<TreeEntry[]> {
    const seen = new Map<string, TreeEntry>();
    const recurse = opts.recursive === false ? [] : ["-r"];
    for (const chunk of paths.length ? chunkPaths(paths) : [[]]) {
      const res = await this.run([LITERAL, "ls-tree", ...recurse, "-z", "--full-tree", commit, "--", ...chunk]);
      for (const record of splitNul(res.stdout)) {
        const tab = record.indexOf("\t");
        const [mode = "", type = "", oid = ""] = record.slice(0, tab).split(" ");
        if (tab < 0 || (type !== "blob" && type !== "commit" && type !== "tree")) {
          throw failure("ls-tree", this.root, `unexpected output: ${JSON.stringify(record)}`);
        }
        const path = record.slice(tab + 1);
        seen.set(path, { path, mode, type, oid });
      }
    }
    return [...seen.values()];
  }

  /**
   * What changed between two commits under the pathspecs ([] = everywhere), renames detected.
   * One call on purpose: splitting the pathspecs would hide renames across the pieces.
   */
  async diffTree(from: string, to: string, paths: string[]): Promise<TreeChange[]> {
    const res = await this.run([LITERAL, "diff-tree", "-r", "-z", "-M", "--raw", "--no-commit-id", from, to, "--", ...paths]);
    const records = splitNul(res.stdout);
    const changes: TreeChange[] = [];
    for (let i = 0; i < records.length; ) {
      const meta = records[i++] ?? "";
      const [oldMode = "", mode = "", oldOid = "", oid = "", code = ""] = meta.replace(/^:/, "").split(" ");
      const status = code.charAt(0);
      const score = code.slice(1);
      if (!meta.startsWith(":") || !"AMDRTC".includes(status) || status === "") {
        throw failure("diff-tree", this.root, `unexpected output: ${JSON.stringify(meta)}`);
      }
      const first = records[i++];
      if (first === undefined) throw failure("diff-tree", this.root, "output ended in the middle of a record");
      const change: TreeChange = { status: status as TreeChange["status"], path: first, mode, oldMode, oid, oldOid };
      if (status === "R" || status === "C") {
        const second = records[i++];
        if (second === undefined) throw failure("diff-tree", this.root, "output ended in the middle of a record");
        change.oldPath = first;
        change.path = second;
        change.similarity = Number(score);
      }
      changes.push(change);
    }
    return changes;
  }

  /**
   * The contents of many blobs through ONE `git cat-file --batch`. Keys are the oids as given.
   * A missing oid, or one that is not a blob, fails the whole call.
   */
  async readBlobs(oids: string[]): Promise<Map<string, Buffer>> {
    const unique = [...new Set(oids)];
    const result = new Map<string, Buffer>();
    if (unique.length === 0) return result;
    const bad = unique.find((oid) => !HEX_OID.test(oid));
    if (bad !== undefined) throw new GitError(`git cat-file failed in ${this.root}: "${bad}" is not an object id`);

    const child = spawnGit(this.root, ["cat-file", "--batch", "--buffer"], "pipe");
    const stderr = collectStderr(child);
    const exited = exitOf(child, "cat-file", this.root);
    const parser = new BatchParser();
    child.stdout?.on("data", (chunk: Buffer) => parser.push(chunk));
    feed(child, unique.map((oid) => `${oid}\n`).join(""));
    const code = await exited;
    if (code !== 0) throw failure("cat-file", this.root, stderr() || `exit code ${code}`);
    if (!parser.complete() || parser.objects.length !== unique.length) {
      throw failure("cat-file", this.root, `answered ${parser.objects.length} of ${unique.length} objects`);
    }

    const problems: string[] = [];
    parser.objects.forEach((obj, index) => {
      const oid = unique[index] ?? "";
      if (obj.content === undefined) problems.push(`${oid} ${obj.type}`);
      else if (obj.type !== "blob") problems.push(`${oid} is a ${obj.type}, not a blob`);
      else result.set(oid, obj.content);
    });
    if (problems.length > 0) {
      const more = problems.length > 5 ? ` and ${problems.length - 5} more` : "";
      throw new GitError(`git cat-file failed in ${this.root}: ${problems.slice(0, 5).join(", ")}${more}`);
    }
    return result;
  }

  /** Streams one blob into `file` (a temporary path the caller renames); no filters applied. */
  async blobToFile(oid: string, file: string): Promise<void> {
    if (!HEX_OID.test(oid)) throw new GitError(`git cat-file failed in ${this.root}: "${oid}" is not an object id`);
    const child = spawnGit(this.root, ["cat-file", "blob", oid], "ignore");
    const stderr = collectStderr(child);
    const exited = exitOf(child, "cat-file", this.root);
    try {
      if (!child.stdout) throw new GitError(`git cat-file failed in ${this.root}: no output pipe`);
      const [, code] = await Promise.all([pipeline(child.stdout, createWriteStream(file)), exited]);
      if (code !== 0) throw failure("cat-file", this.root, stderr() || `exit code ${code}`);
    } catch (err) {
      child.kill();
      await rm(file, { force: true });
      if (err instanceof GitError) throw err;
      throw new GitError(`git cat-file of ${oid} into ${file} failed in ${this.root}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
  }

  /** Tracked files (in the index) under the pathspecs; [] lists every tracked file. */
  async lsFiles(paths: string[]): Promise<string[]> {
    const seen = new Set<string>();
    for (const chunk of paths.length ? chunkPaths(paths) : [[]]) {
      const res = await this.run([LITERAL, "ls-files", "-z", "--full-name", "--", ...chunk]);
      for (const p of splitNul(res.stdout)) seen.add(p);
    }
    return [...seen];
  }

  /**
   * Files under the paths whose content is not what HEAD has: changed or staged since HEAD, or
   * untracked (and not ignored). Store uses it to commit pointers an interrupted run wrote.
   */
  async uncommitted(paths: string[]): Promise<string[]> {
    const res = await this.run([LITERAL, "status", "--porcelain=v1", "-z", "--no-renames", "--untracked-files=all", "--", ...paths]);
    return splitNul(res.stdout)
      .filter((r) => r.length > 3)
      .map((r) => r.slice(3));
  }

  /**
   * Which of the paths git ignores. As in git, a tracked file is never reported as ignored, even
   * when a pattern matches it.
   */
  async isIgnored(paths: string[]): Promise<Set<string>> {
    if (paths.length === 0) return new Set();
    const res = await this.run(["check-ignore", "-z", "--stdin"], { input: nulJoin(paths), okCodes: [0, 1] });
    return new Set(splitNul(res.stdout));
  }

  /** Stages the paths (additions, changes and deletions) in one call, whatever their number. */
  async add(paths: string[]): Promise<void> {
    if (paths.length === 0) return;
    await this.run([LITERAL, "add", "--pathspec-from-file=-", "--pathspec-file-nul"], { input: nulJoin(this.rel(paths)) });
  }

  /**
   * Stages and commits exactly these paths (files or folders), leaving anything else the user has
   * staged staged and uncommitted. Returns the new commit, or null when they had no changes.
   */
  async commit(message: string, paths: string[]): Promise<string | null> {
    if (paths.length === 0) return null;
    const wanted = this.rel(paths);
    await this.add(wanted);
    // Commit the exact staged files that differ from HEAD under the paths: a partial commit
    // rejects a pathspec that matches nothing, and git's "nothing to commit" exit code is the
    // same 1 a failing hook gives, so decide here instead.
    const head = await this.head();
    const staged = head
      ? splitNul((await this.run(["diff-index", "--cached", "-z", "--name-only", "--no-renames", head])).stdout)
      : await this.lsFiles([]);
    const under = underAny(wanted);
    const chosen = staged.filter(under);
    if (chosen.length === 0) return null;
    if (chosen.length === staged.length) {
      // Nothing else is staged: the index is the commit. (A partial commit would hash every
      // path again into a temporary index: a third of a second per 2,000 pointers.)
      await this.run(["commit", "--quiet", "-m", message]);
    } else {
      // A partial commit (paths given) takes only those paths; other staged entries stay staged.
      await this.run([LITERAL, "commit", "--quiet", "--only", "-m", message, "--pathspec-from-file=-", "--pathspec-file-nul"], {
        input: nulJoin(chosen),
      });
    }
    return this.head();
  }

  /** Pushes the current branch to its upstream. */
  async push(): Promise<void> {
    const branch = await this.currentBranch();
    if (branch === null) {
      throw new GitError(`git push failed in ${this.root}: HEAD is detached; check out a branch and push it yourself`);
    }
    const up = await this.upstreamOf(branch);
    if (up === null || up.remote === ".") {
      throw new GitError(
        `git push failed in ${this.root}: branch ${branch} has no upstream; push it once with git push -u origin ${branch}`,
      );
    }
    await this.simpleRaw("push", ["push", "--quiet", up.remote, `refs/heads/${branch}:${up.remoteRef}`]);
  }

  /**
   * Adds the patterns missing from `info/exclude` of the repository (shared by all worktrees):
   * ignores that are pantri's business and not the repository's, e.g. its state folder.
   */
  async ensureExcluded(patterns: string[]): Promise<void> {
    const badPattern = patterns.find((p) => /[\r\n]/.test(p));
    if (badPattern !== undefined) throw new UsageError(`exclude pattern ${JSON.stringify(badPattern)} must be one line`);
    const commonDir = resolve(this.root, await this.text(["rev-parse", "--git-common-dir"]));
    const file = join(commonDir, "info", "exclude");
    let current = "";
    try {
      current = await readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const have = new Set(current.split(/\r?\n/));
    const missing = [...new Set(patterns)].filter((p) => p !== "" && !have.has(p));
    if (missing.length === 0) return;
    await mkdir(join(commonDir, "info"), { recursive: true });
    const lead = current !== "" && !current.endsWith("\n") ? "\n" : "";
    await appendFile(file, `${lead}${missing.join("\n")}\n`);
  }

  /** Repo-relative, `/`-separated paths; absolute ones are taken relative to the root. */
  private rel(paths: string[]): string[] {
    return paths.map((p) => {
      const r = isAbsolute(p) ? relative(this.root, p) : p;
      return (sep === "/" ? r : r.split(sep).join("/")).replace(/\/+$/, "") || ".";
    });
  }
}

/**
 * A test: is a path one of `roots` or inside one of them ("" or "." means the whole repo)? Looks
 * the path and each of its parent folders up in a set, so a commit of n files among m staged
 * ones costs O(m * depth), not O(m * n).
 */
function underAny(roots: readonly string[]): (path: string) => boolean {
  if (roots.some((r) => r === "" || r === ".")) return () => true;
  const set = new Set(roots);
  return (path) => {
    if (set.has(path)) return true;
    for (let i = path.indexOf("/"); i >= 0; i = path.indexOf("/", i + 1)) if (set.has(path.slice(0, i))) return true;
    return false;
  };
}

interface BatchObject {
  type: string;
  /** Undefined when git answered `missing` or `ambiguous` (then `type` holds that word). */
  content?: Buffer;
}

/**
 * Parses `git cat-file --batch` output as it streams: `<oid> <type> <size>\n<content>\n` per
 * object, or `<oid> missing\n`. Content is copied straight into a buffer of its announced size,
 * so large blobs are never re-concatenated.
 */
class BatchParser {
  readonly objects: BatchObject[] = [];
  private header: Buffer[] = [];
  private body: { type: string; buf: Buffer; filled: number } | null = null;

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.body) {
        const { buf } = this.body;
        // The content is followed by one LF, hence size + 1.
        const take = Math.min(chunk.length - pos, buf.length + 1 - this.body.filled);
        const copyEnd = Math.min(take, buf.length - this.body.filled);
        if (copyEnd > 0) chunk.copy(buf, this.body.filled, pos, pos + copyEnd);
        this.body.filled += take;
        pos += take;
        if (this.body.filled === buf.length + 1) {
          this.objects.push({ type: this.body.type, content: buf });
          this.body = null;
        }
        continue;
      }
      const lf = chunk.indexOf(0x0a, pos);
      if (lf < 0) {
        this.header.push(chunk.subarray(pos));
        return;
      }
      const line = Buffer.concat([...this.header, chunk.subarray(pos, lf)]).toString("utf8");
      this.header = [];
      pos = lf + 1;
      const [, type = "", size] = line.split(" ");
      if (size === undefined) {
        this.objects.push({ type: type || "missing" });
      } else {
        this.body = { type, buf: Buffer.allocUnsafe(Number(size)), filled: 0 };
      }
    }
  }

  /** True when the stream did not stop inside an object. */
  complete(): boolean {
    return this.body === null && this.header.length === 0;
  }
}
