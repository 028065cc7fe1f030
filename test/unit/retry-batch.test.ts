import { describe, expect, it } from "vitest";
import { StoreError } from "../../src/core/errors.js";
import { backoffDelay, isRetryable, parseRetryAfter, withRetry } from "../../src/core/retry.js";
import { mapConcurrent } from "../../src/objectstores/batch.js";

describe("retry policy", () => {
  it("retries transient failures only", () => {
    for (const status of [408, 429, 500, 502, 503, 504]) expect(isRetryable(new StoreError("x", { store: "s", status }))).toBe(true);
    for (const status of [400, 401, 403, 404, 412, 501]) expect(isRetryable(new StoreError("x", { store: "s", status }))).toBe(false);
    expect(isRetryable(Object.assign(new Error("reset"), { code: "ECONNRESET" }))).toBe(true);
    expect(isRetryable(new Error("wrapped", { cause: Object.assign(new Error("t"), { code: "UND_ERR_BODY_TIMEOUT" }) }))).toBe(true);
    expect(isRetryable(new Error("plain"))).toBe(false);
    expect(isRetryable(new StoreError("x", { store: "s", status: 503, retryable: false }))).toBe(false);
  });
  it("honours Retry-After (seconds or a date) and caps backoff", () => {
    expect(parseRetryAfter("3")).toBe(3000);
    expect(parseRetryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    const err = new StoreError("x", { store: "s", status: 429, retryAfterMs: 1234 });
    expect(backoffDelay(1, err, { baseDelayMs: 1 })).toBe(1234);
    for (let i = 1; i < 20; i++) expect(backoffDelay(i, new Error("x"), { baseDelayMs: 100, maxDelayMs: 1000 })).toBeLessThanOrEqual(1000);
  });
  it("stops at the first final error and after the last attempt", async () => {
    let n = 0;
    await expect(withRetry(async () => { n++; throw new StoreError("nope", { store: "s", status: 403 }); }, { baseDelayMs: 1 })).rejects.toThrow("nope");
    expect(n).toBe(1);
    n = 0;
    await expect(withRetry(async () => { n++; throw new StoreError("busy", { store: "s", status: 503 }); }, { attempts: 3, baseDelayMs: 1 })).rejects.toThrow("busy");
    expect(n).toBe(3);
    n = 0;
    expect(await withRetry(async () => { if (++n < 3) throw new StoreError("busy", { store: "s", status: 503 }); return "ok"; }, { baseDelayMs: 1 })).toBe("ok");
  });
});

describe("mapConcurrent", () => {
  it("yields every result once, as each finishes, with at most N in flight, pulling lazily", async () => {
    let active = 0;
    let peak = 0;
    let pulled = 0;
    async function* input() {
      for (let i = 0; i < 50; i++) {
        pulled++;
        yield i;
      }
    }
    const seen: number[] = [];
    for await (const v of mapConcurrent(input(), 4, async (i) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, (i * 7) % 5));
      active--;
      return i * 2;
    })) {
      seen.push(v);
      // Lazy: never more than the workers' worth ahead of what has been yielded.
      expect(pulled - seen.length).toBeLessThanOrEqual(5);
    }
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
    expect(peak).toBe(4);
  });
  it("propagates a worker's exception", async () => {
    const run = async () => {
      for await (const _ of mapConcurrent([1, 2, 3], 2, async (i) => {
        if (i === 2) throw new Error("worker failed");
        return i;
      })) void _;
    };
    await expect(run()).rejects.toThrow("worker failed");
  });
});
