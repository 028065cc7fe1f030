import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { defined, runCommand, type GlobalArgs } from "./run.js";

interface RetrieveArgs extends GlobalArgs {
  shelf?: string[];
  dest?: string;
  force: boolean;
  pitem?: string;
  json_output: boolean;
  ref?: string;
  pull: boolean;
  dryRun: boolean;
  password_file: boolean;
  checksum?: boolean;
  concurrency?: number;
}

export const retrieveCommand: CommandModule<GlobalArgs, RetrieveArgs> = {
  command: "retrieve",
  describe: "Pull the repo, then download what changed into dest and remove what was deleted",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option("shelf", { alias: "s", type: "string", array: true, describe: "Shelves to retrieve (default: all)" })
      .option("dest", { alias: ["d", "dest_sync"], type: "string", describe: "Destination folder (default: destSync from config)" })
      .option("force", { alias: "f", type: "boolean", default: false, describe: "Compare every pointer with dest instead of the git diff" })
      .option("pitem", { alias: "i", type: "string", describe: "Retrieve this one pointer's object (next to it unless -d)" })
      .option("json_output", { alias: "j", type: "boolean", default: false, describe: "Also write <shelf>_updated_objects.json to jsonOutputDir" })
      .option("ref", { type: "string", describe: "Retrieve the tree of this commit, tag or branch instead of HEAD" })
      .option("pull", { type: "boolean", default: true, describe: "Fast-forward from upstream first (--no-pull: don't)" })
      .option("dry-run", { type: "boolean", default: false, describe: "Print the plan; change nothing (not even create dest)" })
      .option("password_file", { alias: "p", type: "boolean", default: false, describe: "Read Swift credentials from the password file" })
      .option("checksum", { type: "boolean", describe: "Compare dest files by sha256, not size and mtime" })
      .option("concurrency", { type: "number", describe: "Parallel downloads (default 16)" }) as unknown as Argv<RetrieveArgs>,
  handler: (argv: ArgumentsCamelCase<RetrieveArgs>) =>
    runCommand(
      argv,
      { usePasswordFile: argv.password_file, overrides: defined({ checksum: argv.checksum, concurrency: argv.concurrency }) },
      () => import("../core/retrieve.js"),
      (core, s, signal) =>
        core.retrieve(s, {
          signal,
          shelves: argv.shelf,
          dest: argv.dest,
          force: argv.force,
          checksum: argv.checksum,
          ref: argv.ref,
          pull: argv.pull,
          dryRun: argv.dryRun,
          pitem: argv.pitem,
          jsonOutput: argv.json_output,
          concurrency: argv.concurrency,
        }),
      { cancellable: true },
    ),
};
