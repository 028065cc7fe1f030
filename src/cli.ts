import { readFileSync } from "node:fs";
import { constants } from "node:os";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { commands } from "./commands/index.js";
import { interruption, outcome, type GlobalArgs } from "./commands/run.js";
import { PantriError, UsageError } from "./core/errors.js";
import { errorJson } from "./output/json.js";

const version = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
const argv = hideBin(process.argv);
const wants = (flag: string) => argv.includes(flag);
const json = wants("--json");
const verbose = wants("--verbose");
const commandName = argv.find((a) => !a.startsWith("-")) ?? "";

/**
 * SIGINT and SIGTERM stop a run cleanly. store and retrieve get an aborted AbortSignal: transfers
 * in flight are cancelled and remove their temporary files, nothing new starts, no commit is made
 * and no sync record advances; pointers of objects already stored stay in the working tree and
 * the next store commits them. pantri then exits 128 + the signal's number (130 for SIGINT, 143
 * for SIGTERM), as shells do. A second signal, a command that cannot stop cleanly, or a stop
 * that takes longer than STOP_GRACE_MS ends the process at once: anything left over then is what
 * a crash leaves, which the next run cleans up or resumes.
 */
const STOP_GRACE_MS = 10_000;
let stoppedBy: NodeJS.Signals | null = null;

function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

function stopNow(signal: NodeJS.Signals, why: string): never {
  const code = signalExitCode(signal);
  const message = `${signal}: ${why}; run the same command again to finish`;
  if (json) process.stdout.write(`${JSON.stringify(errorJson(commandName, message, code), null, 2)}\n`);
  process.stderr.write(`pantri: ${message}\n`);
  process.exit(code);
}

function onStopSignal(signal: NodeJS.Signals): void {
  if (stoppedBy) stopNow(signal, "stopped at once (second signal)");
  if (!interruption.cancellable) stopNow(signal, "stopped");
  stoppedBy = signal;
  process.stderr.write(`pantri: ${signal} received: stopping (cancelling transfers in flight; send it again to quit at once)\n`);
  interruption.controller.abort();
  setTimeout(() => stopNow(signal, `did not stop within ${STOP_GRACE_MS / 1000} s, quit`), STOP_GRACE_MS).unref();
}
process.on("SIGINT", onStopSignal);
process.on("SIGTERM", onStopSignal);

/**
 * The ONLY place that turns errors into exit codes: usage and config errors 2, everything else
 * (a store or git failure, an item that failed) 1, a run stopped by a signal 128 + its number.
 * Stack traces only with --verbose.
 */
function exitWith(err: unknown): never {
  const code = stoppedBy ? signalExitCode(stoppedBy) : err instanceof PantriError ? err.exitCode : 1;
  const message = err instanceof Error ? err.message : String(err);
  if (json) process.stdout.write(`${JSON.stringify(errorJson(commandName, message, code), null, 2)}\n`);
  process.stderr.write(`pantri: ${message}\n`);
  if (verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  if (code === 2 && !(err instanceof PantriError && err.name === "ConfigError")) process.stderr.write("Run pantri --help for usage.\n");
  process.exit(code);
}

try {
  await yargs(argv)
    .scriptName("pantri")
    .usage("$0 <command> [options]\n\nKeep large binaries out of git while git versions them.")
    .option("repo", { type: "string", describe: "The git working copy (default: found from the current folder upwards)", global: true })
    .option("config", { type: "string", describe: "Config file (default: pantri.config.{ts,mts,mjs,js,json} at the repo root)", global: true })
    .option("json", { type: "boolean", default: false, describe: "Print one JSON document on stdout", global: true })
    .option("quiet", { alias: "q", type: "boolean", default: false, describe: "Only errors", global: true })
    .option("verbose", { alias: "v", type: "boolean", default: false, describe: "Debug logs and stack traces", global: true })
    .command(commands)
    .demandCommand(1, "Name a command: store, retrieve, status, verify or auth.")
    .strict()
    .version(version)
    .help()
    .alias("help", "h")
    .wrap(Math.min(110, process.stdout.columns || 110))
    // A failing async handler must never make yargs print help: only parse errors get here as
    // usage errors; everything else is rethrown to the catch below.
    .fail((msg: string | null, err: Error | undefined) => {
      if (err) throw err;
      throw new UsageError(msg ?? "invalid arguments");
    })
    .parseAsync();
} catch (err) {
  exitWith(err);
}
const result = outcome.result;
if (stoppedBy) {
  process.stderr.write(`pantri: stopped by ${stoppedBy}\n`);
  process.exitCode = signalExitCode(stoppedBy);
} else {
  process.exitCode = result && !result.ok ? 1 : 0;
}
export type { GlobalArgs };
