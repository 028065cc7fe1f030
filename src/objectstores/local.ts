import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, type Dirent, type Stats } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ConfigError, StoreError, errorMessage } from "../core/errors.js";
import { withBatch } from "./batch.js";
import type { GetOptions, ObjectMeta, PutSource, RequestOptions, StoreFactory } from "./types.js";

/**
 * The `local` store: object K is the plain file `<path>/K` (SPEC 3), so cp, rsync or a web
 * server can read the store without pantri. Uploads are written beside their final name and
 * renamed into place only once their bytes hashed to what the caller announced.
 */

/** Suffix of in-progress uploads; `list` skips them and a key may not end with it. */
export const TEMP_SUFFIX = ".pantri-tmp";

const CHUNK = 1 << 20;

/** Why a key cannot name a file under the store root, or null when it can. */
function keyProblem(key: string): string | null {
  if (key.includes("\0")) return "contains a NUL byte";
  if (key.includes("\\")) return "contains a backslash";
  if (key.startsWith("/")) return "is absolute";
  if (key.split("/").some((s) => s === "" || s === "." || s === "..")) return "has an empty, `.` or `..` segment";
  if (key.endsWith(TEMP_SUFFIX)) return `ends with ${TEMP_SUFFIX}, which the local store keeps for unfinished uploads`;
  return null;
}

function isMissing(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

const createLocalStore: StoreFactory = (options, context) => {
  if (typeof options.path !== "string" || options.path === "") {
    throw new ConfigError("the local store needs objectStore.path: a directory, absolute or relative to the repo root");
  }
  const root = resolve(context.repoRoot, options.path);
  const description = `local store ${root}`;

  const fail = (key: string | undefined, message: string, cause?: unknown, extra: { notFound?: boolean; retryable?: boolean } = {}) =>
    new StoreError(cause === undefined ? message : `${message}: ${errorMessage(cause)}`, {
      store: description,
      key,
      cause,
      ...extra,
    });

  const fileOf = (key: string): string => {
    const problem = keyProblem(key);
    if (problem) throw fail(key, `refused: the key ${problem}`, undefined, { retryable: false });
    return join(root, key);
  };

  /** Keys come out in plain string order: a folder sorts as `name/`, as its keys start with that. */
  async function* walk(dir: string, keyPrefix: string, prefix: string): AsyncGenerator<ObjectMeta> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return;
      throw fail(undefined, `cannot list ${dir}`, err);
    }
    const sorted = entries
      .filter((e) => e.isFile() || e.isDirectory())
      .map((e) => ({ e, order: e.isDirectory() ? `${e.name}/` : e.name }))
      .sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
    for (const { e } of sorted) {
      const key = keyPrefix + e.name;
      if (e.isDirectory()) {
        if (`${key}/`.startsWith(prefix)) yield* walk(join(dir, e.name), `${key}/`, prefix);
      } else if (key.startsWith(prefix) && !e.name.endsWith(TEMP_SUFFIX)) {
        const s = await statOrNull(join(dir, e.name));
        if (s?.isFile()) yield { key, size: s.size };
      }
    }
  }

  return withBatch({
    description,

    async head(key: string): Promise<ObjectMeta | null> {
      const file = fileOf(key);
      try {
        const s = await statOrNull(file);
        return s?.isFile() ? { key, size: s.size } : null;
      } catch (err) {
        throw fail(key, "cannot read its metadata", err);
      }
    },

    async get(key: string, opts: GetOptions = {}): Promise<Readable> {
      const file = fileOf(key);
      const notFound = () => fail(key, "not found", undefined, { notFound: true });
      let fh: FileHandle;
      try {
        fh = await open(file, "r");
      } catch (err) {
        throw isMissing(err) ? notFound() : fail(key, "cannot open it", err);
      }
      if (!(await fh.stat()).isFile()) {
        await fh.close();
        throw notFound();
      }
      return fh.createReadStream({ start: opts.start, highWaterMark: CHUNK, signal: opts.signal });
    },

    async put(key: string, source: PutSource, opts: RequestOptions = {}): Promise<void> {
      const file = fileOf(key);
      const dir = dirname(file);
      // Random, so concurrent puts of one key never share a temp file; the last rename wins
      // and both carry the same verified bytes.
      const temp = join(dir, `.${basename(file)}.${randomBytes(6).toString("hex")}${TEMP_SUFFIX}`);
      const hash = createHash("sha256");
      let size = 0;
      const count = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          size += chunk.length;
          hash.update(chunk);
          opts.onBytes?.(chunk.length);
          cb(null, chunk);
        },
      });
      try {
        await mkdir(dir, { recursive: true });
        await pipeline(source.open(), count, createWriteStream(temp, { flags: "wx", highWaterMark: CHUNK }), { signal: opts.signal });
        const sha256 = hash.digest("hex");
        if (size !== source.size || sha256 !== source.sha256) {
          throw fail(
            key,
            `refused: the source gave ${size} bytes with sha256 ${sha256}, not the announced ${source.size} bytes with sha256 ${source.sha256} (did the file change while it was stored?); nothing was stored`,
            undefined,
            { retryable: false },
          );
        }
        const existing = await statOrNull(file);
        if (existing?.isFile() && existing.size === size) await rm(temp, { force: true });
        else await rename(temp, file);
      } catch (err) {
        // Cleanup must not mask the real cause (e.g. the store path is not a folder).
        await rm(temp, { force: true }).catch(() => undefined);
        if (err instanceof StoreError || opts.signal?.aborted) throw err;
        throw fail(key, "cannot write it", err);
      }
    },

    async *list(prefix: string): AsyncGenerator<ObjectMeta> {
      // Start in the deepest folder the prefix names in full; the rest filters by name.
      const folder = prefix.slice(0, prefix.lastIndexOf("/") + 1);
      if (prefix.includes("\0") || (folder && keyProblem(folder.slice(0, -1)))) {
        throw fail(undefined, `refused to list the unsafe prefix ${JSON.stringify(prefix)}`, undefined, { retryable: false });
      }
      yield* walk(join(root, folder), folder, prefix);
    },

    async delete(key: string): Promise<void> {
      const file = fileOf(key);
      try {
        await rm(file, { force: true });
      } catch (err) {
        throw fail(key, "cannot delete it", err);
      }
    },
  });
};

export default createLocalStore;
