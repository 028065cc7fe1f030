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
