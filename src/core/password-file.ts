import { open } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { PantriError } from "./errors.js";

/** Where `retrieve -p` looks when `passwordFile` is not configured (SPEC 7). */
export function defaultPasswordFile(): string {
  return join(homedir(), ".config", "pantri", "password.json");
}

/**
 * Reads the Swift password file `{"username": ..., "password": ...}`. It is refused when group or
 * others may read or write it, as ssh refuses a private key: a password others can read is no
 * longer a secret, and one they can write lets them choose whose account we use. Mode and content
 * come from the same open file, so the file checked is the file read. The password never appears
 * in an error.
 */
export async function readPasswordFile(path: string): Promise<{ username: string; password: string }> {
  let fh;
  try {
    fh = await open(path, "r");
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      throw new PantriError(
        `password file ${path} does not exist: create it with {"username": "...", "password": "..."} and chmod 600 ${path} (the default location is ${defaultPasswordFile()}; passwordFile in the config picks another)`,
      );
    }
    throw new PantriError(`cannot open password file ${path}: ${(err as Error).message}`);
  }
  let text: string;
  try {
    const { mode } = await fh.stat();
    if (mode & 0o077) {
      throw new PantriError(
        `password file ${path} is accessible by group or others (mode ${(mode & 0o777).toString(8).padStart(3, "0")}): run chmod 600 ${path}`,
      );
    }
    text = await fh.readFile("utf8");
  } finally {
    await fh.close();
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text it choked on, which may be the password: not repeated.
    throw new PantriError(`password file ${path} is not valid JSON: it must hold {"username": "...", "password": "..."}`);
  }
  const o = data as { username?: unknown; password?: unknown } | null;
  if (
    typeof o !== "object" ||
    o === null ||
    Array.isArray(o) ||
    typeof o.username !== "string" ||
    o.username === "" ||
    typeof o.password !== "string" ||
    o.password === ""
  ) {
    throw new PantriError(`password file ${path} must hold a JSON object with non-empty string "username" and "password"`);
  }
  return { username: o.username, password: o.password };
}
