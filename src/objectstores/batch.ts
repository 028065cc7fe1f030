import { getMaxListeners, setMaxListeners } from "node:events";
import { downloadVerified } from "../core/transfer.js";
import { StoreError } from "../core/errors.js";
import { DEFAULT_RETRY, isRetryable, withRetry } from "../core/retry.js";
import type {
  BaseObjectStore,
  BatchOptions,
  ObjectStore,
  RetrieveOutcome,
  RetrieveRequest,
  StoreOutcome,
  StoreRequest,
} from "./types.js";

/** When the caller names none; pantri itself always passes the configured `concurrency` (default 16). */
export const DEFAULT_CONCURRENCY = 16;

/**
* Runs `work` over a (possibly async, possibly lazy) stream of requests with at most
 * `concurrency` in flight, yielding each result as soon as it finishes, not in input order.
 * Workers pull from one shared iterator, like lib-storage's Upload pulls parts, so a huge or
 * lazily produced input never sits in memory at once. (p-limit would need every task created up
 * front, which holds the whole input and all its pointers in memory.)
 */
export async function* mapConcurrent<I, O>(
  input: Iterable<I> | AsyncIterable<I>,
  concurrency: number,
  work: (item: I) => Promise<O>,
): AsyncGenerator<O> {
  const it = Symbol.asyncIterator in input ? input[Symbol.asyncIterator]() : (input as Iterable<I>)[Symbol.iterator]();
  const limit = Math.max(1, concurrency);
  const done: O[] = [];
  let wake: (() => void) | null = null;
  let failure: { error: unknown } | null = null;
  let active = 0;
  let exhausted = false;
  let pulling = Promise.resolve();

  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  // Pull serially: iterators (generators) must not be re-entered.
  const pull = (): Promise<IteratorResult<I>> => {
    const next = pulling.then(() => it.next());
    pulling = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  };
  const worker = async (): Promise<void> => {
    try {
      for (;;) {
        const r = await pull();
        if (r.done) {
          exhausted = true;
          return;
        }
        done.push(await work(r.value));
        notify();
      }
    } catch (error) {
      failure ??= { error };
    } finally {
      active--;
      notify();
    }
  };
  for (let i = 0; i < limit; i++) {
    active++;
    void worker();
  }
  try {
    for (;;) {
      while (done.length) yield done.shift() as O;
      if (failure) throw (failure as { error: unknown }).error;
      if (active === 0) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (done.length || active === 0 || failure) notify();
      });
    }
  } finally {
    if (!exhausted) await it.return?.();
  }
}

/**
 * The values of several generators as each comes, whichever yields first. Ends when all have
 * ended; the first failure is thrown (after the others were asked to stop).
 */
export async function* mergeAsync<T>(...sources: AsyncGenerator<T>[]): AsyncGenerator<T> {
  type Step = { source: AsyncGenerator<T>; result: IteratorResult<T> };
  const pending = new Map<AsyncGenerator<T>, Promise<Step>>();
  const advance = (source: AsyncGenerator<T>) => pending.set(source, source.next().then((result) => ({ source, result })));
  for (const s of sources) advance(s);
  try {
    while (pending.size) {
      const { source, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(source);
        continue;
      }
      advance(source);
      yield result.value;
    }
  } finally {
    // Stopped early (a failure, or the consumer left): stop the others too. A generator busy in
    // next() finishes that step first; its result is not wanted.
    await Promise.allSettled([...pending.keys()].map((s) => s.return(undefined)));
  }
}

/**
 * Up to this size an object goes up without a HEAD first when the store has `putIfAbsent`: one
 * request instead of two. Small objects are bound by per-request cost (Swift's proxy is Python;
 * FIELD.md), and if the object is there already, a few KiB were sent for nothing. Bigger objects
 * are asked about first, since re-sending them would cost more than the round trip.
 */
export const PUT_WITHOUT_HEAD_MAX_BYTES = 1 << 20;

/** The one-object store step: head, then upload unless already present. Retried as a whole. */
export async function storeOne<T>(store: BaseObjectStore, req: StoreRequest<T>, opts: BatchOptions): Promise<StoreOutcome<T>> {
  // Each request is retried on its own: retrying HEAD and PUT as one unit would make a flaky
  // store fail an object when either of two requests failed on every attempt.
  const retry = { signal: opts.signal };
  try {
    const putIfAbsent = store.putIfAbsent?.bind(store);
    if (putIfAbsent && req.source.size <= PUT_WITHOUT_HEAD_MAX_BYTES) {
      return { request: req, uploaded: await withRetry(() => putIfAbsent(req.key, req.source, opts), retry) };
    }
    const existing = await withRetry(() => store.head(req.key, { signal: opts.signal }), retry);
    if (existing && existing.size === req.source.size) return { request: req, uploaded: false };
    await withRetry(() => store.put(req.key, req.source, opts), retry);
    return { request: req, uploaded: true };
  } catch (err) {
    return { request: req, uploaded: false, error: gaveUp(err) };
  }
}

async function retrieveOne<T>(store: ObjectStore, req: RetrieveRequest<T>, opts: BatchOptions): Promise<RetrieveOutcome<T>> {
  try {
    // Transport errors keep the partial file, so each retry resumes where the last one stopped.
    await withRetry(() => downloadVerified(store, req, opts), { signal: opts.signal });
    return { request: req };
  } catch (err) {
    return { request: req, error: gaveUp(err) };
  }
}

/**
 * A failure as reported: one that outlived every retry says so, and what to do about it. (The
 * error keeps its class and fields, which callers and the retry policy read.)
 */
export function gaveUp(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  if (isRetryable(e)) e.message += ` (gave up after ${DEFAULT_RETRY.attempts} attempts: check that the store is reachable, then run the same command again)`;
  return e;
}

/**
 * A store that keeps failing is down, not unlucky: after `limit` objects in a row failed with
 * transient errors (each after all its retries), the batch throws instead of trying the rest.
 * Without this, a dead server would cost every remaining object attempts x timeout: hours for a
 * big shelf. Failures that are about one object (missing, corrupt) do not count.
 */
export async function* failFast<T extends { error?: Error }>(outcomes: AsyncGenerator<T>, store: string, limit: number): AsyncGenerator<T> {
  const downAfter = storeDownCounter(store, limit);
  for await (const o of outcomes) {
    yield o;
    downAfter(o.error);
  }
}

/**
 * The failFast rule as a counter, for callers with outcomes of their own (store's staged files):
 * call it with each object's error (undefined on success); it throws once `limit` objects in a
 * row failed with transient errors.
 */
export function storeDownCounter(store: string, limit: number): (error: Error | undefined) => void {
  let inARow = 0;
  return (error) => {
    if (!error) inARow = 0;
    else if (isRetryable(error) && ++inARow >= limit) {
      throw new StoreError(
        `${inARow} objects in a row failed, each after ${DEFAULT_RETRY.attempts} attempts, so the rest were not tried (last error: ${error.message}). ` +
          "Check that the store is reachable and healthy (pantri auth --test), then run the same command again: what finished is kept",
        { store, cause: error, retryable: false },
      );
    }
  };
}

/** Objects in a row that must fail before a batch gives up on its store. */
export function giveUpAfter(concurrency: number): number {
  return Math.max(4, concurrency);
}

/**
 * Gives a store built from single-object methods the batch generators of the ObjectStore
 * contract: bounded concurrency, shared retry policy, verified downloads, each object yielded
 * the moment it is done so the caller can persist its pointer right away.
 */
/**
 * Every transfer in flight listens on the one abort signal (the HTTP request, the stream
 * pipeline, a retry's sleep: a few listeners each), so at --concurrency 16 Node would warn of
 * a listener leak that is none. Raise the signal's limit to what this batch can hold.
 */
export function shareSignal(signal: AbortSignal | undefined, concurrency: number): void {
  if (!signal) return;
  const needed = 4 * concurrency + 10;
  if (getMaxListeners(signal) < needed) setMaxListeners(needed, signal);
}

export function withBatch(base: BaseObjectStore): ObjectStore {
  const store: ObjectStore = Object.assign(base, {
    storeObjects:
      base.storeObjects ??
      (<T>(requests: Iterable<StoreRequest<T>> | AsyncIterable<StoreRequest<T>>, opts: BatchOptions = {}) => {
        const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
        shareSignal(opts.signal, concurrency);
        return failFast(mapConcurrent(requests, concurrency, (r) => storeOne(base, r, opts)), base.description, giveUpAfter(concurrency));
      }),
    retrieveObjects:
      base.retrieveObjects ??
      (<T>(requests: Iterable<RetrieveRequest<T>> | AsyncIterable<RetrieveRequest<T>>, opts: BatchOptions = {}) => {
        const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
        shareSignal(opts.signal, concurrency);
        return failFast(mapConcurrent(requests, concurrency, (r) => retrieveOne(store, r, opts)), store.description, giveUpAfter(concurrency));
      }),
  });
  return store;
}

