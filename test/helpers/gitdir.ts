/**
 * The one place tests get git repositories from (after changesets' `gitdir`): a bare origin, a
 * packager clone with shelves, and as many build-host clones as a test wants, all in one
 * temporary folder. Every clone has its own identity and no signing, since CI machines have no
 * global git config.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, realpath, rm, utimes, writeFile as fsWriteFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export interface Repos {
  /** The temporary folder holding everything below (symlinks resolved). */
  root: string;
  /** The bare repository every clone pushes to and pulls from. */
  origin: string;
  /** The clone where binaries are stored: `shelves/<shelf>/.gitkeep`, pushed, tracking origin/main. */
  packager: string;
  /** A fresh clone of origin (tracking origin/main), e.g. a build host; returns its path. */
  cloneBuildHost(name?: string): Promise<string>;
  /** Runs git in cwd; resolves with stdout minus trailing newlines, rejects with git's stderr. */
  git(cwd: string, ...args: string[]): Promise<string>;
  /** Writes repoDir/rel (creating folders), optionally with an mtime in whole seconds; returns the path. */
  writeFile(repoDir: string, rel: string, content: string | Buffer, mtime?: number): Promise<string>;
  /** `git add -A` and commit everything in repoDir; returns the new commit's sha. */
  commitAll(repoDir: string, message: string): Promise<string>;
  /** Removes the whole temporary folder. */
  cleanup(): Promise<void>;
}

export interface MakeReposOptions {
  /** Shelves created in the packager clone (default `["pkgs"]`). */
  shelves?: string[];
}

/** Variables a git hook exports; a test run started from a hook must not use that repo. */
const HOOK_ENV = ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR", "GIT_PREFIX"];

function runGit(cwd: string, args: string[]): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of HOOK_ENV) delete env[name];
  return new Promise((resolvePromise, reject) => {
    execFile("git", args, { cwd, env, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`git ${args.join(" ")} (in ${cwd}) failed: ${stderr.trim() || err.message}`));
      else resolvePromise(stdout.replace(/\n+$/, ""));
    });
  });
}

async function configureClone(dir: string): Promise<void> {
  await runGit(dir, ["config", "user.name", "Pantri Test"]);
  await runGit(dir, ["config", "user.email", "pantri-test@example.invalid"]);
  await runGit(dir, ["config", "commit.gpgsign", "false"]);
  await runGit(dir, ["config", "tag.gpgsign", "false"]);
}

export async function makeRepos(opts: MakeReposOptions = {}): Promise<Repos> {
  const shelves = opts.shelves ?? ["pkgs"];
  const root = await realpath(await mkdtemp(join(tmpdir(), "pantri-test-")));
  const origin = join(root, "origin.git");
  const packager = join(root, "packager");

  // init.defaultBranch may be unset (or "master"): name the branch explicitly everywhere.
  await runGit(root, ["init", "--quiet", "--bare", "--initial-branch=main", origin]);
  await runGit(root, ["init", "--quiet", "--initial-branch=main", packager]);
  await configureClone(packager);
  await runGit(packager, ["remote", "add", "origin", origin]);
  for (const shelf of shelves) {
    await mkdir(join(packager, "shelves", shelf), { recursive: true });
    await fsWriteFile(join(packager, "shelves", shelf, ".gitkeep"), "");
  }
  await runGit(packager, ["add", "-A"]);
  await runGit(packager, ["commit", "--quiet", "--allow-empty", "-m", "init"]);
  await runGit(packager, ["push", "--quiet", "-u", "origin", "main"]);

  return {
    root,
    origin,
    packager,
    async cloneBuildHost(name = "buildhost") {
      const dir = join(root, name);
      await runGit(root, ["clone", "--quiet", "--branch", "main", origin, dir]);
      await configureClone(dir);
      return dir;
    },
    git(cwd, ...args) {
      return runGit(cwd, args);
    },
    async writeFile(repoDir, rel, content, mtime) {
      const file = join(repoDir, rel);
      await mkdir(dirname(file), { recursive: true });
      await fsWriteFile(file, content);
      if (mtime !== undefined) await utimes(file, mtime, mtime);
      return file;
    },
    async commitAll(repoDir, message) {
      await runGit(repoDir, ["add", "-A"]);
      await runGit(repoDir, ["commit", "--quiet", "--allow-empty", "-m", message]);
      return runGit(repoDir, ["rev-parse", "HEAD"]);
    },
    async cleanup() {
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * Deterministic pseudo-random bytes (same size and seed, same bytes) that count as binary for
 * pantri: NUL bytes are planted throughout the first 8 KiB, where binary detection looks.
 */
export function randomBinary(size: number, seed = 1): Buffer {
  const buf = Buffer.alloc(size);
  // mulberry32: tiny, fast, good enough to make every file distinct.
  let state = seed >>> 0;
  for (let i = 0; i < size; i += 4) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const word = (t ^ (t >>> 14)) >>> 0;
    for (let b = 0; b < 4 && i + b < size; b++) buf[i + b] = (word >>> (b * 8)) & 0xff;
  }
  for (let i = 0; i < Math.min(size, 8192); i += 251) buf[i] = 0;
  return buf;
}
