import type cliProgress from "cli-progress";
import type { PantriEvent, Reporter } from "../core/events.js";
import type { CommandResult, ItemResult } from "../core/result.js";

export interface HumanOptions {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  stderr?: NodeJS.WriteStream;
  stdout?: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
}

function useColor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): boolean {
  return !!stream.isTTY && env.NO_COLOR === undefined && env.TERM !== "dumb";
}

function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/**
 * Turns core's events into stderr output: log lines by level, and a progress bar (bytes, files,
 * rate, ETA) only on a TTY without --json or --quiet. stdout is never touched here.
 */
export function createReporter(opts: HumanOptions): { report: Reporter; stop: () => void } {
  const err = opts.stderr ?? process.stderr;
  const env = opts.env ?? process.env;
  const showBars = !!err.isTTY && !opts.json && !opts.quiet;
  const red = useColor(err, env) ? (s: string) => `\x1b[33m${s}\x1b[0m` : (s: string) => s;
  let bar: cliProgress.SingleBar | null = null;
  // Loaded only when bars can show (a TTY): not for --json, --quiet, CI logs or pipes. It is
  // there long before the first "plan" event, which comes after git and the store have answered.
  let progress: typeof cliProgress | null = null;
  if (showBars) {
    void import("cli-progress").then(
      (m) => (progress = (m as { default?: typeof cliProgress }).default ?? m),
      () => undefined,
    );
  }
  let files = 0;
  let filesDone = 0;
  let bytesDone = 0;
  const started = Date.now();
  const write = (line: string) => {
    if (bar) bar.stop();
    err.write(`${line}\n`);
    if (bar) {
      bar.start(Math.max(bar.getTotal(), 1), bytesDone, { filesDone, files });
    }
  };
  const report: Reporter = (e: PantriEvent) => {
    switch (e.type) {
      case "plan":
        files = e.files;
        if (progress && e.files > 0 && !bar) {
          bar = new progress.SingleBar(
            {
              stream: err,
              format: "{bar} {percentage}% | {done}/{totalBytes} | {filesDone}/{files} files | {rate}/s | ETA {eta_formatted}",
              hideCursor: true,
              clearOnComplete: true,
              etaBuffer: 50,
            },
            progress.Presets.shades_classic,
          );
          bar.start(Math.max(e.bytes, 1), 0, { filesDone: 0, files, done: formatBytes(0), totalBytes: formatBytes(e.bytes), rate: formatBytes(0) });
        }
        break;
      case "bytes":
        bytesDone += e.n;
        if (bar) {
          const secs = Math.max((Date.now() - started) / 1000, 0.001);
          bar.update(Math.min(bytesDone, bar.getTotal()), { done: formatBytes(bytesDone), rate: formatBytes(bytesDone / secs) });
        }
        break;
      case "file-done":
        filesDone++;
        bar?.update({ filesDone });
        break;
      case "log":
        if (e.level === "debug" && !opts.verbose) break;
        if (e.level === "info" && opts.quiet) break;
        write(e.level === "warn" ? red(`warning: ${e.message}`) : e.message);
        break;
    }
  };
  return {
    report,
    stop: () => {
      bar?.stop();
      bar = null;
    },
  };
}

const LABELS: [keyof Pick<CommandResult, "stored" | "retrieved" | "copied" | "removed" | "skipped" | "failed">, string][] = [
  ["stored", "stored"],
  ["retrieved", "retrieved"],
  ["copied", "copied"],
  ["removed", "removed"],
  ["skipped", "skipped"],
  ["failed", "FAILED"],
];

const VERBS: Record<string, string> = { stored: "store", retrieved: "retrieve", copied: "copy", removed: "remove" };

function line(label: string, i: ItemResult, mode: "done" | "dry" | "status"): string {
  const extra = i.error ?? i.reason;
  const uploaded = i.uploaded === false ? " (already in store)" : "";
  const verb = VERBS[label];
  const shown = verb && mode === "dry" ? `would ${verb}` : verb && mode === "status" ? `to ${verb}` : label;
  return `${shown.padEnd(16)} ${i.path}${uploaded}${extra ? `  (${extra})` : ""}`;
}

/** Human rendering: one line per item on stdout (skips only with --verbose), a summary on stderr. */
export function renderHuman(result: CommandResult, opts: HumanOptions): void {
  const out = opts.stdout ?? process.stdout;
  const err = opts.stderr ?? process.stderr;
  const dry = result.dryRun && result.command !== "status";
  const mode = result.command === "status" ? "status" : dry ? "dry" : "done";
  for (const [key, label] of LABELS) {
    if (key === "skipped" && !opts.verbose) continue;
    if (opts.quiet && key !== "failed") continue;
    const target = key === "failed" ? err : out;
    for (const i of result[key]) target.write(`${line(label, i, key === "failed" ? "done" : mode)}\n`);
  }
  if (result.command === "auth" && !opts.quiet) {
    const d = result.details;
    if (d.valid !== undefined) out.write(`${d.valid ? "token valid" : "no valid token"} for ${String(d.store)}\n`);
    else out.write(`${d.note ? String(d.note) : `authenticated to ${String(d.store)}${d.detail ? ` (${String(d.detail)})` : ""}`}\n`);
  }
  if (opts.quiet) return;
  const checked = typeof result.details.checked === "number" ? [`${result.details.checked} checked`] : [];
  const counts = [...checked, ...LABELS.filter(([k]) => result[k].length > 0).map(([k]) => `${result[k].length} ${k}`)].join(", ") || "nothing to do";
  const commit = typeof result.details.commit === "string" ? `; committed ${result.details.commit.slice(0, 10)}` : "";
  err.write(`pantri ${result.command}${dry ? " (dry run)" : ""}: ${counts}${commit}\n`);
}
