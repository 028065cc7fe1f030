/**
 * A thin typed client for the OpenStack Swift API, spoken over `undici`.
 *
 * Why our own and not `openstack-swift-client` (see /work/shared/FIELD.md): that package was
 * last touched in 2020 and is built on the deprecated `request` (CVE-2023-28155, and
 * CVE-2025-7783 through form-data); it has no large objects, no retries or timeouts, does not
 * URL-encode object names (it stores `a b#x` as `a b`), writes a 404 page into the file when an
 * object is missing and never re-authenticates after a 401. No better Node Swift library
 * exists, and what pantri needs is a handful of requests. Uploads go through `undici.request`
 * with a streamed body and a Content-Length, never through `fetch`, which buffered a whole
 * 1 GiB body in memory (undici #4058).
 *
 * Retries are not decided here: callers wrap requests in core/retry's `withRetry`, which reads
 * the StoreError's status / cause code. The one thing this client retries itself is a request
 * refused with 401, once, after logging in again, because that is auth, not transport.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { Agent, Dispatcher } from "undici";
import { StoreError } from "../core/errors.js";
import { parseRetryAfter } from "../core/retry.js";

/** A logged-in session: where the account lives and the token that opens it. */
export interface SwiftSession {
  storageUrl: string;
  token: string;
  /** ms since epoch, when the auth server said. */
  expiresAt?: number;
}

/** Headers as undici hands them back. */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** The tiny HTTP surface an auth method gets from the client (same Agent, same timeouts). */
export interface AuthHttpRequest {
  url: string;
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}
export interface AuthHttpResponse {
  status: number;
  statusText: string;
  headers: ResponseHeaders;
  /** The response body (auth responses are small: tempauth's is empty, Keystone's a catalog). */
  text: string;
}
export type AuthHttp = (req: AuthHttpRequest) => Promise<AuthHttpResponse>;

/** What a login gets from the client. */
export interface AuthContext {
  http: AuthHttp;
  /** The store, as errors name it. */
  store: string;
  signal?: AbortSignal;
}

/**
 * One way to obtain a Swift session: v1 tempauth and a pre-issued token here, Keystone v3
 * (POST /v3/auth/tokens, storage URL from the catalog) in ./swift-keystone.ts.
 */
export interface SwiftAuthMethod {
  /** Where credentials are checked, for messages; never holds a secret. */
  readonly endpoint: string;
  /** The credential's identity, naming its token cache file; null when there is nothing to cache. */
  readonly cacheIdentity: { authUrl: string; user: string } | null;
  /** false when no new token can be obtained (a pre-issued token). */
  readonly renewable: boolean;
  /** Values that must never appear in a message or log line. */
  readonly secrets: readonly string[];
  /** What to tell the user when the credential is refused (401). */
  readonly refusedAdvice: string;
  /** Obtains a fresh session; failures are StoreErrors that say what to fix. */
  login(ctx: AuthContext): Promise<SwiftSession>;
}

const V1_ADVICE = "authentication failed: check user/key (objectStore.user/key or ST_USER/ST_KEY)";

/** Swift's v1 auth (tempauth, swauth, and most v1 front ends of Keystone). */
export class TempAuthV1 implements SwiftAuthMethod {
  readonly renewable = true;
  readonly refusedAdvice = V1_ADVICE;
  readonly endpoint: string;
  readonly cacheIdentity: { authUrl: string; user: string };
  readonly secrets: readonly string[];
  constructor(
    private readonly authUrl: string,
    private readonly user: string,
    private readonly key: string,
  ) {
    this.endpoint = safeUrl(authUrl);
    this.cacheIdentity = { authUrl, user };
    this.secrets = [key];
  }
  async login({ http, store, signal }: AuthContext): Promise<SwiftSession> {
    const res = await http({
      url: this.authUrl,
      method: "GET",
      headers: { "x-auth-user": this.user, "x-auth-key": this.key },
      signal,
    });
    if (res.status === 401 || res.status === 403) {
      throw new StoreError(`${V1_ADVICE} (${this.endpoint} answered ${res.status} for user "${this.user}")`, {
        store,
        status: res.status,
        retryable: false,
      });
    }
    if (res.status < 200 || res.status >= 300) {
      throw new StoreError(`login at ${this.endpoint} failed: ${res.status} ${res.statusText}`, {
        store,
        status: res.status,
        retryAfterMs: parseRetryAfter(res.headers["retry-after"]),
      });
    }
    const storageUrl = header(res.headers, "x-storage-url");
    const token = header(res.headers, "x-auth-token") ?? header(res.headers, "x-storage-token");
    if (!storageUrl || !token) {
      throw new StoreError(`login at ${this.endpoint} answered ${res.status} without X-Storage-Url/X-Auth-Token: is objectStore.authUrl a Swift v1 auth URL?`, {
        store,
        retryable: false,
      });
    }
    const expires = Number(header(res.headers, "x-auth-token-expires"));
    return { storageUrl, token, expiresAt: Number.isFinite(expires) && expires > 0 ? Date.now() + expires * 1000 : undefined };
  }
}

/** A token someone else obtained (`storageUrl` + `token`, or OS_STORAGE_URL + OS_AUTH_TOKEN). */
export class PreIssuedToken implements SwiftAuthMethod {
  readonly renewable = false;
  readonly cacheIdentity = null;
  readonly refusedAdvice =
    "the pre-issued token was refused (401): get a fresh one (objectStore.token or OS_AUTH_TOKEN), or configure authUrl/user/key so pantri can log in itself";
  readonly endpoint: string;
  readonly secrets: readonly string[];
  constructor(
    private readonly storageUrl: string,
    private readonly token: string,
  ) {
    this.endpoint = safeUrl(storageUrl);
    this.secrets = [token];
  }
  login(): Promise<SwiftSession> {
    return Promise.resolve({ storageUrl: this.storageUrl, token: this.token });
  }
}

export type HttpMethod = "GET" | "HEAD" | "PUT" | "POST" | "DELETE";

export interface SwiftRequest {
  method: HttpMethod;
  /** Omitted: the account itself. */
  container?: string;
  /** An object name, `/` kept, every segment URL-encoded here. */
  object?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  /** Opens the body afresh; called again when the request is re-sent after a re-login. */
  body?: () => Readable | Buffer | string;
  /** Statuses besides 2xx handed back to the caller instead of thrown as StoreError. */
  accept?: readonly number[];
  /** The pantri key this request is for, named in errors (default: the object name). */
  key?: string;
  signal?: AbortSignal;
  /** false: a 401 is final (used by testAuth, which must not log in). */
  reauth?: boolean;
  /** Use this session instead of the client's (testAuth with the cached token). */
  session?: SwiftSession;
}

export interface SwiftResponse {
  status: number;
  headers: ResponseHeaders;
  body: Readable & { dump(opts?: { limit: number }): Promise<void>; text(): Promise<string>; json(): Promise<unknown> };
}

export interface SwiftClientOptions {
  auth: SwiftAuthMethod;
  /** Replaces the storage URL a login returns (python-swiftclient's --os-storage-url). */
  storageUrl?: string;
  /** Where the token cache file goes; omitted: tokens live in memory only. */
  cacheDir?: string;
  /** The store, as errors name it. */
  description: string;
  /**
   * Parallel requests expected; sizes the connection pool. null: no fixed size, so the pool grows
   * to what the caller runs at once (the batch layer bounds that with --concurrency) instead of
   * quietly capping it.
   */
  concurrency: number | null;
  /** Headers and body inactivity timeout (ms). */
  timeoutMs: number;
  log: (message: string) => void;
}

/** What the token cache file holds. */
interface CachedToken {
  version: 1;
  authUrl: string;
  user: string;
  storageUrl: string;
  token: string;
  cachedAt: number;
  expiresAt?: number;
}

/** Treat a token this close to its announced expiry as expired: a transfer must not start on it. */
const EXPIRY_MARGIN_MS = 60_000;

export class SwiftClient {
  readonly description: string;
  /**
   * The connection pool, made on the first request: undici is ~110 modules plus a WebAssembly
   * HTTP parser (0.1-0.3 s to load here), and a run that sends nothing (a no-op retrieve, a dry
   * run, --help) must not pay for it.
   */
  private agent: Promise<Agent> | null = null;
  private readonly auth: SwiftAuthMethod;
  private readonly opts: SwiftClientOptions;
  /** Every secret met so far (the key, each token), scrubbed from any text leaving this client. */
  private readonly secrets = new Set<string>();
  /** One login in flight or done, shared by all concurrent requests. */
  private current: Promise<SwiftSession> | null = null;
  /** What `current` resolved to, so its expiry can be checked without awaiting it. */
  private settled: SwiftSession | null = null;

  constructor(opts: SwiftClientOptions) {
    this.opts = opts;
    this.auth = opts.auth;
    this.description = opts.description;
    for (const s of opts.auth.secrets) this.addSecret(s);
  }

  private dispatcher(): Promise<Agent> {
    const { concurrency, timeoutMs } = this.opts;
    this.agent ??= import("undici").then(
      ({ Agent }) =>
        new Agent({
          // One connection per transfer plus one spare for logins and listings.
          connections: concurrency === null ? null : Math.max(1, concurrency) + 1,
          keepAliveTimeout: 30_000,
          keepAliveMaxTimeout: 120_000,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        }),
    );
    return this.agent;
  }

  /** The token cache file, or null when tokens are not cached. */
  get cacheFile(): string | null {
    const id = this.auth.cacheIdentity;
    if (!id || !this.opts.cacheDir) return null;
    const hash = createHash("sha256").update(`${id.authUrl}\n${id.user}`).digest("hex").slice(0, 32);
    return join(this.opts.cacheDir, `swift-token-${hash}.json`);
  }

  /** Replaces every known secret in text; use on anything that leaves this client. */
  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join("***");
    return out;
  }

  log(message: string): void {
    this.opts.log(this.redact(message));
  }

  /**
   * The current session: from memory, else the token cache, else a login. A session about to
   * expire (Keystone says when) is replaced by a new login before it is handed out, so a long
   * run renews its token in time instead of collecting a 401 on every request in flight.
   */
  session(): Promise<SwiftSession> {
    if (this.settled && this.auth.renewable && expiresSoon(this.settled)) {
      this.log(`swift: the token for ${this.auth.endpoint} expires at ${new Date(this.settled.expiresAt ?? 0).toISOString()}; logging in again`);
      this.settled = null;
      this.current = null;
      return this.track(this.loginAndCache());
    }
    return this.current ?? this.track(this.loadOrLogin());
  }

  /** Logs in now (ignoring any cached token) and caches the new token. */
  async authenticate(signal?: AbortSignal): Promise<{ session: SwiftSession; cachedAt?: string }> {
    const session = await this.track(this.loginAndCache(signal));
    return { session, cachedAt: this.cacheFile ?? undefined };
  }

  /** The token from the cache file (or the pre-issued one), without logging in; null when none. */
  async cachedSession(): Promise<SwiftSession | null> {
    if (!this.auth.renewable) return this.withStorageUrl(await this.auth.login(this.authContext()));
    return this.readCache();
  }

  /**
   * The cluster's capabilities (`GET /info`, next to `/v1` of the storage URL; public, no token),
   * or null when the cluster does not publish them or cannot be asked.
   */
  async capabilities(signal?: AbortSignal): Promise<Record<string, unknown> | null> {
    try {
      const session = await this.session();
      const url = new URL(session.storageUrl);
      url.pathname = url.pathname.replace(/\/v1(\/.*)?$/, "/info");
      url.search = "";
      const res = await this.http({ url: url.toString(), method: "GET", headers: { accept: "application/json" }, signal });
      if (res.status !== 200) return null;
      const data: unknown = JSON.parse(res.text);
      return typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  }

  /**
   * Sends one request. A 401 makes the client log in again ONCE and re-send it; 2xx and the
   * statuses in `accept` are returned; anything else becomes a StoreError that says what to do.
   * The caller owns the returned body and must consume or dump it.
   */
  async request(req: SwiftRequest): Promise<SwiftResponse> {
    let session = req.session ?? (await this.session());
    let relogged = false;
    for (;;) {
      const res = await this.send(session, req);
      if (res.status === 401 && req.reauth !== false && !req.session && this.auth.renewable && !relogged) {
        await res.body.dump();
        this.log(`swift: token refused (401) on ${req.method} ${this.where(req)}; logging in again`);
        session = await this.renew(session);
        relogged = true;
        continue;
      }
      if ((res.status >= 200 && res.status < 300) || req.accept?.includes(res.status)) return res;
      throw await this.errorFor(res, req);
    }
  }

  /** A StoreError for this failed response (consumes the body). */
  async errorFor(res: SwiftResponse, req: SwiftRequest): Promise<StoreError> {
    const detail = await snippet(res.body);
    const status = res.status;
    const container = req.container ? `container "${req.container}"` : "the account";
    let message: string;
    if (status === 401) message = this.auth.refusedAdvice;
    else if (status === 403)
      message = `access denied (403) to ${container}: this account has no rights there; ask for them or use an account that has`;
    else if (status === 404) message = `not found (404) in ${container}`;
    else if (status === 413) message = `too large for Swift (413)${detail}: lower objectStore.segmentSize (at most 5 GiB)`;
    else if (status === 507) message = `Swift is out of space (507 Insufficient Storage): free space on the cluster`;
    else if (status === 498 || status === 429) message = `Swift is rate-limiting requests (${status})${detail}: lower --concurrency`;
    else message = `${req.method} ${this.where(req)} answered ${status}${detail}`;
    return new StoreError(this.redact(message), {
      store: this.description,
      key: req.key ?? req.object,
      status,
      retryAfterMs: parseRetryAfter(res.headers["retry-after"]),
      // 498 is Swift's ratelimit middleware's "slow down": transient, though not a standard 429.
      ...(status === 498 ? { retryable: true } : {}),
    });
  }

  /** Idempotent: closing twice (a caller and a test harness) is not an error. */
  async close(): Promise<void> {
    const agent = await this.agent?.catch(() => null);
    if (!agent || agent.closed || agent.destroyed) return;
    await agent.close();
  }

  // ------------------------------------------------------------------------------------------

  private where(req: SwiftRequest): string {
    if (req.object !== undefined) return `${req.container ?? ""}/${req.object}`;
    return req.container ?? "account";
  }

  private addSecret(s: string): void {
    // Very short values would scrub harmless text; no real key or token is that short.
    if (s.length >= 4) this.secrets.add(s);
  }

  private readonly http: AuthHttp = async (req) => {
    let res: Dispatcher.ResponseData;
    const url = new URL(req.url);
    try {
      res = await (await this.dispatcher()).request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: req.method,
        headers: req.headers,
        body: req.body ?? null,
        signal: req.signal ?? null,
      });
    } catch (err) {
      throw this.transportError(err, `login at ${this.auth.endpoint}`);
    }
    const text = await res.body.text();
    return { status: res.statusCode, statusText: statusText(res.statusCode), headers: res.headers, text };
  };

  private authContext(signal?: AbortSignal): AuthContext {
    return { http: this.http, store: this.description, signal };
  }

  private withStorageUrl(s: SwiftSession): SwiftSession {
    this.addSecret(s.token);
    return this.opts.storageUrl ? { ...s, storageUrl: this.opts.storageUrl } : s;
  }

  /** Makes `login` the session every request shares; a failed login is forgotten, not cached. */
  private track(login: Promise<SwiftSession>): Promise<SwiftSession> {
    const current: Promise<SwiftSession> = login.then(
      (session) => {
        if (this.current === current) this.settled = session;
        return session;
      },
      (err: unknown) => {
        if (this.current === current) this.current = null;
        throw err;
      },
    );
    this.current = current;
    this.settled = null;
    return current;
  }

  private async loadOrLogin(): Promise<SwiftSession> {
    if (this.auth.renewable) {
      const cached = await this.readCache();
      if (cached && !expiresSoon(cached)) {
        this.log(`swift: using the cached token for ${this.auth.endpoint}`);
        return cached;
      }
    }
    return this.auth.renewable ? this.loginAndCache() : this.withStorageUrl(await this.auth.login(this.authContext()));
  }

  /** After a 401 with `stale`: log in again unless a concurrent request already did. */
  private async renew(stale: SwiftSession): Promise<SwiftSession> {
    const now = await this.session().catch(() => null);
    if (now && now.token !== stale.token) return now;
    return this.track(this.loginAndCache());
  }

  private async loginAndCache(signal?: AbortSignal): Promise<SwiftSession> {
    this.log(`swift: logging in at ${this.auth.endpoint}`);
    const session = this.withStorageUrl(await this.auth.login(this.authContext(signal)));
    await this.writeCache(session);
    return session;
  }

  private async readCache(): Promise<SwiftSession | null> {
    const file = this.cacheFile;
    const id = this.auth.cacheIdentity;
    if (!file || !id) return null;
    let data: unknown;
    try {
      data = JSON.parse(await readFile(file, "utf8"));
    } catch {
      return null; // missing or garbled: a login replaces it
    }
    if (!isCachedToken(data) || data.authUrl !== id.authUrl || data.user !== id.user) return null;
    return this.withStorageUrl({ storageUrl: data.storageUrl, token: data.token, expiresAt: data.expiresAt });
  }

  /** Atomically (temp file + rename), mode 0600: the token is a credential. */
  private async writeCache(session: SwiftSession): Promise<void> {
    const file = this.cacheFile;
    const id = this.auth.cacheIdentity;
    const dir = this.opts.cacheDir;
    if (!file || !id || !dir) return;
    const entry: CachedToken = {
      version: 1,
      authUrl: id.authUrl,
      user: id.user,
      storageUrl: session.storageUrl,
      token: session.token,
      cachedAt: Date.now(),
      ...(session.expiresAt !== undefined ? { expiresAt: session.expiresAt } : {}),
    };
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(entry, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  private async send(session: SwiftSession, req: SwiftRequest): Promise<SwiftResponse> {
    const base = new URL(session.storageUrl);
    let path = base.pathname.replace(/\/+$/, "");
    if (req.container !== undefined) path += `/${encodeSwiftName(req.container)}`;
    if (req.object !== undefined) path += `/${encodeSwiftName(req.object)}`;
    if (req.query) path += `?${new URLSearchParams(req.query).toString()}`;
    const agent = await this.dispatcher();
    const body = req.body?.() ?? null;
    const started = Date.now();
    let res: Dispatcher.ResponseData;
    try {
      res = await agent.request({
        origin: base.origin,
        path,
        method: req.method,
        headers: { ...req.headers, "x-auth-token": session.token },
        body,
        signal: req.signal ?? null,
      });
    } catch (err) {
      if (body instanceof Readable) body.destroy();
      const error = this.transportError(err, `${req.method} ${this.where(req)}`, req.key ?? req.object);
      this.log(`swift: ${req.method} ${base.origin}${path} failed after ${Date.now() - started} ms: ${error.message}`);
      throw error;
    }
    // Swift may answer (401, 404, 412) before reading all of an upload: release the source then.
    if (body instanceof Readable) res.body.once("close", () => body.destroy());
    this.log(`swift: ${req.method} ${base.origin}${path} -> ${res.statusCode} (${Date.now() - started} ms)`);
    return { status: res.statusCode, headers: res.headers, body: res.body };
  }

  /**
   * Wraps a thrown transport error. undici's messages do not include request headers, but the
   * error object is kept as `cause` and may be printed at --verbose, so the cause is a scrubbed
   * copy (message, name, code: what the retry policy reads), never the original object.
   */
  private transportError(err: unknown, what: string, key?: string): StoreError {
    if (err instanceof StoreError) return err;
    const e = err as { message?: unknown; name?: unknown; code?: unknown };
    const message = this.redact(typeof e.message === "string" ? e.message : String(err));
    const cause = Object.assign(new Error(message), {
      name: typeof e.name === "string" ? e.name : "Error",
      ...(typeof e.code === "string" ? { code: e.code } : {}),
    });
    return new StoreError(`${what} failed: ${message}`, { store: this.description, key, cause });
  }
}

/** URL-encodes a Swift name per `/`-separated segment, keeping the `/` (spaces, #, ?, %, +, &, UTF-8). */
export function encodeSwiftName(name: string): string {
  return name.split("/").map(encodeURIComponent).join("/");
}

/** The first value of a header. */
export function header(headers: ResponseHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A URL without any user:password part, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString();
  } catch {
    return "(invalid URL)";
  }
}

/** True when the session's announced expiry is less than EXPIRY_MARGIN_MS away (or past). */
function expiresSoon(session: SwiftSession): boolean {
  return session.expiresAt !== undefined && session.expiresAt - EXPIRY_MARGIN_MS <= Date.now();
}

function statusText(status: number): string {
  const texts: Record<number, string> = { 200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable" };
  return texts[status] ?? "";
}

/** A short, tag-free excerpt of an error body (Swift's are one-line HTML), for messages. */
async function snippet(body: SwiftResponse["body"]): Promise<string> {
  let text = "";
  try {
    for await (const chunk of body) {
      text += String(chunk);
      if (text.length >= 4096) break; // leaving the loop destroys the rest of the body
    }
  } catch {
    // the status says enough
  }
  const plain = text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 300);
  return plain ? ` (${plain})` : "";
}

function isCachedToken(v: unknown): v is CachedToken {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    o.version === 1 &&
    typeof o.authUrl === "string" &&
    typeof o.user === "string" &&
    typeof o.storageUrl === "string" &&
    typeof o.token === "string" &&
    o.token.length > 0 &&
    typeof o.cachedAt === "number" &&
    (o.expiresAt === undefined || typeof o.expiresAt === "number")
  );
}
