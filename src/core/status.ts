import { join } from "node:path";
import { UsageError, errorMessage } from "./errors.js";
import { classifyEntry, destRelOf } from "./plan.js";
import { objectKey } from "./pointer.js";
import { emptyResult, finish, type CommandResult, type ItemResult } from "./result.js";
import { listShelves, planShelf, readPointersAt } from "./retrieve.js";
import { canonicalDir, type Session } from "./session.js";
import { SyncRecords } from "./state.js";
import { gatherStoreCandidates } from "./store.js";
import { planStoreFile } from "./plan.js";
import { mapConcurrent } from "../objectstores/batch.js";
import type { ObjectStore } from "../objectstores/types.js";
import type { Pointer } from "./types.js";
import { resolve } from "node:path";

export interface StatusOptions {
  shelves?: string[];
  dest?: string;
  remote?: boolean;
  checksum?: boolean;
  cwd?: string;
}

/** Which shelves a read-only command looks at: the named ones (checked) or all at HEAD. */
export async function selectShelves(session: Session, named: readonly string[] | undefined, commit: string): Promise<string[]> {
  const available = await listShelves(session, commit);
  if (!named?.length) return available;
  for (const s of named) if (!available.includes(s)) throw new UsageError(`no shelf named "${s}" under shelves/ (shelves: ${available.join(", ") || "none"})`);
  return [...new Set(named)];
}

/** Every pointer of a shelf at a commit, parsed; invalid ones come back as failures. */
export async function pointersOf(session: Session, commit: string, shelf: string): Promise<{ pointers: Pointer[]; failed: ItemResult[] }> {
  const files = (await session.git.lsTree(commit, [`shelves/${shelf}/`])).filter((e) => classifyEntry(e.path, e.mode, shelf) === "pointer");
  const read = await readPointersAt(session, files.map((f) => ({ repoPath: f.path, oid: f.oid })));
  const pointers: Pointer[] = [];
  const failed: ItemResult[] = [];
  for (const [repoPath, p] of read) {
    if ("error" in p) failed.push({ path: destRelOf(repoPath, "pointer"), error: p.error });
    else pointers.push(p);
  }
  return { pointers, failed };
}

/**
 * Which pointers' objects the store lacks. One listing per key prefix where the store can list
 * (a CI gate over thousands of pointers costs a few requests), else one HEAD per object.
 */
export async function missingInStore(store: ObjectStore, prefix: string, pointers: readonly Pointer[], concurrency: number): Promise<Pointer[]> {
  if (store.list) {
    const listed = new Map<string, number>();
    const prefixes = new Set<string>();
    for (const p of pointers) prefixes.add(p.format === "v1" ? `${prefix}sha256/` : `${prefix}${p.path.split("/")[0]}/`);
    for (const pre of prefixes) for await (const o of store.list(pre)) listed.set(o.key, o.size);
    return pointers.filter((p) => listed.get(objectKey(p, prefix)) !== p.size);
  }
  const missing: Pointer[] = [];
  for await (const r of mapConcurrent(pointers, concurrency, async (p) => ({ p, meta: await store.head(objectKey(p, prefix)) }))) {
    if (!r.meta || r.meta.size !== r.p.size) missing.push(r.p);
  }
  return missing;
}

/**
 * What `store` and `retrieve` would do now, changing nothing: binaries without pointers or
 * changed since them, dest copies missing or stale, and (--remote) objects missing from the store.
 */
export async function status(session: Session, opts: StatusOptions = {}): Promise<CommandResult> {
  const result = emptyResult("status", true);
  const head = await session.git.head();
  const shelves = head ? await selectShelves(session, opts.shelves, head) : [];
  const shelvesDir = join(session.root, "shelves");

  // The store side: plan as `store` would, for the named shelves (or all).
  const patterns = opts.shelves?.length ? opts.shelves.map((s) => `${s}/**`) : ["**"];
  for (const { c, shelf } of await gatherStoreCandidates(session, patterns)) {
    const a = planStoreFile(c, opts.checksum ?? session.settings(shelf).checksum);
    if (a.kind === "store") result.stored.push({ path: a.path, file: join(shelvesDir, a.path), reason: a.reason === "new" ? "no pointer yet" : "changed since its pointer" });
    else if (a.kind === "fail") result.failed.push({ path: a.path, error: a.error });
  }

  const records = new SyncRecords();
  const missingStore: ItemResult[] = [];
  for (const shelf of head ? shelves : []) {
    const dest = await canonicalDir(opts.dest ? resolve(opts.cwd ?? process.cwd(), opts.dest) : session.settings(shelf).destSync);
    const plan = await planShelf(session, shelf, dest, head as string, { force: true, checksum: opts.checksum }, records);
    for (const a of plan.actions) {
      const file = join(dest, a.path);
      if (a.kind === "download") result.retrieved.push({ path: a.path, file, reason: a.reason === "missing in dest" ? "missing in dest" : "stale in dest" });
      else if (a.kind === "copy") result.copied.push({ path: a.path, file, reason: a.reason });
      else if (a.kind === "remove") result.removed.push({ path: a.path, file, reason: a.reason });
      else if (a.kind === "fail") result.failed.push({ path: a.path, error: a.error });
    }
    if (opts.remote) {
      const { pointers } = await pointersOf(session, head as string, shelf);
      const { store, prefix } = await session.storeFor(shelf);
      try {
        for (const p of await missingInStore(store, prefix, pointers, session.settings(shelf).concurrency)) {
          const item = { path: p.path, key: objectKey(p, prefix), error: `object ${objectKey(p, prefix)} is missing from ${store.description}: store it again from a copy of the file (pantri store)` };
          missingStore.push(item);
          result.failed.push(item);
        }
      } catch (err) {
        throw new Error(`checking ${store.description}: ${errorMessage(err)}`, { cause: err });
      }
    }
  }
  result.details = {
    shelves,
    unstored: result.stored.filter((i) => i.reason === "no pointer yet").map((i) => i.path),
    modified: result.stored.filter((i) => i.reason === "changed since its pointer").map((i) => i.path),
    missingInDest: result.retrieved.filter((i) => i.reason === "missing in dest").map((i) => i.path),
    staleInDest: result.retrieved.filter((i) => i.reason === "stale in dest").map((i) => i.path),
    ...(opts.remote ? { missingInStore: missingStore.map((i) => i.path) } : {}),
  };
  return finish(result);
}
