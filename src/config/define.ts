/**
 * The user-facing shape of `pantri.config.*`. Every key is optional: defaults fill the rest
 * (see ./defaults.ts). Legacy snake_case spellings are accepted at load time (./schema.ts) but
 * the types only name the camelCase ones, to steer new configs towards a single spelling.
 */

/** The built-in `local` store: plain files under a directory. */
export interface LocalStoreUserConfig {
  type: "local";
  /** The store directory; relative to the repo root. Default `.pantri/store`. */
  path?: string;
}

/** The built-in OpenStack Swift store. */
export interface SwiftStoreUserConfig {
  type: "swift";
  authUrl?: string;
  /** `1` (tempauth/swauth, `ST_*`) or `3` (Keystone, `OS_*`). */
  authVersion?: 1 | 3 | "1" | "3";
  /** v1: `account:user`; Keystone: the user name (or give `userId`). */
  user?: string;
  /** v1 key, or the Keystone user's password. */
  key?: string;
  /** Keystone: the project by name (with `projectDomain`/`projectDomainId`) or by id. */
  project?: string;
  projectId?: string;
  /** Keystone: the user by id instead of `user` + domain. */
  userId?: string;
  /** Keystone domains by name or id; unset, the domain with id `default`. */
  userDomain?: string;
  userDomainId?: string;
  projectDomain?: string;
  projectDomainId?: string;
  /** Keystone: the catalog region of the object-store endpoint. */
  region?: string;
  /** Keystone: the catalog interface of the object-store endpoint (default `public`). */
  interface?: "public" | "internal" | "admin";
  /** With `token`: a pre-authenticated storage URL; no auth request is made. With a login, it replaces the catalog's. */
  storageUrl?: string;
  token?: string;
  /** Keystone application credential (instead of user/key/project). */
  applicationCredentialId?: string;
  applicationCredentialSecret?: string;
  /** Created when missing. */
  container?: string;
  /** Default `<container>_segments`. */
  segmentContainer?: string;
  /** Bytes per segment for objects too large for one PUT. */
  segmentSize?: number;
  keyPrefix?: string;
  /** Upload big files while they are hashed (default true); false hashes every file before its upload. */
  stagedUploads?: boolean;
  /** The smallest file uploaded while it is hashed (default 64 MiB; files above segmentSize never are). */
  stageMinBytes?: number;
  /** Send small files (up to 256 KiB) many to an archive where the cluster offers bulk upload (default true). */
  bulkUpload?: boolean;
}

/** The built-in S3 store; credentials come from the AWS SDK's default chain. */
export interface S3StoreUserConfig {
  type: "s3";
  bucket?: string;
  keyPrefix?: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Bytes per multipart part (S3 needs at least 5 MiB). */
  partSize?: number;
}

/**
 * A custom store: `type` is a module specifier or a path (relative to the repo root when it
 * starts with `.`) whose default export is a store factory; the other keys are its options,
 * passed through untouched.
 */
export interface CustomStoreUserConfig {
  type: string;
  [option: string]: unknown;
}

export type ObjectStoreUserConfig =
  | LocalStoreUserConfig
  | SwiftStoreUserConfig
  | S3StoreUserConfig
  | CustomStoreUserConfig;

/** Settings that may be given at the top level and again per shelf. */
export interface ShelfUserConfig {
  objectStore?: ObjectStoreUserConfig;
  /** Where `retrieve` puts shelves; relative to the repo root. Default `dest_sync`. */
  destSync?: string;
  /** Globs of files never stored (a glob without `/` matches a file name at any depth). */
  ignorePatterns?: string[];
  /** Globs of files stored even though they look like text. */
  binaryOverrides?: string[];
  /** Globs (relative to `<dest>/<shelf>/`) that a full retrieve never removes from dest. */
  keepFiles?: string[];
  /** Compare by sha256 instead of size and mtime. */
  checksum?: boolean;
  /** Parallel transfers at most. */
  concurrency?: number;
  /** Folder of the legacy `-j` JSON files; relative to the current directory. */
  jsonOutputDir?: string;
  /** The Swift password file read by `retrieve -p`. */
  passwordFile?: string;
}

export interface PantriUserConfig extends ShelfUserConfig {
  /** Per-shelf overrides, keyed by shelf name (a folder directly under `shelves/`). */
  shelves?: Record<string, ShelfUserConfig>;
}

/** The type of a config module's default export: an object, or a function returning one. */
export type PantriUserConfigExport =
  | PantriUserConfig
  | (() => PantriUserConfig | Promise<PantriUserConfig>);

/**
 * Types a config file; returns its argument unchanged. Optional: a config works without it
 * (and without pantri installed in the repo).
 */
export function defineConfig(config: PantriUserConfig): PantriUserConfig;
export function defineConfig(
  config: () => PantriUserConfig | Promise<PantriUserConfig>,
): () => PantriUserConfig | Promise<PantriUserConfig>;
export function defineConfig(config: PantriUserConfigExport): PantriUserConfigExport {
  return config;
}
