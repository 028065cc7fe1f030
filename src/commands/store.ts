import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { defined, runCommand, type GlobalArgs } from "./run.js";

interface StoreArgs extends GlobalArgs {
  paths: string[];
  checksum?: boolean;
  commit: boolean;
  push: boolean;
  dryRun: boolean;
  concurrency?: number;
}

export const storeCommand: CommandModule<GlobalArgs, StoreArgs> = {
  command: "store [paths..]",
  describe: "Upload binaries under shelves/ to the object store and commit their pointers",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional("paths", { type: "string", array: true, default: [] as string[], describe: "Files or folders under shelves/ (default: all of shelves/)" })
      .option("checksum", { type: "boolean", describe: "Re-hash files even when size and mtime match their pointer" })
      .option("commit", { type: "boolean", default: true, describe: "Commit the pointers (--no-commit leaves them staged)" })
      .option("push", { type: "boolean", default: false, describe: "Push the commit to the upstream branch" })
      .option("dry-run", { type: "boolean", default: false, describe: "Hash and print the plan; change nothing" })
      .option("concurrency", { type: "number", describe: "Parallel uploads (default 16, or `concurrency` in config)" }) as unknown as Argv<StoreArgs>,
  handler: (argv: ArgumentsCamelCase<StoreArgs>) =>
    runCommand(
      argv,
      { overrides: defined({ checksum: argv.checksum, concurrency: argv.concurrency }) },
      () => import("../core/store.js"),
      (core, s, signal) =>
        core.store(s, {
          // Paths after `--` (names that look like options) land in argv._, after the command's name.
          paths: [...argv.paths, ...argv._.slice(1).map(String)],
          checksum: argv.checksum, commit: argv.commit, push: argv.push, dryRun: argv.dryRun, concurrency: argv.concurrency, signal }),
      { cancellable: true },
    ),
};
