import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { lstatOrNull } from "./dest.js";
import { errorMessage } from "./errors.js";
import { sha256File } from "./hash.js";
import { objectKey } from "./pointer.js";
import { emptyResult, finish, type CommandResult, type ItemResult } from "./result.js";
import { downloadAll, prepare, type DownloadItem } from "./retrieve.js";
import { canonicalDir, type Session } from "./session.js";
import { acquireLock } from "./state.js";
import { pointersOf, selectShelves } from "./status.js";
import { mapConcurrent } from "../objectstores/batch.js";
import type { Pointer } from "./types.js";

export interface VerifyOptions {
  shelves?: string[];
  dest?: string;
  /** Also fetch every object and check its sha256 in the store. */
  remote?: boolean;
  /** Re-download what is missing or wrong in dest. */
  repair?: boolean;
  cwd?: string;
  concurrency?: number;
}

/** Hashes an object as it streams from the store, writing nothing. */
async function objectSha256(session: Session, shelf: string, p: Pointer): Promise<{ size: number; sha256: string }> {
  const { store, prefix } = await session.storeFor(shelf);
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of await store.get(objectKey(p, prefix))) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest("hex") };
}

/**
 * Re-hashes every file in dest against its pointer (and with --remote every object in the
 * store); reports each mismatch; --repair re-downloads the bad dest copies, verified.
 */
export async function verify(session: Session, opts: VerifyOptions = {}): Promise<CommandResult> {
  const result = emptyResult("verify");
  const head = await session.git.head();
  const shelves = head ? await selectShelves(session, opts.shelves, head) : [];
  const repairs: DownloadItem[] = [];
  let checked = 0;
  for (const shelf of shelves) {
    const { pointers, failed } = await pointersOf(session, head as string, shelf);
    result.failed.push(...failed);
    const dest = await canonicalDir(opts.dest ? resolve(opts.cwd ?? process.cwd(), opts.dest) : session.settings(shelf).destSync);
    const concurrency = opts.concurrency ?? session.settings(shelf).concurrency;
    const work = async (p: Pointer): Promise<{ p: Pointer; problems: string[]; bad: boolean }> => {
      const problems: string[] = [];
      const file = join(dest, p.path);
      const have = await lstatOrNull(file);
      let bad = false;
      if (!have) {
        problems.push(`missing in dest (${file})`);
        bad = true;
      } else if (have.kind !== "file") {
        problems.push(`${file} is not a regular file`);
      } else {
        const h = await sha256File(file);
        if (h.size !== p.size || h.sha256 !== p.sha256) {
          problems.push(`${file} does not match its pointer (sha256 ${h.sha256}, expected ${p.sha256})`);
          bad = true;
        }
      }
      if (opts.remote) {
        const { prefix, store } = await session.storeFor(shelf);
        const key = objectKey(p, prefix);
        try {
          const o = await objectSha256(session, shelf, p);
          if (o.size !== p.size || o.sha256 !== p.sha256) problems.push(`object ${key} in ${store.description} is corrupt (sha256 ${o.sha256}, expected ${p.sha256} by its pointer shelves/${p.path}.pitem)`);
        } catch (err) {
          problems.push(errorMessage(err));
        }
      }
      return { p, problems, bad };
    };
    for await (const r of mapConcurrent(pointers, concurrency, work)) {
      checked++;
      const file = join(dest, r.p.path);
      if (r.problems.length === 0) continue;
      if (opts.repair && r.bad && r.problems.length === 1) {
        repairs.push({ dest, action: { kind: "download", path: r.p.path, pointer: r.p, pointerFile: `shelves/${r.p.path}.pitem`, reason: "repair" } });
      } else {
        result.failed.push({ path: r.p.path, file, error: r.problems.join("; ") });
      }
    }
  }
  if (repairs.length) {
    const dests = [...new Set(repairs.map((r) => r.dest))].sort();
    const releases = [];
    for (const d of dests) releases.push(await acquireLock(`dest:${d}`, `verify --repair of ${d}`));
    try {
      await downloadAll(session, repairs, { concurrency: opts.concurrency }, result, prepare);
    } finally {
      for (const r of releases) await r();
    }
  }
  result.details = { checked, shelves };
  const items: ItemResult[] = result.retrieved;
  for (const i of items) i.reason = "repaired";
  return finish(result);
}
