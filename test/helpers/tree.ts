import { readdir } from "node:fs/promises";
import { join } from "node:path";

/** Every non-folder entry under dir (symlinks included, not followed), relative, `/`-separated, sorted. */
export async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(child);
      else out.push(child);
    }
  }
  await walk("");
  return out.sort();
}
