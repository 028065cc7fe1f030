import type { CommandResult } from "../core/result.js";
import type { Session, SessionOptions } from "../core/session.js";

/** Flags every command has (SPEC 4). */
export interface GlobalArgs {
  repo?: string;
  config?: string;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
}

/** What the last command produced; src/cli.ts turns it into the exit code. */
export const outcome: { result: CommandResult | null } = { result: null };

/**
 * SIGINT/SIGTERM handling (src/cli.ts): `controller` is aborted on the first signal. A command
 * that can stop cleanly passes its signal to core and sets `cancellable` while it runs, so the
 * CLI waits for it to wind down; any other command is simply ended.
 */
export const interruption = { controller: new AbortController(), cancellable: false };

/**
 * Opens a session for the command, runs the core function, and renders its result as JSON or
 * text. Errors are not caught here: they travel to src/cli.ts.
 */
export async function runCommand<Core>(
  argv: GlobalArgs,
  session: Omit<SessionOptions, "repo" | "configFile" | "report">,
  /** Imports the command's core module (see below). */
  load: () => Promise<Core>,
  fn: (core: Core, session: Session, signal: AbortSignal) => Promise<CommandResult>,
  opts: { cancellable?: boolean } = {},
): Promise<void> {
  // Loaded here, not at the top: `pantri --help` must not pay for git, globbing or progress bars.
  const [{ Session }, { createReporter, renderHuman }, { toJson }] = await Promise.all([
    import("../core/session.js"),
    import("../output/human.js"),
    import("../output/json.js"),
  ]);
  const { report, stop } = createReporter({ json: argv.json, quiet: argv.quiet, verbose: argv.verbose });
  let s: Session | null = null;
  try {
    const opening = Session.open({ ...session, repo: argv.repo, configFile: argv.config, report });
    // The command's core module compiles while git finds the repo (started after the session,
    // so that git's process is already running); a load failure surfaces when it is awaited.
    const core = load();
    core.catch(() => {});
    s = await opening;
    interruption.cancellable = !!opts.cancellable;
    const result = await fn(await core, s, interruption.controller.signal);
    stop();
    outcome.result = result;
    if (argv.json) process.stdout.write(`${JSON.stringify(toJson(result), null, 2)}\n`);
    else renderHuman(result, { json: false, quiet: argv.quiet, verbose: argv.verbose });
  } finally {
    stop();
    await s?.close();
  }
}

/** Drops undefined values so config precedence is not overridden by absent flags. */
export function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
