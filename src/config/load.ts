import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { extname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ConfigError, errorMessage } from "../core/errors.js";
import type { ObjectStoreConfig, PantriConfig, ShelfSettings } from "../core/types.js";
import { DEFAULT_STORE_PATH, defaultSettings } from "./defaults.js";
import type { PantriUserConfig, ShelfUserConfig } from "./define.js";
import { describeValue, httpUrlProblem, validateConfig, validateShelfSettings } from "./schema.js";

/**
 * Loading and merging, in one documented order (lowest first):
 *
 *   built-in defaults < config file < the shelf's `shelves.<name>` section < environment
 *   < command-line flags (`overrides`)
 *
 * Arrays are replaced, never concatenated. `objectStore`: a layer naming the same store type
 * merges over the one below key by key; a different type replaces it.
 *
 * Relative paths: from the config file and the environment, `destSync`, `passwordFile` and a
 * local store's `path` are relative to the repo root and `jsonOutputDir` to the current
 * directory; from the command line, all of them are relative to the current directory, as any
 * shell user expects of a flag. `~/` is the home directory everywhere.
 */

/** Looked for at the repo root, in this order; the first that exists is used. */
export const CONFIG_FILE_NAMES = [
  "pantri.config.ts",
  "pantri.config.mts",
  "pantri.config.mjs",
  "pantri.config.js",
  "pantri.config.json",
] as const;

/** Settings given on the command line; `undefined` values mean "flag not given". */
export type ConfigOverrides = Partial<
  Pick<ShelfSettings, "destSync" | "concurrency" | "checksum" | "jsonOutputDir" | "passwordFile">
> & { objectStore?: Partial<ObjectStoreConfig> };

export interface LoadConfigOptions {
  repoRoot: string;
  /** An explicit config file (`--config`), relative to `cwd`. */
  configFile?: string;
  /** Defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Defaults to `process.cwd()`. */
  cwd?: string;
  overrides?: ConfigOverrides;
}

/** A store in a layer: a missing `type` (command line only) means "the store below". */
interface StoreLayer {
  type?: string;
  [option: string]: unknown;
}

/** One layer of shelf-level settings, as given (paths not yet resolved). */
type Layer = Omit<ShelfUserConfig, "objectStore"> & { objectStore?: StoreLayer };

/** What relative paths in a layer are relative to. */
interface PathBase {
  /** For destSync, passwordFile and a local store's path. */
  paths: string;
  jsonOutputDir: string;
  /** The default local store lives under it, whichever layer chose the local store. */
  repoRoot: string;
}

/** The environment's layer; store options apply only to a store of their type. */
interface EnvLayer {
  settings: Layer;
  stores: Map<string, Record<string, unknown>>;
}

export async function loadConfig(opts: LoadConfigOptions): Promise<PantriConfig> {
  const cwd = resolve(opts.cwd ?? process.cwd());
  const env = opts.env ?? process.env;
  const repoRoot = resolve(cwd, opts.repoRoot);

  const configFile = await findConfigFile(repoRoot, opts.configFile, cwd);
  let user: PantriUserConfig = {};
  if (configFile !== null) {
    const { config, problems } = validateConfig(await readConfigFile(configFile), configFile);
    if (problems.length > 0) throw new ConfigError(`${configFile}: invalid configuration`, problems);
    user = config;
  }

  // Environment and flags are checked together, so one run shows every problem.
  const problems: string[] = [];
  const envLayer = readEnvironment(env, problems);
  const flags = readOverrides(opts.overrides ?? {}, problems);
  if (problems.length > 0) throw new ConfigError("invalid settings in the environment or on the command line", problems);

  const { shelves = {}, ...top } = user;
  const fromRepo: PathBase = { paths: repoRoot, jsonOutputDir: cwd, repoRoot };
  const fromCwd: PathBase = { paths: cwd, jsonOutputDir: cwd, repoRoot };

  const compute = (section: ShelfUserConfig | undefined): ShelfSettings => {
    let s = defaultSettings({ repoRoot, cwd });
    s = applyLayer(s, toLayer(top), fromRepo);
    if (section !== undefined) s = applyLayer(s, toLayer(section), fromRepo);
    s = applyLayer(s, envLayer.settings, fromRepo);
    const envStore = envLayer.stores.get(s.objectStore.type);
    if (envStore !== undefined) s = applyLayer(s, { objectStore: { ...envStore } }, fromRepo);
    s = applyLayer(s, flags, fromCwd);
    return s;
  };

  const base = compute(undefined);
  const cache = new Map<string, ShelfSettings>();
  return {
    repoRoot,
    configFile,
    base,
    configuredShelves: Object.keys(shelves),
    forShelf(shelf: string): ShelfSettings {
      let settings = cache.get(shelf);
      if (settings === undefined) {
        // hasOwn: a shelf called "constructor" must not find Object.prototype's.
        settings = Object.hasOwn(shelves, shelf) ? compute(shelves[shelf]) : base;
        cache.set(shelf, settings);
      }
      return settings;
    },
  };
}

// ---- finding and reading the file -----------------------------------------------------------

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function findConfigFile(repoRoot: string, configFile: string | undefined, cwd: string): Promise<string | null> {
  if (configFile !== undefined) {
    const file = resolve(cwd, expandHome(configFile));
    if (!(await isFile(file))) throw new ConfigError(`config file ${file} does not exist or is not a file`);
    return file;
  }
  for (const name of CONFIG_FILE_NAMES) {
    const file = join(repoRoot, name);
    if (await isFile(file)) return file;
  }
  return null;
}

/** The config object a file holds: its JSON document, or its module's default export. */
async function readConfigFile(file: string): Promise<unknown> {
  const ext = extname(file).toLowerCase();
  if (ext === ".json") return readJson(file);
  let mod: unknown;
  if (ext === ".ts" || ext === ".mts" || ext === ".cts") {
    mod = await importWithJiti(file);
  } else if (ext === ".js" || ext === ".mjs" || ext === ".cjs") {
    mod = await importNative(file);
  } else {
    throw new ConfigError(`${file}: unsupported config file type; name it like one of ${CONFIG_FILE_NAMES.join(", ")}`);
  }
  if (!isModule(mod) || !("default" in mod) || mod.default === undefined) {
    throw new ConfigError(`${file}: has no default export; write \`export default { ... }\``);
  }
  let config: unknown = mod.default;
  // Like vite: the default export may be a function returning the config (or a promise of it).
  if (typeof config === "function") {
    try {
      config = await (config as () => unknown)();
    } catch (err) {
      throw new ConfigError(`${file}: the exported config function failed: ${errorMessage(err)}`, [], { cause: err });
    }
  }
  return config;
}

function isModule(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(`${file}: cannot read the config file: ${errorMessage(err)}`, [], { cause: err });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const message = errorMessage(err);
    throw new ConfigError(`${file}${jsonErrorLocation(message, text)}: invalid JSON: ${message}`, [], { cause: err });
  }
}

/** `:line:column` of a JSON.parse error, from the position V8 reports (newer V8 gives both). */
function jsonErrorLocation(message: string, text: string): string {
  const lineColumn = /\(line (\d+) column (\d+)\)/.exec(message);
  if (lineColumn) return `:${lineColumn[1]}:${lineColumn[2]}`;
  const position = /at position (\d+)/.exec(message);
  if (position) {
    const before = text.slice(0, Number(position[1]));
    const line = before.split("\n").length;
    const column = before.length - before.lastIndexOf("\n");
    return `:${line}:${column}`;
  }
  if (/end of JSON input/.test(message)) return `:${text.split("\n").length}`;
  return "";
}

async function importNative(file: string): Promise<unknown> {
  // The mtime in the URL lets a long-lived process (tests, a watcher) see an edited file.
  const url = pathToFileURL(file);
  url.search = `?mtime=${(await stat(file)).mtimeMs}`;
  try {
    return (await import(url.href)) as unknown;
  } catch (err) {
    // `import { defineConfig } from "pantri"` in a repo without pantri installed: the spec
    // promises that works, and jiti's alias can provide it.
    if (isMissingPantri(err)) return importWithJiti(file);
    throw loadError(file, err);
  }
}

function isMissingPantri(err: unknown): boolean {
  return (
    err instanceof Error &&
    (err as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND" &&
    /['"]pantri['"]/.test(err.message)
  );
}

async function importWithJiti(file: string): Promise<unknown> {
  // Loaded only here: jiti costs ~200 ms, and configs that are not TypeScript never need it.
  const { createJiti } = await import("jiti");
  const entry = ownEntry();
  const jiti = createJiti(import.meta.url, {
    alias: entry === undefined ? {} : { pantri: entry },
    // Read the file afresh on every load (an edited config in a long-lived process).
    moduleCache: false,
    interopDefault: false,
  });
  try {
    return await jiti.import(file);
  } catch (err) {
    throw loadError(file, err);
  }
}

/**
 * This package's own entry, so a config's `import ... from "pantri"` works in a repo that does
 * not install pantri: the built `index.js` next to this module's folder (dist/), else, when
 * running from source, the built dist/ or `src/index.ts` itself.
 */
function ownEntry(): string | undefined {
  // ./index.js: from the bundled dist/cli.js; ../index.js: from dist/config/ or dist/chunks/.
  for (const candidate of ["./index.js", "../index.js", "../../dist/index.js", "../index.ts"]) {
    const path = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(path)) return path;
  }
  return undefined;
}

function loadError(file: string, err: unknown): ConfigError {
  if (err instanceof ConfigError) return err;
  return new ConfigError(`${file}: could not load the config: ${errorMessage(err)}`, [], { cause: err });
}

// ---- environment and flags ------------------------------------------------------------------

const TRUE_WORDS = new Set(["1", "true", "yes", "on"]);
const FALSE_WORDS = new Set(["0", "false", "no", "off"]);

/** Reads pantri's and python-swiftclient's variables. Empty counts as unset. */
function readEnvironment(env: NodeJS.ProcessEnv, problems: string[]): EnvLayer {
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === "" ? undefined : value;
  };
  const settings: Layer = {};
  const destSync = get("PANTRI_DEST_SYNC");
  if (destSync !== undefined) settings.destSync = destSync;
  const concurrency = get("PANTRI_CONCURRENCY");
  if (concurrency !== undefined) {
    const n = Number(concurrency);
    if (/^\d+$/.test(concurrency.trim()) && Number.isSafeInteger(n) && n > 0) settings.concurrency = n;
    else problems.push(`PANTRI_CONCURRENCY: must be a positive integer, got ${describeValue(concurrency)}`);
  }
  const checksum = get("PANTRI_CHECKSUM");
  if (checksum !== undefined) {
    const word = checksum.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) settings.checksum = true;
    else if (FALSE_WORDS.has(word)) settings.checksum = false;
    else problems.push(`PANTRI_CHECKSUM: must be 1/true or 0/false, got ${describeValue(checksum)}`);
  }
  const jsonOutputDir = get("PANTRI_JSON_OUTPUT_DIR");
  if (jsonOutputDir !== undefined) settings.jsonOutputDir = jsonOutputDir;
  const passwordFile = get("PANTRI_PASSWORD_FILE");
  if (passwordFile !== undefined) settings.passwordFile = passwordFile;

  const stores = new Map<string, Record<string, unknown>>();
  const storePath = get("PANTRI_STORE_PATH");
  if (storePath !== undefined) stores.set("local", { path: storePath });

  // As python-swiftclient's `swift` reads them: the ST_* (v1) spellings win over OS_* ones.
  const swift: Record<string, unknown> = {};
  const set = (option: string, ...names: string[]): void => {
    for (const name of names) {
      const value = get(name);
      if (value === undefined) continue;
      if (option === "authUrl" || option === "storageUrl") {
        const problem = httpUrlProblem(value);
        if (problem !== undefined) {
          problems.push(`${name}: ${problem}`);
          return;
        }
      }
      swift[option] = value;
      return;
    }
  };
  set("authUrl", "ST_AUTH", "OS_AUTH_URL");
  set("user", "ST_USER", "OS_USERNAME");
  set("key", "ST_KEY", "OS_PASSWORD");
  set("userId", "OS_USER_ID");
  set("project", "OS_PROJECT_NAME", "OS_TENANT_NAME");
  set("projectId", "OS_PROJECT_ID", "OS_TENANT_ID");
  set("userDomain", "OS_USER_DOMAIN_NAME");
  set("userDomainId", "OS_USER_DOMAIN_ID");
  set("projectDomain", "OS_PROJECT_DOMAIN_NAME");
  set("projectDomainId", "OS_PROJECT_DOMAIN_ID");
  set("region", "OS_REGION_NAME");
  set("interface", "OS_INTERFACE", "OS_ENDPOINT_TYPE");
  set("storageUrl", "OS_STORAGE_URL");
  set("token", "OS_AUTH_TOKEN");
  set("applicationCredentialId", "OS_APPLICATION_CREDENTIAL_ID");
  set("applicationCredentialSecret", "OS_APPLICATION_CREDENTIAL_SECRET");
  const versionName = ["ST_AUTH_VERSION", "OS_AUTH_VERSION", "OS_IDENTITY_API_VERSION"].find((n) => get(n) !== undefined);
  const version = versionName === undefined ? undefined : get(versionName);
  if (versionName !== undefined && version !== undefined) {
    if (/^1(\.0)?$/.test(version)) swift.authVersion = 1;
    else if (/^3(\.0)?$/.test(version)) swift.authVersion = 3;
    else problems.push(`${versionName}: must be 1 or 3 (pantri speaks Swift v1 auth and Keystone v3), got ${describeValue(version)}`);
  } else if (get("ST_AUTH") !== undefined) {
    swift.authVersion = 1;
  } else if (get("OS_AUTH_URL") !== undefined) {
    swift.authVersion = 3;
  }
  if (Object.keys(swift).length > 0) stores.set("swift", swift);
  return { settings, stores };
}

/** Checks the command-line layer and makes its paths absolute from the current directory. */
function readOverrides(overrides: ConfigOverrides, problems: string[]): Layer {
  const { objectStore, ...rest } = overrides;
  const given = Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined));
  const checked = validateShelfSettings(given);
  problems.push(...checked.problems.map((problem) => `command line: ${problem}`));
  const layer = toLayer(checked.config);
  if (objectStore !== undefined) {
    const store = Object.fromEntries(Object.entries(objectStore).filter(([, value]) => value !== undefined));
    const type = store.type;
    if (type !== undefined && (typeof type !== "string" || type.trim() === "")) {
      problems.push(`command line: objectStore.type: must be a non-empty string, got ${describeValue(type)}`);
    } else {
      layer.objectStore = { ...store, type };
    }
  }
  return layer;
}

// ---- merging --------------------------------------------------------------------------------

function toLayer(settings: ShelfUserConfig): Layer {
  const { objectStore, ...rest } = settings;
  return objectStore === undefined ? rest : { ...rest, objectStore: { ...objectStore } };
}

function expandHome(path: string): string {
  if (path === "~") return homedir();
  if (path.startsWith("~/")) return join(homedir(), path.slice(2));
  return path;
}

function resolvePath(base: string, path: string): string {
  return resolve(base, expandHome(path));
}

function applyLayer(s: ShelfSettings, layer: Layer, base: PathBase): ShelfSettings {
  return {
    objectStore: layer.objectStore === undefined ? s.objectStore : mergeStore(s.objectStore, layer.objectStore, base),
    destSync: layer.destSync === undefined ? s.destSync : resolvePath(base.paths, layer.destSync),
    ignorePatterns: layer.ignorePatterns === undefined ? s.ignorePatterns : [...layer.ignorePatterns],
    binaryOverrides: layer.binaryOverrides === undefined ? s.binaryOverrides : [...layer.binaryOverrides],
    keepFiles: layer.keepFiles === undefined ? s.keepFiles : [...layer.keepFiles],
    checksum: layer.checksum ?? s.checksum,
    concurrency: layer.concurrency ?? s.concurrency,
    jsonOutputDir:
      layer.jsonOutputDir === undefined ? s.jsonOutputDir : resolvePath(base.jsonOutputDir, layer.jsonOutputDir),
    passwordFile: layer.passwordFile === undefined ? s.passwordFile : resolvePath(base.paths, layer.passwordFile),
  };
}

function mergeStore(below: ObjectStoreConfig, layer: StoreLayer, base: PathBase): ObjectStoreConfig {
  const type = layer.type ?? below.type;
  const options = Object.fromEntries(Object.entries(layer).filter(([key, value]) => key !== "type" && value !== undefined));
  const merged: ObjectStoreConfig = type === below.type ? { ...below, ...options, type } : { ...options, type };
  if (type === "local") {
    // A custom store's options are its own business; only the local store's path is ours.
    const path = typeof options.path === "string" ? resolvePath(base.paths, options.path) : merged.path;
    merged.path = typeof path === "string" ? path : resolve(base.repoRoot, DEFAULT_STORE_PATH);
  }
  return merged;
}
