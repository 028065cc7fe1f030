import { downloadVerified } from "../core/transfer.js";
import { withRetry } from "../core/retry.js";
import type {
  BaseObjectStore,
  BatchOptions,
  ObjectStore,
  RetrieveOutcome,
  RetrieveRequest,
  StoreOutcome,
  StoreRequest,
} from "./types.js";

export const DEFAULT_CONCURRENCY = 8;

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

/** The one-object store step: head, then upload unless already present. Retried as a whole. */
async function storeOne<T>(store: BaseObjectStore, req: StoreRequest<T>, opts: BatchOptions): Promise<StoreOutcome<T>> {
  try {
    return await withRetry(
      async () => {
        const existing = await store.head(req.key, { signal: opts.signal });
        if (existing && existing.size === req.source.size) return { request: req, uploaded: false };
        await store.put(req.key, req.source, opts);
        return { request: req, uploaded: true };
      },
      { signal: opts.signal },
    );
  } catch (err) {
    return { request: req, uploaded: false, error: err instanceof Error ? err : new Error(String(err)) };
  }
}

async function retrieveOne<T>(store: ObjectStore, req: RetrieveRequest<T>, opts: BatchOptions): Promise<RetrieveOutcome<T>> {
  try {
    // Transport errors keep the partial file, so each retry resumes where the last one stopped.
    await withRetry(() => downloadVerified(store, req, opts), { signal: opts.signal });
    return { request: req };
  } catch (err) {
    return { request: req, error: err instanceof Error ? err : new Error(String(err)) };
  }
}

/**
 * Gives a store built from single-object methods the batch generators of the ObjectStore
 * contract: bounded concurrency, shared retry policy, verified downloads, each object yielded
 * the moment it is done so the caller can persist its pointer right away.
 */
export function withBatch(base: BaseObjectStore): ObjectStore {
  const store: ObjectStore = Object.assign(base, {
    storeObjects:
      base.storeObjects ??
      (<T>(requests: Iterable<StoreRequest<T>> | AsyncIterable<StoreRequest<T>>, opts: BatchOptions = {}) =>
        mapConcurrent(requests, opts.concurrency ?? DEFAULT_CONCURRENCY, (r) => storeOne(base, r, opts))),
    retrieveObjects:
      base.retrieveObjects ??
      (<T>(requests: Iterable<RetrieveRequest<T>> | AsyncIterable<RetrieveRequest<T>>, opts: BatchOptions = {}) =>
        mapConcurrent(requests, opts.concurrency ?? DEFAULT_CONCURRENCY, (r) => retrieveOne(store, r, opts))),
  });
  return store;
}

