/**
 * Everything pantri writes under dest goes through here: a pointer is untrusted input and dest
 * may hold links planted by anyone, so no path may leave dest and no symlink inside it is ever
 * followed. This guards against what dest holds, not against a concurrent attacker racing us
 * between check and write.
 */
import { lstat, mkdir } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { PantriError, errorMessage } from "./errors.js";
import { validateRelPath } from "./pointer.js";

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : undefined;
}

/** The failure of an item that met a symlink inside dest (also used for a download's temporary file). */
export function symlinkError(path: string): PantriError {
  return new PantriError(`${path} is a symbolic link inside dest; pantri never follows links there: remove it`);
}

/** Absolute path of `rel` (relative, `/`-separated) under `root`; throws when it is unsafe. */
export function resolveInside(root: string, rel: string): string {
  const reason = validateRelPath(rel);
  if (reason !== null) throw new PantriError(`refusing to use path ${JSON.stringify(rel)} under ${root}: it ${reason}`);
  const base = resolve(root);
  const abs = resolve(base, ...rel.split("/"));
  const back = relative(base, abs);
  // validateRelPath already rules this out; kept so the promise holds even if that check changes.
  if (back === "" || back === ".." || back.startsWith(`..${sep}`) || isAbsolute(back)) {
    throw new PantriError(`refusing to use path ${JSON.stringify(rel)}: it resolves outside ${root}`);
  }
  return abs;
}

/**
 * Folders one run has already made or checked (absolute paths): a retrieve of thousands of files
 * into a few folders checks each folder once, not once per file (a mkdir and an lstat per path
 * component per file was its biggest cost). Make one per run, never share one across runs: it
 * trusts what it saw earlier in this run, as the rest of this module does (see the top).
 */
export type CheckedDirs = Set<string>;

/**
 * Creates `root` (and its parents: dest itself may be anywhere, even reached through a link)
 * and then `relDir` below it one component at a time, refusing any component that exists as a
 * symlink or a non-directory. `relDir` "" means root itself. Returns the absolute directory.
 */
export async function ensureDirInside(root: string, relDir: string, checked?: CheckedDirs): Promise<string> {
  const base = resolve(root);
  if (!checked?.has(base)) {
    try {
      await mkdir(base, { recursive: true });
    } catch (err) {
      throw new PantriError(`cannot create ${base}: ${errorMessage(err)}`, { cause: err });
    }
    checked?.add(base);
  }
  if (relDir === "") return base;
  const target = resolveInside(base, relDir);
  let current = base;
  for (const segment of relDir.split("/")) {
    current = join(current, segment);
    if (checked?.has(current)) continue;
    try {
      // mkdir never follows a link in the last component: an existing link gives EEXIST.
      await mkdir(current);
    } catch (err) {
      if (errnoCode(err) !== "EEXIST") throw new PantriError(`cannot create ${current}: ${errorMessage(err)}`, { cause: err });
    }
    const stats = await lstat(current);
    if (stats.isSymbolicLink()) throw symlinkError(current);
    if (!stats.isDirectory()) throw new PantriError(`${current} is in the way: pantri needs a directory there; remove it`);
    checked?.add(current);
  }
  return target;
}

/**
 * Every existing component of `root/rel` below root, the last one included, must not be a
 * symlink. Components that do not exist yet are fine: pantri will create them as real ones.
 */
export async function assertNoSymlinkInside(root: string, rel: string, checked?: CheckedDirs): Promise<void> {
  const base = resolve(root);
  resolveInside(base, rel);
  let current = base;
  for (const segment of rel.split("/")) {
    current = join(current, segment);
    if (checked?.has(current)) continue; // a real folder, made or checked by ensureDirInside
    try {
      if ((await lstat(current)).isSymbolicLink()) throw symlinkError(current);
    } catch (err) {
      if (err instanceof PantriError) throw err;
      // Missing, or a parent is a plain file: nothing below can exist, so nothing to follow.
      const code = errnoCode(err);
      if (code === "ENOENT" || code === "ENOTDIR") return;
      throw new PantriError(`cannot inspect ${current}: ${errorMessage(err)}`, { cause: err });
    }
  }
}
