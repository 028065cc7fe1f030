import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { Readable, Transform, pipeline } from "node:stream";
import type * as S3Sdk from "@aws-sdk/client-s3";
import type { S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import { ConfigError, StoreError, errorMessage } from "../core/errors.js";
import { withRetry } from "../core/retry.js";
import { withBatch } from "./batch.js";
import type { GetOptions, ObjectMeta, PutSource, RequestOptions, StoreContext, StoreFactory } from "./types.js";

/**
 * The `s3` store: objects in one bucket of AWS S3 or any S3-compatible server (Swift's s3api,
 * MinIO, Ceph RGW). `keyPrefix` is applied by pantri core before keys get here.
 *
 * The AWS SDK is imported on the first request, never at load time: it costs ~300 ms of start-up
 * that `pantri --help` and every local-store run must not pay. The SDK retries nothing
 * (`maxAttempts: 1`): core/retry.ts decides, once, for every store.
 */

const MiB = 1024 * 1024;
/** S3's smallest part (all but the last) and its largest. */
const MIN_PART_SIZE = 5 * MiB;
const MAX_PART_SIZE = 5 * 1024 * MiB;
const MAX_PARTS = 10_000;
const DEFAULT_PART_SIZE = 16 * MiB;
const DEFAULT_QUEUE_SIZE = 4;
const DEFAULT_REGION = "us-east-1";
const CONNECT_TIMEOUT_MS = 15_000;
/**
 * Idle time, not total time, after which a request is abandoned (and retried by core): a 5 GiB
 * download may take an hour, a stalled socket must not. (In @smithy/node-http-handler 4.x
 * `requestTimeout` is a whole-request deadline, so it is deliberately left unset.)
 */
const IDLE_TIMEOUT_MS = 120_000;

export interface S3StoreOptions {
  bucket: string;
  region?: string;
  /** An S3-compatible server, e.g. `http://127.0.0.1:8080`; unset means AWS. */
  endpoint?: string;
  /** Bucket in the path rather than the host name; default true when `endpoint` is set. */
  forcePathStyle?: boolean;
  /**
   * Objects up to this size go in one PutObject; larger ones in parts of this size. A multipart
   * upload holds up to (queueSize + 1) parts in memory, 320 MiB with the defaults.
   */
  partSize?: number;
  /** Parts in flight per multipart upload. */
  queueSize?: number;
  /** MaxKeys of each ListObjectsV2 page (1..1000); small values are for tests. */
  listPageSize?: number;
}

type ClientModule = typeof S3Sdk;

interface Connection {
  sdk: ClientModule;
  client: S3Client;
}

/** Validates the options into a list of readable problems, each naming its key. */
export function parseS3Options(options: Record<string, unknown>): S3StoreOptions {
  const problems: string[] = [];
  const name = (k: string) => `objectStore.${k}`;
  const str = (k: string): string | undefined => {
    const v = options[k];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || v === "") problems.push(`${name(k)} must be a non-empty string`);
    return typeof v === "string" && v !== "" ? v : undefined;
  };
  const int = (k: string, min: number, max: number, what: string): number | undefined => {
    const v = options[k];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      problems.push(`${name(k)} must be ${what}, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  };

  const bucket = str("bucket");
  if (options.bucket === undefined) problems.push(`${name("bucket")} is required: the name of the S3 bucket to store objects in`);
  const region = str("region");
  const endpoint = str("endpoint");
  if (endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      // reported below
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
      problems.push(`${name("endpoint")} must be an http:// or https:// URL, e.g. https://s3.example.com`);
    }
  }
  let forcePathStyle: boolean | undefined;
  if (options.forcePathStyle !== undefined) {
    if (typeof options.forcePathStyle !== "boolean") problems.push(`${name("forcePathStyle")} must be true or false`);
    else forcePathStyle = options.forcePathStyle;
  }
  const partSize = int("partSize", MIN_PART_SIZE, MAX_PART_SIZE, `a whole number of bytes from ${MIN_PART_SIZE} (5 MiB, S3's minimum part) to ${MAX_PART_SIZE} (5 GiB)`);
  const queueSize = int("queueSize", 1, 64, "a whole number from 1 to 64");
  const listPageSize = int("listPageSize", 1, 1000, "a whole number from 1 to 1000");

  if (problems.length || bucket === undefined) throw new ConfigError("invalid s3 store options", problems);
  return { bucket, region, endpoint, forcePathStyle, partSize, queueSize, listPageSize };
}

/** The endpoint without user info, query or trailing slash: safe to show. */
function showEndpoint(endpoint: string): string {
  const url = new URL(endpoint);
  url.username = "";
  url.password = "";
  url.search = "";
  url.hash = "";
  return url.toString().replace(/\/$/, "");
}

interface SdkErrorShape {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $response?: { headers?: Record<string, string | undefined> };
}

/** What to do about a failure, by S3 error name, else by HTTP status. */
const HINTS: Record<string, string> = {
  NoSuchBucket: "create the bucket or fix objectStore.bucket",
  CredentialsProviderError: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an instance role is available",
  301: "the bucket is in another region: set objectStore.region",
  // HEAD responses carry no error body, so a wrong signing region shows only as a bare 400.
  400: "the server refused the request (a wrong objectStore.region does this)",
  403: "access denied: check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the bucket's policy",
};

const createS3Store: StoreFactory = (rawOptions, context) => {
  const options = parseS3Options(rawOptions);
  const { bucket } = options;
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  const queueSize = options.queueSize ?? DEFAULT_QUEUE_SIZE;
  const description = `s3 bucket "${bucket}"${options.endpoint ? ` at ${showEndpoint(options.endpoint)}` : ""}`;
  // Values that must never reach a message, even if a server echoes them back.
  const secrets = [context.env.AWS_SECRET_ACCESS_KEY, context.env.AWS_SESSION_TOKEN].filter((s): s is string => !!s && s.length >= 4);

  const scrub = (text: string): string => secrets.reduce((t, s) => t.split(s).join("***"), text);

  /** Any failure as a StoreError naming bucket, key, HTTP status and the SDK's error name. */
  const toStoreError = (err: unknown, key: string | undefined, action: string): StoreError => {
    if (err instanceof StoreError) return err;
    const e = (err ?? {}) as SdkErrorShape;
    const status = typeof e.$metadata?.httpStatusCode === "number" ? e.$metadata.httpStatusCode : undefined;
    const errName = typeof e.name === "string" ? e.name : "Error";
    // HEAD errors have no body: the SDK then names them "Unknown" / "UnknownError" or by status.
    const named = !/^(Unknown(Error)?|\d+)$/.test(errName);
    const rawMessage = typeof e.message === "string" && e.message !== "" && !/^Unknown(Error)?$/.test(e.message) ? e.message : "";
    const what =
      status !== undefined
        ? named
          ? `${errName}, HTTP ${status}`
          : `HTTP ${status}`
        : typeof e.code === "string" && e.code !== errName
          ? `${errName} ${e.code}`
          : errName;
    const hint = HINTS[errName] ?? (status !== undefined ? HINTS[status] : undefined);
    const detail = [rawMessage, hint].filter(Boolean).join("; ");
    const retryAfter = e.$response?.headers?.["retry-after"];
    const secs = retryAfter !== undefined ? Number(retryAfter) : NaN;
    return new StoreError(scrub(`${action} failed (${what})${detail ? `: ${detail}` : ""}`), {
      store: description,
      key,
      status,
      // A missing bucket is a configuration problem, not a missing object (HEAD cannot tell them apart).
      notFound: errName !== "NoSuchBucket" && (status === 404 || errName === "NoSuchKey" || errName === "NotFound"),
      // Our multipart upload was aborted under us (by a concurrent store of the same object that
      // finished first, or a lifecycle rule): trying again finds the object, or starts afresh.
      ...(errName === "NoSuchUpload" ? { retryable: true } : {}),
      retryAfterMs: Number.isFinite(secs) ? secs * 1000 : undefined,
      cause: err,
    });
  };

  let connecting: Promise<Connection> | undefined;
  const connect = (): Promise<Connection> => {
    connecting ??= openConnection(options, context).catch((err: unknown) => {
      connecting = undefined;
      throw err;
    });
    return connecting;
  };

  /** One SDK call, errors mapped; an abort stays an abort. */
  const call = async <T>(key: string | undefined, action: string, signal: AbortSignal | undefined, fn: (c: Connection) => Promise<T>): Promise<T> => {
    const c = await connect();
    try {
      return await fn(c);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw toStoreError(err, key, action);
    }
  };

  async function putSingle(c: Connection, key: string, source: PutSource, opts: RequestOptions): Promise<void> {
    const body = verifiedSource(source, key, description, opts);
    // The SDK pipes the body into the request and never hears of the body's errors: the request
    // would hang until the idle timeout. Abort it instead, and report the body's error.
    const abort = new AbortController();
    const onAbort = () => abort.abort(opts.signal?.reason);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    let bodyError: unknown;
    body.once("error", (err) => {
      bodyError = err;
      abort.abort(err);
    });
    try {
      await c.client.send(new c.sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: source.size }), {
        abortSignal: abort.signal,
      });
    } catch (err) {
      throw bodyError ?? err;
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      body.destroy();
    }
  }

  async function putMultipart(c: Connection, key: string, source: PutSource, opts: RequestOptions): Promise<void> {
    const { Upload } = await import("@aws-sdk/lib-storage");
    const body = verifiedSource(source, key, description, opts);
    const abortController = new AbortController();
    const onAbort = () => abortController.abort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const upload = new Upload({
      client: c.client,
      params: { Bucket: bucket, Key: key, Body: body, ContentLength: source.size },
      // S3 allows 10,000 parts: a huge object gets bigger parts rather than a failure at part 10,001.
      partSize: Math.max(partSize, Math.ceil(source.size / MAX_PARTS)),
      queueSize,
      // Abort the multipart upload on failure, so no parts are left behind (and billed).
      leavePartsOnError: false,
      abortController,
    });
    try {
      await upload.done();
      await abortOtherUploads(c, key, upload.uploadId);
    } catch (err) {
      // lib-storage aborts the upload itself, but with one attempt and only once its in-flight
      // parts settle; make sure, with the shared retry policy (aborting twice is harmless).
      if (upload.uploadId) await abortMultipart(c, key, upload.uploadId);
      throw err;
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      body.destroy();
    }
  }

  /**
   * A run killed mid-upload (SIGKILL, power loss) cannot abort its multipart upload, and S3 keeps
   * (and bills) the parts until someone does. Once this key's object is complete, any other
   * unfinished upload of it is garbage: the next store of a key cleans up after the dead one. (A
   * concurrent upload of the same content by another host then finds its upload gone, retries,
   * and sees the object stored.) Keys no run stores again need a lifecycle rule (README).
   */
  async function abortOtherUploads(c: Connection, key: string, keep: string | undefined): Promise<void> {
    try {
      const page = await c.client.send(new c.sdk.ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
      for (const u of page.Uploads ?? []) {
        if (u.Key !== key || !u.UploadId || u.UploadId === keep) continue;
        context.log(`${description}: aborting the unfinished multipart upload ${u.UploadId} of ${key} left by an earlier run`);
        await abortMultipart(c, key, u.UploadId);
      }
    } catch (err) {
      context.log(`${description}: could not list the multipart uploads of ${key}: ${errorMessage(err)}`);
    }
  }

  async function abortMultipart(c: Connection, key: string, uploadId: string): Promise<void> {
    try {
      await withRetry(async () => {
        try {
          await c.client.send(new c.sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
        } catch (err) {
          const e = toStoreError(err, key, "aborting the multipart upload");
          if (e.notFound) return; // already aborted
          throw e;
        }
      });
    } catch (err) {
      context.log(`${description}: could not abort multipart upload of ${key}, its parts may remain until a lifecycle rule removes them: ${errorMessage(err)}`);
    }
  }

  return withBatch({
    description,

    async head(key: string, opts: RequestOptions = {}): Promise<ObjectMeta | null> {
      try {
        const out = await call(key, "HeadObject", opts.signal, ({ client, sdk }) =>
          client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: opts.signal }),
        );
        return { key, size: out.ContentLength ?? 0 };
      } catch (err) {
        if (err instanceof StoreError && err.notFound) return null;
        throw err;
      }
    },

    async put(key: string, source: PutSource, opts: RequestOptions = {}): Promise<void> {
      await call(key, "upload", opts.signal, (c) => (source.size <= partSize ? putSingle(c, key, source, opts) : putMultipart(c, key, source, opts)));
    },

    async get(key: string, opts: GetOptions = {}): Promise<Readable> {
      const out = await call(key, "GetObject", opts.signal, ({ client, sdk }) =>
        client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key, Range: opts.start ? `bytes=${opts.start}-` : undefined }), {
          abortSignal: opts.signal,
        }),
      );
      if (!(out.Body instanceof Readable)) {
        throw new StoreError("GetObject returned no readable body", { store: description, key, retryable: true });
      }
      return out.Body;
    },

    async *list(prefix: string, opts: RequestOptions = {}): AsyncGenerator<ObjectMeta> {
      let token: string | undefined;
      do {
        const page = await withRetry(
          () =>
            call(undefined, `ListObjectsV2 of prefix "${prefix}"`, opts.signal, ({ client, sdk }) =>
              client.send(
                new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token, MaxKeys: options.listPageSize }),
                { abortSignal: opts.signal },
              ),
            ),
          { signal: opts.signal },
        );
        for (const o of page.Contents ?? []) {
          if (o.Key !== undefined) yield { key: o.Key, size: o.Size ?? 0 };
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    },

    async delete(key: string, opts: RequestOptions = {}): Promise<void> {
      try {
        await call(key, "DeleteObject", opts.signal, ({ client, sdk }) =>
          client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: opts.signal }),
        );
      } catch (err) {
        if (err instanceof StoreError && err.notFound) return;
        throw err;
      }
    },

    async close(): Promise<void> {
      const pending = connecting;
      connecting = undefined;
      if (!pending) return;
      try {
        (await pending).client.destroy();
      } catch {
        // never connected: nothing to release
      }
    },
  });
};

export default createS3Store;

/** Imports the SDK and builds the client; runs once per store, on its first request. */
async function openConnection(options: S3StoreOptions, context: StoreContext): Promise<Connection> {
  // The SDK warns on stderr, once per process, that its 2027 releases will need Node 22: news
  // for pantri's maintainers, noise in every user's output. Its documented switch turns it off.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const sdk = await import("@aws-sdk/client-s3");
  const env = context.env;
  const caBundle = env.AWS_CA_BUNDLE;
  let ca: Buffer | undefined;
  if (caBundle) {
    // The AWS CLI and boto honour AWS_CA_BUNDLE; the JS SDK v3 ignores it, so pantri does it.
    // Like them it replaces the default trust store (it only matters for https endpoints).
    try {
      ca = await readFile(caBundle);
    } catch (err) {
      throw new ConfigError(`AWS_CA_BUNDLE=${caBundle}: cannot read the CA bundle: ${errorMessage(err)}; fix the path or unset it`, [], { cause: err });
    }
  }
  // Given no logger, the SDK prints some warnings with console.warn (a failed streaming request,
  // socket exhaustion): they go to the debug log instead, stderr is pantri's. Errors are
  // reported by pantri itself, from the StoreError.
  const quiet = () => {};
  const logger = {
    trace: quiet,
    debug: quiet,
    info: quiet,
    warn: (m: unknown) => {
      if (typeof m === "string") context.log(`s3: ${m}`);
    },
    error: quiet,
  };
  const config = (): S3ClientConfig => ({
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
    // A bucket in another region than the one configured still works (one extra round trip).
    followRegionRedirects: true,
    // The SDK's default CRC32 checksums make a streamed PutObject fail on S3-compatible servers
    // such as Swift's s3api (501); pantri verifies content by sha256 itself.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 1,
    requestHandler: {
      connectionTimeout: CONNECT_TIMEOUT_MS,
      socketTimeout: IDLE_TIMEOUT_MS,
      // Agent instances, not agent options: given options, the handler sends every
      // `Expect: 100-continue` request (PutObject over 2 MB) through a fresh default agent,
      // which would drop the keep-alive and, worse, the CA bundle.
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 64, ...(ca ? { ca } : {}) }),
      logger,
    },
    logger,
    // Credentials come from the SDK's default chain (env, profile, SSO, IMDS...). Those in
    // context.env are passed explicitly, so a test or embedder can supply its own environment.
    ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          credentials: {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : env.AWS_PROFILE
        ? { profile: env.AWS_PROFILE }
        : {}),
  });
  const region = options.region ?? env.AWS_REGION;
  if (region) return { sdk, client: new sdk.S3Client({ ...config(), region }) };
  // No region given: ask the SDK's chain (AWS_REGION, the profile's region...), else us-east-1.
  const client = new sdk.S3Client(config());
  try {
    await client.config.region();
    return { sdk, client };
  } catch {
    client.destroy();
    return { sdk, client: new sdk.S3Client({ ...config(), region: DEFAULT_REGION }) };
  }
}

/**
 * The source's bytes, checked against its announced size and sha256 while they stream. The last
 * chunk is held back until the whole content is verified, so a file that changed since it was
 * hashed never completes an upload: the request fails instead, and nothing is stored under a
 * content address whose content it is not.
 */
function verifiedSource(source: PutSource, key: string, store: string, opts: RequestOptions): Transform {
  const hash = createHash("sha256");
  let seen = 0;
  let held: Buffer | undefined;
  const mismatch = (what: string) =>
    new StoreError(
      `refused: the source ${what}, not the announced ${source.size} bytes with sha256 ${source.sha256} (did the file change while it was stored?); nothing was stored`,
      { store, key, retryable: false },
    );
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > source.size) {
        cb(mismatch(`gave more than ${source.size} bytes`));
        return;
      }
      hash.update(chunk);
      opts.onBytes?.(chunk.length);
      const out = held;
      held = chunk;
      cb(null, out);
    },
    flush(cb) {
      const sha256 = hash.digest("hex");
      if (seen !== source.size || sha256 !== source.sha256) {
        cb(mismatch(`gave ${seen} bytes with sha256 ${sha256}`));
        return;
      }
      cb(null, held);
    },
  });
  pipeline(source.open(), check, () => {
    // Errors reach the consumer through `check`, which pipeline destroys with them.
  });
  return check;
}
