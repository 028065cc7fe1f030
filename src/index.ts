/**
 * pantri's package entry: the config helper and the types an adapter author needs.
 * (The CLI lives in cli.ts; importing this module has no side effects.)
 */
export { defineConfig } from "./config/define.js";
export type { PantriUserConfig } from "./config/define.js";
export type {
  AuthResult,
  BaseObjectStore,
  BatchOptions,
  ChunkReader,
  GetOptions,
  ObjectMeta,
  ObjectStore,
  PutSource,
  RequestOptions,
  RetrieveOutcome,
  RetrieveRequest,
  StagedDigests,
  StagedUpload,
  StageSource,
  StoreContext,
  StoreFactory,
  StoreOptions,
  StoreOutcome,
  StoreRequest,
} from "./objectstores/types.js";
export { withBatch } from "./objectstores/batch.js";
export { StoreError, PantriError, ConfigError } from "./core/errors.js";
export { withRetry, isRetryable } from "./core/retry.js";
