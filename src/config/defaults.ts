import { homedir } from "node:os";
import { join, resolve } from "node:path";
import type { ShelfSettings } from "../core/types.js";

/** The default store directory, relative to the repo root: pantri works with no setup. */
export const DEFAULT_STORE_PATH = ".pantri/store";

/** The default dest, relative to the repo root (the original tool's name for it). */
export const DEFAULT_DEST_SYNC = "dest_sync";

/** macOS and editor droppings and Python bytecode: never worth storing. */
export const DEFAULT_IGNORE_PATTERNS: readonly string[] = ["._*", ".__*", ".TemporaryItems*", ".DS_Store", "*.pyc"];

/**
 * Parallel transfers. Small objects are bound by per-request latency (Swift's proxy is Python),
 * so parallelism pays: 2,000 x 4 KiB PUTs to the test Swift took 20.7 s at 8, 18.3 s at 16 and
 * 17.0 s at 32 (bench/). 16 takes most of that gain and stays polite to a shared store; big
 * objects gain nothing from more (the server's bandwidth is shared), and each transfer holds a
 * connection and a few MiB of buffers.
 */
export const DEFAULT_CONCURRENCY = 16;

/** The Swift password file read by `retrieve -p`, relative to the home directory. */
export const DEFAULT_PASSWORD_FILE = ".config/pantri/password.json";

export interface DefaultSettingsOptions {
  repoRoot: string;
  /** Where the legacy `-j` JSON files go by default. */
  cwd: string;
  /** Defaults to `os.homedir()`. */
  home?: string;
}

/** The built-in defaults, fully resolved. Fresh objects on every call, so callers may mutate. */
export function defaultSettings(opts: DefaultSettingsOptions): ShelfSettings {
  const repoRoot = resolve(opts.repoRoot);
  return {
    objectStore: { type: "local", path: resolve(repoRoot, DEFAULT_STORE_PATH) },
    destSync: resolve(repoRoot, DEFAULT_DEST_SYNC),
    ignorePatterns: [...DEFAULT_IGNORE_PATTERNS],
    binaryOverrides: [],
    keepFiles: [],
    checksum: false,
    concurrency: DEFAULT_CONCURRENCY,
    jsonOutputDir: resolve(opts.cwd),
    passwordFile: join(opts.home ?? homedir(), DEFAULT_PASSWORD_FILE),
  };
}
