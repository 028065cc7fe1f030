import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { runCommand, type GlobalArgs } from "./run.js";

interface VerifyArgs extends GlobalArgs {
  shelf?: string[];
  dest?: string;
  remote: boolean;
  repair: boolean;
  password_file: boolean;
  concurrency?: number;
}

export const verifyCommand: CommandModule<GlobalArgs, VerifyArgs> = {
  command: "verify",
  describe: "Re-hash dest (and with --remote the store's objects) against the pointers",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option("shelf", { alias: "s", type: "string", array: true, describe: "Shelves to verify (default: all)" })
      .option("dest", { alias: ["d", "dest_sync"], type: "string", describe: "Destination folder to verify (default: destSync)" })
      .option("remote", { type: "boolean", default: false, describe: "Also download and hash every object in the store" })
      .option("repair", { type: "boolean", default: false, describe: "Re-download missing or corrupt dest files" })
      .option("password_file", { alias: "p", type: "boolean", default: false, describe: "Read Swift credentials from the password file" })
      .option("concurrency", { type: "number", describe: "Parallel checks (default 16)" }) as unknown as Argv<VerifyArgs>,
  handler: (argv: ArgumentsCamelCase<VerifyArgs>) =>
    runCommand(argv, { usePasswordFile: argv.password_file }, () => import("../core/verify.js"),
      (core, s) =>
        core.verify(s, { shelves: argv.shelf, dest: argv.dest, remote: argv.remote, repair: argv.repair, concurrency: argv.concurrency }),
    ),
};
