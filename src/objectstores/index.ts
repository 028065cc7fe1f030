import { readFile, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, extname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { ObjectStoreConfig } from "../core/types.js";
import { ConfigError, StoreError, errorMessage } from "../core/errors.js";
import { withBatch } from "./batch.js";
import type { GetOptions, ObjectStore, StoreContext, StoreFactory } from "./types.js";

/**
 * The store registry. Built-in stores load on first use, so `pantri --help` never loads an SDK;
 * any other `objectStore.type` is a module whose default export is a StoreFactory: a path
 * (relative to the repo root) or a package installed in the repo.
 */
const BUILTIN_STORES: Record<string, () => Promise<{ default: StoreFactory }>> = {
  local: () => import("./local.js"),
  swift: () => import("./swift.js"),
  s3: () => import("./s3.js"),
};

/** Builds the configured store, checked to honour the ObjectStore contract. */
export async function createStore(config: ObjectStoreConfig, context: StoreContext): Promise<ObjectStore> {
  const { type, ...options } = config;
  if (typeof type !== "string" || type === "") {
    throw new ConfigError(`objectStore.type must be ${storeChoices()}`);
  }
  const builtin = Object.hasOwn(BUILTIN_STORES, type) ? BUILTIN_STORES[type] : undefined;
  const factory = builtin ? (await builtin()).default : await loadCustomFactory(type, context.repoRoot);
  const made: unknown = await factory(options, context);
  return builtin ? (made as ObjectStore) : checkCustomStore(made, type);
}

function storeChoices(): string {
  return `${Object.keys(BUILTIN_STORES).join(", ")}, a path to a module, or a package name`;
}

async function loadCustomFactory(type: string, repoRoot: string): Promise<StoreFactory> {
  const isPath = type.startsWith(".") || isAbsolute(type);
  const file = isPath ? resolve(repoRoot, type) : await resolvePackage(type, repoRoot);
  if (file === null || !(await isFile(file))) {
    throw new ConfigError(
      isPath
        ? `objectStore.type "${type}": no store module at ${file}`
        : `unknown store type "${type}" in objectStore.type: use ${storeChoices()}`,
    );
  }
  let mod: unknown;
  try {
    if (/\.[mc]?ts$/.test(extname(file))) {
      // jiti only when a TypeScript adapter asks for it: it is big, and most runs never need it.
      const { createJiti } = await import("jiti");
      mod = await createJiti(import.meta.url).import(file);
    } else {
      mod = await import(pathToFileURL(file).href);
    }
  } catch (err) {
    throw new ConfigError(`objectStore.type "${type}": cannot load ${file}: ${errorMessage(err)}`, [], { cause: err });
  }
  const factory = defaultExport(mod);
  if (typeof factory !== "function") {
    throw new ConfigError(
      `objectStore.type "${type}": ${file} must have a default export that is a store factory function (options, context) => ObjectStore`,
    );
  }
  return factory as StoreFactory;
}

/** The default export, also through CommonJS's `exports.default` when a bundler wrote one. */
function defaultExport(mod: unknown): unknown {
  if (typeof mod === "function") return mod;
  let d = (mod as { default?: unknown } | null)?.default;
  if (d && typeof d === "object" && typeof (d as { default?: unknown }).default === "function") d = (d as { default: unknown }).default;
  return d;
}

const OPTIONAL_METHODS = ["putIfAbsent", "stageUpload", "list", "delete", "authenticate", "testAuth", "close", "storeObjects", "retrieveObjects"] as const;

/**
 * A third-party store gets the batch generators it lacks, and its "not found" (an error with
 * `notFound: true` or `status: 404`) becomes a StoreError, so it does not need pantri installed.
 */
function checkCustomStore(made: unknown, type: string): ObjectStore {
  const store = (made ?? {}) as Partial<ObjectStore>;
  const missing = (["head", "put", "get"] as const).filter((m) => typeof store[m] !== "function");
  if (missing.length) {
    throw new ConfigError(`objectStore.type "${type}": the factory returned no object store (missing ${missing.join(", ")})`);
  }
  const s = store as ObjectStore;
  const description = typeof s.description === "string" ? s.description : `store "${type}"`;
  // A new object of bound methods: the adapter's own object (maybe frozen, maybe a class with
  // private fields) is never modified.
  const optional = Object.fromEntries(
    OPTIONAL_METHODS.filter((m) => typeof s[m] === "function").map((m) => [m, (s[m] as (...args: never[]) => unknown).bind(s)]),
  ) as Partial<ObjectStore>;
  // Optional numeric capabilities (see ObjectStore.md5PartSize and stageMinBytes), when sound.
  const sizes = Object.fromEntries(
    (["md5PartSize", "stageMinBytes"] as const).filter((k) => Number.isSafeInteger(s[k]) && (s[k] ?? 0) > 0).map((k) => [k, s[k]]),
  ) as Pick<ObjectStore, "md5PartSize" | "stageMinBytes">;
  return withBatch({
    ...optional,
    ...sizes,
    description,
    head: s.head.bind(s),
    put: s.put.bind(s),
    get: async (key: string, opts?: GetOptions) => {
      try {
        return await s.get(key, opts);
      } catch (err) {
        const e = err as { notFound?: unknown; status?: unknown } | null;
        if (!(err instanceof StoreError) && (e?.notFound === true || e?.status === 404)) {
          throw new StoreError(`not found: ${errorMessage(err)}`, { store: description, key, notFound: true, cause: err });
        }
        throw err;
      }
    },
  });
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * Resolves a package specifier from the repo root, not from pantri's own install. require's
 * resolver covers most packages; ESM-only ones (no `require` or `default` export condition)
 * are found by walking up `node_modules` and reading `exports` with import conditions.
 */
async function resolvePackage(specifier: string, repoRoot: string): Promise<string | null> {
  try {
    return createRequire(join(repoRoot, "package.json")).resolve(specifier);
  } catch {
    // ESM-only or absent: look for it by hand below.
  }
  const m = /^((?:@[^/]+\/)?[^/@][^/]*)(\/.*)?$/.exec(specifier);
  if (!m?.[1]) return null;
  const name = m[1];
  const subpath = `.${m[2] ?? ""}`;
  for (let dir = repoRoot; ; dir = dirname(dir)) {
    const pkgDir = join(dir, "node_modules", name);
    const manifest = await readManifest(join(pkgDir, "package.json"));
    if (manifest) {
      const target = resolveExports(manifest, subpath);
      return target === null ? null : join(pkgDir, target);
    }
    if (dirname(dir) === dir) return null;
  }
}

async function readManifest(path: string): Promise<Record<string, unknown> | null> {
  try {
    const parsed: unknown = JSON.parse(await readFile(path, "utf8"));
    return parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const IMPORT_CONDITIONS = new Set(["node", "import", "default"]);

/** The file a package maps `subpath` to (`exports`, else `module`/`main` for "."), or null. */
function resolveExports(manifest: Record<string, unknown>, subpath: string): string | null {
  const { exports } = manifest;
  if (exports === undefined || exports === null) {
    if (subpath !== ".") return subpath;
    const main = [manifest.module, manifest.main].find((v) => typeof v === "string");
    return typeof main === "string" ? main : "index.js";
  }
  const isSubpathMap = typeof exports === "object" && !Array.isArray(exports) && Object.keys(exports).some((k) => k.startsWith("."));
  if (!isSubpathMap) return subpath === "." ? pickTarget(exports) : null;
  const map = exports as Record<string, unknown>;
  if (Object.hasOwn(map, subpath)) return pickTarget(map[subpath]);
  for (const [pattern, target] of Object.entries(map)) {
    const star = pattern.indexOf("*");
    if (star < 0) continue;
    const head = pattern.slice(0, star);
    const tail = pattern.slice(star + 1);
    if (subpath.startsWith(head) && subpath.endsWith(tail) && subpath.length >= head.length + tail.length) {
      const picked = pickTarget(target);
      return picked === null ? null : picked.replaceAll("*", subpath.slice(head.length, subpath.length - tail.length));
    }
  }
  return null;
}

function pickTarget(target: unknown): string | null {
  if (typeof target === "string") return target;
  if (Array.isArray(target)) {
    for (const t of target) {
      const picked = pickTarget(t);
      if (picked !== null) return picked;
    }
    return null;
  }
  if (target && typeof target === "object") {
    for (const [condition, value] of Object.entries(target)) {
      if (!IMPORT_CONDITIONS.has(condition)) continue;
      const picked = pickTarget(value);
      if (picked !== null) return picked;
    }
  }
  return null;
}
