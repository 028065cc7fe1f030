/**
 * Shared machinery of the fault-injection suite (test/faults/): spawning the real CLI so it can
 * be killed, direct access to Swift behind pantri's back, and the AUDITS that state what
 * "pantri loses nothing" means after any crash:
 *
 *  - auditPointers: every pointer in git (HEAD, index, working tree) has its object in the store,
 *    with the right size and sha256;
 *  - auditDest: every file under a final name in dest is a complete version some pointer (or
 *    text blob) of the synced or the target commit promises; no half-written file is visible;
 *  - the sync record never advances past a run that did not finish (checked by the tests with
 *    readRecord).
 *
 * Every output of every spawned run is kept in `outputs`; `auditSecretsAfterAll()` makes a file
 * fail if any of them holds a password, key or token.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, expect } from "vitest";
import { SyncRecords } from "../../src/core/state.js";
import { PANTRI_BIN, type ResultJson, type RunPantriResult } from "../helpers/cli.js";
import { writeConfig } from "../helpers/cli.js";
import { makeRepos, type Repos } from "../helpers/gitdir.js";
import { uniqueContainer, type SwiftEndpoints } from "../helpers/swift.js";
import { walkFiles } from "../helpers/tree.js";
import { startFaultProxy, type FaultProxy, type FaultProxyOptions, type ProxyLogEntry } from "./fault-proxy.js";

export const MiB = 1024 * 1024;

export function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

export function keyOf(sha: string, prefix = ""): string {
  return `${prefix}sha256/${sha.slice(0, 2)}/${sha}`;
}

// ------------------------------------------------------------------------------ spawning

export interface SpawnResult extends RunPantriResult {
  /** The signal that ended the process (SIGKILL when the test killed it), or null. */
  signal: NodeJS.Signals | null;
  ms: number;
}

export interface Spawned {
  child: ChildProcess;
  done: Promise<SpawnResult>;
  /** Resolves when stderr or stdout first contains `text`. */
  waitFor(text: string | RegExp): Promise<void>;
}

/** Every stdout/stderr text of every run spawned through here, for the secrets audit. */
export const outputs: string[] = [];

const HOOK_ENV = ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR", "GIT_PREFIX"];

/** `node bin/pantri.js ...args`, killable. Never rejects on a non-zero exit or a signal. */
export function spawnPantri(args: string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Spawned {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of HOOK_ENV) delete env[name];
  env.NO_COLOR = "1";
  delete env.FORCE_COLOR;
  Object.assign(env, opts.env ?? {});
  const started = Date.now();
  const child = spawn(process.execPath, [PANTRI_BIN, ...args], { cwd: opts.cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const waiters: { text: string | RegExp; resolve: () => void }[] = [];
  const check = () => {
    const all = Buffer.concat([...out, ...err]).toString("utf8");
    for (const w of [...waiters]) {
      if (typeof w.text === "string" ? all.includes(w.text) : w.text.test(all)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout?.on("data", (c: Buffer) => {
    out.push(c);
    check();
  });
  child.stderr?.on("data", (c: Buffer) => {
    err.push(c);
    check();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 90_000);
  const done = new Promise<SpawnResult>((resolve, reject) => {
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      outputs.push(stdout, stderr);
      let json: ResultJson | null = null;
      try {
        const parsed = JSON.parse(stdout) as unknown;
        if (parsed && typeof parsed === "object" && "schemaVersion" in parsed) json = parsed as ResultJson;
      } catch {
        json = null;
      }
      const ms = Date.now() - started;
      if (process.env.PANTRI_FAULTS_TIMING) process.stderr.write(`[faults] pantri ${args.join(" ").slice(0, 60)}: ${signal ?? code} in ${ms} ms\n`);
      resolve({ code: code ?? (signal ? 128 : -1), signal, stdout, stderr, json, ms });
    });
  });
  return {
    child,
    done,
    waitFor(text) {
      return new Promise<void>((resolve) => {
        waiters.push({ text, resolve });
        check();
      });
    },
  };
}

export function runPantri(args: string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<SpawnResult> {
  return spawnPantri(args, opts).done;
}

export function describeRun(r: SpawnResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ""} after ${r.ms} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** A stack trace line, which no output may hold without --verbose. */
export const STACK_LINE = /^\s+at .+(\(|:\d+:\d+)/m;

// ------------------------------------------------------------------------------ swift admin

export interface SwiftAdmin {
  storageUrl: string;
  token: string;
}

export async function swiftLogin(ep: SwiftEndpoints): Promise<SwiftAdmin> {
  const res = await request(ep.authUrl, { headers: { "x-auth-user": ep.user, "x-auth-key": ep.key } });
  await res.body.dump();
  const storageUrl = res.headers["x-storage-url"];
  const token = res.headers["x-auth-token"];
  if (res.statusCode !== 200 || typeof storageUrl !== "string" || typeof token !== "string") throw new Error(`swift login failed: ${res.statusCode}`);
  return { storageUrl, token };
}

function objectUrl(a: SwiftAdmin, container: string, key?: string, query = ""): string {
  const enc = (s: string) => s.split("/").map(encodeURIComponent).join("/");
  return `${a.storageUrl}/${encodeURIComponent(container)}${key !== undefined ? `/${enc(key)}` : ""}${query}`;
}

export async function swiftPut(a: SwiftAdmin, container: string, key: string | undefined, body?: Buffer): Promise<number> {
  const res = await request(objectUrl(a, container, key), { method: "PUT", headers: { "x-auth-token": a.token }, body: body ?? "" });
  await res.body.dump();
  return res.statusCode;
}

/** The object's bytes, or null when it is missing. */
export async function swiftGet(a: SwiftAdmin, container: string, key: string): Promise<Buffer | null> {
  const res = await request(objectUrl(a, container, key), { headers: { "x-auth-token": a.token } });
  if (res.statusCode === 404) {
    await res.body.dump();
    return null;
  }
  if (res.statusCode !== 200) throw new Error(`GET ${container}/${key}: ${res.statusCode}`);
  return Buffer.from(await res.body.arrayBuffer());
}

export async function swiftList(a: SwiftAdmin, container: string): Promise<{ name: string; bytes: number }[]> {
  const out: { name: string; bytes: number }[] = [];
  let marker = "";
  for (;;) {
    const res = await request(objectUrl(a, container, undefined, `?format=json&limit=1000${marker ? `&marker=${encodeURIComponent(marker)}` : ""}`), {
      headers: { "x-auth-token": a.token },
    });
    if (res.statusCode === 404) {
      await res.body.dump();
      return out;
    }
    const page = (await res.body.json()) as { name: string; bytes: number }[];
    out.push(...page);
    if (page.length < 1000) return out;
    marker = page.at(-1)?.name ?? "";
  }
}

/** Removes a container and everything in it (tests clean up after themselves). */
export async function swiftDrop(a: SwiftAdmin, container: string): Promise<void> {
  for (const o of await swiftList(a, container)) {
    const res = await request(objectUrl(a, container, o.name), { method: "DELETE", headers: { "x-auth-token": a.token } });
    await res.body.dump();
  }
  const res = await request(objectUrl(a, container), { method: "DELETE", headers: { "x-auth-token": a.token } });
  await res.body.dump();
}

// ------------------------------------------------------------------------------ audits

interface PointerJson {
  path: string;
  size: number;
  sha256: string;
}

function parsePointerText(text: string, where: string, problems: string[]): PointerJson | null {
  try {
    const p = JSON.parse(text) as PointerJson;
    if (typeof p.path !== "string" || typeof p.size !== "number" || typeof p.sha256 !== "string") throw new Error("fields missing");
    return p;
  } catch (err) {
    problems.push(`${where}: not a complete pointer (${(err as Error).message}): ${JSON.stringify(text.slice(0, 80))}`);
    return null;
  }
}

export { walkFiles };

/** Many objects from git in one `git cat-file --batch` (one process, not one per file). */
export async function catBlobs(repo: string, specs: readonly string[]): Promise<Map<string, Buffer | null>> {
  const out = new Map<string, Buffer | null>();
  if (!specs.length) return out;
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const env = { ...process.env };
    for (const name of HOOK_ENV) delete env[name];
    const c = spawn("git", ["cat-file", "--batch"], { cwd: repo, env });
    const chunks: Buffer[] = [];
    c.stdout.on("data", (b: Buffer) => chunks.push(b));
    c.on("error", reject);
    c.on("close", () => resolve(Buffer.concat(chunks)));
    c.stdin.end(`${specs.join("\n")}\n`);
  });
  let at = 0;
  for (const spec of specs) {
    const eol = raw.indexOf(10, at);
    const header = raw.toString("utf8", at, eol);
    at = eol + 1;
    const m = /^(\S+) (\S+) (\d+)$/.exec(header);
    if (!m) {
      out.set(spec, null); // "<spec> missing"
      continue;
    }
    const size = Number(m[3]);
    out.set(spec, raw.subarray(at, at + size));
    at += size + 1;
  }
  return out;
}

/** Pointers at a commit: repo path -> pointer text. */
export async function pointersAt(repos: Repos, repo: string, rev: string): Promise<Map<string, string>> {
  const listing = await repos.git(repo, "ls-tree", "-r", "-z", "--full-tree", rev, "--", "shelves/");
  const wanted: { path: string; oid: string }[] = [];
  for (const rec of listing.split("\0").filter(Boolean)) {
    const [meta, path] = rec.split("\t") as [string, string];
    if (path.endsWith(".pitem")) wanted.push({ path, oid: meta.split(" ")[2] ?? "" });
  }
  const blobs = await catBlobs(repo, wanted.map((w) => w.oid));
  return new Map(wanted.map((w) => [w.path, blobs.get(w.oid)?.toString("utf8") ?? ""]));
}

/**
 * Every pointer in git (committed at HEAD, staged in the index, or in the working tree) must have
 * its object in the store with exactly its size and sha256. Returns the violations (none: []).
 */
export async function auditPointers(
  repos: Repos,
  repo: string,
  fetchObject: (key: string) => Promise<Buffer | null>,
  prefix = "",
  /** Objects already verified (content-addressed objects never change): key -> "size:sha256". */
  verified: Map<string, string> = new Map(),
): Promise<string[]> {
  const problems: string[] = [];
  const found: { where: string; text: string }[] = [];
  const head = await repos.git(repo, "rev-parse", "-q", "--verify", "HEAD").catch(() => "");
  if (head) for (const [path, text] of await pointersAt(repos, repo, head)) found.push({ where: `HEAD:${path}`, text });
  const staged = await repos.git(repo, "ls-files", "-z", "--stage", "--", "shelves/");
  const inIndex: { path: string; oid: string }[] = [];
  for (const rec of staged.split("\0").filter(Boolean)) {
    const [meta, path] = rec.split("\t") as [string, string];
    if (path.endsWith(".pitem")) inIndex.push({ path, oid: meta.split(" ")[1] ?? "" });
  }
  const indexBlobs = await catBlobs(repo, inIndex.map((e) => e.oid));
  for (const e of inIndex) found.push({ where: `index:${e.path}`, text: indexBlobs.get(e.oid)?.toString("utf8") ?? "" });
  for (const rel of await walkFiles(join(repo, "shelves"))) {
    if (rel.endsWith(".pitem")) found.push({ where: `worktree:shelves/${rel}`, text: await readFile(join(repo, "shelves", rel), "utf8") });
  }
  const checked = new Map<string, string | null>(verified);
  for (const { where, text } of found) {
    const p = parsePointerText(text, where, problems);
    if (!p) continue;
    const key = keyOf(p.sha256, prefix);
    if (!checked.has(key)) {
      const data = await fetchObject(key);
      const have = data === null ? null : `${data.length}:${sha256(data)}`;
      checked.set(key, have);
      if (have !== null) verified.set(key, have);
    }
    const have = checked.get(key);
    if (have === null) problems.push(`${where}: its object ${key} is not in the store`);
    else if (have !== `${p.size}:${p.sha256}`) problems.push(`${where}: its object ${key} holds ${have}, not ${p.size}:${p.sha256}`);
  }
  return problems;
}

/** Leftover temporary files in the working copy's shelves/ (pointer temp files, partials). */
export async function leftoversIn(dir: string): Promise<string[]> {
  return (await walkFiles(dir)).filter((f) => /\.(tmp|pantri-part|pantri-tmp)$/.test(f));
}

/** What a path under dest may hold: sha256 of the content each allowed commit gives it. */
export async function contentAt(repos: Repos, repo: string, rev: string, shelf: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const listing = await repos.git(repo, "ls-tree", "-r", "-z", "--full-tree", rev, "--", `shelves/${shelf}/`);
  const entries: { rel: string; oid: string }[] = [];
  for (const rec of listing.split("\0").filter(Boolean)) {
    const [meta, path] = rec.split("\t") as [string, string];
    const rel = path.slice("shelves/".length);
    if (rel !== `${shelf}/.gitignore`) entries.push({ rel, oid: meta.split(" ")[2] ?? "" });
  }
  const blobs = await catBlobs(repo, entries.map((e) => e.oid));
  for (const { rel, oid } of entries) {
    const data = blobs.get(oid) ?? Buffer.alloc(0);
    // A pointer stands for its binary's content; a text file is its own.
    if (rel.endsWith(".pitem")) out.set(rel.slice(0, -".pitem".length), (JSON.parse(data.toString("utf8")) as PointerJson).sha256);
    else out.set(rel, sha256(data));
  }
  return out;
}

/**
 * Every file under a final name in dest/<shelf> must be one complete version the allowed
 * commits give that path (old or new: a crash may come between them), never a partial or wrong
 * one. `partials` lists the in-progress files found (allowed after a crash, not after a rerun).
 */
export async function auditDest(dest: string, shelf: string, allowed: Map<string, string>[]): Promise<{ problems: string[]; partials: string[] }> {
  const problems: string[] = [];
  const partials: string[] = [];
  for (const rel of await walkFiles(join(dest, shelf))) {
    const path = `${shelf}/${rel}`;
    if (rel.endsWith(".pantri-part")) {
      partials.push(path);
      continue;
    }
    const st = await lstat(join(dest, path));
    if (!st.isFile()) {
      problems.push(`${path}: not a regular file`);
      continue;
    }
    const sha = sha256(await readFile(join(dest, path)));
    const ok = allowed.some((m) => m.get(path) === sha);
    // A file no allowed commit has may only be one the old commit had and the new one removed
    // (deletions come last), which `allowed` covers; anything else is foreign.
    if (!ok) problems.push(`${path}: content ${sha.slice(0, 12)} matches no pointer of the allowed commits`);
  }
  return { problems, partials };
}

/** The commit the sync record of (dest, shelf) holds, or null. */
export async function readRecord(stateDir: string, dest: string, shelf: string): Promise<string | null> {
  return (await new SyncRecords(stateDir).read(dest, shelf))?.commit ?? null;
}

// ------------------------------------------------------------------------------ secrets

/** Values that must never appear in any output: added by each test as it learns them. */
export const secrets = new Set<string>();

/** Token values in the swift token cache files under cacheDir. */
export async function cachedTokens(cacheDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const f of await readdir(cacheDir).catch(() => [] as string[])) {
    if (!/^swift-token-.*\.json$/.test(f)) continue;
    try {
      const t = (JSON.parse(await readFile(join(cacheDir, f), "utf8")) as { token?: unknown }).token;
      if (typeof t === "string") out.push(t);
    } catch {
      // a torn cache file holds no token worth looking for
    }
  }
  return out;
}

/** Where a secret shows up in any output so far: [] when nowhere. */
export function secretLeaks(texts: readonly string[] = outputs): string[] {
  const leaks: string[] = [];
  for (const s of secrets) {
    // Keys are short words ("testing"): match them as words; tokens anywhere.
    const re = s.length < 16 ? new RegExp(`(?<![A-Za-z0-9_-])${s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![A-Za-z0-9_-])`) : null;
    for (const t of texts) {
      const hit = re ? re.exec(t) : t.includes(s) ? { index: t.indexOf(s) } : null;
      if (hit) leaks.push(`${s.slice(0, 3)}***: ...${t.slice(Math.max(0, hit.index - 60), hit.index).replace(s, "***")}[SECRET]...`);
    }
  }
  return leaks;
}

/** Registers an afterAll that fails the file when any output of its runs held a secret. */
export function auditSecretsAfterAll(): void {
  afterAll(() => {
    expect(secretLeaks(), "secrets in pantri's output").toEqual([]);
  });
}

// ------------------------------------------------------------------------------ scenario

export interface SwiftScenarioOptions {
  endpoints: SwiftEndpoints;
  repos: Repos;
  container: string;
  /** Where pantri talks to Swift: the real proxy, or a fault proxy in front of it. */
  via?: string;
  /** Extra objectStore options (segmentSize, timeoutMs...). */
  store?: Record<string, unknown>;
}

/** pantri.config.json for a Swift store, committed in the packager; credentials come from env. */
export function swiftConfig(o: SwiftScenarioOptions): Record<string, unknown> {
  return { objectStore: { type: "swift", container: o.container, ...(o.store ?? {}) } };
}

/** What a fault test works with: repos whose packager is configured for a fresh container. */
export interface SwiftFixture {
  repos: Repos;
  admin: SwiftAdmin;
  container: string;
  /** The fault proxy pantri talks through, when one was asked for. */
  proxy: FaultProxy | null;
  env: Record<string, string>;
  state: string;
  cache: string;
  /** Adds the tokens the runs cached to the secrets audit, stops the proxy, drops the containers, removes the repos. */
  cleanup(): Promise<void>;
}

/**
 * The common set-up of the Swift fault tests: repos (makeRepos), an admin login, a unique
 * container, optionally a fault proxy in front of Swift, pantri's env, and the packager's
 * committed and pushed pantri.config.json.
 */
export async function setUpSwiftFixture(
  ep: SwiftEndpoints,
  o: { prefix: string; shelves?: string[]; proxy?: Omit<FaultProxyOptions, "target">; store?: Record<string, unknown> },
): Promise<SwiftFixture> {
  const repos = await makeRepos(o.shelves ? { shelves: o.shelves } : undefined);
  const container = uniqueContainer(o.prefix);
  const admin = await swiftLogin(ep);
  secrets.add(admin.token);
  const proxy = o.proxy ? await startFaultProxy({ target: ep.proxyUrl, ...o.proxy }) : null;
  const state = join(repos.root, "state");
  const cache = join(repos.root, "cache");
  const env = swiftEnv({ endpoints: ep, ...(proxy ? { via: proxy.url } : {}), state, cache });
  await writeConfig(repos.packager, swiftConfig({ endpoints: ep, repos, container, ...(o.store ? { store: o.store } : {}) }));
  await repos.commitAll(repos.packager, "pantri config");
  await repos.git(repos.packager, "push", "--quiet");
  return {
    repos,
    admin,
    container,
    proxy,
    env,
    state,
    cache,
    async cleanup() {
      for (const t of await cachedTokens(cache)) secrets.add(t);
      await proxy?.close();
      await swiftDrop(admin, container).catch(() => undefined);
      await swiftDrop(admin, `${container}_segments`).catch(() => undefined); // may not exist
      await repos.cleanup();
    },
  };
}

/** The environment of a pantri run against Swift: v1 credentials, own state and cache folders. */
export function swiftEnv(o: { endpoints: SwiftEndpoints; via?: string; state: string; cache: string }): Record<string, string> {
  const authUrl = o.via ? `${o.via}/auth/v1.0` : o.endpoints.authUrl;
  secrets.add(o.endpoints.key);
  return {
    ST_AUTH: authUrl,
    ST_USER: o.endpoints.user,
    ST_KEY: o.endpoints.key,
    PANTRI_STATE_DIR: o.state,
    PANTRI_CACHE_DIR: o.cache,
    PANTRI_RETRY_BASE_MS: "20",
    PANTRI_LOCK_TIMEOUT: "60",
  };
}

/** Resolves with the first proxy log entry, seen at `event`, that satisfies `pred`. */
export function proxyEntry(proxy: FaultProxy, event: "request" | "data" | "done", pred: (e: ProxyLogEntry) => boolean): Promise<ProxyLogEntry> {
  return new Promise((resolve) => {
    const on = (e: ProxyLogEntry) => {
      if (!pred(e)) return;
      proxy.events.off(event, on);
      resolve(e);
    };
    proxy.events.on(event, on);
  });
}
