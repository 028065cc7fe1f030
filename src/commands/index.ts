import type { CommandModule } from "yargs";
import { authCommand } from "./auth.js";
import { retrieveCommand } from "./retrieve.js";
import { statusCommand } from "./status.js";
import { storeCommand } from "./store.js";
import { verifyCommand } from "./verify.js";
import type { GlobalArgs } from "./run.js";

/** Every command, listed by hand (yargs commandDir does not work with ESM). */
export const commands = [storeCommand, retrieveCommand, statusCommand, verifyCommand, authCommand] as unknown as CommandModule<GlobalArgs, GlobalArgs>[];
