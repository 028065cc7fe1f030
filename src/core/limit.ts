import pLimit from "p-limit";

/**
 * File-system work over many files (lstat, sniffing, hashing dest copies) runs at most this
 * many at once: unbounded Promise.all over tens of thousands of files exhausts file descriptors
 * (EMFILE) and thrashes the disk.
 */
export const FS_CONCURRENCY = 32;

/** Runs `fn` over `items`, at most `limit` at a time, and waits for all. */
export async function forEachLimit<T>(items: Iterable<T>, fn: (item: T) => Promise<void>, limit = FS_CONCURRENCY): Promise<void> {
  const run = pLimit(limit);
  await Promise.all(Array.from(items, (item) => run(() => fn(item))));
}

/**
 * `fn` over `items`, at most `limit` at a time; the results in the order of `items`. When any
 * fails, the others still finish (nothing is left running behind the caller), then the first
 * failure is thrown.
 */
export async function mapLimit<T, R>(items: readonly T[], fn: (item: T) => Promise<R>, limit: number): Promise<R[]> {
  const run = pLimit(Math.max(1, limit));
  const settled = await Promise.allSettled(items.map((item) => run(() => fn(item))));
  return settled.map((s) => {
    if (s.status === "rejected") throw s.reason;
    return s.value;
  });
}
