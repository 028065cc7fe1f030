/** Plain data shared across core. */

/** A parsed, validated pointer (`.pitem`). */
export interface Pointer {
  /** `v1` = `{"pantri": 1, ...}`; `legacy` = Facebook pantri's `{"<path>": {...}}`. */
  format: "v1" | "legacy";
  /** Relative to `shelves/`, `/` separators, validated (no `..`, not absolute, matches location). */
  path: string;
  size: number;
  sha256: string;
  sha1: string;
  /** Whole seconds. */
  mtime: number;
}

/** A store config: its `type` plus that store's own options. */
export interface ObjectStoreConfig {
  type: string;
  [option: string]: unknown;
}

/** Every setting that can vary per shelf, fully resolved (defaults applied, paths absolute). */
export interface ShelfSettings {
  objectStore: ObjectStoreConfig;
  /** Absolute. */
  destSync: string;
  ignorePatterns: string[];
  binaryOverrides: string[];
  keepFiles: string[];
  checksum: boolean;
  concurrency: number;
  /** Absolute. */
  jsonOutputDir: string;
  /** Absolute path of the Swift password file (`retrieve -p`). */
  passwordFile: string;
}

/** The loaded configuration of one repo. */
export interface PantriConfig {
  repoRoot: string;
  /** The config file that was read, or null when defaults alone apply. */
  configFile: string | null;
  /** Settings for a shelf: defaults < file < shelf section < environment < flags. */
  forShelf(shelf: string): ShelfSettings;
  /** Settings outside any shelf (same order without the shelf section). */
  base: ShelfSettings;
  /** Names with a `shelves:` section in the config file. */
  configuredShelves: string[];
}
