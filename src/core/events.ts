/**
 * Progress and log events that core emits. Core never writes to a terminal: src/output/
 * turns these into progress bars or nothing (--json, --quiet, no TTY).
 */
export type PantriEvent =
  /** The work ahead is known: files and bytes to transfer. */
  | { type: "plan"; files: number; bytes: number }
  /** Bytes moved (upload, download or hashing). */
  | { type: "bytes"; n: number }
  /** One file is finished (whatever the outcome). */
  | { type: "file-done"; path: string }
  | { type: "log"; level: "info" | "warn" | "debug"; message: string };

export type Reporter = (event: PantriEvent) => void;

export const silentReporter: Reporter = () => {};

/** Helpers so call sites stay short. */
export function info(report: Reporter, message: string): void {
  report({ type: "log", level: "info", message });
}
export function warn(report: Reporter, message: string): void {
  report({ type: "log", level: "warn", message });
}
export function debug(report: Reporter, message: string): void {
  report({ type: "log", level: "debug", message });
}
