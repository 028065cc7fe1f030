import { createHash } from "node:crypto";
import type { Stats } from "node:fs";
import { lstat, opendir, readFile, rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { forEachLimit } from "./limit.js";
import type { DestFile } from "./plan.js";

/** Turns an lstat into the facts planning needs. */
export function destFileOf(st: Stats): DestFile {
  return {
    kind: st.isSymbolicLink() ? "symlink" : st.isFile() ? "file" : "other",
    size: st.size,
    mtime: Math.floor(st.mtimeMs / 1000),
  };
}

/** lstat, or null when the path does not exist (or a parent is not a folder). */
export async function lstatOrNull(path: string): Promise<DestFile | null> {
  try {
    return destFileOf(await lstat(path));
  } catch {
    return null;
  }
}

/**
 * Every non-folder entry under dest/<shelf>/, by path relative to dest (so `<shelf>/...`).
 * Never follows links: a symlink is reported as one, and a linked folder is not entered.
 */
export async function scanDest(dest: string, shelf: string): Promise<Map<string, DestFile>> {
  const out = new Map<string, DestFile>();
  async function walk(rel: string): Promise<void> {
    let dir;
    try {
      dir = await opendir(join(dest, rel));
    } catch {
      return;
    }
    const subdirs: string[] = [];
    const files: string[] = [];
    for await (const ent of dir) {
      const child = `${rel}/${ent.name}`;
      if (ent.isDirectory()) subdirs.push(child);
      else files.push(child);
    }
    await forEachLimit(files, async (child) => {
      const f = await lstatOrNull(join(dest, child));
      if (f) out.set(child, f);
    });
    for (const d of subdirs) await walk(d);
  }
  const top = await lstatOrNull(join(dest, shelf));
  if (top?.kind === "symlink") out.set(shelf, top);
  else await walk(shelf);
  return out;
}

/** Git's blob id of a file's content, to compare text files in dest with the repo's. */
export async function gitBlobOid(path: string): Promise<string> {
  const data = await readFile(path);
  return createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");
}

/** Removes folders left empty under dest/<shelf> by removals, deepest first; never the shelf root. */
export async function pruneEmptyDirs(dest: string, shelf: string, removedPaths: readonly string[]): Promise<void> {
  const dirs = new Set<string>();
  for (const p of removedPaths) {
    for (let d = dirname(p); d !== shelf && d.startsWith(`${shelf}/`); d = dirname(d)) dirs.add(d);
  }
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    await rmdir(join(dest, d)).catch(() => undefined); // not empty: keep it
  }
}
