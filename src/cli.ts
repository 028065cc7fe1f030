import { readFileSync } from "node:fs";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { commands } from "./commands/index.js";
import { outcome, type GlobalArgs } from "./commands/run.js";
import { PantriError, UsageError } from "./core/errors.js";
import { errorJson } from "./output/json.js";

const version = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
const argv = hideBin(process.argv);
const wants = (flag: string) => argv.includes(flag);
const json = wants("--json");
const verbose = wants("--verbose");
const commandName = argv.find((a) => !a.startsWith("-")) ?? "";

/**
 * The ONLY place that turns errors into exit codes: usage and config errors 2, everything else
 * (a store or git failure, an item that failed) 1. Stack traces only with --verbose.
 */
function exitWith(err: unknown): never {
  const code = err instanceof PantriError ? err.exitCode : 1;
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
process.exitCode = result && !result.ok ? 1 : 0;
export type { GlobalArgs };
