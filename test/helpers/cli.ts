/**
 * Runs the REAL command line (`node bin/pantri.js`, built into dist/) as a child process, the way
 * users and their automation do, and hands back its exit code, both streams and the parsed
 * `--json` document. Integration tests (test/git, test/e2e) go through here only.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ResultJson } from "../../src/output/json.js";

export type { ItemJson, ResultJson } from "../../src/output/json.js";

/** The package root (where bin/ and package.json are). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const PANTRI_BIN = join(PACKAGE_ROOT, "bin", "pantri.js");

export interface RunPantriOptions {
  cwd: string;
  /** Added to (and overriding) the parent's environment. */
  env?: Record<string, string>;
  /** Written to the child's stdin, which is then closed. */
  input?: string;
  /** Kill the child after this long (ms); default 60 s. */
  timeoutMs?: number;
}

export interface RunPantriResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as ONE JSON document, or null when it is not exactly one document. */
  json: ResultJson | null;
}

/** Variables a git hook exports; a test run started from a hook must not hand them to pantri. */
const HOOK_ENV = ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR", "GIT_PREFIX"];

function isResultJson(value: unknown): value is ResultJson {
  return typeof value === "object" && value !== null && !Array.isArray(value) && "schemaVersion" in value && "ok" in value;
}

/** `node bin/pantri.js ...args` in opts.cwd. Never rejects on a non-zero exit: tests check `code`. */
export function runPantri(args: string[], opts: RunPantriOptions): Promise<RunPantriResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of HOOK_ENV) delete env[name];
  // Deterministic output: no colours, no progress bars (stderr is a pipe anyway).
  env.NO_COLOR = "1";
  delete env.FORCE_COLOR;
  Object.assign(env, opts.env ?? {});
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [PANTRI_BIN, ...args], { cwd: opts.cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      let json: ResultJson | null = null;
      try {
        const parsed: unknown = JSON.parse(stdout);
        if (isResultJson(parsed)) json = parsed;
      } catch {
        json = null;
      }
      resolvePromise({ code: code ?? (signal ? 128 : -1), stdout, stderr, json });
    });
    child.stdin.on("error", () => undefined); // the child may exit before reading its input
    child.stdin.end(opts.input ?? "");
  });
}

/** Writes `<repo>/pantri.config.json` (2-space JSON); returns its path. */
export async function writeConfig(repo: string, config: Record<string, unknown>): Promise<string> {
  const file = join(repo, "pantri.config.json");
  await writeFile(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

export function sha256Hex(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

export function sha1Hex(data: Buffer | string): string {
  return createHash("sha1").update(data).digest("hex");
}

/** The store key of content (SPEC 3): `<prefix>sha256/<first 2 hex>/<64 hex>`. */
export function contentKeyOf(data: Buffer, prefix = ""): string {
  const h = sha256Hex(data);
  return `${prefix}sha256/${h.slice(0, 2)}/${h}`;
}

/** The exact bytes SPEC 2 prescribes for a v1 pointer. */
export function expectedPointer(path: string, data: Buffer, mtime: number): string {
  return (
    "{\n" +
    '  "pantri": 1,\n' +
    `  "path": ${JSON.stringify(path)},\n` +
    `  "size": ${data.length},\n` +
    `  "sha256": "${sha256Hex(data)}",\n` +
    `  "sha1": "${sha1Hex(data)}",\n` +
    `  "mtime": ${mtime}\n` +
    "}\n"
  );
}

/** `path` of every item in a result list, sorted. */
export function pathsOf(items: readonly { path: string }[] | undefined): string[] {
  return (items ?? []).map((i) => i.path).sort();
}

/** A readable summary of a failed run, for assertion messages. */
export function describeRun(r: RunPantriResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}
