import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { runCommand, type GlobalArgs } from "./run.js";

interface StatusArgs extends GlobalArgs {
  shelf?: string[];
  dest?: string;
  remote: boolean;
  checksum?: boolean;
  password_file: boolean;
}

export const statusCommand: CommandModule<GlobalArgs, StatusArgs> = {
  command: "status",
  describe: "Show what store and retrieve would do now (--remote: objects missing from the store)",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option("shelf", { alias: "s", type: "string", array: true, describe: "Shelves to look at (default: all)" })
      .option("dest", { alias: ["d", "dest_sync"], type: "string", describe: "Destination folder to compare (default: destSync)" })
      .option("remote", { type: "boolean", default: false, describe: "Also list pointers whose objects are missing from the store (exit 1 if any)" })
      .option("checksum", { type: "boolean", describe: "Compare by sha256, not size and mtime" })
      .option("password_file", { alias: "p", type: "boolean", default: false, describe: "Read Swift credentials from the password file" }) as unknown as Argv<StatusArgs>,
  handler: (argv: ArgumentsCamelCase<StatusArgs>) =>
    runCommand(argv, { usePasswordFile: argv.password_file }, () => import("../core/status.js"),
      (core, s) =>
        core.status(s, { shelves: argv.shelf, dest: argv.dest, remote: argv.remote, checksum: argv.checksum }),
    ),
};
