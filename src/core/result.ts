/** What core commands return: plain data that src/output/ renders as text or JSON. */

export interface ItemResult {
  /** Relative to shelves/, `/` separators. */
  path: string;
  /** Absolute path written, removed or read, where there is one. */
  file?: string;
  /** Why it was skipped, or why it will be done (dry run). */
  reason?: string;
  /** Why it failed. */
  error?: string;
  /** Object key in the store, where one is involved. */
  key?: string;
  size?: number;
  sha256?: string;
  /** store: false when the object was already in the store. */
  uploaded?: boolean;
}

export type CommandName = "store" | "retrieve" | "status" | "verify" | "auth";

export interface CommandResult {
  command: CommandName;
  ok: boolean;
  dryRun: boolean;
  stored: ItemResult[];
  retrieved: ItemResult[];
  removed: ItemResult[];
  copied: ItemResult[];
  skipped: ItemResult[];
  failed: ItemResult[];
  /** Command-specific extras (commit made, shelves synced, status lists...). */
  details: Record<string, unknown>;
}

export function emptyResult(command: CommandName, dryRun = false): CommandResult {
  return { command, ok: true, dryRun, stored: [], retrieved: [], removed: [], copied: [], skipped: [], failed: [], details: {} };
}

/** ok is derived, never stored by hand: a result is ok when nothing failed. */
export function finish(result: CommandResult): CommandResult {
  result.ok = result.failed.length === 0;
  const byPath = (a: ItemResult, b: ItemResult) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  for (const list of [result.stored, result.retrieved, result.removed, result.copied, result.skipped, result.failed]) list.sort(byPath);
  return result;
}
