import { chmod, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { mkdir } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { randomBytes } from "node:crypto";
import { gitBlobOid, lstatOrNull, pruneEmptyDirs, scanDest } from "./dest.js";
import { crashPoint } from "./crash-point.js";
import { forEachLimit } from "./limit.js";
import { IntegrityError, PantriError, UsageError, errorMessage, throwIfInterrupted } from "./errors.js";
import { debug, info, warn } from "./events.js";
import { sha256File } from "./hash.js";
import { compilePatterns } from "./patterns.js";
import {
  classifyEntry,
  destRelOf,
  pathsToInspect,
  planFullRetrieve,
  planIncrementalRetrieve,
  type DestFile,
  type PointerRead,
  type RetrieveAction,
  type TreeFile,
} from "./plan.js";
import { POINTER_SUFFIX, objectKey, parsePointer, validateRelPath } from "./pointer.js";
import { emptyResult, finish, type CommandResult, type ItemResult } from "./result.js";
import { assertNoSymlinkInside, ensureDirInside, type CheckedDirs } from "./safe-path.js";
import { canonicalDir, type Session } from "./session.js";
import { SyncRecords, acquireLock, writeFileAtomic } from "./state.js";
import { PARTIAL_SUFFIX, fitName, partialPath } from "./transfer.js";
import type { Pointer } from "./types.js";
import { EXCLUDED_BY_DEFAULT } from "./store.js";
import type { RetrieveRequest } from "../objectstores/types.js";

export interface RetrieveOptions {
  /** Shelves to retrieve; empty = every shelf in the target tree. */
  shelves?: string[];
  /** --dest; default destSync of each shelf. */
  dest?: string;
  force?: boolean;
  checksum?: boolean;
  /** Commit, tag or branch; default HEAD. */
  ref?: string;
  pull?: boolean;
  dryRun?: boolean;
  /** -i: one pointer file (path as given on the command line). */
  pitem?: string;
  /** -j: write the legacy `<shelf>_updated_objects.json`. */
  jsonOutput?: boolean;
  concurrency?: number;
  cwd?: string;
  signal?: AbortSignal;
  records?: SyncRecords;
}

export interface ShelfPlan {
  shelf: string;
  dest: string;
  mode: "full" | "incremental";
  from: string | null;
  actions: RetrieveAction[];
}

/** Reads and parses many pointers from git in one batch; failures become data, not throws. */
export async function readPointersAt(session: Session, files: readonly { repoPath: string; oid: string }[]): Promise<Map<string, PointerRead>> {
  const out = new Map<string, PointerRead>();
  if (!files.length) return out;
  const blobs = await session.git.readBlobs([...new Set(files.map((f) => f.oid))]);
  for (const f of files) {
    const buf = blobs.get(f.oid);
    try {
      if (!buf) throw new PantriError(`shelves/${f.repoPath.slice(8)}: blob ${f.oid} missing from git`);
      out.set(f.repoPath, parsePointer(buf.toString("utf8"), f.repoPath.slice("shelves/".length)));
    } catch (err) {
      out.set(f.repoPath, { error: errorMessage(err) });
    }
  }
  return out;
}

/** Adds the facts the planner needs beyond lstat: blob ids of text files, sha256 under --checksum. */
async function enrichDest(
  dest: string,
  facts: Map<string, DestFile>,
  files: readonly TreeFile[],
  shelf: string,
  pointers: ReadonlyMap<string, PointerRead>,
  checksum: boolean,
): Promise<void> {
  await forEachLimit(files, async (f) => {
    const kind = classifyEntry(f.repoPath, f.mode, shelf);
    if (kind !== "text" && kind !== "pointer") return;
    const path = destRelOf(f.repoPath, kind);
    const have = facts.get(path);
    if (!have || have.kind !== "file") return;
    if (kind === "text") {
      have.blobOid = await gitBlobOid(join(dest, path)).catch(() => undefined);
    } else if (checksum) {
      const p = pointers.get(f.repoPath);
      if (p && !("error" in p) && p.size === have.size) have.sha256 = (await sha256File(join(dest, path))).sha256;
    }
  });
}

/** Plans one shelf against one dest: incremental from the sync record when possible. */
export async function planShelf(
  session: Session,
  shelf: string,
  dest: string,
  target: string,
  opts: Pick<RetrieveOptions, "force" | "checksum">,
  records: SyncRecords,
): Promise<ShelfPlan> {
  const settings = session.settings(shelf);
  const checksum = opts.checksum ?? settings.checksum;
  const record = opts.force ? null : await records.read(dest, shelf);
  const from = record && (await session.git.commitExists(record.commit)) ? record.commit : null;
  if (record && !from) warn(session.report, `last synced commit ${record.commit} of shelf ${shelf} is not in this repo any more: comparing everything`);
  const spec = [`shelves/${shelf}/`];

  if (from) {
    const changes = await session.git.diffTree(from, target, spec);
    const pointerFiles = changes.filter((c) => c.status !== "D" && classifyEntry(c.path, c.mode, shelf) === "pointer").map((c) => ({ repoPath: c.path, oid: c.oid }));
    const pointers = await readPointersAt(session, pointerFiles);
    const dfacts = new Map<string, DestFile>();
    await forEachLimit(pathsToInspect(changes, shelf), async (p) => {
      if (validateRelPath(p) !== null) return;
      const f = await lstatOrNull(join(dest, p));
      if (f) dfacts.set(p, f);
    });
    const files = changes.filter((c) => c.status !== "D").map((c) => ({ repoPath: c.path, mode: c.mode, oid: c.oid }));
    await enrichDest(dest, dfacts, files, shelf, pointers, checksum);
    const actions = planIncrementalRetrieve({ shelf, pointers, dest: dfacts, checksum, changes });
    return { shelf, dest, mode: "incremental", from, actions };
  }

  const files = (await session.git.lsTree(target, spec)).filter((e) => e.type === "blob" || e.type === "commit");
  const pointers = await readPointersAt(
    session,
    files.filter((f) => classifyEntry(f.path, f.mode, shelf) === "pointer").map((f) => ({ repoPath: f.path, oid: f.oid })),
  );
  const dfacts = await scanDest(dest, shelf);
  const treeFiles = files.map((f) => ({ repoPath: f.path, mode: f.mode, oid: f.oid }));
  await enrichDest(dest, dfacts, treeFiles, shelf, pointers, checksum);
  // Keep the partial download of an object we are about to fetch again: it will be resumed.
  const partials = new Set<string>();
  for (const [p, ptr] of pointers) {
    if ("error" in ptr) continue;
    const part = relative(dest, partialPath(join(dest, destRelOf(p, "pointer")), ptr.sha256)).split(sep).join("/");
    if (dfacts.has(part)) partials.add(part);
  }
  const keep = compilePatterns(settings.keepFiles);
  const actions = planFullRetrieve({
    shelf,
    pointers,
    dest: dfacts,
    checksum,
    files: treeFiles,
    destListing: [...dfacts.keys()],
    keep,
    partials,
  });
  return { shelf, dest, mode: "full", from: null, actions };
}

/** Every path a plan writes is checked before any byte moves: no `..`, nothing through a link. */
function unsafePathError(path: string): string | null {
  const why = validateRelPath(path);
  return why === null ? null : `${path}: unsafe path (${why}); nothing was written`;
}

export async function listShelves(session: Session, target: string): Promise<string[]> {
  // Only the folders directly in shelves/: a no-op retrieve must not list every pointer.
  const entries = await session.git.lsTree(target, ["shelves/"], { recursive: false });
  const names = new Set<string>();
  for (const e of entries) {
    const m = /^shelves\/([^/]+)$/.exec(e.path);
    if (e.type === "tree" && m?.[1]) names.add(m[1]);
  }
  return [...names].sort();
}

/** Copies text files from git at the target commit: temp file in the same folder, then rename. */
async function copyTextFile(session: Session, dest: string, a: Extract<RetrieveAction, { kind: "copy" }>, blobs: Map<string, Buffer>): Promise<string> {
  const file = join(dest, a.path);
  const tmp = join(dirname(file), `.${fitName(a.path.split("/").pop() ?? "", 22)}.${randomBytes(4).toString("hex")}${PARTIAL_SUFFIX}`);
  try {
    const data = blobs.get(a.oid);
    if (data) await writeFile(tmp, data);
    else await session.git.blobToFile(a.oid, tmp);
    if (a.mode === "100755") await chmod(tmp, 0o755);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return file;
}

export async function retrieve(session: Session, opts: RetrieveOptions = {}): Promise<CommandResult> {
  const result = emptyResult("retrieve", !!opts.dryRun);
  const records = opts.records ?? new SyncRecords(undefined);
  if (opts.pull !== false && !opts.dryRun) {
    const release = await acquireLock(`repo:${session.root}`, "pull", { onWait: (o) => info(session.report, `waiting for ${o}`) });
    try {
      const r = await session.git.pullFastForward();
      debug(session.report, r === "no-upstream" ? "no upstream branch: not pulling" : `pull: ${r}`);
    } finally {
      await release();
    }
  }
  if (!opts.dryRun) await session.git.ensureExcluded(EXCLUDED_BY_DEFAULT);
  if (opts.pitem) return finish(await retrieveOne(session, opts, result));

  const target = await session.git.resolveCommit(opts.ref ?? "HEAD");
  const available = await listShelves(session, target);
  const shelves = opts.shelves?.length ? [...new Set(opts.shelves)] : available;
  for (const s of shelves) {
    if (validateRelPath(s) !== null || s.includes("/")) throw new UsageError(`--shelf ${JSON.stringify(s)} is not a shelf name`);
    if (!available.includes(s)) throw new UsageError(`no shelf named "${s}" under shelves/ at ${opts.ref ?? "HEAD"} (shelves: ${available.join(", ") || "none"})`);
  }

  // One lock per dest: two retrieves into the same folder never interleave.
  const destOf = async (shelf: string) => canonicalDir(opts.dest ? resolve(opts.cwd ?? process.cwd(), opts.dest) : session.settings(shelf).destSync);
  const dests = new Map<string, string[]>();
  for (const s of shelves) {
    const d = await destOf(s);
    dests.set(d, [...(dests.get(d) ?? []), s]);
  }
  const releases: (() => Promise<void>)[] = [];
  try {
    if (!opts.dryRun) {
      for (const d of [...dests.keys()].sort()) {
        releases.push(await acquireLock(`dest:${d}`, `retrieve into ${d}`, { onWait: (o) => info(session.report, `${d} is busy: waiting for ${o}`) }));
      }
    }
    const plans: ShelfPlan[] = [];
    for (const [dest, ss] of dests) for (const s of ss) plans.push(await planShelf(session, s, dest, target, opts, records));
    result.details = {
      target,
      ref: opts.ref ?? "HEAD",
      shelves: plans.map((p) => ({ shelf: p.shelf, dest: p.dest, mode: p.mode, from: p.from })),
    };
    if (opts.dryRun) {
      for (const p of plans) reportPlanned(p, result);
      return finish(result);
    }
    await execute(session, plans, opts, result);
    if (result.failed.length === 0) {
      throwIfInterrupted(opts.signal);
      crashPoint("before-record");
      for (const p of plans) await records.write({ commit: target, dest: p.dest, shelf: p.shelf, repo: session.root });
    } else {
      warn(session.report, `${result.failed.length} item(s) failed: dest was not marked as synced; run retrieve again to finish`);
    }
    if (opts.jsonOutput) await writeLegacyJson(session, opts, result);
    return finish(result);
  } finally {
    for (const r of releases.reverse()) await r();
  }
}

function reportPlanned(p: ShelfPlan, result: CommandResult): void {
  for (const a of p.actions) {
    const file = join(p.dest, a.path);
    if (a.kind === "download") result.retrieved.push({ path: a.path, file, reason: a.reason, size: a.pointer.size, sha256: a.pointer.sha256 });
    else if (a.kind === "copy") result.copied.push({ path: a.path, file, reason: a.reason });
    else if (a.kind === "remove") result.removed.push({ path: a.path, file, reason: a.reason });
    else if (a.kind === "skip") result.skipped.push({ path: a.path, reason: a.reason });
    else result.failed.push({ path: a.path, error: a.error });
  }
}

export interface DownloadItem {
  dest: string;
  action: Extract<RetrieveAction, { kind: "download" }>;
}

async function execute(session: Session, plans: ShelfPlan[], opts: RetrieveOptions, result: CommandResult): Promise<void> {
  const downloads: DownloadItem[] = [];
  const copies: { dest: string; action: Extract<RetrieveAction, { kind: "copy" }> }[] = [];
  const removals: { dest: string; shelf: string; action: Extract<RetrieveAction, { kind: "remove" }> }[] = [];
  for (const p of plans) {
    for (const a of p.actions) {
      const unsafe = a.kind === "fail" ? null : unsafePathError(a.path);
      if (unsafe) result.failed.push({ path: a.path, error: unsafe });
      else if (a.kind === "download") downloads.push({ dest: p.dest, action: a });
      else if (a.kind === "copy") copies.push({ dest: p.dest, action: a });
      else if (a.kind === "remove") removals.push({ dest: p.dest, shelf: p.shelf, action: a });
      else if (a.kind === "skip") result.skipped.push({ path: a.path, reason: a.reason });
      else result.failed.push({ path: a.path, error: a.error });
    }
  }
  session.report({ type: "plan", files: downloads.length + copies.length, bytes: downloads.reduce((n, d) => n + d.action.pointer.size, 0) });


  // Each dest folder is made and checked once for the whole run, not once per file in it.
  const checked: CheckedDirs = new Set();
  const prepareOnce = (dest: string, path: string) => prepare(dest, path, checked);
  await downloadAll(session, downloads, opts, result, prepareOnce);
  throwIfInterrupted(opts.signal);

  if (copies.length) {
    const blobs = await session.git.readBlobs([...new Set(copies.map((c) => c.action.oid))]);
    for (const { dest, action } of copies) {
      const bad = await prepareOnce(dest, action.path);
      if (bad) {
        result.failed.push({ path: action.path, file: join(dest, action.path), error: bad });
        continue;
      }
      try {
        const file = await copyTextFile(session, dest, action, blobs);
        result.copied.push({ path: action.path, file, reason: action.reason });
      } catch (err) {
        result.failed.push({ path: action.path, file: join(dest, action.path), error: errorMessage(err) });
      }
      session.report({ type: "file-done", path: action.path });
    }
  }

  // Deletions only after every download and copy succeeded: a failed run never leaves dest
  // with less than it had, and the next run (same plan, record not advanced) redoes it all.
  if (result.failed.length) {
    for (const { action } of removals) result.skipped.push({ path: action.path, reason: "not removed: other items failed" });
    return;
  }
  throwIfInterrupted(opts.signal);
  crashPoint("after-downloads-before-deletions");
  const removedByShelf = new Map<string, { dest: string; paths: string[] }>();
  for (const { dest, shelf, action } of removals) {
    const file = join(dest, action.path);
    try {
      await assertNoSymlinkInside(dest, dirname(action.path));
      await rm(file, { force: true });
      result.removed.push({ path: action.path, file, reason: action.reason });
      const k = `${dest}\0${shelf}`;
      const entry = removedByShelf.get(k) ?? { dest, paths: [] };
      entry.paths.push(action.path);
      removedByShelf.set(k, entry);
    } catch (err) {
      result.failed.push({ path: action.path, file, error: errorMessage(err) });
    }
  }
  for (const [k, { dest, paths }] of removedByShelf) await pruneEmptyDirs(dest, k.split("\0")[1] ?? "", paths);
  // Everything succeeded, so no download in these folders is still worth resuming: remove what
  // an interrupted run left behind (a killed process cannot clean up after itself). A full
  // comparison already removes such strays; this covers incremental runs.
  // Only folders this run wrote to or removed from: their paths were checked to be inside dest.
  const folders = new Set<string>();
  for (const { dest, action } of [...downloads, ...copies, ...removals]) folders.add(join(dest, dirname(action.path)));
  await removePartials(folders);
}

/** Removes in-progress download and copy files directly in these folders (never following links). */
async function removePartials(folders: Iterable<string>): Promise<void> {
  for (const dir of folders) {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isFile() && e.name.endsWith(PARTIAL_SUFFIX)) await rm(join(dir, e.name), { force: true });
  }
}

/**
 * Makes the folders of a dest path one component at a time, refusing links; returns why not
 * (so that a refusal fails just that item) or null.
 */
export async function prepare(dest: string, path: string, checked?: CheckedDirs): Promise<string | null> {
  try {
    await ensureDirInside(dest, dirname(path), checked);
    await assertNoSymlinkInside(dest, path, checked);
    return null;
  } catch (err) {
    return errorMessage(err);
  }
}

/** Downloads grouped by store (shelves may use different stores), each batch streaming. */
export async function downloadAll(
  session: Session,
  downloads: DownloadItem[],
  opts: Pick<RetrieveOptions, "concurrency" | "signal">,
  result: CommandResult,
  prepare: (dest: string, path: string) => Promise<string | null>,
): Promise<void> {
  const byShelf = new Map<string, DownloadItem[]>();
  for (const d of downloads) {
    const shelf = d.action.path.split("/")[0] ?? "";
    byShelf.set(shelf, [...(byShelf.get(shelf) ?? []), d]);
  }
  for (const [shelf, items] of byShelf) {
    const { store, prefix } = await session.storeFor(shelf);
    const concurrency = opts.concurrency ?? session.settings(shelf).concurrency;
    async function* requests(): AsyncGenerator<RetrieveRequest<DownloadItem>> {
      for (const item of items) {
        if (opts.signal?.aborted) return;
        const bad = await prepare(item.dest, item.action.path);
        if (bad) {
          result.failed.push({ path: item.action.path, file: join(item.dest, item.action.path), error: bad });
          continue;
        }
        const p: Pointer = item.action.pointer;
        yield { key: objectKey(p, prefix), size: p.size, sha256: p.sha256, file: join(item.dest, item.action.path), mtime: p.mtime, item };
      }
    }
    for await (const out of store.retrieveObjects(requests(), { concurrency, signal: opts.signal, onBytes: (n) => session.report({ type: "bytes", n }) })) {
      const { item } = out.request;
      const entry: ItemResult = { path: item.action.path, file: out.request.file, key: out.request.key, size: out.request.size, sha256: out.request.sha256 };
      // Content that does not match names the pointer that promised it, too.
      if (out.error) result.failed.push({ ...entry, error: `${errorMessage(out.error)}${out.error instanceof IntegrityError ? ` (pointer ${item.action.pointerFile})` : ""}` });
      else result.retrieved.push({ ...entry, reason: item.action.reason });
      session.report({ type: "file-done", path: item.action.path });
    }
  }
}

/** `-i`: one pointer from the working copy, next to it in shelves/ unless --dest is given. */
async function retrieveOne(session: Session, opts: RetrieveOptions, result: CommandResult): Promise<CommandResult> {
  const abs = resolve(opts.cwd ?? process.cwd(), opts.pitem ?? "");
  const shelvesDir = join(session.root, "shelves");
  const rel = relative(shelvesDir, abs).split(sep).join("/");
  if (rel.startsWith("..") || rel === "" || !rel.endsWith(POINTER_SUFFIX)) {
    throw new UsageError(`--pitem ${opts.pitem}: not a ${POINTER_SUFFIX} file under ${shelvesDir}`);
  }
  let text: string;
  try {
    text = await readFile(abs, "utf8");
  } catch (err) {
    throw new UsageError(`--pitem ${opts.pitem}: cannot read it (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
  }
  let pointer: Pointer;
  try {
    pointer = parsePointer(text, rel);
  } catch (err) {
    result.failed.push({ path: rel.slice(0, -POINTER_SUFFIX.length), error: errorMessage(err) });
    return result;
  }
  const dest = opts.dest ? await canonicalDir(resolve(opts.cwd ?? process.cwd(), opts.dest)) : shelvesDir;
  const file = join(dest, pointer.path);
  const shelf = pointer.path.split("/")[0] ?? "";
  if (opts.dryRun) {
    result.retrieved.push({ path: pointer.path, file, reason: "requested", size: pointer.size, sha256: pointer.sha256 });
    return result;
  }
  const release = await acquireLock(`dest:${dest}`, `retrieve into ${dest}`, { onWait: (o) => info(session.report, `${dest} is busy: waiting for ${o}`) });
  try {
    if (!opts.dest) await mkdir(dest, { recursive: true });
    const have = await lstatOrNull(file);
    const checksum = opts.checksum ?? session.settings(shelf).checksum;
    if (have?.kind === "file" && have.size === pointer.size && have.mtime === pointer.mtime && (!checksum || (await sha256File(file)).sha256 === pointer.sha256)) {
      result.skipped.push({ path: pointer.path, file, reason: "up to date" });
      return result;
    }
    const downloads: DownloadItem[] = [{ dest, action: { kind: "download", path: pointer.path, pointer, pointerFile: `shelves/${rel}`, reason: "requested" } }];
    session.report({ type: "plan", files: 1, bytes: pointer.size });
    await downloadAll(session, downloads, opts, result, prepare);
    return result;
  } finally {
    await release();
  }
}

/** The original pantri's `<shelf>_updated_objects.json`: plain arrays of absolute paths. */
async function writeLegacyJson(session: Session, opts: RetrieveOptions, result: CommandResult): Promise<void> {
  const dir = session.config.base.jsonOutputDir;
  const names = opts.shelves?.length ? [...new Set(opts.shelves)] : ["all"];
  for (const name of names) {
    const mine = (items: ItemResult[]) =>
      items.filter((i) => name === "all" || i.path.startsWith(`${name}/`)).map((i) => i.file ?? "").filter(Boolean);
    const doc = { retrieved: [...mine(result.retrieved), ...mine(result.copied)], removed: mine(result.removed) };
    const file = join(dir, `${name}_updated_objects.json`);
    await writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`, 0o644);
    result.details.jsonOutput = [...((result.details.jsonOutput as string[] | undefined) ?? []), file];
  }
}
