import { createHash, randomBytes } from "node:crypto";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { homedir, hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { LockError, PantriError } from "./errors.js";
import { fitName } from "./transfer.js";

/**
 * State pantri keeps outside the git working copy: per-(dest, shelf) sync records (state dir)
 * and cached credentials (cache dir). Both follow the XDG base directories and can be moved
 * with PANTRI_STATE_DIR / PANTRI_CACHE_DIR.
 */

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.PANTRI_STATE_DIR || join(env.XDG_STATE_HOME || join(homedir(), ".local", "state"), "pantri");
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.PANTRI_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "pantri");
}

function shortHash(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 24);
}

/** `<name>.<pid>.<8 hex>.tmp`: how writeFileAtomic names its temporary files (see isStaleTempFile). */
const TEMP_RE = /\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/** Per-process start for temporary names: random, then counted up, so names never repeat in a run. */
let tempSerial = randomBytes(4).readUInt32BE(0);

/**
 * Writes a file atomically (temp + rename in the same folder) with mode 0600. The temporary
 * name carries the writer's pid, so a leftover of a killed run can be told from a live one.
 *
 * Synchronous on purpose: these files are small (pointers, records), and a store writes one per
 * object. Through fs/promises each write was five thread-pool round trips and a FileHandle,
 * 0.4 ms of this thread's CPU per pointer (profiled on 2,000 small files), more than the calls
 * themselves cost when made directly.
 */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  tempSerial = (tempSerial + 1) >>> 0;
  const tmp = join(dirname(path), `${fitName(basename(path), 20)}.${process.pid}.${tempSerial.toString(16).padStart(8, "0")}.tmp`);
  try {
    try {
      writeFileSync(tmp, data, { mode });
    } catch (err) {
      // The folder nearly always exists (a pointer sits beside its binary): create it only when
      // the write says it is missing, instead of a recursive mkdir (and its EEXIST) per file.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      writeFileSync(tmp, data, { mode });
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export interface SyncRecord {
  /** The commit dest/<shelf> reflects completely. */
  commit: string;
  dest: string;
  shelf: string;
  repo: string;
  syncedAt: string;
}

/** Sync records: one small JSON file per (dest, shelf), named from a hash of dest's real path. */
export class SyncRecords {
  constructor(private readonly dir: string = stateDir()) {}

  private file(dest: string, shelf: string): string {
    return join(this.dir, "sync", shortHash(dest), `${encodeURIComponent(shelf)}.json`);
  }

  async read(dest: string, shelf: string): Promise<SyncRecord | null> {
    let text: string;
    try {
      text = await readFile(this.file(dest, shelf), "utf8");
    } catch {
      return null;
    }
    try {
      const rec = JSON.parse(text) as Partial<SyncRecord>;
      if (typeof rec.commit === "string" && /^[0-9a-f]{40,64}$/.test(rec.commit) && rec.dest === dest && rec.shelf === shelf) {
        return rec as SyncRecord;
      }
    } catch {
      // A damaged record only costs a full comparison, never correctness.
    }
    return null;
  }

  async write(rec: Omit<SyncRecord, "syncedAt">): Promise<void> {
    await writeFileAtomic(this.file(rec.dest, rec.shelf), `${JSON.stringify({ ...rec, syncedAt: new Date().toISOString() }, null, 2)}\n`);
  }
}

interface LockOwner {
  pid: number;
  host: string;
  since: string;
  what: string;
}

/** A writeFileAtomic temporary file of `forName` whose writer (on this host) is gone. */
export function isStaleTempFile(name: string, forName: (base: string) => boolean): boolean {
  const m = TEMP_RE.exec(name);
  return !!m && forName(name.slice(0, m.index)) && !alive(Number(m[1]));
}

/** Whether a process of this host with that pid is running (EPERM: it is, as another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface LockOptions {
  /** How long to wait for another run to finish (ms). Default PANTRI_LOCK_TIMEOUT seconds or 600 s. */
  waitMs?: number;
  onWait?: (owner: string) => void;
  dir?: string;
}

/**
 * An exclusive lock named by `name` (e.g. a dest's real path). A lock file created with O_EXCL
 * holds the owner's pid and host; a lock whose owner on this host is gone (killed) is stale and
 * taken over. A second run waits, then fails with a message naming the holder.
 */
export async function acquireLock(name: string, what: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const dir = join(opts.dir ?? stateDir(), "locks");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${shortHash(name)}.lock`);
  const waitMs = opts.waitMs ?? Number(process.env.PANTRI_LOCK_TIMEOUT ?? 600) * 1000;
  const deadline = Date.now() + waitMs;
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString(), what };
  let told = false;
  for (;;) {
    try {
      const fh = await open(file, "wx", 0o600);
      await fh.writeFile(JSON.stringify(me));
      await fh.close();
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new PantriError(`cannot create lock file ${file}: ${(err as Error).message}`);
      }
    }
    let owner: LockOwner | null = null;
    try {
      owner = JSON.parse(await readFile(file, "utf8")) as LockOwner;
    } catch {
      // Being written right now, or torn by a crash: judge by age.
      const age = await stat(file).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > 5000) await rm(file, { force: true });
      continue;
    }
    if (owner.host === me.host && !alive(owner.pid)) {
      // Stale: its process is gone. Remove it only if it is still the same lock we read.
      const again = await readFile(file, "utf8").catch(() => "");
      if (again === JSON.stringify(owner)) await rm(file, { force: true });
      continue;
    }
    const desc = `pid ${owner.pid} on ${owner.host} (${owner.what}, since ${owner.since})`;
    if (Date.now() >= deadline) {
      throw new LockError(`${name} is locked by another pantri run: ${desc}. Wait for it to finish, or remove ${file} if that process is gone.`);
    }
    if (!told) {
      opts.onWait?.(desc);
      told = true;
    }
    await sleep(100 + Math.random() * 150);
  }
}
