import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { runCommand, type GlobalArgs } from "./run.js";

interface AuthArgs extends GlobalArgs {
  test: boolean;
  password_file: boolean;
}

export const authCommand: CommandModule<GlobalArgs, AuthArgs> = {
  command: "auth",
  describe: "Authenticate to the configured store and cache the token (--test: check the cached one)",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option("test", { type: "boolean", default: false, describe: "Only check the cached token; exit 1 when it is missing or invalid" })
      .option("password_file", { alias: "p", type: "boolean", default: false, describe: "Read Swift credentials from the password file" }) as unknown as Argv<AuthArgs>,
  handler: (argv: ArgumentsCamelCase<AuthArgs>) => runCommand(argv, { usePasswordFile: argv.password_file }, () => import("../core/auth.js"), (core, s) => core.auth(s, { test: argv.test })),
};
