import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { appendFile, lstat, readFile, stat } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { Transform } from "node:stream";
import fg from "fast-glob";
import { PantriError, UsageError, errorMessage } from "./errors.js";
import { info } from "./events.js";
import { hashFile, isBinaryFile } from "./hash.js";
import { compilePatterns } from "./patterns.js";
import { needsSniff, planStoreFile, type StoreAction, type StoreCandidate } from "./plan.js";
import { POINTER_SUFFIX, contentKey, parsePointer, serializePointer } from "./pointer.js";
import { emptyResult, finish, type CommandResult } from "./result.js";
import type { Session } from "./session.js";
import { acquireLock, writeFileAtomic } from "./state.js";
import { PARTIAL_SUFFIX } from "./transfer.js";
import type { PutSource, StoreRequest } from "../objectstores/types.js";

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
    const st = await stat(abs).catch(() => null);
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

async function readLines(file: string): Promise<Set<string>> {
  try {
    return new Set((await readFile(file, "utf8")).split("\n"));
  } catch {
    return new Set();
  }
}

/**
 * The file's bytes as uploaded, re-hashed on the way: if the file changed after it was hashed,
 * the upload fails instead of storing bytes that do not match the pointer's key.
 */
function fileSource(file: string, size: number, sha256: string, sha1: string): PutSource {
  return {
    size,
    sha256,
    sha1,
    path: file,
    open(start = 0, end?: number) {
      const stream = createReadStream(file, { start, end, highWaterMark: 1 << 20 });
      if (start !== 0 || (end !== undefined && end !== size - 1)) return stream;
      const hash = createHash("sha256");
      let n = 0;
      const check = new Transform({
        transform(chunk: Buffer, _e, cb) {
          hash.update(chunk);
          n += chunk.length;
          cb(null, chunk);
        },
        flush(cb) {
          cb(n === size && hash.digest("hex") === sha256 ? null : new PantriError(`${file} changed while it was being stored; run store again`));
        },
      });
      stream.on("error", (e) => check.destroy(e));
      return stream.pipe(check);
    },
  };
}

interface Pending {
  action: Extract<StoreAction, { kind: "store" }>;
  file: string;
  mtime: number;
  size: number;
  sha256: string;
  sha1: string;
}


/**
 * Everything store planning needs to know about the files selected under shelves/: kind, size,
 * mtime, the pointer beside each, ignore/override matches, and a binary sniff where it decides.
 * Files git tracks stay git's (text files committed as they are).
 */
export async function gatherStoreCandidates(session: Session, patterns: string[]): Promise<{ c: StoreCandidate; shelf: string }[]> {
  const shelvesDir = join(session.root, "shelves");
  const entries = await fg(patterns, {
    cwd: shelvesDir,
    dot: true,
    onlyFiles: false,
    followSymbolicLinks: false,
    markDirectories: true,
    ignore: [`**/*${POINTER_SUFFIX}`, `**/*${PARTIAL_SUFFIX}`],
  });
  const tracked = new Set((await session.git.lsFiles(["shelves/"])).map((p) => p.slice("shelves/".length)));
  const candidates: { c: StoreCandidate; shelf: string }[] = [];
  const matchers = new Map<string, { ignore: (p: string) => boolean; override: (p: string) => boolean }>();
  await Promise.all(
    entries.map(async (rel) => {
      if (rel.endsWith("/")) return;
      const slash = rel.indexOf("/");
      if (slash < 0) return; // directly in shelves/: not in any shelf
      const shelf = rel.slice(0, slash);
      const inShelf = rel.slice(slash + 1);
      if (inShelf === ".gitignore" || tracked.has(rel)) return; // git's own files stay git's
      let m = matchers.get(shelf);
      if (!m) {
        const s = session.settings(shelf);
        m = { ignore: compilePatterns(s.ignorePatterns), override: compilePatterns(s.binaryOverrides) };
        matchers.set(shelf, m);
      }
      const abs = join(shelvesDir, rel);
      const st = await lstat(abs).catch(() => null);
      if (!st) return;
      let pointer: StoreCandidate["pointer"] = null;
      const ptrText = await readFile(`${abs}${POINTER_SUFFIX}`, "utf8").catch(() => null);
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
      if (needsSniff(c)) c.binary = await isBinaryFile(abs);
      candidates.push({ c, shelf });
    }),
  );
  candidates.sort((a, b) => (a.c.path < b.c.path ? -1 : 1));

  return candidates;
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
    const candidates = await gatherStoreCandidates(session, patterns);

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
    const ignoreSets = new Map<string, Set<string>>();
    const ensureIgnored = async (path: string): Promise<void> => {
      const slash = path.indexOf("/");
      const shelf = path.slice(0, slash);
      const file = join(shelvesDir, shelf, ".gitignore");
      let lines = ignoreSets.get(shelf);
      if (!lines) {
        lines = await readLines(file);
        ignoreSets.set(shelf, lines);
      }
      const entry = ignoreEntryFor(path.slice(slash + 1));
      if (lines.has(entry)) return;
      const text = await readFile(file, "utf8").catch(() => "");
      await appendFile(file, `${text && !text.endsWith("\n") ? "\n" : ""}${entry}\n`);
      lines.add(entry);
      touched.add(`shelves/${shelf}/.gitignore`);
    };

    if (opts.dryRun) {
      for (const a of todo) {
        const file = join(shelvesDir, a.path);
        const h = await hashFile(file, (n) => session.report({ type: "bytes", n }));
        const shelf = a.path.split("/")[0] ?? "";
        const prefix = (session.settings(shelf).objectStore.keyPrefix as string | undefined) ?? "";
        result.stored.push({ path: a.path, file, reason: a.reason, size: h.size, sha256: h.sha256, key: contentKey(h.sha256, prefix) });
      }
      return finish(result);
    }

    // Pointers that exist but lost their ignore entry get it back.
    for (const p of unchanged) await ensureIgnored(p);

    const byShelf = new Map<string, typeof todo>();
    for (const a of todo) {
      const shelf = a.path.split("/")[0] ?? "";
      byShelf.set(shelf, [...(byShelf.get(shelf) ?? []), a]);
    }
    for (const [shelf, actions] of byShelf) {
      const { store: objectStore, prefix } = await session.storeFor(shelf);
      const checksum = opts.checksum ?? session.settings(shelf).checksum;
      // Hashing happens as the store's workers pull requests, so it overlaps with uploads.
      async function* requests(): AsyncGenerator<StoreRequest<Pending>> {
        for (const action of actions) {
          const file = join(shelvesDir, action.path);
          try {
            const st = await stat(file);
            const mtime = Math.floor(st.mtimeMs / 1000);
            const h = await hashFile(file, (n) => session.report({ type: "bytes", n }));
            if (h.size !== st.size) throw new PantriError(`${file} changed while it was being hashed; run store again`);
            const prev = action.previous;
            if (checksum && prev && prev.sha256 === h.sha256 && prev.size === h.size && prev.mtime === mtime) {
              result.skipped.push({ path: action.path, reason: "unchanged (checksum)" });
              await ensureIgnored(action.path);
              continue;
            }
            const item: Pending = { action, file, mtime, size: h.size, sha256: h.sha256, sha1: h.sha1 };
            yield { key: contentKey(h.sha256, prefix), source: fileSource(file, h.size, h.sha256, h.sha1), item };
          } catch (err) {
            result.failed.push({ path: action.path, file, error: errorMessage(err) });
            session.report({ type: "file-done", path: action.path });
          }
        }
      }
      const concurrency = opts.concurrency ?? session.settings(shelf).concurrency;
      for await (const out of objectStore.storeObjects(requests(), { concurrency, signal: opts.signal, onBytes: (n) => session.report({ type: "bytes", n }) })) {
        const p = out.request.item;
        const base = { path: p.action.path, file: p.file, key: out.request.key, size: p.size, sha256: p.sha256 };
        if (out.error) {
          result.failed.push({ ...base, error: errorMessage(out.error) });
        } else {
          // The object is in the store: only now does its pointer exist, then its ignore entry.
          try {
            const pointerFile = `${p.file}${POINTER_SUFFIX}`;
            await writeFileAtomic(pointerFile, serializePointer({ path: p.action.path, size: p.size, sha256: p.sha256, sha1: p.sha1, mtime: p.mtime }), 0o644);
            touched.add(`shelves/${p.action.path}${POINTER_SUFFIX}`);
            await ensureIgnored(p.action.path);
            result.stored.push({ ...base, reason: p.action.reason, uploaded: out.uploaded });
          } catch (err) {
            result.failed.push({ ...base, error: `stored, but writing its pointer failed: ${errorMessage(err)}` });
          }
        }
        session.report({ type: "file-done", path: p.action.path });
      }
    }

    const paths = [...touched].sort();
    if (paths.length) {
      await session.git.add(paths);
      const shelves = [...new Set(result.stored.map((s) => s.path.split("/")[0]))].sort();
      const n = result.stored.length;
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
        result.details.staged = paths;
      }
    }
    return finish(result);
  } finally {
    await release();
  }
}
