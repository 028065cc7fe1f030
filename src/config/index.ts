export { defineConfig } from "./define.js";
export type {
  CustomStoreUserConfig,
  LocalStoreUserConfig,
  ObjectStoreUserConfig,
  PantriUserConfig,
  PantriUserConfigExport,
  S3StoreUserConfig,
  ShelfUserConfig,
  SwiftStoreUserConfig,
} from "./define.js";
export {
  DEFAULT_CONCURRENCY,
  DEFAULT_DEST_SYNC,
  DEFAULT_IGNORE_PATTERNS,
  DEFAULT_PASSWORD_FILE,
  DEFAULT_STORE_PATH,
  defaultSettings,
} from "./defaults.js";
export type { DefaultSettingsOptions } from "./defaults.js";
export { BUILTIN_STORE_TYPES, suggestKey, validateConfig } from "./schema.js";
export type { ValidateConfigResult } from "./schema.js";
export { CONFIG_FILE_NAMES, loadConfig } from "./load.js";
export type { ConfigOverrides, LoadConfigOptions } from "./load.js";
