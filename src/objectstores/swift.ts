import { createHash, randomUUID, type Hash } from "node:crypto";
import { readFileSync, readdirSync, rmSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { ConfigError, StoreError, errorMessage } from "../core/errors.js";
import { withRetry } from "../core/retry.js";
import { alive, writeFileAtomic } from "../core/state.js";
import { DEFAULT_CONCURRENCY, failFast, gaveUp, giveUpAfter, mapConcurrent, shareSignal, storeOne, withBatch } from "./batch.js";
import { BULK_MAX_OBJECT_BYTES, BULK_MIN_OBJECTS, bulkUnits, groupDigits, groupPrefix, md5Of, parseBulkReport, tarArchive, type BulkReport } from "./swift-bulk.js";
import { KEYSTONE_INTERFACES, KeystoneV3, type KeystoneCredential, type KeystoneInterface } from "./swift-keystone.js";
import {
  PreIssuedToken,
  SwiftClient,
  TempAuthV1,
  header,
  safeUrl,
  type SwiftAuthMethod,
  type SwiftRequest,
  type SwiftResponse,
} from "./swift-client.js";
import type {
  BatchOptions,
  GetOptions,
  ObjectStore,
  ObjectMeta,
  PutSource,
  RequestOptions,
  StageSource,
  StagedDigests,
  StagedUpload,
  StoreContext,
  StoreFactory,
  StoreOptions,
  StoreOutcome,
  StoreRequest,
} from "./types.js";

/**
 * The `swift` store: OpenStack Swift through our own thin client (./swift-client.ts).
 *
 * Objects up to `segmentSize` are one create-only PUT. Bigger ones are Static Large Objects:
 * segments named after the object, its size and the segment size (so a different upload can
 * never collide with them) go to the segment container, then a manifest names them with the MD5
 * we computed while sending; Swift refuses the manifest if any segment's stored ETag differs, so
 * a manifest never points at bytes we did not send. An interrupted upload leaves its finished
 * segments behind; the next attempt finds each by HEAD, checks it against the MD5 of our local
 * byte range and skips it.
 *
 * Staged uploads (ObjectStore.stageUpload): a big file whose key is not known yet goes up while
 * it is hashed, as one segment under a random name (`<container>/staged/<uuid>`); once the
 * hashing pass has its sha256 and MD5, `commit` checks the segment's ETag against that MD5 and
 * puts a one-segment manifest at the content key. A note in the cache dir records each staged
 * segment until it has its manifest or is deleted, so the segments of a killed run are found and
 * removed by the next one.
 */

const GiB = 1024 ** 3;
/** Swift's largest single object (5 GiB; FIELD.md measured 413 above 5 GiB + 2 bytes). */
const MAX_SEGMENT_SIZE = 5 * GiB;
const DEFAULT_SEGMENT_SIZE = GiB;
/**
 * Files from this size up (to segmentSize) are staged: uploaded while they are hashed. Below it,
 * the hashing pass is short (~0.1 s per 64 MiB here) and staging's extra manifest request and
 * note file cost about as much as they save.
 */
const DEFAULT_STAGE_MIN_BYTES = 64 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 60_000;
/** Swift's default container_listing_limit: a bigger page is silently cut to it. */
const MAX_LIST_PAGE = 10_000;
/** Segment numbers are zero-padded so the segment names sort in order (as python-swiftclient does). */
const SEGMENT_INDEX_DIGITS = 8;

export interface SwiftStoreOptions {
  authUrl?: string;
  authVersion: 1 | 3;
  user?: string;
  key?: string;
  /** Keystone v3 only: the login, when authUrl + credentials are complete. */
  keystone?: KeystoneCredential;
  region?: string;
  interface: KeystoneInterface;
  storageUrl?: string;
  token?: string;
  container: string;
  segmentContainer: string;
  segmentSize: number;
  timeoutMs: number;
  listPageSize: number;
  /** Parallel transfers, when the caller says; null: the batch layer's own limit applies. */
  concurrency: number | null;
  /** Upload big files while they are hashed (see stageUpload); false: always hash first. */
  stagedUploads: boolean;
  /** Send many small objects as one archive where the cluster offers bulk upload (./swift-bulk.ts). */
  bulkUpload: boolean;
  stageMinBytes: number;
}

/** Validates the options (as the config loader mapped them, env included) into one list of problems. */
export function parseSwiftOptions(options: StoreOptions, context: StoreContext): SwiftStoreOptions {
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const v = options[name];
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v !== "string") {
      problems.push(`objectStore.${name} must be a string`);
      return undefined;
    }
    return v;
  };
  const int = (name: string, def: number, min: number, max: number, unit = ""): number => {
    const v = options[name];
    if (v === undefined || v === null) return def;
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
      problems.push(`objectStore.${name} must be a whole number from ${min} to ${max}${unit}`);
      return def;
    }
    return n;
  };
  const bool = (name: string, def: boolean): boolean => {
    const v = options[name];
    if (v === undefined || v === null) return def;
    if (v === true || v === "true" || v === "1") return true;
    if (v === false || v === "false" || v === "0") return false;
    problems.push(`objectStore.${name} must be true or false`);
    return def;
  };
  const url = (name: string): string | undefined => {
    const v = str(name);
    if (v === undefined) return undefined;
    try {
      const u = new URL(v);
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("not http(s)");
    } catch {
      problems.push(`objectStore.${name} must be an http(s) URL (got ${safeUrl(v)})`);
      return undefined;
    }
    return v;
  };

  const container = str("container");
  if (container === undefined) problems.push("objectStore.container is required: the Swift container that holds the objects");
  else if (container.includes("/") || Buffer.byteLength(container) > 256)
    problems.push(`objectStore.container "${container}" is not a valid Swift container name (no "/", at most 256 bytes)`);
  const segmentContainer = str("segmentContainer") ?? `${container ?? ""}_segments`;
  if (segmentContainer.includes("/") || Buffer.byteLength(segmentContainer) > 256)
    problems.push(`objectStore.segmentContainer "${segmentContainer}" is not a valid Swift container name`);
  if (container !== undefined && segmentContainer === container)
    problems.push("objectStore.segmentContainer must differ from objectStore.container (segments would show up as objects)");

  const authUrl = url("authUrl");
  const storageUrl = url("storageUrl");
  const token = str("token");
  let user = str("user");
  let key = str("key");
  if (context.passwordFile) {
    user = context.passwordFile.username;
    key = context.passwordFile.password;
  }

  const project = str("project");
  const projectId = str("projectId");
  const userId = str("userId");
  const userDomain = str("userDomain");
  const userDomainId = str("userDomainId");
  const projectDomain = str("projectDomain");
  const projectDomainId = str("projectDomainId");
  const region = str("region");
  const appCredId = str("applicationCredentialId");
  const appCredSecret = str("applicationCredentialSecret");
  const keystoneOnly = [project, projectId, userId, userDomain, userDomainId, projectDomain, projectDomainId, appCredId, appCredSecret];

  // Not given: a `/v3` auth URL or any Keystone-only setting means Keystone, else v1.
  const version =
    options.authVersion ??
    ((authUrl && /\/v3\/?$/.test(new URL(authUrl).pathname)) || keystoneOnly.some((v) => v !== undefined) ? 3 : 1);
  let authVersion: 1 | 3 = 1;
  if (version === 3 || version === "3" || version === "3.0") authVersion = 3;
  else if (version !== 1 && version !== "1" && version !== "1.0") problems.push(`objectStore.authVersion must be 1 or 3 (got ${JSON.stringify(version)})`);

  let iface: KeystoneInterface = "public";
  const ifaceName = str("interface");
  if (ifaceName !== undefined) {
    // python-swiftclient's OS_ENDPOINT_TYPE spells them publicURL, internalURL, adminURL.
    const bare = ifaceName.replace(/URL$/, "");
    const known = KEYSTONE_INTERFACES.find((i) => i === bare);
    if (known) iface = known;
    else problems.push(`objectStore.interface must be one of ${KEYSTONE_INTERFACES.join(", ")} (got ${JSON.stringify(ifaceName)})`);
  }

  let keystone: KeystoneCredential | undefined;
  if (authVersion === 1) {
    const haveLogin = authUrl !== undefined || user !== undefined || key !== undefined;
    if (!(storageUrl && token)) {
      if (!haveLogin) {
        problems.push(
          "no Swift credentials: set objectStore.authUrl, objectStore.user and objectStore.key (or ST_AUTH, ST_USER, ST_KEY, or retrieve -p with a password file), or objectStore.storageUrl + objectStore.token (OS_STORAGE_URL + OS_AUTH_TOKEN)",
        );
      } else {
        if (!authUrl) problems.push("objectStore.authUrl (or ST_AUTH) is not set: the Swift v1 auth URL, e.g. https://swift.example.com/auth/v1.0");
        if (!user) problems.push("objectStore.user (or ST_USER) is not set: the Swift user, e.g. account:user");
        if (!key) problems.push("objectStore.key (or ST_KEY) is not set: the Swift key (or use retrieve -p with a password file)");
      }
    }
  } else {
    if (authUrl && /\/v2\.0\/?$/.test(new URL(authUrl).pathname)) {
      problems.push("objectStore.authUrl (OS_AUTH_URL) is a Keystone v2.0 URL: pantri speaks Keystone v3; use the same endpoint with /v3");
    }
    const appCred = appCredId !== undefined || appCredSecret !== undefined;
    const password = user !== undefined || userId !== undefined || key !== undefined;
    const missing: string[] = [];
    if (appCred) {
      if (appCredId === undefined) missing.push("objectStore.applicationCredentialId (OS_APPLICATION_CREDENTIAL_ID) is not set: the application credential's id");
      if (appCredSecret === undefined) missing.push("objectStore.applicationCredentialSecret (OS_APPLICATION_CREDENTIAL_SECRET) is not set: the application credential's secret");
      if (appCredId !== undefined && appCredSecret !== undefined) keystone = { kind: "applicationCredential", id: appCredId, secret: appCredSecret };
    } else if (password) {
      if (user === undefined && userId === undefined) missing.push("objectStore.user or objectStore.userId (OS_USERNAME or OS_USER_ID) is not set: the Keystone user");
      if (key === undefined) missing.push("objectStore.key (OS_PASSWORD) is not set: the Keystone user's password (or use -p with a password file)");
      if (project === undefined && projectId === undefined)
        missing.push("objectStore.project or objectStore.projectId (OS_PROJECT_NAME or OS_PROJECT_ID) is not set: the project whose Swift account to use");
      if (missing.length === 0 && key !== undefined) {
        keystone = { kind: "password", user, userId, userDomain, userDomainId, password: key, project, projectId, projectDomain, projectDomainId };
      }
    }
    if (keystone && !authUrl) missing.push("objectStore.authUrl (OS_AUTH_URL) is not set: the Keystone identity endpoint, e.g. https://keystone.example.com:5000/v3");
    if (!(storageUrl && token)) {
      if (!appCred && !password) {
        problems.push(
          "no Keystone credentials: set objectStore.authUrl with user, key and project (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, plus OS_USER_DOMAIN_NAME and OS_PROJECT_DOMAIN_NAME), or with applicationCredentialId + applicationCredentialSecret (OS_APPLICATION_CREDENTIAL_ID/SECRET), or objectStore.storageUrl + objectStore.token (OS_STORAGE_URL + OS_AUTH_TOKEN)",
        );
      }
      problems.push(...missing);
    } else if (keystone && authUrl === undefined) {
      keystone = undefined; // a pre-issued token it is
    }
  }
  if (token && !storageUrl) problems.push("objectStore.token is set but objectStore.storageUrl (or OS_STORAGE_URL) is not: a token needs its storage URL");

  const concurrency = typeof options.concurrency === "number" && options.concurrency >= 1 ? Math.floor(options.concurrency) : null;
  const result: SwiftStoreOptions = {
    authUrl,
    authVersion,
    user,
    key,
    keystone: authUrl ? keystone : undefined,
    region,
    interface: iface,
    storageUrl,
    token,
    container: container ?? "",
    segmentContainer,
    segmentSize: int("segmentSize", DEFAULT_SEGMENT_SIZE, 1, MAX_SEGMENT_SIZE, " bytes (Swift's largest single object is 5 GiB)"),
    timeoutMs: int("timeoutMs", DEFAULT_TIMEOUT_MS, 1, 24 * 3600 * 1000, " ms"),
    listPageSize: int("listPageSize", MAX_LIST_PAGE, 1, MAX_LIST_PAGE),
    concurrency,
    stagedUploads: bool("stagedUploads", true),
    bulkUpload: bool("bulkUpload", true),
    stageMinBytes: int("stageMinBytes", DEFAULT_STAGE_MIN_BYTES, 1, MAX_SEGMENT_SIZE, " bytes"),
  };
  if (problems.length) throw new ConfigError("invalid swift store configuration", problems);
  return result;
}

function authMethodFor(o: SwiftStoreOptions): SwiftAuthMethod {
  // A login when we can log in (it renews on 401 and before expiry); a pre-issued token only otherwise.
  if (o.authVersion === 3 && o.authUrl && o.keystone) return new KeystoneV3({ authUrl: o.authUrl, credential: o.keystone, region: o.region, interface: o.interface });
  if (o.authVersion === 1 && o.authUrl && o.user && o.key) return new TempAuthV1(o.authUrl, o.user, o.key);
  if (o.storageUrl && o.token) return new PreIssuedToken(o.storageUrl, o.token);
  throw new ConfigError("no usable Swift credentials (see objectStore.authUrl/user/key or storageUrl/token)");
}

interface ManifestEntry {
  path: string;
  etag: string;
  size_bytes: number;
}

/** What Swift holds under a key, as a HEAD or a listing tells. */
interface StoredObject {
  size: number;
  /** The ETag, bare: the MD5 of the bytes for all but large objects. */
  md5?: string;
}

interface ListingEntry {
  name: string;
  bytes: number;
  /** The object's ETag: the MD5 of its bytes for all but large objects. */
  hash?: string;
}

function isListing(v: unknown): v is ListingEntry[] {
  return (
    Array.isArray(v) &&
    v.every((e: unknown) => {
      const o = e as { name?: unknown; bytes?: unknown } | null;
      // `subdir` entries (delimiter listings) have no name/bytes; we never ask for them.
      return typeof o === "object" && o !== null && typeof o.name === "string" && typeof o.bytes === "number";
    })
  );
}

/** A manifest entry's path, %-decoded where Swift encoded it (as it does in `multipart-manifest=get`). */
function decodePath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

/** Swift quotes ETags on SLOs and sometimes elsewhere; compare bare hex. */
function bareEtag(v: string | undefined): string | undefined {
  return v?.replace(/^"|"$/g, "").toLowerCase();
}

/**
 * Exactly `length` bytes of the source from `start`, each chunk passed to `onChunk` as it goes
 * (for progress, and the MD5 when the source brings none). Fewer bytes than promised is an
 * error (the file changed under us), so Content-Length is never a lie.
 * A source holding its bytes in memory gives them as one Buffer, sent without a stream.
 */
function rangeBody(
  source: Pick<PutSource, "size" | "open" | "bytes" | "chunks">,
  start: number,
  length: number,
  onChunk: (chunk: Buffer) => void,
  /** Swift checks these bytes against MD5s of the hashing pass: they may come from source.chunks. */
  checked = false,
): Readable | Buffer {
  if (source.bytes && source.bytes.length === source.size) {
    const part = source.bytes.subarray(start, start + length);
    onChunk(part);
    return part;
  }
  if (checked && source.chunks && length > 0) return Readable.from(sendChunks(source.chunks(start, start + length - 1), onChunk), { objectMode: false, highWaterMark: 1 });
  const inner = length > 0 ? source.open(start, start + length - 1) : Readable.from([]);
  let left = length;
  const counted = new Transform({
    transform(c: Buffer | Uint8Array, _encoding, callback) {
      const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c);
      // More than asked for: send only the range (the rest is dropped).
      const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= part.length;
      if (part.length) onChunk(part);
      callback(null, part.length ? part : undefined);
    },
    flush(callback) {
      callback(left > 0 ? new Error(`the source ended ${left} bytes early (bytes ${start}..${start + length - 1}): did the file change while uploading?`) : null);
    },
  });
  inner.on("error", (err) => counted.destroy(err));
  counted.on("close", () => inner.destroy());
  return inner.pipe(counted);
}

/**
 * A ChunkReader's chunks as a request body. Its buffers are used again two chunks later, which is
 * safe here: undici pauses the body when a write is not taken at once (it writes corked, so a
 * 1 MiB chunk never is) and resumes on 'drain', when the socket has flushed everything, and the
 * stream around this (highWaterMark 1) reads at most one chunk ahead. The bytes are checked by
 * Swift against the hashing pass's MD5s, so even a slip here could not store other bytes.
 */
async function* sendChunks(chunks: AsyncIterable<Buffer>, onChunk: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    onChunk(chunk);
    yield chunk;
  }
}

async function md5OfRange(source: Pick<PutSource, "size" | "open" | "bytes">, start: number, length: number, signal?: AbortSignal): Promise<string> {
  const md5 = createHash("md5");
  const body = rangeBody(source, start, length, (c) => md5.update(c));
  if (Buffer.isBuffer(body)) return md5.digest("hex");
  // Leaving the loop early (the throw) ends the stream.
  for await (const _ of body) if (signal?.aborted) throw signal.reason;
  return md5.digest("hex");
}

const createSwiftStore: StoreFactory = (options, context) => {
  const o = parseSwiftOptions(options, context);
  const auth = authMethodFor(o);
  const description = `swift container "${o.container}" at ${safeUrl(o.storageUrl ?? o.authUrl ?? "")}`;
  const client = new SwiftClient({
    auth,
    // With a login, a configured storage URL replaces the one the login returns (swift --os-storage-url).
    storageUrl: auth.renewable ? o.storageUrl : undefined,
    cacheDir: context.cacheDir,
    description,
    concurrency: o.concurrency,
    timeoutMs: o.timeoutMs,
    log: context.log,
  });
  const logRetry = (what: string) => (err: unknown, attempt: number, delayMs: number) =>
    client.log(`swift: ${what} failed (attempt ${attempt}): ${err instanceof Error ? err.message : String(err)}; retrying in ${Math.round(delayMs)} ms`);

  const fail = (message: string, key: string | undefined, extra: { status?: number; notFound?: boolean; retryable?: boolean } = {}) =>
    new StoreError(client.redact(message), { store: description, key, ...extra });

  /** PUT the container; 403 means this account may not create it, which the user must fix. */
  async function createContainer(name: string, key: string, signal?: AbortSignal): Promise<void> {
    const res = await client.request({ method: "PUT", container: name, accept: [403], key, signal });
    await res.body.dump();
    if (res.status === 403) {
      throw fail(`not allowed to create container "${name}": create it or use an account with rights`, key, { status: 403 });
    }
    client.log(`swift: created container "${name}" (${res.status})`);
  }

  const creatingContainers = new Map<string, Promise<void>>();

  /**
   * A PUT that creates its container when Swift says it is missing (404), then tries once more.
   * A 403 on the object means this account may not write there, or (tempauth answers 403 before
   * it looks) may not create the missing container.
   */
  async function putCreatingContainer(req: SwiftRequest & { container: string }, key: string): Promise<SwiftResponse> {
    const accept = [...(req.accept ?? []), 403, 404];
    for (let created = false; ; created = true) {
      const res = await client.request({ ...req, accept, key });
      if (res.status === 404 && !created) {
        await res.body.dump();
        // Workers that met the missing container together wait for one creation, not one each.
        let creating = creatingContainers.get(req.container);
        if (!creating) {
          creating = createContainer(req.container, key, req.signal).finally(() => creatingContainers.delete(req.container));
          creatingContainers.set(req.container, creating);
        }
        await creating;
        continue;
      }
      if (res.status === 403) {
        await res.body.dump();
        throw fail(
          `not allowed to write to container "${req.container}" (403): create it and give this account write rights, or use an account with rights`,
          key,
          { status: 403 },
        );
      }
      if (res.status === 404) throw await client.errorFor(res, { ...req, key });
      return res;
    }
  }

  /**
   * The MD5 of part `index` of `parts` that the source brings, if any (see md5PartSize). Sent as
   * the ETag header, Swift checks the bytes against it and refuses others (422) before it
   * stores anything; without one, we hash what we send and compare Swift's ETag afterwards.
   */
  function knownMd5(source: PutSource, index: number, parts: number): string | undefined {
    return source.md5Parts?.length === parts ? source.md5Parts[index] : undefined;
  }

  function refused(source: PutSource, what: string, key: string): StoreError {
    return fail(
      `Swift refused ${what} (422): the bytes it received do not have the MD5 pantri computed when it hashed ${source.path ?? "the source"}; ` +
        `the file changed since (let it be complete, then run store again) or the bytes were damaged on the way`,
      key,
      { status: 422, retryable: false },
    );
  }

  /** One create-only PUT; true when it stored the object, false when the key was taken (412). */
  async function putSingle(key: string, source: PutSource, opts: RequestOptions): Promise<boolean> {
    const expected = knownMd5(source, 0, 1);
    let md5: Hash = createHash("md5");
    const res = await putCreatingContainer(
      {
        method: "PUT",
        container: o.container,
        object: key,
        // Create-only: content-addressed keys never get other bytes; 412 = already there.
        headers: {
          "if-none-match": "*",
          "content-length": String(source.size),
          "content-type": "application/octet-stream",
          ...(expected ? { etag: expected } : {}),
        },
        body: () => {
          md5 = createHash("md5");
          return rangeBody(
            source,
            0,
            source.size,
            (c) => {
              if (!expected) md5.update(c);
              opts.onBytes?.(c.length);
            },
            expected !== undefined,
          );
        },
        accept: [412, 422],
        signal: opts.signal,
      },
      key,
    );
    await res.body.dump();
    if (res.status === 412) {
      client.log(`swift: ${key} is already stored (412)`);
      return false;
    }
    if (res.status === 422) throw refused(source, "the upload", key);
    const sent = expected ?? md5.digest("hex");
    const etag = bareEtag(header(res.headers, "etag"));
    if (etag && etag !== sent) {
      // Swift stored other bytes than we sent: remove them, or create-only PUTs would keep them.
      await client.request({ method: "DELETE", container: o.container, object: key, accept: [404], key }).then((r) => r.body.dump());
      throw fail(`corrupted on upload: Swift's ETag ${etag} is not the MD5 ${sent} of what was sent; removed it`, key, { retryable: true });
    }
    return true;
  }

  function segmentName(key: string, size: number, index: number): string {
    return `${o.container}/${key}/slo/${size}/${o.segmentSize}/${String(index).padStart(SEGMENT_INDEX_DIGITS, "0")}`;
  }

  /** Uploads one segment unless an identical one is there already; returns its MD5. */
  async function putSegment(
    key: string,
    name: string,
    source: PutSource,
    part: { start: number; length: number; expected: string | undefined },
    opts: RequestOptions,
  ): Promise<string> {
    const { start, length, expected } = part;
    const head = await client.request({ method: "HEAD", container: o.segmentContainer, object: name, accept: [404], key, signal: opts.signal });
    await head.body.dump();
    if (head.status !== 404 && Number(header(head.headers, "content-length")) === length) {
      const local = expected ?? (await md5OfRange(source, start, length, opts.signal));
      if (bareEtag(header(head.headers, "etag")) === local) {
        client.log(`swift: segment ${name} already uploaded, skipping it`);
        return local;
      }
    }
    let md5: Hash = createHash("md5");
    const res = await putCreatingContainer(
      {
        method: "PUT",
        container: o.segmentContainer,
        object: name,
        headers: { "content-length": String(length), "content-type": "application/octet-stream", ...(expected ? { etag: expected } : {}) },
        body: () => {
          md5 = createHash("md5");
          return rangeBody(
            source,
            start,
            length,
            (c) => {
              if (!expected) md5.update(c);
              opts.onBytes?.(c.length);
            },
            expected !== undefined,
          );
        },
        accept: [422],
        signal: opts.signal,
      },
      key,
    );
    await res.body.dump();
    if (res.status === 422) throw refused(source, `segment ${name}`, key);
    const sent = expected ?? md5.digest("hex");
    const etag = bareEtag(header(res.headers, "etag"));
    if (etag && etag !== sent) throw fail(`segment ${name} corrupted on upload (ETag ${etag}, sent MD5 ${sent})`, key, { retryable: true });
    return sent;
  }

  /** Segments, then a create-only manifest; false when the manifest's key was taken (412). */
  async function putLarge(key: string, source: PutSource, opts: RequestOptions): Promise<boolean> {
    const count = Math.ceil(source.size / o.segmentSize);
    const manifest: ManifestEntry[] = [];
    for (let i = 0; i < count; i++) {
      const start = i * o.segmentSize;
      const length = Math.min(o.segmentSize, source.size - start);
      const name = segmentName(key, source.size, i);
      // Each segment is retried on its own, so a transient failure costs one segment, not the object.
      const part = { start, length, expected: knownMd5(source, i, count) };
      const etag = await withRetry(() => putSegment(key, name, source, part, opts), {
        signal: opts.signal,
        onRetry: logRetry(`segment ${i + 1}/${count} of ${key}`),
      });
      // Swift wants the manifest's paths unquoted ("/container/name"); it quotes them itself.
      manifest.push({ path: `/${o.segmentContainer}/${name}`, etag, size_bytes: length });
    }
    const stored = await putManifest(key, manifest, opts.signal);
    client.log(`swift: ${key}: ${stored ? `stored as a static large object of ${count} segments` : "already stored"}`);
    return stored;
  }

  /** A create-only SLO manifest at `key`; false when the key was taken (412). */
  async function putManifest(key: string, entries: ManifestEntry[], signal?: AbortSignal): Promise<boolean> {
    const body = JSON.stringify(entries);
    const res = await putCreatingContainer(
      {
        method: "PUT",
        container: o.container,
        object: key,
        query: { "multipart-manifest": "put" },
        headers: { "if-none-match": "*", "content-type": "application/octet-stream", "content-length": String(Buffer.byteLength(body)) },
        body: () => body,
        accept: [412],
        signal,
      },
      key,
    );
    await res.body.dump();
    if (res.status === 412) return false;
    // Swift answers a manifest with the MD5 of its segments' ETags. Any other ETag means the body
    // was stored as a plain object (a cluster without the slo middleware): the key would hold the
    // manifest's JSON, and create-only PUTs would keep it there. Remove it and say why.
    const sloEtag = createHash("md5").update(entries.map((e) => e.etag).join("")).digest("hex");
    if (bareEtag(header(res.headers, "etag")) !== sloEtag) {
      const probe = await client.request({ method: "HEAD", container: o.container, object: key, accept: [404], key, signal });
      await probe.body.dump();
      if (header(probe.headers, "x-static-large-object")?.toLowerCase() !== "true") {
        if (probe.status !== 404) await (await client.request({ method: "DELETE", container: o.container, object: key, accept: [404], key })).body.dump();
        throw fail(
          "Swift stored a large-object manifest as a plain object: this cluster has no static large objects (the slo middleware); " +
            "removed it. Set objectStore.stagedUploads to false and objectStore.segmentSize above your largest file",
          key,
          { retryable: false },
        );
      }
    }
    return true;
  }

  // ---------------------------------------------------------------- staged uploads

  /** Where each staged segment is noted until it has its manifest or is gone (see the file comment). */
  const stageDir = join(context.cacheDir, "swift-staged");
  /** Which store a note belongs to: the cache dir is shared by every store of the user. */
  const stageOwner = async (): Promise<string> => `${(await client.session()).storageUrl}|${o.container}|${o.segmentContainer}`;

  interface StageNote {
    host: string;
    pid: number;
    store: string;
    segment: string;
    /** Set just before the manifest is put: from then on a manifest may reference the segment. */
    key?: string;
  }

  const notePath = (id: string) => join(stageDir, `${id}.json`);
  const writeNote = async (id: string, note: StageNote) => {
    await mkdir(stageDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(notePath(id), `${JSON.stringify(note)}\n`);
  };
  const dropNote = (id: string) => rmSync(notePath(id), { force: true });

  /** The segment paths (`/container/name`) the object's manifest names; [] when it is no SLO or missing. */
  async function manifestSegments(key: string, signal?: AbortSignal): Promise<string[]> {
    const probe = await client.request({ method: "HEAD", container: o.container, object: key, accept: [404], key, signal });
    await probe.body.dump();
    if (probe.status === 404 || header(probe.headers, "x-static-large-object")?.toLowerCase() !== "true") return [];
    const res = await client.request({ method: "GET", container: o.container, object: key, query: { "multipart-manifest": "get", format: "raw" }, key, signal });
    const entries = (await res.body.json()) as { path?: unknown; name?: unknown }[];
    if (!Array.isArray(entries)) return [];
    return entries.map((e) => String(e.path ?? e.name ?? "")).map(decodePath);
  }

  async function deleteSegment(name: string, key?: string): Promise<void> {
    const res = await withRetry(() => client.request({ method: "DELETE", container: o.segmentContainer, object: name, accept: [404], key }), {
      onRetry: logRetry(`deleting staged segment ${name}`),
    });
    await res.body.dump();
  }

  /**
   * Removes what killed runs on this host left staged in this store: a noted segment without a
   * manifest naming it. Runs once per process: at the start of a store run (ObjectStore.cleanUp),
   * or before the first staged upload, whichever comes first. A segment whose
   * writer is alive (another run) is left alone.
   */
  async function cleanUpStaged(): Promise<void> {
    let names: string[];
    try {
      names = readdirSync(stageDir).filter((n) => n.endsWith(".json"));
    } catch {
      return; // no notes
    }
    const owner = await stageOwner();
    for (const name of names) {
      const id = name.slice(0, -".json".length);
      let note: StageNote;
      try {
        note = JSON.parse(readFileSync(notePath(id), "utf8")) as StageNote;
      } catch {
        continue; // being written, or not ours to judge
      }
      if (note.store !== owner || note.host !== hostname() || note.pid === process.pid || alive(note.pid)) continue;
      try {
        const path = `/${o.segmentContainer}/${note.segment}`;
        if (note.key && (await manifestSegments(note.key)).includes(path)) {
          client.log(`swift: staged segment ${note.segment} of a killed run has its manifest ${note.key}; keeping it`);
        } else {
          await deleteSegment(note.segment, note.key);
          client.log(`swift: removed staged segment ${note.segment} left by a killed run (pid ${note.pid})`);
        }
        dropNote(id);
      } catch (err) {
        client.log(`swift: could not clean up staged segment ${note.segment} (kept for the next run): ${errorMessage(err)}`);
      }
    }
  }
  let cleanedUp: Promise<void> | null = null;
  /** cleanUpStaged once per process (ObjectStore.cleanUp); never rejects. */
  const cleanUpOnce = (): Promise<void> =>
    (cleanedUp ??= cleanUpStaged().catch((err: unknown) => client.log(`swift: could not look for staged segments of killed runs (the next run tries again): ${errorMessage(err)}`)));
  let hasSlo: Promise<boolean> | null = null;

  async function stageUpload(source: StageSource, opts: RequestOptions = {}): Promise<StagedUpload> {
    if (source.size > o.segmentSize) throw fail(`cannot stage ${source.size} bytes: more than segmentSize (${o.segmentSize})`, undefined, { retryable: false });
    // Staged objects are one-segment static large objects: a cluster that says it has none
    // (GET /info without "slo") is told apart before any byte goes. (One that does not publish
    // its capabilities is tried; putManifest catches a manifest stored as a plain object.)
    hasSlo ??= client.capabilities(opts.signal).then((info) => info === null || "slo" in info);
    if (!(await hasSlo)) {
      throw fail("this Swift cluster has no static large objects (no slo in GET /info), which staged uploads need", undefined, { status: 501, retryable: false });
    }
    await cleanUpOnce();
    const id = randomUUID();
    const segment = `${o.container}/staged/${id}`;
    const path = `/${o.segmentContainer}/${segment}`;
    const note: StageNote = { host: hostname(), pid: process.pid, store: await stageOwner(), segment };
    // Noted before the first byte goes: a run killed from here on leaves a note for the next one.
    await writeNote(id, note);
    const etag = await withRetry(
      async () => {
        const res = await putCreatingContainer(
          {
            method: "PUT",
            container: o.segmentContainer,
            object: segment,
            headers: { "content-length": String(source.size), "content-type": "application/octet-stream" },
            // Checked: commit compares what Swift received with the hashing pass.
            body: () => rangeBody(source, 0, source.size, (c) => opts.onBytes?.(c.length), true),
            signal: opts.signal,
          },
          segment,
        );
        await res.body.dump();
        const e = bareEtag(header(res.headers, "etag"));
        if (!e) throw fail(`Swift stored staged segment ${segment} without an ETag: cannot check its bytes`, undefined, { retryable: false });
        return e;
      },
      { signal: opts.signal, onRetry: logRetry(`staged upload of ${source.path ?? segment}`) },
    );
    // A failure above leaves the note: the next run removes whatever Swift may have kept.

    const discard = async (): Promise<void> => {
      await deleteSegment(segment);
      dropNote(id);
    };
    const commit = async (key: string, d: StagedDigests, copts: RequestOptions = {}): Promise<boolean> => {
      const md5 = d.md5Parts?.length === 1 ? d.md5Parts[0] : undefined;
      if (d.size !== source.size || md5 !== etag) {
        await discard();
        throw fail(
          `the bytes Swift received for ${source.path ?? "the file"} (MD5 ${etag}) are not the bytes pantri hashed (MD5 ${md5 ?? "none"}, ${d.size} bytes): ` +
            "the file changed while it was being stored (let it be complete, then run store again) or the bytes were damaged on the way",
          key,
          { retryable: false },
        );
      }
      await writeNote(id, { ...note, key });
      const stored = await withRetry(
        async () => {
          if (await putManifest(key, [{ path, etag, size_bytes: source.size }], copts.signal)) return true;
          // Taken: by an object stored before, or by this very manifest when an earlier attempt's
          // answer was lost. Only in the first case may the segment go.
          return (await manifestSegments(key, copts.signal)).includes(path);
        },
        { signal: copts.signal, onRetry: logRetry(`manifest of ${key}`) },
      );
      if (stored) {
        dropNote(id);
        client.log(`swift: ${key}: stored while it was hashed (staged segment ${segment})`);
      } else {
        client.log(`swift: ${key} is already stored; dropping the staged copy`);
        await discard();
      }
      return stored;
    };
    return { commit, discard };
  }

  /** Size and ETag (the MD5 of all but large objects) of an object, null when it does not exist. */
  async function headStored(key: string, signal?: AbortSignal): Promise<StoredObject | null> {
    const res = await client.request({ method: "HEAD", container: o.container, object: key, accept: [404], key, signal });
    await res.body.dump();
    if (res.status === 404) return null;
    const size = Number(header(res.headers, "content-length"));
    if (!Number.isSafeInteger(size) || size < 0) throw fail(`HEAD answered without a usable Content-Length`, key);
    return { size, md5: bareEtag(header(res.headers, "etag")) };
  }

  async function head(key: string, opts: RequestOptions = {}): Promise<ObjectMeta | null> {
    const stored = await headStored(key, opts.signal);
    return stored && { key, size: stored.size };
  }


  async function get(key: string, opts: GetOptions = {}): Promise<Readable> {
    const start = opts.start ?? 0;
    const res = await client.request({
      method: "GET",
      container: o.container,
      object: key,
      headers: start > 0 ? { range: `bytes=${start}-` } : {},
      accept: [404],
      signal: opts.signal,
    });
    if (res.status === 404) {
      await res.body.dump();
      throw fail(`not found in the store (404): was it ever uploaded? (pantri status --remote lists missing objects)`, key, {
        status: 404,
        notFound: true,
      });
    }
    if (start > 0 && res.status !== 206) {
      // A 200 here would be the whole object, which the caller would append to its partial file.
      res.body.destroy();
      throw fail(`asked for bytes from ${start} but Swift answered ${res.status}, not 206 Partial Content`, key, { status: res.status, retryable: false });
    }
    return res.body;
  }

  async function* listEntries(prefix: string, opts: RequestOptions = {}): AsyncGenerator<ListingEntry> {
    let marker = "";
    for (;;) {
      const page = await withRetry(
        async () => {
          const query: Record<string, string> = { format: "json", prefix, limit: String(o.listPageSize) };
          if (marker) query.marker = marker;
          const res = await client.request({ method: "GET", container: o.container, query, accept: [404], signal: opts.signal });
          if (res.status === 404) {
            await res.body.dump();
            return []; // no container yet: nothing stored
          }
          const data: unknown = await res.body.json();
          if (!isListing(data)) throw fail(`unexpected container listing (not [{name, bytes}]): is this a Swift server?`, undefined, { retryable: false });
          return data;
        },
        { signal: opts.signal, onRetry: logRetry(`listing "${prefix}"`) },
      );
      yield* page;
      const last = page.at(-1);
      // A short page is the last one; a full page may be followed by more.
      if (!last || page.length < o.listPageSize) return;
      marker = last.name;
    }
  }

  async function* list(prefix: string, opts: RequestOptions = {}): AsyncGenerator<ObjectMeta> {
    for await (const e of listEntries(prefix, opts)) yield { key: e.name, size: e.bytes };
  }

  async function remove(key: string, opts: RequestOptions = {}): Promise<void> {
    const probe = await client.request({ method: "HEAD", container: o.container, object: key, accept: [404], signal: opts.signal });
    await probe.body.dump();
    if (probe.status === 404) return;
    const isSlo = header(probe.headers, "x-static-large-object")?.toLowerCase() === "true";
    const res = await client.request({
      method: "DELETE",
      container: o.container,
      object: key,
      ...(isSlo ? { query: { "multipart-manifest": "delete" }, headers: { accept: "application/json" } } : {}),
      accept: [404],
      signal: opts.signal,
    });
    if (!isSlo || res.status === 404) {
      await res.body.dump();
      return;
    }
    // A manifest delete answers 200 and reports its own outcome (and each segment's) in the body.
    const report = (await res.body.json()) as { "Response Status"?: unknown; Errors?: unknown };
    const status = typeof report["Response Status"] === "string" ? report["Response Status"] : "";
    if (!/^2\d\d/.test(status)) {
      throw fail(`deleting the large object failed: ${status} ${JSON.stringify(report.Errors ?? [])}`, key, { status: Number.parseInt(status, 10) || undefined });
    }
  }

  /** Whether the cluster offers bulk upload (`bulk_upload` in /info), asked once. */
  let bulkOffered: Promise<boolean> | undefined;
  /** Set when Swift refused a listing or archive (401/403): the rest go one request each. */
  let bulkRefused = false;

  /** The number of objects in the container (0 when it does not exist yet). */
  async function containerObjects(signal?: AbortSignal): Promise<number> {
    const res = await withRetry(() => client.request({ method: "HEAD", container: o.container, accept: [404], signal }), { signal, onRetry: logRetry("HEAD of the container") });
    await res.body.dump();
    if (res.status === 404) return 0;
    const n = Number(header(res.headers, "x-container-object-count"));
    return Number.isSafeInteger(n) && n >= 0 ? n : Number.POSITIVE_INFINITY;
  }

  /** Size and MD5 of every object under `prefix`, by key. */
  async function listed(prefix: string, signal?: AbortSignal): Promise<Map<string, StoredObject>> {
    const found = new Map<string, StoredObject>();
    for await (const e of listEntries(prefix, { signal })) found.set(e.name, { size: e.bytes, md5: bareEtag(e.hash) });
    return found;
  }

  /** One archive through the bulk middleware; its report, or null when Swift sent none. */
  async function putArchive(archive: Buffer, signal?: AbortSignal): Promise<BulkReport | null> {
    return withRetry(
      async () => {
        const res = await client.request({
          method: "PUT",
          container: o.container,
          query: { "extract-archive": "tar" },
          headers: { accept: "application/json", "content-type": "application/x-tar", "content-length": String(archive.length) },
          body: () => archive,
          signal,
        });
        return parseBulkReport(await res.body.text());
      },
      { signal, onRetry: logRetry("bulk upload") },
    );
  }

  /**
   * Stores a group of small objects sharing the listing prefix `prefix` as one archive, and
   * verifies each by listing (see ./swift-bulk.ts). What the listing does not show verified is
   * settled one by one (settleAlone).
   */
  async function storeGroup<T>(group: StoreRequest<T>[], prefix: string, opts: BatchOptions, emptyAtStart: boolean): Promise<StoreOutcome<T>[]> {
    const { signal } = opts;
    const outcomes: StoreOutcome<T>[] = [];
    const todo = new Set(group);
    /** Went out in an archive and may be stored: never trusted before its MD5 is seen. */
    const sent = new Set<StoreRequest<T>>();
    const done = (request: StoreRequest<T>, uploaded: boolean) => {
      todo.delete(request);
      outcomes.push({ request, uploaded });
    };
    try {
      // A container empty when the run began holds only what this run stored (each key once, see
      // storeObjectsBulk) and what other hosts stored since, the same bytes: no need to ask.
      const before = emptyAtStart ? new Map<string, StoredObject>() : await listed(prefix, signal);
      const send = new Map<string, StoreRequest<T>>();
      for (const r of group) {
        if (before.get(r.key)?.size === r.source.size || send.has(r.key)) done(r, false);
        // One listed with another size goes the one-request way, whose precondition keeps it as it is.
        else if (!before.has(r.key)) send.set(r.key, r);
      }
      if (send.size) {
        for (const r of send.values()) sent.add(r);
        const archive = tarArchive([...send.values()].map((r) => ({ name: r.key, data: r.source.bytes ?? Buffer.alloc(0) })));
        const report = await putArchive(archive, signal);
        client.log(
          `swift: bulk upload of ${send.size} objects under "${prefix}": ${report ? `${report.created} created, ${report.errors.length} failed (${report.status})` : "no report"}`,
        );
        // Not created: it goes up on its own, without a HEAD first.
        if (report?.created === 0) sent.clear();
        for (const e of report?.errors ?? []) {
          const r = send.get(e.path.slice(o.container.length + 1));
          if (r) sent.delete(r);
        }
        const after = sent.size ? await listed(prefix, signal) : new Map<string, StoredObject>();
        for (const r of sent) {
          const stored = after.get(r.key);
          if (stored?.size === r.source.size && stored.md5 === md5Of(r.source)) {
            opts.onBytes?.(r.source.size);
            done(r, true);
          }
        }
      }
    } catch (err) {
      // Not allowed to list or unpack here (e.g. a write-only container ACL): no more archives this run.
      if (err instanceof StoreError && (err.status === 401 || err.status === 403)) bulkRefused = true;
      client.log(`swift: bulk upload under "${prefix}" failed (${errorMessage(err)}); settling its ${todo.size} objects one by one`);
    }
    // One at a time: the group holds one of the batch's --concurrency slots.
    for (const r of todo) outcomes.push(await settleAlone(r, sent.has(r), opts));
    return outcomes;
  }

  /**
   * An object of a group that the listing did not show verified. If it went out in an archive,
   * a HEAD asks about it (container listings may lag behind new objects): stored with the MD5
   * pantri hashed, it is done; stored with other bytes, it is removed. Then it goes up the
   * one-request way, whose create-only PUT and ETag check stand for it.
   */
  async function settleAlone<T>(r: StoreRequest<T>, sent: boolean, opts: BatchOptions): Promise<StoreOutcome<T>> {
    if (sent) {
      try {
        const md5 = md5Of(r.source);
        const stored = await withRetry(() => headStored(r.key, opts.signal), { signal: opts.signal, onRetry: logRetry(`HEAD of ${r.key}`) });
        if (stored?.size === r.source.size && stored.md5 === md5) {
          opts.onBytes?.(r.source.size);
          return { request: r, uploaded: true };
        }
        if (stored) {
          client.log(`swift: ${r.key} was stored with MD5 ${stored.md5 ?? "?"} and ${stored.size} bytes, not ${md5} and ${r.source.size}; removing it`);
          await withRetry(() => remove(r.key, { signal: opts.signal }), { signal: opts.signal, onRetry: logRetry(`removing ${r.key}`) });
        }
      } catch (err) {
        // Unknown or other bytes left under the key: the create-only PUT would take them for ours.
        return { request: r, uploaded: false, error: gaveUp(err) };
      }
    }
    return storeOne(store, r, opts);
  }


  /**
   * storeObjects with bulk upload: small objects whose content is in memory go up in archives
   * (see ./swift-bulk.ts), the rest through the batch layer's one-object step, all under one
   * concurrency limit. Without bulk upload on the cluster, it is the batch layer's own.
   */
  function storeObjectsBulk<T>(
    requests: Iterable<StoreRequest<T>> | AsyncIterable<StoreRequest<T>>,
    opts: BatchOptions,
    perObject: ObjectStore["storeObjects"],
  ): AsyncGenerator<StoreOutcome<T>> {
    // A handful handed over at once (a staged file's one): no archive could fill, so ask the cluster nothing.
    if (Array.isArray(requests) && requests.length < BULK_MIN_OBJECTS) return perObject(requests, opts);
    const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
    shareSignal(opts.signal, concurrency);
    async function* outcomes(): AsyncGenerator<StoreOutcome<T>> {
      bulkOffered ??= client.capabilities(opts.signal).then((info) => info !== null && typeof info.bulk_upload === "object" && info.bulk_upload !== null);
      let objects: number | null = null;
      if (!(await bulkOffered)) client.log("swift: the cluster offers no bulk upload; one request per object");
      else {
        // Archives are checked by listing, which needs read access: without it, one request per object.
        objects = await containerObjects(opts.signal).catch((err: unknown) => {
          client.log(`swift: no bulk upload: cannot read the container's object count (${errorMessage(err)})`);
          return null;
        });
      }
      const emptyAtStart = objects === 0;
      const groupOf = (r: StoreRequest<T>): string | null => {
        if (objects === null || bulkRefused || !r.source.bytes || r.source.size > BULK_MAX_OBJECT_BYTES) return null;
        // Each object grouped is counted in: the container grows as the run goes on.
        const digits = groupDigits(objects);
        const prefix = digits === null ? null : groupPrefix(r.key, digits);
        if (prefix !== null) objects++;
        return prefix;
      };
      // A key met again in this run waits until the rest is done, then finds its object there:
      // two groups (or a group and a single PUT) racing for one key would both upload it.
      const seen = new Set<string>();
      const again: StoreRequest<T>[] = [];
      async function* firsts(): AsyncGenerator<StoreRequest<T>> {
        for await (const r of requests) {
          if (seen.has(r.key)) again.push(r);
          else {
            seen.add(r.key);
            yield r;
          }
        }
      }
      const units = bulkUnits(firsts(), groupOf);
      for await (const done of mapConcurrent(units, concurrency, async (u) => ("single" in u ? [await storeOne(store, u.single, opts)] : storeGroup(u.group, u.prefix, opts, emptyAtStart)))) {
        yield* done;
      }
      yield* mapConcurrent(again, concurrency, (r) => storeOne(store, r, opts));
    }
    return failFast(outcomes(), description, giveUpAfter(concurrency));
  }

  const store = withBatch({
    description,
    md5PartSize: o.segmentSize,
    ...(o.stagedUploads ? { stageUpload, stageMinBytes: o.stageMinBytes } : {}),
    // Also with stagedUploads off: segments staged before it was turned off are still removed.
    cleanUp: cleanUpOnce,
    head,
    put: async (key, source, opts = {}) => {
      await (source.size <= o.segmentSize ? putSingle(key, source, opts) : putLarge(key, source, opts));
    },
    // A single object is one create-only PUT; a large one is asked about before its segments go up.
    putIfAbsent: async (key, source, opts = {}) => {
      if (source.size <= o.segmentSize) return putSingle(key, source, opts);
      if (await head(key, opts)) return false;
      return putLarge(key, source, opts);
    },
    get,
    list,
    delete: remove,
    async authenticate(opts: RequestOptions = {}) {
      if (!auth.renewable) {
        // Nothing to log in with: check the pre-issued token instead.
        const res = await client.request({ method: "HEAD", signal: opts.signal });
        await res.body.dump();
        const session = await client.session();
        return { detail: session.storageUrl };
      }
      const { session, cachedAt } = await client.authenticate(opts.signal);
      return { cachedAt, detail: session.storageUrl, ...(session.expiresAt !== undefined ? { expiresAt: session.expiresAt } : {}) };
    },
    async testAuth(opts: RequestOptions = {}) {
      const session = await client.cachedSession();
      if (!session) return false;
      // Past its announced expiry a token is invalid, whatever Swift's token cache still says.
      if (session.expiresAt !== undefined && session.expiresAt <= Date.now()) return false;
      const res = await client.request({ method: "HEAD", session, reauth: false, accept: [401, 403], signal: opts.signal });
      await res.body.dump();
      return res.status >= 200 && res.status < 300;
    },
    close: () => client.close(),
  });
  if (o.bulkUpload) {
    const perObject = store.storeObjects.bind(store);
    store.storeObjects = <T>(requests: Iterable<StoreRequest<T>> | AsyncIterable<StoreRequest<T>>, opts: BatchOptions = {}) => storeObjectsBulk(requests, opts, perObject);
  }
  return store;
};

export default createSwiftStore;
