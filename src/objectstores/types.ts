import type { Readable } from "node:stream";

/**
 * The object store adapter interface. A store is built by a factory
 * `(options, context) => ObjectStore | Promise<ObjectStore>`, the default export of its module.
 *
 * Required: head / put / get and the two batch generators. Everything else is an optional
 * capability that callers detect (`if (store.list)`), never try-and-catch.
 * Most adapters implement the single-object methods and get the batch generators from
 * `withBatch()` (./batch.ts).
 */

/** What the store knows about one object. */
export interface ObjectMeta {
  key: string;
  size: number;
}

/** The bytes to upload, with what is known about them so the store can pick single or multipart. */
export interface PutSource {
  size: number;
  sha256: string;
  sha1: string;
  /**
   * Opens a fresh stream of bytes start..end, `end` INCLUSIVE like fs.createReadStream (default:
   * to the last byte). May be called again on retry, or once per segment of a multipart upload.
   */
  open(start?: number, end?: number): Readable;
  /** The local file holding the content, when there is one. */
  path?: string;
  /** The whole content, when it is held in memory (small files): a store may send it as it is instead of opening a stream. */
  bytes?: Buffer;
  /**
   * When the store asked for them (ObjectStore.md5PartSize): the MD5 (hex) of each part of that
   * many bytes, computed when the content was hashed, so from the very bytes its sha256 names.
   */
  md5Parts?: string[];
  /** See ChunkReader: offered with md5Parts, for a store whose server checks them. */
  chunks?: ChunkReader;
}

/**
 * Bytes start..end (`end` inclusive) of a local file as they are read, into a few buffers that
 * are used again: each chunk stays valid until two more have been asked for. Cheaper on memory
 * than open() for big files (Node frees big Buffers late), for a consumer that is done with a
 * chunk by then, e.g. a socket it waits to drain. Never re-checked against the hashing pass: only
 * for bytes the store's server checks (md5Parts, StagedUpload.commit). Fails, naming the file,
 * when it ends early.
 */
export type ChunkReader = (start: number, end: number) => AsyncIterable<Buffer>;

/** The bytes of a file whose digests are still being computed (see ObjectStore.stageUpload). */
export interface StageSource {
  size: number;
  /** Opens a fresh stream of bytes start..end (`end` inclusive, default the last byte); may be called again on retry. */
  open(start?: number, end?: number): Readable;
  /** The local file, for messages. */
  path?: string;
  /** See ChunkReader (commit checks what the store received). */
  chunks?: ChunkReader;
}

/** What the hashing pass found about content sent to ObjectStore.stageUpload. */
export interface StagedDigests {
  size: number;
  sha256: string;
  /** The MD5 of each ObjectStore.md5PartSize part, computed from the file while it was being sent. */
  md5Parts?: string[];
}

/** Bytes a store holds under a name of its own until `commit` gives them their key. */
export interface StagedUpload {
  /**
   * Makes the staged bytes the object `key`, unless that key exists already (then they are
   * dropped): resolves true when it stored them. First checks that what the store received is
   * exactly what `digests` describes (size, and the MD5 of each part); if not, drops the bytes
   * and fails, so a file that changed while it was sent never gets a key.
   */
  commit(key: string, digests: StagedDigests, opts?: RequestOptions): Promise<boolean>;
  /** Drops the staged bytes. */
  discard(opts?: RequestOptions): Promise<void>;
}

export interface GetOptions {
  /** First byte to return (a Range request), for resuming a partial download. */
  start?: number;
  signal?: AbortSignal;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Called with byte counts as they move, for progress. */
  onBytes?: (n: number) => void;
}

/** One object to store; `item` is the caller's own data, handed back in the outcome. */
export interface StoreRequest<T = unknown> {
  key: string;
  source: PutSource;
  item: T;
}

export interface StoreOutcome<T = unknown> {
  request: StoreRequest<T>;
  /** false when the object was already present and nothing was uploaded. */
  uploaded: boolean;
  /** Set when this object failed; the batch goes on with the others. */
  error?: Error;
}

/** One object to fetch into `file`, verified against size and sha256 before it gets that name. */
export interface RetrieveRequest<T = unknown> {
  key: string;
  size: number;
  sha256: string;
  /** Final absolute path. Its folder exists and was checked by the caller. */
  file: string;
  /** Whole seconds, given to the file before it is renamed into place. */
  mtime: number;
  item: T;
}

export interface RetrieveOutcome<T = unknown> {
  request: RetrieveRequest<T>;
  error?: Error;
}

export interface BatchOptions extends RequestOptions {
  /** Parallel transfers at most. */
  concurrency?: number;
}

export interface ObjectStore {
  /** Names the store in messages, e.g. `local store /srv/pantri`; never holds a secret. */
  readonly description: string;
  /** The object's metadata, or null when it does not exist. */
  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null>;
  /** Stores the object. Must be create-or-same: content-addressed keys never get other bytes. */
  put(key: string, source: PutSource, opts?: RequestOptions): Promise<void>;
  /** A stream of the object's bytes (from opts.start). Throws StoreError with notFound when missing. */
  get(key: string, opts?: GetOptions): Promise<Readable>;
  /**
   * Optional: stores the object unless it exists, in ONE request where the store can (Swift's
   * create-only PUT answers 412 when the key is taken). Resolves true when it stored the object,
   * false when it was already there. The batch layer uses it instead of head + put for small
   * objects, where sending the bytes again costs less than a round trip.
   */
  putIfAbsent?(key: string, source: PutSource, opts?: RequestOptions): Promise<boolean>;
  /**
   * Optional: asks pantri to compute, when it hashes a file, the MD5 of each part of this many
   * bytes (PutSource.md5Parts). A store that sets it PROMISES to have the server check every
   * byte it receives against them (Swift: the ETag request header, refused with 422), which
   * ties what is stored to what was hashed; pantri then does not re-hash the file while it is
   * uploaded. Swift sets it to its segment size.
   */
  readonly md5PartSize?: number;
  /**
   * Optional: sends a file's bytes before its key (its sha256) is known, under a name of the
   * store's own, so that a big file goes up WHILE it is hashed instead of after: one pass over
   * the disk and the wire at once. Nothing appears under any content key before
   * StagedUpload.commit. A store offering it must set md5PartSize (commit checks the bytes
   * against those MD5s) and leave nothing behind that a later run cannot find and remove. When
   * it cannot stage here, it rejects with a StoreError of status 403 (not allowed, e.g. where
   * staged bytes go) or 501 (not supported): pantri then hashes first and uses put, for this
   * file and the rest of the run.
   * pantri uses it for files of stageMinBytes up to md5PartSize whose size no pointer in the
   * repo has: content that is almost surely new, since an object already in the store would be
   * sent for nothing (and then dropped).
   */
  stageUpload?(source: StageSource, opts?: RequestOptions): Promise<StagedUpload>;
  /** With stageUpload: the smallest file worth it (below, hashing first costs less than a second request). */
  readonly stageMinBytes?: number;
  /**
   * Optional: removes what runs of pantri killed on this host left in the store that no pointer
   * will ever name (Swift: staged segments that got no manifest). `store` calls it once per run
   * and store, beside its uploads, whether or not the run itself stages anything. It must never
   * fail the run: problems go to the log, and what is left is tried again by the next run.
   */
  cleanUp?(opts?: RequestOptions): Promise<void>;
  /** Optional: every object whose key starts with prefix (paged by the adapter). */
  list?(prefix: string, opts?: RequestOptions): AsyncIterable<ObjectMeta>;
  /** Optional: removes an object (used by tests and maintenance, never by store/retrieve). */
  delete?(key: string, opts?: RequestOptions): Promise<void>;
  /** Optional: authenticate now and cache the credential (`pantri auth`). */
  authenticate?(opts?: RequestOptions): Promise<AuthResult>;
  /** Optional: is the cached credential still valid (`pantri auth --test`)? */
  testAuth?(opts?: RequestOptions): Promise<boolean>;
  /** Uploads each request unless present; yields each one as soon as it is stored (or failed). */
  storeObjects<T>(requests: Iterable<StoreRequest<T>> | AsyncIterable<StoreRequest<T>>, opts?: BatchOptions): AsyncGenerator<StoreOutcome<T>>;
  /** Downloads each request, verified; yields each one as soon as it is in place (or failed). */
  retrieveObjects<T>(requests: Iterable<RetrieveRequest<T>> | AsyncIterable<RetrieveRequest<T>>, opts?: BatchOptions): AsyncGenerator<RetrieveOutcome<T>>;
  /** Optional: release sockets and other resources. */
  close?(): Promise<void>;
}

export interface AuthResult {
  /** Where the credential was cached, if anywhere. */
  cachedAt?: string;
  /** When the credential expires (ms since epoch), if known. */
  expiresAt?: number;
  /** Non-secret description, e.g. the storage URL's account. */
  detail?: string;
}

/** What pantri hands every store factory besides its own options. */
export interface StoreContext {
  /** Absolute repo root; relative paths in options are relative to it. */
  repoRoot: string;
  /** A directory the store may use for caches such as tokens (outside the repo, mode 0700). */
  cacheDir: string;
  /** The environment to read credentials from (process.env unless a test says otherwise). */
  env: NodeJS.ProcessEnv;
  /** Debug logging (shown with --verbose). Never pass secrets. */
  log: (message: string) => void;
  /** Swift credentials from the password file (`retrieve -p`), when asked for. */
  passwordFile?: { username: string; password: string };
}

export type StoreOptions = Record<string, unknown>;

export type StoreFactory = (options: StoreOptions, context: StoreContext) => ObjectStore | Promise<ObjectStore>;

/** The single-object part of a store; `withBatch` adds the generators. */
export type BaseObjectStore = Omit<ObjectStore, "storeObjects" | "retrieveObjects"> &
  Partial<Pick<ObjectStore, "storeObjects" | "retrieveObjects">>;
