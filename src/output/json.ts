import type { CommandName, CommandResult, ItemResult } from "../core/result.js";

/** Bumped only when a field changes meaning or goes away; new fields do not bump it. */
export const SCHEMA_VERSION = 1;

/** An item in the JSON lists: the same fields core reports (see ItemResult). */
export type ItemJson = ItemResult;

/** The one document `--json` prints on stdout. Command-specific fields sit beside the lists. */
export interface ResultJson {
  schemaVersion: typeof SCHEMA_VERSION;
  command: CommandName | string;
  ok: boolean;
  dryRun: boolean;
  stored: ItemJson[];
  retrieved: ItemJson[];
  removed: ItemJson[];
  copied: ItemJson[];
  skipped: ItemJson[];
  failed: ItemJson[];
  /** Set when the command failed as a whole (usage, config, git or store error). */
  error?: { message: string; exitCode: number };
  [detail: string]: unknown;
}

/** Copies an item without undefined fields, so documents stay small and stable. */
function item(i: ItemResult): ItemJson {
  return Object.fromEntries(Object.entries(i).filter(([, v]) => v !== undefined)) as ItemJson;
}

/** Pure mapping from a command's result to its JSON document. */
export function toJson(result: CommandResult): ResultJson {
  const reserved = new Set(["schemaVersion", "command", "ok", "dryRun", "stored", "retrieved", "removed", "copied", "skipped", "failed", "error"]);
  const details = Object.fromEntries(Object.entries(result.details).filter(([k]) => !reserved.has(k)));
  return {
    schemaVersion: SCHEMA_VERSION,
    command: result.command,
    ok: result.ok,
    dryRun: result.dryRun,
    ...details,
    stored: result.stored.map(item),
    retrieved: result.retrieved.map(item),
    removed: result.removed.map(item),
    copied: result.copied.map(item),
    skipped: result.skipped.map(item),
    failed: result.failed.map(item),
  };
}

/** The document for a command that failed as a whole. */
export function errorJson(command: string, message: string, exitCode: number): ResultJson {
  return {
    schemaVersion: SCHEMA_VERSION,
    command,
    ok: false,
    dryRun: false,
    stored: [],
    retrieved: [],
    removed: [],
    copied: [],
    skipped: [],
    failed: [],
    error: { message, exitCode },
  };
}
