import { lstatSync, readFileSync, statSync } from "node:fs";
import { appendFile, readFile, rm } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import fg from "fast-glob";
import { crashPoint } from "./crash-point.js";
import { forEachLimit, mapLimit } from "./limit.js";
import { PantriError, StoreError, UsageError, errorMessage, throwIfInterrupted } from "./errors.js";
import { info } from "./events.js";
import { IN_MEMORY_MAX_BYTES, SNIFF_BYTES, hashFile, hashWhole, readAndHash, sha256File, sniffFile, type FileDigests, type WholeFile } from "./hash.js";
import { compilePatterns } from "./patterns.js";
import { needsSniff, planStaged, planStoreFile, type StoreAction, type StoreCandidate } from "./plan.js";
import { POINTER_SUFFIX, contentKey, parsePointer, serializePointer } from "./pointer.js";
import { emptyResult, finish, type CommandResult } from "./result.js";
import type { Session } from "./session.js";
import { acquireLock, isStaleTempFile, writeFileAtomic } from "./state.js";
import { bufferSource, fileSource, stageSource } from "./source.js";
import { PARTIAL_SUFFIX } from "./transfer.js";
import { gaveUp, giveUpAfter, mapConcurrent, mergeAsync, storeDownCounter } from "../objectstores/batch.js";
import type { ObjectStore, StagedUpload, StoreOutcome, StoreRequest } from "../objectstores/types.js";

export interface StoreOptions {
  /** Files or folders under shelves/ (relative to cwd); default all of shelves/. */
  paths?: string[];
  cwd?: string;
  checksum?: boolean;
  /** Commit the pointers (default true); false leaves them staged. */
  commit?: boolean;
  push?: boolean;
  dryRun?: boolean;
  concurrency?: number;
  signal?: AbortSignal;
}

/** Paths pantri keeps out of git on its own (SPEC 5): the default store and dest. */
export const EXCLUDED_BY_DEFAULT = ["/.pantri/", "/dest_sync/"];

/** Turns command-line paths into glob patterns relative to shelves/, refusing anything outside. */
export async function selectPatterns(root: string, cwd: string, paths: readonly string[]): Promise<string[]> {
  const shelves = join(root, "shelves");
  if (!paths.length) return ["**"];
  const out: string[] = [];
  for (const p of paths) {
    const abs = resolve(cwd, p);
    const rel = relative(shelves, abs).split(sep).join("/");
    if (rel.startsWith("..") || resolve(shelves, rel) !== abs) throw new UsageError(`${p}: outside ${shelves}; pantri stores only files under shelves/`);
    const st = statSync(abs, { throwIfNoEntry: false });
    if (!st) throw new UsageError(`${p}: no such file or folder`);
    const escaped = fg.escapePath(rel);
    out.push(rel === "" ? "**" : st.isDirectory() ? `${escaped}/**` : escaped);
  }
  return out;
}

/** A gitignore line matching exactly one path (relative to the shelf), anchored. */
export function ignoreEntryFor(relToShelf: string): string {
  const escaped = relToShelf.replace(/[\\*?[\]!#]/g, (c) => `\\${c}`).replace(/ $/, "\\ ");
  return `/${escaped}`;
}

/**
 * A shelf's .gitignore, read once per run. New entries are appended in batches (one write per
 * batch, not a read and an append per file, which made storing n files O(n²) in bytes read),
 * each still after its pointer was written. An entry lost to an interrupted run comes back on the
 * next one (store re-adds the entries of unchanged pointers).
 */
class IgnoreFile {
  /** How long entries gather before one append writes them all. */
  static readonly BATCH_MS = 100;
  private readonly pending: string[] = [];
  private writing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private failure: { error: unknown } | null = null;

  private constructor(
    readonly file: string,
    private readonly lines: Set<string>,
    private needsNewline: boolean,
  ) {}

  static async open(file: string): Promise<IgnoreFile> {
    const text = await readFile(file, "utf8").catch(() => "");
    return new IgnoreFile(file, new Set(text.split("\n")), text !== "" && !text.endsWith("\n"));
  }

  /** Queues the entry unless the file has it; false when it had. */
  add(entry: string): boolean {
    if (this.lines.has(entry)) return false;
    this.lines.add(entry);
    this.pending.push(entry);
    this.timer ??= setTimeout(() => this.schedule(), IgnoreFile.BATCH_MS);
    return true;
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.pending.length) return;
    const batch = this.pending.splice(0);
    this.writing = this.writing
      .then(async () => {
        const lead = this.needsNewline ? "\n" : "";
        this.needsNewline = false;
        await appendFile(this.file, `${lead}${batch.join("\n")}\n`);
      })
      .catch((error: unknown) => {
        this.failure ??= { error };
      });
  }

  /** Writes every queued entry now; throws the first write error. */
  async flush(): Promise<void> {
    this.schedule();
    await this.writing;
    if (this.failure) throw new PantriError(`cannot update ${this.file}: ${errorMessage(this.failure.error)}`, { cause: this.failure.error });
  }
}

/**
 * Staged files (ObjectStore.stageUpload) in flight at once. Each is one upload stream plus a
 * hashing job on the shared hash workers; two keep a store busy while one waits for its hash.
 */
const STAGE_CONCURRENCY = 2;

/**
 * At most this many bytes of small binaries (up to SNIFF_BYTES each) that the scan's sniff read
 * whole are kept for the upload, instead of being opened and read again (see sniffFile).
 */
const KEEP_SNIFFED_MAX_BYTES = 32 << 20;

/** Files `store --dry-run` hashes at once: one on this thread, one on a worker (see sha256File). */
const DRY_RUN_HASHES = 2;

/** The size of every pointer under shelves/ (all shelves, also those whose binary is absent). */
async function pointerSizes(shelvesDir: string): Promise<Set<number>> {
  const files = await fg(`**/*${POINTER_SUFFIX}`, { cwd: shelvesDir, dot: true, onlyFiles: true, followSymbolicLinks: false });
  const sizes = new Set<number>();
  for (const rel of files) {
    const text = readIfPresent(join(shelvesDir, rel));
    if (text === null) continue;
    try {
      sizes.add(parsePointer(text, rel).size);
    } catch {
      // a bad pointer names no content; store reports it where it matters
    }
  }
  return sizes;
}

interface Pending {
  action: Extract<StoreAction, { kind: "store" }>;
  file: string;
  mtime: number;
  size: number;
  sha256: string;
  sha1: string;
}

/** A small file's text, or null when it is missing or unreadable. */
function readIfPresent(file: string): string | null {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

/**
 * Everything store planning needs to know about the files selected under shelves/: kind, size,
 * mtime, the pointer beside each, ignore/override matches, and a binary sniff where it decides.
 * Files git tracks stay git's (text files committed as they are).
 */
export async function gatherStoreCandidates(
  session: Session,
  patterns: string[],
  /** Remove pointer temp files of killed runs (store, holding the repo lock); status only skips them. */
  removeStaleTemp = false,
  /** Filled with the bytes of small binaries the sniff read whole (see KEEP_SNIFFED_MAX_BYTES), by path. */
  keep?: Map<string, WholeFile>,
): Promise<{ c: StoreCandidate; shelf: string }[]> {
  const shelvesDir = join(session.root, "shelves");
  // `**` never matches a name with a newline in it (picomatch): list those as well, so that store
  // fails them by name (gitignore cannot express them) instead of skipping them without a word.
  const all = patterns.flatMap((p) => (p.endsWith("**") ? [p, `${p.slice(0, -2)}**/*\n*`, `${p.slice(0, -2)}**/*\n*/**`] : [p]));
  // git lists what it tracks while the folders are walked.
  const [entries, trackedPaths] = await Promise.all([
    fg(all, {
      cwd: shelvesDir,
      dot: true,
      onlyFiles: false,
      followSymbolicLinks: false,
      markDirectories: true,
      ignore: [`**/*${PARTIAL_SUFFIX}`],
    }),
    session.git.lsFiles(["shelves/"]),
  ]);
  const tracked = new Set(trackedPaths.map((p) => p.slice("shelves/".length)));
  // The walk lists the pointers too: a file's pointer is read only where one exists, not tried
  // (and missed) for every new file.
  const pointers = new Set<string>();
  const files: string[] = [];
  for (const rel of entries) {
    if (rel.endsWith(POINTER_SUFFIX)) pointers.add(rel);
    else files.push(rel);
  }
  let kept = 0;
  const candidates: { c: StoreCandidate; shelf: string }[] = [];
  const matchers = new Map<string, { ignore: (p: string) => boolean; override: (p: string) => boolean }>();
  // A bounded number at a time: all at once held a handle, a sniff buffer and promises for every
  // file (RSS 130+ MB for 2,000 files), and libuv runs only four file-system calls at once anyway.
  await forEachLimit(files, async (rel) => {
    if (rel.endsWith("/")) return;
    const slash = rel.indexOf("/");
    if (slash < 0) return; // directly in shelves/: not in any shelf
    const shelf = rel.slice(0, slash);
    const inShelf = rel.slice(slash + 1);
    if (inShelf === ".gitignore" || tracked.has(rel)) return; // git's own files stay git's
    // A pointer's temporary file left by a killed run: skipped, and removed by store (which holds
    // the repo lock, so no live writer has it).
    if (isStaleTempFile(rel, (base) => base.endsWith(POINTER_SUFFIX) || /~[0-9a-f]{8}$/.test(base))) {
      if (removeStaleTemp) await rm(join(shelvesDir, rel), { force: true });
      return;
    }
    let m = matchers.get(shelf);
    if (!m) {
      const s = session.settings(shelf);
      m = { ignore: compilePatterns(s.ignorePatterns), override: compilePatterns(s.binaryOverrides) };
      matchers.set(shelf, m);
    }
    const abs = join(shelvesDir, rel);
    // Synchronous calls: see isBinaryFile on small local-file calls.
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (!st) return;
    let pointer: StoreCandidate["pointer"] = null;
    const ptrText = pointers.has(`${rel}${POINTER_SUFFIX}`) ? readIfPresent(`${abs}${POINTER_SUFFIX}`) : null;
    if (ptrText !== null) {
      try {
        pointer = parsePointer(ptrText, `${rel}${POINTER_SUFFIX}`);
      } catch (err) {
        pointer = { error: errorMessage(err) };
      }
    }
    const c: StoreCandidate = {
      path: rel,
      kind: st.isSymbolicLink() ? "symlink" : st.isFile() ? "file" : "other",
      size: st.size,
      mtime: Math.floor(st.mtimeMs / 1000),
      pointer,
      ignored: m.ignore(inShelf),
      override: m.override(inShelf),
    };
    if (needsSniff(c)) {
      const sniffed = sniffFile(abs, keep && kept < KEEP_SNIFFED_MAX_BYTES ? SNIFF_BYTES : 0);
      c.binary = sniffed.binary;
      if (keep && sniffed.binary && sniffed.whole) {
        keep.set(rel, sniffed.whole);
        kept += sniffed.whole.data.length;
      }
    }
    candidates.push({ c, shelf });
  });
  candidates.sort((a, b) => (a.c.path < b.c.path ? -1 : 1));

  return candidates;
}

/**
 * The actions to stage (see planStaged). `knownSizes` gives the repo's pointer sizes, read only
 * when a file could be staged, and once per run however many shelves ask.
 */
async function pickStaged(
  actions: readonly Extract<StoreAction, { kind: "store" }>[],
  store: { stageUpload?: unknown; stageMinBytes?: number; md5PartSize?: number },
  sizes: ReadonlyMap<string, number>,
  knownSizes: () => Promise<ReadonlySet<number>>,
): Promise<Set<Extract<StoreAction, { kind: "store" }>>> {
  const max = store.md5PartSize;
  if (!store.stageUpload || !max) return new Set();
  const range = { min: store.stageMinBytes ?? max, max };
  const sized = actions.map((a) => ({ action: a, size: sizes.get(a.path) ?? -1 }));
  if (!sized.some((f) => f.size >= range.min && f.size <= range.max)) return new Set();
  return new Set(planStaged(sized, await knownSizes(), range).map((f) => f.action));
}

export async function store(session: Session, opts: StoreOptions = {}): Promise<CommandResult> {
  const result = emptyResult("store", !!opts.dryRun);
  const root = session.root;
  const shelvesDir = join(root, "shelves");
  const cwd = opts.cwd ?? process.cwd();
  const patterns = await selectPatterns(root, cwd, opts.paths ?? []);
  const release = opts.dryRun ? async () => {} : await acquireLock(`repo:${root}`, "store", { onWait: (o) => info(session.report, `repo is busy: waiting for ${o}`) });
  try {
    if (!opts.dryRun) await session.git.ensureExcluded(EXCLUDED_BY_DEFAULT);
    const sniffed = new Map<string, WholeFile>();
    const candidates = await gatherStoreCandidates(session, patterns, true, opts.dryRun ? undefined : sniffed);

    const todo: Extract<StoreAction, { kind: "store" }>[] = [];
    const unchanged: string[] = [];
    for (const { c, shelf } of candidates) {
      const a = planStoreFile(c, opts.checksum ?? session.settings(shelf).checksum);
      if (a.kind === "store" && a.path.includes("\n")) {
        result.failed.push({ path: a.path, error: "file name contains a newline, which .gitignore cannot express; rename it" });
      } else if (a.kind === "store") todo.push(a);
      else if (a.kind === "fail") result.failed.push({ path: a.path, file: join(shelvesDir, a.path), error: a.error });
      else {
        result.skipped.push({ path: a.path, reason: a.reason });
        if (a.reason === "unchanged") unchanged.push(a.path);
      }
    }
    const sizes = new Map(candidates.map(({ c }) => [c.path, c.size]));
    session.report({ type: "plan", files: todo.length, bytes: todo.reduce((n, a) => n + (sizes.get(a.path) ?? 0), 0) });

    const touched = new Set<string>(); // pointer and ignore files to commit
    const ignoreFiles = new Map<string, Promise<IgnoreFile>>();
    const ensureIgnored = async (path: string): Promise<void> => {
      const slash = path.indexOf("/");
      const shelf = path.slice(0, slash);
      let f = ignoreFiles.get(shelf);
      if (!f) {
        f = IgnoreFile.open(join(shelvesDir, shelf, ".gitignore"));
        ignoreFiles.set(shelf, f);
      }
      if ((await f).add(ignoreEntryFor(path.slice(slash + 1)))) touched.add(`shelves/${shelf}/.gitignore`);
    };
    const flushIgnores = async (): Promise<void> => {
      for (const f of ignoreFiles.values()) await (await f).flush();
    };

    if (opts.dryRun) {
      // The plan needs the key (the sha256), not the sha1 of the pointer. Two files at a time:
      // sha256File hashes one on this thread and the other on a worker, so both cores hash.
      const planned = await mapLimit(todo, async (a) => {
        const file = join(shelvesDir, a.path);
        const h = await sha256File(file, (n) => session.report({ type: "bytes", n }));
        const shelf = a.path.split("/")[0] ?? "";
        const prefix = (session.settings(shelf).objectStore.keyPrefix as string | undefined) ?? "";
        return { path: a.path, file, reason: a.reason, size: h.size, sha256: h.sha256, key: contentKey(h.sha256, prefix) };
      }, DRY_RUN_HASHES);
      result.stored.push(...planned);
      return finish(result);
    }

    // What killed runs left in the stores of these shelves (staged bytes that got no object) is
    // removed beside this run's work, whether or not this run stages anything itself.
    const cleaning = new Map<ObjectStore, Promise<void>>();
    for (const shelf of new Set(candidates.map((c) => c.shelf))) {
      const { store: s } = await session.storeFor(shelf);
      if (s.cleanUp && !cleaning.has(s)) cleaning.set(s, s.cleanUp({ signal: opts.signal }).catch(() => undefined));
    }

    // Pointers that exist but lost their ignore entry get it back.
    for (const p of unchanged) await ensureIgnored(p);
    // A pointer (and ignore entry) written by a run that was interrupted before its commit looks
    // unchanged now: it is committed with this run's.
    if (unchanged.length) {
      const pending = new Set(await session.git.uncommitted(["shelves/"]));
      for (const p of unchanged) {
        const ignoreFile = `shelves/${p.slice(0, p.indexOf("/"))}/.gitignore`;
        for (const f of [`shelves/${p}${POINTER_SUFFIX}`, ignoreFile]) if (pending.has(f)) touched.add(f);
      }
    }

    const byShelf = new Map<string, typeof todo>();
    for (const a of todo) {
      const shelf = a.path.split("/")[0] ?? "";
      const list = byShelf.get(shelf);
      if (list) list.push(a);
      else byShelf.set(shelf, [a]);
    }
    let pointerSizesRead: Promise<Set<number>> | null = null;
    const knownSizes = () => (pointerSizesRead ??= pointerSizes(shelvesDir));
    try {
      for (const [shelf, actions] of byShelf) {
        const { store: objectStore, prefix } = await session.storeFor(shelf);
        const checksum = opts.checksum ?? session.settings(shelf).checksum;
        // A store that checks MD5s server-side gets them from the hashing pass (see ObjectStore.md5PartSize).
        const md5PartSize = objectStore.md5PartSize;
        const staged = await pickStaged(actions, objectStore, sizes, knownSizes);
        const plain = staged.size ? actions.filter((a) => !staged.has(a)) : actions;
        // Hashing happens as the store's workers pull requests, so it overlaps with uploads.
        async function* requests(): AsyncGenerator<StoreRequest<Pending>> {
          for (const action of plain) {
            if (opts.signal?.aborted) return; // stopping: start nothing new
            const file = join(shelvesDir, action.path);
            try {
              // A small file is read whole (or was, by the scan's sniff), with the mtime of the
              // descriptor it was read through; a bigger one is hashed from the disk.
              const whole = sniffed.get(action.path);
              sniffed.delete(action.path);
              const st = whole ? null : statSync(file);
              let h: FileDigests & { data?: Buffer };
              let mtime: number;
              if (whole || (st && st.size <= IN_MEMORY_MAX_BYTES)) {
                const small = whole ? hashWhole(whole, md5PartSize) : await readAndHash(file, md5PartSize);
                h = small;
                mtime = Math.floor(small.mtimeMs / 1000);
                session.report({ type: "bytes", n: h.size });
              } else {
                mtime = Math.floor((st?.mtimeMs ?? 0) / 1000);
                h = await hashFile(file, { onBytes: (n) => session.report({ type: "bytes", n }), md5PartSize });
                if (h.size !== st?.size) throw new PantriError(`${file} changed while it was being hashed; run store again`);
              }
              const prev = action.previous;
              if (checksum && prev && prev.sha256 === h.sha256 && prev.size === h.size && prev.mtime === mtime) {
                result.skipped.push({ path: action.path, reason: "unchanged (checksum)" });
                await ensureIgnored(action.path);
                continue;
              }
              const item: Pending = { action, file, mtime, size: h.size, sha256: h.sha256, sha1: h.sha1 };
              const source = h.data ? bufferSource(file, h.data, h) : fileSource(file, h);
              yield { key: contentKey(h.sha256, prefix), source, item };
            } catch (err) {
              result.failed.push({ path: action.path, file, error: errorMessage(err) });
              session.report({ type: "file-done", path: action.path });
            }
          }
        }
        /**
         * Set when the store refused a staged upload (403: e.g. no right to create or write the
         * segment container, which only staging needs; 501: it cannot stage here; see
         * ObjectStore.stageUpload): the rest go up the plain way.
         */
        let stagingRefused = false;
        /**
         * A staged file: its bytes go up while it is hashed; the key (its sha256) is given once
         * both are done, and the store checks that it received the bytes that were hashed.
         * Resolves with the outcome once the key is known, else with the failure (reported here).
         */
        const storeStaged = async (action: (typeof actions)[number]): Promise<StoreOutcome<Pending> | { failure: Error }> => {
          const file = join(shelvesDir, action.path);
          let upload: StagedUpload | null = null;
          try {
            const st = statSync(file);
            const mtime = Math.floor(st.mtimeMs / 1000);
            const onBytes = (n: number) => session.report({ type: "bytes", n });
            const hashing = hashFile(file, { md5PartSize });
            const stage = stagingRefused ? undefined : objectStore.stageUpload;
            const [sent, hashed] = await Promise.allSettled([stage ? stage(stageSource(file, st.size), { signal: opts.signal, onBytes }) : null, hashing]);
            if (sent.status === "fulfilled") upload = sent.value;
            if (hashed.status === "rejected") throw hashed.reason;
            const h = hashed.value;
            if (h.size !== st.size) throw new PantriError(`${file} changed while it was being hashed; run store again`);
            const item: Pending = { action, file, mtime, size: h.size, sha256: h.sha256, sha1: h.sha1 };
            const request: StoreRequest<Pending> = { key: contentKey(h.sha256, prefix), source: fileSource(file, h), item };
            // 403 (no right to the segment container) or 501 (the store cannot stage here): the plain way.
            const refused = sent.status === "rejected" && sent.reason instanceof StoreError && (sent.reason.status === 403 || sent.reason.status === 501);
            if (sent.status === "rejected" && !refused) throw sent.reason;
            const committing = sent.status === "fulfilled" ? sent.value : null;
            if (!committing) {
              if (sent.status === "rejected" && !stagingRefused) {
                stagingRefused = true;
                info(session.report, `${objectStore.description} refused a staged upload (${errorMessage(sent.reason)}); hashing big files before uploading them instead`);
              }
              // The plain way, now that the hash is known: one request through the store's batch.
              for await (const out of objectStore.storeObjects([request], { concurrency: 1, signal: opts.signal, onBytes })) return out;
              throw new PantriError(`${objectStore.description} reported nothing for ${file}`);
            }
            crashPoint("after-stage-before-commit");
            upload = null; // commit drops the staged bytes itself when it refuses them
            try {
              return { request, uploaded: await committing.commit(request.key, h, { signal: opts.signal }) };
            } catch (err) {
              return { request, uploaded: false, error: gaveUp(err) };
            }
          } catch (err) {
            if (upload) await upload.discard().catch(() => undefined); // else the next run's clean-up removes it
            const failure = gaveUp(err);
            result.failed.push({ path: action.path, file, error: errorMessage(failure) });
            session.report({ type: "file-done", path: action.path });
            return { failure };
          }
        };
        async function* stagedOutcomes(): AsyncGenerator<StoreOutcome<Pending>> {
          // A dead store fails the run in bounded time here too (see the batch layer's failFast).
          const downAfter = storeDownCounter(objectStore.description, giveUpAfter(STAGE_CONCURRENCY));
          for await (const out of mapConcurrent(staged, STAGE_CONCURRENCY, storeStaged)) {
            if ("failure" in out) downAfter(out.failure);
            else {
              yield out;
              downAfter(out.error);
            }
          }
        }
        const concurrency = opts.concurrency ?? session.settings(shelf).concurrency;
        const uploads = objectStore.storeObjects(requests(), { concurrency, signal: opts.signal, onBytes: (n) => session.report({ type: "bytes", n }) });
        for await (const out of staged.size ? mergeAsync(uploads, stagedOutcomes()) : uploads) {
          const p = out.request.item;
          const base = { path: p.action.path, file: p.file, key: out.request.key, size: p.size, sha256: p.sha256 };
          if (out.error) {
            result.failed.push({ ...base, error: errorMessage(out.error) });
          } else {
            // The object is in the store: only now does its pointer exist, then its ignore entry.
            try {
              const pointerFile = `${p.file}${POINTER_SUFFIX}`;
              crashPoint("after-upload-before-pointer");
              await writeFileAtomic(pointerFile, serializePointer({ path: p.action.path, size: p.size, sha256: p.sha256, sha1: p.sha1, mtime: p.mtime }), 0o644);
              touched.add(`shelves/${p.action.path}${POINTER_SUFFIX}`);
              crashPoint("after-pointer-before-ignore");
              await ensureIgnored(p.action.path);
              result.stored.push({ ...base, reason: p.action.reason, uploaded: out.uploaded });
            } catch (err) {
              result.failed.push({ ...base, error: `stored, but writing its pointer failed: ${errorMessage(err)}` });
            }
          }
          session.report({ type: "file-done", path: p.action.path });
        }
      }
    } finally {
      // However the uploads ended, the ignore entries of the pointers written so far reach the disk.
      await flushIgnores().catch(() => undefined);
      await Promise.all(cleaning.values());
    }
    await flushIgnores();
    // Stopped by a signal: no commit. The pointers written so far are complete (their objects are
    // stored) and the next store commits them.
    throwIfInterrupted(opts.signal);

    const paths = [...touched].sort();
    if (paths.length) {
      crashPoint("before-commit");
      const pointers = paths.filter((p) => p.endsWith(POINTER_SUFFIX));
      const shelves = [...new Set(pointers.map((p) => p.split("/")[1]))].sort();
      const n = pointers.length;
      const what = `${n} object${n === 1 ? "" : "s"}`;
      const message = shelves.length === 0 ? "pantri: update ignore entries" : `pantri: store ${what} in shelf${shelves.length > 1 ? "s" : ""} ${shelves.join(", ")}`;
      if (opts.commit !== false) {
        const sha = await session.git.commit(message, paths);
        result.details.commit = sha;
        if (sha && opts.push) {
          await session.git.push();
          result.details.pushed = true;
        }
      } else {
        await session.git.add(paths); // (commit stages them itself)
        result.details.staged = paths;
      }
    }
    return finish(result);
  } finally {
    await release();
  }
}
