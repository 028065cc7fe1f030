/**
 * Pure planning: given plain facts gathered by the executors (git trees and diffs, parsed
 * pointers, what dest and the working copy hold), decide what to do with each file and why.
 * No disk, no network, no git here, so every rule is unit-tested on plain data.
 */
import { POINTER_SUFFIX } from "./pointer.js";
import type { TreeChange } from "./git.js";
import type { Pointer } from "./types.js";

// ---------------------------------------------------------------- shared

/** What a file in a shelf's git tree is to pantri. */
export type EntryKind = "pointer" | "text" | "repo-only" | "unsupported";

/** File modes git uses: 100644/100755 regular files, 120000 symlinks, 160000 submodules. */
export function classifyEntry(repoPath: string, mode: string, shelf: string): EntryKind {
  if (mode !== "100644" && mode !== "100755") return "unsupported";
  // The shelf's own .gitignore holds pantri's ignore entries: a repo file, never copied to dest.
  if (repoPath === `shelves/${shelf}/.gitignore`) return "repo-only";
  return repoPath.endsWith(POINTER_SUFFIX) ? "pointer" : "text";
}

/** `shelves/pkgs/a/b.deb.pitem` -> `pkgs/a/b.deb` (relative to shelves/, binary's path). */
export function destRelOf(repoPath: string, kind: EntryKind): string {
  const rel = repoPath.slice("shelves/".length);
  return kind === "pointer" ? rel.slice(0, -POINTER_SUFFIX.length) : rel;
}

export function shelfOf(repoPath: string): string | null {
  const m = /^shelves\/([^/]+)\//.exec(repoPath);
  return m ? (m[1] ?? null) : null;
}

// ---------------------------------------------------------------- retrieve

/** What dest holds at one path (relative to shelves/, i.e. `<shelf>/<rest>` under dest). */
export interface DestFile {
  kind: "file" | "symlink" | "other";
  size: number;
  /** Whole seconds. */
  mtime: number;
  /** Only when asked for (--checksum on binaries). */
  sha256?: string;
  /** Git blob id of the content, computed for paths that are text files in the shelf. */
  blobOid?: string;
}

/** One file of a shelf at the target commit. */
export interface TreeFile {
  repoPath: string;
  mode: string;
  oid: string;
}

export type RetrieveAction =
  | { kind: "download"; path: string; pointer: Pointer; pointerFile: string; reason: string }
  | { kind: "copy"; path: string; oid: string; mode: string; reason: string }
  | { kind: "remove"; path: string; reason: string }
  | { kind: "skip"; path: string; reason: string }
  | { kind: "fail"; path: string; error: string };

/** A pointer as read from git: parsed, or why it was rejected. */
export type PointerRead = Pointer | { error: string };

export interface RetrieveFacts {
  shelf: string;
  /** Parsed pointers by repo path (`shelves/...pitem`). */
  pointers: ReadonlyMap<string, PointerRead>;
  /** What dest holds, by path relative to shelves/; only paths the executor looked at. */
  dest: ReadonlyMap<string, DestFile>;
  checksum: boolean;
}

function isPointerError(p: PointerRead | undefined): p is { error: string } {
  return p !== undefined && "error" in p;
}

/** Decides one target file: download/copy unless dest already has exactly it. */
function planEntry(file: TreeFile, facts: RetrieveFacts): RetrieveAction | null {
  const kind = classifyEntry(file.repoPath, file.mode, facts.shelf);
  if (kind === "repo-only") return null;
  if (kind === "unsupported") {
    const what = file.mode === "120000" ? "a symbolic link" : file.mode === "160000" ? "a submodule" : `mode ${file.mode}`;
    return { kind: "skip", path: file.repoPath.slice("shelves/".length), reason: `${what} in git; pantri copies only files` };
  }
  const path = destRelOf(file.repoPath, kind);
  const have = facts.dest.get(path);
  if (have?.kind === "symlink") {
    return { kind: "fail", path, error: `${path} is a symbolic link inside dest; pantri never follows links there: remove it` };
  }
  if (have?.kind === "other") return { kind: "fail", path, error: `${path} in dest is not a regular file: remove it` };
  if (kind === "text") {
    if (have && have.blobOid === file.oid) return { kind: "skip", path, reason: "up to date" };
    return { kind: "copy", path, oid: file.oid, mode: file.mode, reason: have ? "changed" : "missing in dest" };
  }
  const ptr = facts.pointers.get(file.repoPath);
  if (ptr === undefined) return { kind: "fail", path, error: `shelves/${path}${POINTER_SUFFIX}: pointer was not read` };
  if (isPointerError(ptr)) return { kind: "fail", path, error: ptr.error };
  if (have && have.size === ptr.size && have.mtime === ptr.mtime && (!facts.checksum || have.sha256 === ptr.sha256)) {
    return { kind: "skip", path, reason: "up to date" };
  }
  const reason = !have ? "missing in dest" : have.size !== ptr.size || have.mtime !== ptr.mtime ? "changed" : "checksum differs";
  return { kind: "download", path, pointer: ptr, pointerFile: file.repoPath, reason };
}

/**
 * Full comparison (first sync or --force): every target file against dest, and every file
 * under dest/<shelf>/ that the shelf no longer has is removed, except keepFiles matches.
 */
export function planFullRetrieve(
  facts: RetrieveFacts & {
    files: readonly TreeFile[];
    /** Every file under dest/<shelf>/ (paths relative to shelves/). */
    destListing: readonly string[];
    /** keepFiles, given paths relative to the shelf. */
    keep: (relToShelf: string) => boolean;
    /** In-progress download names worth keeping (for resume). */
    partials?: ReadonlySet<string>;
  },
): RetrieveAction[] {
  const actions: RetrieveAction[] = [];
  const wanted = new Set<string>();
  for (const file of facts.files) {
    const a = planEntry(file, facts);
    if (!a) continue;
    wanted.add(a.path);
    actions.push(a);
  }
  const prefix = `${facts.shelf}/`;
  for (const path of facts.destListing) {
    if (wanted.has(path) || !path.startsWith(prefix) || facts.partials?.has(path)) continue;
    if (facts.keep(path.slice(prefix.length))) continue;
    actions.push({ kind: "remove", path, reason: "no longer in the shelf" });
  }
  return actions;
}

/** One change between the synced commit and the target, as git reports it. */
export type TreeChangeFact = Pick<TreeChange, "status" | "path" | "oldPath" | "mode" | "oldMode" | "oid">;

/**
 * Incremental: only what changed between the synced commit and the target. Added and modified
 * files are fetched (unless dest already has them, e.g. after an interrupted run); deleted ones
 * removed, unless the same dest path is written again by this plan (pointer -> text file).
 */
export function planIncrementalRetrieve(facts: RetrieveFacts & { changes: readonly TreeChangeFact[] }): RetrieveAction[] {
  const actions: RetrieveAction[] = [];
  const written = new Set<string>();
  const removals: { repoPath: string; mode: string }[] = [];
  for (const c of facts.changes) {
    if (c.status === "D") {
      removals.push({ repoPath: c.path, mode: c.oldMode });
      continue;
    }
    if (c.status === "R" && c.oldPath) removals.push({ repoPath: c.oldPath, mode: c.oldMode });
    const a = planEntry({ repoPath: c.path, mode: c.mode, oid: c.oid }, facts);
    if (!a) continue;
    written.add(a.path);
    actions.push(a);
  }
  for (const r of removals) {
    const kind = classifyEntry(r.repoPath, r.mode, facts.shelf);
    if (kind === "repo-only" || kind === "unsupported") continue;
    const path = destRelOf(r.repoPath, kind);
    if (written.has(path)) continue;
    const have = facts.dest.get(path);
    if (!have) continue; // already gone
    if (have.kind === "symlink") {
      actions.push({ kind: "fail", path, error: `${path} is a symbolic link inside dest; pantri never follows links there: remove it` });
      continue;
    }
    actions.push({ kind: "remove", path, reason: "removed from the shelf" });
  }
  return actions;
}

/** Paths (relative to shelves/) whose dest state a plan needs: for incremental plans. */
export function pathsToInspect(changes: readonly TreeChangeFact[], shelf: string): string[] {
  const out = new Set<string>();
  for (const c of changes) {
    const kind = classifyEntry(c.path, c.mode, shelf);
    if (c.status !== "D" && kind !== "repo-only" && kind !== "unsupported") out.add(destRelOf(c.path, kind));
    const old = c.status === "R" ? c.oldPath : c.status === "D" ? c.path : undefined;
    if (old) {
      const k = classifyEntry(old, c.oldMode, shelf);
      if (k !== "repo-only" && k !== "unsupported") out.add(destRelOf(old, k));
    }
  }
  return [...out];
}

// ---------------------------------------------------------------- store

/** What the executor found out about one file under shelves/ in the working copy. */
export interface StoreCandidate {
  /** Relative to shelves/. */
  path: string;
  kind: "file" | "symlink" | "other";
  size: number;
  /** Whole seconds. */
  mtime: number;
  /** The existing pointer next to it, parsed, or why it could not be read; null when none. */
  pointer: PointerRead | null;
  ignored: boolean;
  /** binaryOverrides matched. */
  override: boolean;
  /** NUL byte in the first 8 KiB; undefined when not sniffed (not needed). */
  binary?: boolean;
}

export type StoreAction =
  | { kind: "store"; path: string; reason: string; previous: Pointer | null }
  | { kind: "skip"; path: string; reason: string }
  | { kind: "fail"; path: string; error: string };

/** Whether the executor must sniff a candidate's first bytes to decide it. */
export function needsSniff(c: Omit<StoreCandidate, "binary">): boolean {
  return c.kind === "file" && !c.ignored && !c.override && c.pointer === null;
}

/**
 * Decides one file. An existing pointer makes a file binary for good (a file that once went to
 * the store does not silently fall back to git). An unchanged file (size and mtime equal to its
 * pointer's) is not re-hashed unless --checksum asks; then the executor compares hashes.
 */
export function planStoreFile(c: StoreCandidate, checksum: boolean): StoreAction {
  if (c.ignored) return { kind: "skip", path: c.path, reason: "matches ignorePatterns" };
  if (c.kind === "symlink") return { kind: "skip", path: c.path, reason: "symbolic link; pantri stores only regular files" };
  if (c.kind === "other") return { kind: "skip", path: c.path, reason: "not a regular file" };
  if (c.pointer && "error" in c.pointer) return { kind: "fail", path: c.path, error: c.pointer.error };
  if (c.pointer) {
    if (c.pointer.size === c.size && c.pointer.mtime === c.mtime && !checksum) return { kind: "skip", path: c.path, reason: "unchanged" };
    return { kind: "store", path: c.path, reason: c.pointer.size !== c.size || c.pointer.mtime !== c.mtime ? "changed" : "checksum", previous: c.pointer };
  }
  if (!c.override && c.binary === false) return { kind: "skip", path: c.path, reason: "text file, left for git" };
  return { kind: "store", path: c.path, reason: "new", previous: null };
}

/**
 * Which of the files to store go up while they are hashed (ObjectStore.stageUpload): sizes in
 * range (the store's stageMinBytes up to its md5PartSize), and only content that is almost surely
 * new, because an object already stored would be sent for nothing. So a file is staged only when
 * no pointer in the repo has its size (the one hint pantri has that the content may be stored
 * already) and no other file of this run has it (a copy would go up twice).
 */
export function planStaged<F extends { size: number }>(files: readonly F[], pointerSizes: ReadonlySet<number>, range: { min: number; max: number }): F[] {
  const count = new Map<number, number>();
  for (const f of files) count.set(f.size, (count.get(f.size) ?? 0) + 1);
  return files.filter((f) => f.size >= range.min && f.size <= range.max && !pointerSizes.has(f.size) && count.get(f.size) === 1);
}
