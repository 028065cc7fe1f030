import { setTimeout as sleep } from "node:timers/promises";
import { StoreError } from "./errors.js";

/**
 * The one place that decides whether a failed store request is tried again, and when.
 * Modeled on rclone's shouldRetry: connection-level failures and 408/429/5xx are transient;
 * everything else (4xx, integrity errors) is final.
 */

const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
  "ERR_STREAM_PREMATURE_CLOSE",
  "TimeoutError",
  "RequestTimeout",
]);

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501);
}

/** Walks the cause chain looking for a transient failure. */
export function isRetryable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    if (e instanceof StoreError) {
      if (e.retryable !== undefined) return e.retryable;
      if (e.status !== undefined) return isRetryableStatus(e.status);
    }
    if (typeof e === "object") {
      const o = e as { code?: unknown; name?: unknown; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
      if (typeof o.code === "string" && RETRYABLE_CODES.has(o.code)) return true;
      if (typeof o.name === "string" && RETRYABLE_CODES.has(o.name)) return true;
      if (o.$retryable) return true;
      const s = o.$metadata?.httpStatusCode;
      if (typeof s === "number" && s >= 400) return isRetryableStatus(s);
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

function retryAfterOf(err: unknown): number | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    if (e instanceof StoreError && e.retryAfterMs !== undefined) return e.retryAfterMs;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Parses a Retry-After header (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
  /** Called before each wait, e.g. to log at --verbose. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export const DEFAULT_RETRY: Required<Omit<RetryOptions, "signal" | "onRetry">> = {
  attempts: Number(process.env.PANTRI_RETRY_ATTEMPTS ?? 5),
  baseDelayMs: Number(process.env.PANTRI_RETRY_BASE_MS ?? 250),
  maxDelayMs: 20_000,
};

/** Full-jitter exponential backoff, capped; a server's Retry-After wins when longer. */
export function backoffDelay(attempt: number, err: unknown, opts: RetryOptions = {}): number {
  const base = opts.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs;
  const max = opts.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs;
  const exp = Math.min(max, base * 2 ** (attempt - 1));
  const jittered = Math.random() * exp;
  const after = retryAfterOf(err);
  return after !== undefined ? Math.min(Math.max(after, jittered), 60_000) : jittered;
}

/**
 * Errors a withRetry already spent all its attempts on. An enclosing withRetry (a large object's
 * upload around each segment's) passes them on instead of trying again: nested retries must not
 * multiply, or a dead store would cost attempts x attempts x timeout per object.
 */
const exhausted = new WeakSet<object>();

/** Runs fn until it succeeds, fails with a non-retryable error, or attempts run out. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? DEFAULT_RETRY.attempts);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (typeof err === "object" && err !== null && exhausted.has(err)) throw err;
      if (attempt >= attempts && typeof err === "object" && err !== null) exhausted.add(err);
      if (attempt >= attempts || !isRetryable(err) || opts.signal?.aborted) throw err;
      const delay = backoffDelay(attempt, err, opts);
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : undefined);
    }
  }
}
