#!/usr/bin/env node
/**
 * pantri's benchmarks: the same workloads with pantri and with its peers, against one real Swift
 * started for this run, so every ratio compares runs on the same server, disk and (noisy) CPU.
 *
 *   npm run bench                  full sizes (1 GiB, 2,000 / 10,000 / 20,000 files): ~12 min
 *   BENCH_QUICK=1 npm run bench    every size / 10: a smoke run of a few minutes
 *
 * Environment: BENCH_REPEAT (runs of each small workload, default 3), BENCH_REPEAT_LARGE (runs
 * of the GiB ones and the first 10,000-file store, default 3), BENCH_ONLY=group,group (hash, big, small, s3, noop, restore, rss,
 * cold), BENCH_KEEP=1 (keep bench/work and the Swift folder for a look afterwards),
 * BENCH_PANTRI=<path to another bin/pantri.js> (compare builds).
 *
 * Runs against dist/ through the real CLI (`node bin/pantri.js`) in real git repos. Prints a
 * table of medians, ratios (pantri / peer, or pantri / pantri for scaling rows) and peak RSS,
 * and writes bench/results.json. Nothing here asserts: machines are noisy, so targets are
 * reported, never enforced by the test suite.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomFillSync, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync } from "node:fs";
import { link, mkdir, open, rm, utimes, writeFile } from "node:fs/promises";
import { cpus, freemem, release, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
// BENCH_PANTRI: another build's bin/pantri.js (e.g. a copy of an older checkout), for before/after.
const PANTRI = resolve(process.env.BENCH_PANTRI ?? join(ROOT, "bin", "pantri.js"));
const WORK = join(ROOT, "bench", "work");
const RESULTS = join(ROOT, "bench", "results.json");
const NODE = process.execPath;
const TIME = "/usr/bin/time";

const QUICK = process.env.BENCH_QUICK === "1";
const SCALE = QUICK ? 0.1 : 1;
const REPEAT = positiveInt("BENCH_REPEAT", 3);
// 3 by default: a single GiB run moved the store row between 0.83x and 1.09x of rclone.
const REPEAT_LARGE = positiveInt("BENCH_REPEAT_LARGE", 3);
const ONLY = new Set((process.env.BENCH_ONLY ?? "").split(",").filter(Boolean));
const KEEP = process.env.BENCH_KEEP === "1";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const BIG = Math.round(GiB * SCALE);
const HUGE = Math.round(2 * GiB * SCALE);
const SMALL_COUNT = Math.round(2000 * SCALE);
const SMALL_SIZE = 4096;
const MANY_POINTERS = Math.round(20000 * SCALE);
const FEW_POINTERS = 100;
const CHANGED = 10;
const RESTORE_COUNT = Math.round(10000 * SCALE);

function positiveInt(name, def) {
  const v = process.env[name];
  if (v === undefined || v === "") return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number >= 1 (got ${v})`);
  return n;
}

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);
const wanted = (group) => ONLY.size === 0 || ONLY.has(group);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmtSize = (n) => (n >= GiB ? `${+(n / GiB).toFixed(2)} GiB` : `${Math.round(n / MiB)} MiB`);
const count = (n) => n.toLocaleString("en-US");

// ------------------------------------------------------------------------------ clean-up

let swiftDir = null;
let swiftDevices = null;
let cleanedUp = false;

/** Synchronous, so it also runs from signal handlers and on uncaught errors. */
function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  if (swiftDir) {
    spawnSync("bash", [join(ROOT, "scripts", "swift-server.sh"), "stop", swiftDir], { stdio: ["ignore", "ignore", "inherit"] });
    if (!KEEP) {
      rmSync(swiftDir, { recursive: true, force: true });
      // swift-server.sh falls back to /dev/shm or /tmp when the folder lacks user xattrs.
      if (swiftDevices && !swiftDevices.startsWith(`${swiftDir}/`) && /\/pantri-swift-\d+\/node$/.test(swiftDevices)) {
        rmSync(dirname(swiftDevices), { recursive: true, force: true });
      }
    }
  }
  if (!KEEP) rmSync(WORK, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    log(`${sig}: stopping Swift and cleaning up`);
    cleanup();
    process.exit(130);
  });
}

// ------------------------------------------------------------------------------ processes

const haveTime = existsSync(TIME);

/**
 * Runs a command to completion; returns wall seconds and peak RSS (KiB) of the process (with
 * /usr/bin/time: the largest of it and its children). Throws with its stderr when it fails.
 */
/** Clock ticks per second of /proc/<pid>/stat times (Linux: 100 unless the kernel says otherwise). */
const CLK_TCK = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/**
 * CPU seconds (user + system) the bench's own Swift processes (proxy, object, container, account
 * servers and memcached, from <swiftDir>/pids) have used so far; null without that Swift. Read
 * around each run, it shows what a client cost the server: on one machine the server competes
 * with the client for the same cores.
 */
function serverCpuSeconds() {
  if (!swiftDir) return null;
  let ticks = 0;
  try {
    for (const line of readFileSync(join(swiftDir, "pids"), "utf8").split("\n")) {
      const pid = line.trim().split(/\s+/)[1];
      if (!pid) continue;
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
      } catch {
        // that process is gone
      }
    }
  } catch {
    return null;
  }
  return ticks / CLK_TCK;
}

async function measure(cmd, args, { cwd = ROOT, env = process.env, okCodes = [0] } = {}) {
  const rssFile = join(WORK, `.rss-${process.pid}-${randomBytes(4).toString("hex")}`);
  // Peak RSS, then user and system CPU seconds (the process and the children it waited for).
  const argv = haveTime ? [TIME, "-f", "%M %U %S", "-o", rssFile, cmd, ...args] : [cmd, ...args];
  const serverBefore = serverCpuSeconds();
  const started = performance.now();
  const child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c) => {
    if (stderr.length < 64 * 1024) stderr += c;
  });
  let hwm = 0;
  // Without /usr/bin/time: poll the process's own high-water mark (children not included).
  const poll = haveTime
    ? null
    : setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
          if (m) hwm = Math.max(hwm, Number(m[1]));
        } catch {
          // gone
        }
      }, 10);
  const code = await new Promise((res, rej) => {
    child.once("error", rej);
    child.once("close", (c, s) => res(c ?? (s ? 128 : 1)));
  });
  const seconds = (performance.now() - started) / 1000;
  const serverAfter = serverCpuSeconds();
  const serverSeconds = serverBefore === null || serverAfter === null ? null : serverAfter - serverBefore;
  if (poll) clearInterval(poll);
  let rssKiB = hwm || null;
  let cpuSeconds = null;
  if (haveTime) {
    try {
      const [rss, user, sys] = (readFileSync(rssFile, "utf8").trim().split("\n").pop() ?? "").split(" ").map(Number);
      rssKiB = rss ?? null;
      cpuSeconds = user !== undefined && sys !== undefined && Number.isFinite(user + sys) ? user + sys : null;
    } catch {
      rssKiB = null;
    }
    rmSync(rssFile, { force: true });
  }
  if (!okCodes.includes(code)) {
    const tail = stderr.replace(/^Command exited with non-zero status \d+\n?/m, "").trim().split("\n").slice(-15).join("\n");
    throw new Error(`${[cmd, ...args].join(" ")} (in ${cwd}) exited ${code}:\n${tail}`);
  }
  return { seconds, rssKiB, cpuSeconds, serverSeconds };
}

/** Runs a setup command, untimed; throws with its output when it fails. */
function sh(cmd, args, { cwd = ROOT, env = process.env, input } = {}) {
  const r = spawnSync(cmd, args, { cwd, env, input, encoding: "utf8", maxBuffer: 256 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} (in ${cwd}) failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

// ------------------------------------------------------------------------------ Swift, peers

let ep; // endpoints.json of our own Swift
let baseEnv; // env for every timed command

function startSwift() {
  swiftDir = mkdtempSync(join(tmpdir(), "pantri-bench-swift-"));
  log(`starting a Swift of our own in ${swiftDir}`);
  const script = join(ROOT, "scripts", "swift-server.sh");
  // Tempauth only: a Keystone and its second proxy would only take CPU from the runs.
  const noKeystone = readFileSync(script, "utf8").includes("--no-keystone") ? ["--no-keystone"] : [];
  const r = spawnSync("bash", [script, "start", ...noKeystone, swiftDir], { stdio: ["ignore", "ignore", "inherit"] });
  if (r.status !== 0) throw new Error(`scripts/swift-server.sh start ${swiftDir} failed (is Swift installed? bash scripts/swift-server.sh install)`);
  ep = JSON.parse(readFileSync(join(swiftDir, "endpoints.json"), "utf8"));
  const ports = readFileSync(join(swiftDir, "etc", "ports.env"), "utf8");
  swiftDevices = /^DEVICES=(.*)$/m.exec(ports)?.[1] ?? null;
}

function makeEnv() {
  const env = { ...process.env };
  // FIELD.md: this machine sets AWS_CA_BUNDLE, which breaks rclone's S3 backend.
  delete env.AWS_CA_BUNDLE;
  for (const k of Object.keys(env)) if (k.startsWith("OS_") || k.startsWith("ST_") || k.startsWith("GIT_") || k.startsWith("RCLONE_")) delete env[k];
  Object.assign(env, {
    ST_AUTH: ep.authUrl,
    ST_USER: ep.user,
    ST_KEY: ep.key,
    AWS_ACCESS_KEY_ID: ep.s3AccessKey,
    AWS_SECRET_ACCESS_KEY: ep.s3SecretKey,
    AWS_REGION: ep.region,
    PANTRI_STATE_DIR: join(WORK, "state"),
    PANTRI_CACHE_DIR: join(WORK, "cache"),
    RCLONE_CONFIG: join(WORK, "rclone.conf"),
    GIT_AUTHOR_NAME: "bench",
    GIT_AUTHOR_EMAIL: "bench@example.invalid",
    GIT_COMMITTER_NAME: "bench",
    GIT_COMMITTER_EMAIL: "bench@example.invalid",
    NO_COLOR: "1",
  });
  return env;
}

async function writePeerConfigs() {
  await writeFile(
    join(WORK, "rclone.conf"),
    [
      "[bswift]",
      "type = swift",
      `user = ${ep.user}`,
      `key = ${ep.key}`,
      `auth = ${ep.authUrl}`,
      "",
      "[bs3]",
      "type = s3",
      "provider = Other",
      `access_key_id = ${ep.s3AccessKey}`,
      `secret_access_key = ${ep.s3SecretKey}`,
      `endpoint = ${ep.s3Endpoint}`,
      `region = ${ep.region}`,
      "force_path_style = true",
      "",
    ].join("\n"),
  );
  const host = new URL(ep.s3Endpoint).host;
  await writeFile(
    join(WORK, "s3cfg"),
    [
      "[default]",
      `access_key = ${ep.s3AccessKey}`,
      `secret_key = ${ep.s3SecretKey}`,
      `host_base = ${host}`,
      `host_bucket = ${host}`,
      "use_https = False",
      `bucket_location = ${ep.region}`,
      "",
    ].join("\n"),
  );
}

const rclone = (...args) => ["rclone", ["--config", join(WORK, "rclone.conf"), ...args]];
const swiftCli = (...args) => ["swift", ["-A", ep.authUrl, "-U", ep.user, "-K", ep.key, ...args]];
const s3cmd = (...args) => ["s3cmd", ["-c", join(WORK, "s3cfg"), ...args]];

// ------------------------------------------------------------------------------ data and repos

let seq = 0;
const unique = (what) => `${what}-${process.pid}-${++seq}`;

/** A file of `size` random bytes (written in 8 MiB blocks). */
async function randomFile(path, size) {
  await mkdir(dirname(path), { recursive: true });
  const fh = await open(path, "w");
  const block = Buffer.allocUnsafe(8 * MiB);
  try {
    for (let left = size; left > 0; ) {
      const n = Math.min(left, block.length);
      randomFillSync(block, 0, n);
      await fh.write(block, 0, n);
      left -= n;
    }
  } finally {
    await fh.close();
  }
}

/** `n` random files of `size` bytes, 100 to a folder: `<dir>/dNNN/fNNNNN.bin`. */
async function smallFiles(dir, n, size) {
  const paths = [];
  for (let i = 0; i < n; i++) paths.push(join(dir, `d${String(Math.floor(i / 100)).padStart(3, "0")}`, `f${String(i).padStart(5, "0")}.bin`));
  for (const d of new Set(paths.map((p) => dirname(p)))) await mkdir(d, { recursive: true });
  const buf = Buffer.allocUnsafe(size);
  for (const p of paths) {
    randomFillSync(buf);
    buf[0] = 0; // binary by pantri's rule (a NUL in the first 8 KiB), whatever the dice say
    await writeFile(p, buf);
  }
  return paths;
}

/** Big downloads go as soon as they are measured: a full run would otherwise hold ~10 GiB. */
async function removeDests() {
  for (const ent of readdirSync(WORK)) if (/^(dest-|rclone-)/.test(ent)) await rm(join(WORK, ent), { recursive: true, force: true });
}

/** Fails early when a file system cannot hold the run (Swift answers 507 when its disk fills). */
function checkFreeSpace() {
  const need = (QUICK ? 2 : 14) * GiB;
  for (const dir of [tmpdir(), dirname(WORK)]) {
    const fs = statfsSync(dir);
    const free = fs.bavail * fs.bsize;
    if (free < need) throw new Error(`${dir} has ${fmtSize(free)} free; this run needs about ${fmtSize(need)}`);
  }
}

/** Hard links a tree of files (cheap copies that keep size and mtime). */
async function linkTree(from, to) {
  for (const ent of readdirSync(from, { withFileTypes: true })) {
    const a = join(from, ent.name);
    const b = join(to, ent.name);
    if (ent.isDirectory()) {
      await mkdir(b, { recursive: true });
      await linkTree(a, b);
    } else {
      await link(a, b);
    }
  }
}

/** A fresh git repo with shelves/ and a pantri config for the given store; returns its path. */
async function makeRepo(name, objectStore) {
  const repo = join(WORK, "repos", unique(name));
  await mkdir(join(repo, "shelves"), { recursive: true });
  sh("git", ["init", "-q", "-b", "main", repo], { env: baseEnv });
  await writeFile(join(repo, "pantri.config.json"), `${JSON.stringify({ objectStore }, null, 2)}\n`);
  sh("git", ["add", "pantri.config.json"], { cwd: repo, env: baseEnv });
  sh("git", ["commit", "-q", "-m", "bench repo"], { cwd: repo, env: baseEnv });
  return repo;
}

const swiftStore = (container) => ({ type: "swift", container });
const s3Store = (bucket) => ({ type: "s3", bucket, endpoint: ep.s3Endpoint, region: ep.region, forcePathStyle: true });

const pantri = (repo, ...args) => measure(NODE, [PANTRI, ...args], { cwd: repo, env: baseEnv });

// ------------------------------------------------------------------------------ results

const rows = [];

/**
 * One row: `a` is pantri's runs, `b` the peer's (or the pantri run it is compared with).
 * kind "time": ratio = a / b, pass when <= target. "throughput": ratio = b / a, pass when >=.
 * "rss": a's peak RSS in MB, pass when <= target.
 */
function addRow({ group, workload, a, b, peer, kind = "time", target }) {
  const am = median(a.map((r) => r.seconds));
  const bm = b?.length ? median(b.map((r) => r.seconds)) : null;
  const rssA = Math.max(...a.map((r) => r.rssKiB ?? 0)) / 1024;
  const rssB = b?.length ? Math.max(...b.map((r) => r.rssKiB ?? 0)) / 1024 : null;
  // The client's own CPU (user + system, children included): on a machine the server shares, the
  // part of the wall time a client controls, and far steadier run to run than the wall time.
  const cpu = (runs) => (runs?.length && runs.every((r) => r.cpuSeconds != null) ? median(runs.map((r) => r.cpuSeconds)) : null);
  const cpuA = cpu(a);
  const cpuB = cpu(b);
  // Swift's CPU during each run; only where the run talked to it.
  const server = (runs) => {
    const v = runs?.length && runs.every((r) => r.serverSeconds != null) ? median(runs.map((r) => r.serverSeconds)) : null;
    return v !== null && v >= 0.2 ? v : null;
  };
  const serverA = server(a);
  const serverB = server(b);
  let ratio = null;
  if (kind === "time" && bm) ratio = am / bm;
  if (kind === "throughput" && bm) ratio = bm / am;
  if (kind === "rss") ratio = rssA;
  const pass = target === undefined || ratio === null ? null : kind === "throughput" ? ratio >= target : ratio <= target;
  const row = {
    group,
    workload,
    peer,
    kind,
    pantri: { median: am, runs: a.map((r) => r.seconds), peakRssMB: rssA, cpuSeconds: cpuA, serverCpuSeconds: serverA },
    peerRuns: bm === null ? null : { median: bm, runs: b.map((r) => r.seconds), peakRssMB: rssB, cpuSeconds: cpuB, serverCpuSeconds: serverB },
    ratio,
    target: target ?? null,
    pass,
  };
  rows.push(row);
  const t = target === undefined ? "" : ` (target ${kind === "throughput" ? ">=" : "<="} ${target}${kind === "rss" ? " MB" : "x"})`;
  const cpuText =
    (cpuA === null ? "" : `; client CPU ${cpuA.toFixed(2)} s${cpuB === null ? "" : ` vs ${cpuB.toFixed(2)} s`}`) +
    (serverA === null ? "" : `; Swift CPU ${serverA.toFixed(2)} s${serverB === null ? "" : ` vs ${serverB.toFixed(2)} s`}`);
  log(`  => ${workload}: ${am.toFixed(2)} s${bm === null ? "" : ` vs ${bm.toFixed(2)} s`}, ${kind === "rss" ? "RSS" : "ratio"} ${ratio?.toFixed(2) ?? "-"}${t}${cpuText}`);
  return row;
}

function printTable() {
  const head = ["workload", "pantri", "peer", "ratio", "target", "", "CPU pantri", "CPU peer", "Swift CPU pantri / peer", "RSS pantri", "RSS peer"];
  const body = rows.map((r) => [
    r.workload,
    `${r.pantri.median.toFixed(2)} s`,
    r.peerRuns ? `${r.peerRuns.median.toFixed(2)} s ${r.peer}` : r.peer ?? "",
    r.ratio === null ? "-" : r.kind === "rss" ? `${r.ratio.toFixed(0)} MB` : `${r.ratio.toFixed(2)}x`,
    r.target === null ? "(info)" : `${r.kind === "throughput" ? ">=" : "<="} ${r.target}${r.kind === "rss" ? " MB" : "x"}`,
    r.pass === null ? "" : r.pass ? "pass" : "FAIL",
    r.pantri.cpuSeconds == null ? "" : `${r.pantri.cpuSeconds.toFixed(2)} s`,
    r.peerRuns?.cpuSeconds == null ? "" : `${r.peerRuns.cpuSeconds.toFixed(2)} s`,
    r.pantri.serverCpuSeconds == null ? "" : `${r.pantri.serverCpuSeconds.toFixed(2)}${r.peerRuns?.serverCpuSeconds == null ? "" : ` / ${r.peerRuns.serverCpuSeconds.toFixed(2)}`} s`,
    `${r.pantri.peakRssMB.toFixed(0)} MB`,
    r.peerRuns?.peakRssMB ? `${r.peerRuns.peakRssMB.toFixed(0)} MB` : "",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  const out = [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...body.map(line)];
  process.stdout.write(`\n${out.join("\n")}\n`);
}

// ------------------------------------------------------------------------------ workloads

/** Runs pantri and the peers alternately, `n` times each, so drift hits both alike. */
async function alternate(n, steps) {
  const out = steps.map(() => []);
  for (let i = 0; i < n; i++) {
    for (let s = 0; s < steps.length; s++) out[s].push(await steps[s](i));
  }
  return out;
}

/** Hashing: store --dry-run hashes (sha1 + sha256, one read pass) and changes nothing. */
async function benchHash(big) {
  log(`hash a ${fmtSize(BIG)} file: pantri store --dry-run vs openssl dgst -sha256`);
  const repo = await makeRepo("hash", swiftStore("bench-unused"));
  await mkdir(join(repo, "shelves", "big"), { recursive: true });
  await link(big, join(repo, "shelves", "big", "blob.bin"));
  const n = Math.max(REPEAT_LARGE, 3); // cheap: always at least 3
  const [a, b] = await alternate(n, [
    () => pantri(repo, "store", "--dry-run", "--json", "shelves/big/blob.bin"),
    () => measure("openssl", ["dgst", "-sha256", big]),
  ]);
  addRow({ group: "hash", workload: `hash ${fmtSize(BIG)} (store --dry-run)`, a, b, peer: "openssl", kind: "throughput", target: 0.9 });
  // The same, net of each tool's fixed start-up (the run on a 1-byte file): the hashing rate
  // itself, which is what "throughput" means once a file is big enough.
  await writeFile(join(repo, "shelves", "big", "tiny.bin"), "\0");
  const tinyFile = join(repo, "shelves", "big", "tiny.bin");
  const [ta, tb] = await alternate(n, [
    () => pantri(repo, "store", "--dry-run", "--json", "shelves/big/tiny.bin"),
    () => measure("openssl", ["dgst", "-sha256", tinyFile]),
  ]);
  const net = (runs, tiny) => runs.map((r) => ({ ...r, seconds: Math.max(1e-3, r.seconds - median(tiny.map((t) => t.seconds))) }));
  addRow({ group: "hash", workload: `hash ${fmtSize(BIG)} (store --dry-run), net of start-up`, a: net(a, ta), b: net(b, tb), peer: "openssl", kind: "throughput", target: 0.9 });
  // The same hashing without the CLI around it (no yargs, git or config): where the gap is.
  const hashOnly = `import(${JSON.stringify(join(dirname(PANTRI), "..", "dist", "core", "hash.js"))}).then((m) => m.hashFile(${JSON.stringify(big)}))`;
  const [c, d] = await alternate(n, [() => measure(NODE, ["-e", hashOnly]), () => measure("openssl", ["dgst", "-sha256", big])]);
  addRow({ group: "hash", workload: `hash ${fmtSize(BIG)} (hashFile() alone)`, a: c, b: d, peer: "openssl", kind: "throughput" });
}

/** One big file up and down, pantri vs rclone (swift backend); also the 2 GiB RSS check. */
async function benchBig(big) {
  log(`store / retrieve one ${fmtSize(BIG)} file to Swift: pantri vs rclone copy`);
  const repos = [];
  const [a, b] = await alternate(REPEAT_LARGE, [
    async () => {
      const repo = await makeRepo("big", swiftStore(unique("bench-big")));
      await mkdir(join(repo, "shelves", "big"), { recursive: true });
      await link(big, join(repo, "shelves", "big", "blob.bin"));
      repos.push(repo);
      return pantri(repo, "store", "--json");
    },
    () => measure(...rclone("copy", big, `bswift:${unique("bench-rclone-big")}`)),
  ]);
  addRow({ group: "big", workload: `store 1 x ${fmtSize(BIG)} to Swift`, a, b, peer: "rclone", target: 1.0 });

  const container = unique("bench-rclone-down");
  sh(...rclone("copy", big, `bswift:${container}`), { env: baseEnv });
  const [c, d] = await alternate(REPEAT_LARGE, [
    () => pantri(repos[0], "retrieve", "--no-pull", "--json", "-d", join(WORK, unique("dest-big"))),
    () => measure(...rclone("copy", `bswift:${container}`, join(WORK, unique("rclone-big")))),
  ]);
  addRow({ group: "big", workload: `retrieve 1 x ${fmtSize(BIG)} from Swift`, a: c, b: d, peer: "rclone" });
  await removeDests();
}

async function benchRss() {
  log(`peak RSS: store and retrieve one ${fmtSize(HUGE)} file (Swift)`);
  const huge = join(WORK, "data", "huge.bin");
  await randomFile(huge, HUGE);
  const repo = await makeRepo("huge", swiftStore(unique("bench-huge")));
  await mkdir(join(repo, "shelves", "huge"), { recursive: true });
  await link(huge, join(repo, "shelves", "huge", "blob.bin"));
  const up = await pantri(repo, "store", "--json");
  const peerUp = await measure(...rclone("copy", huge, `bswift:${unique("bench-rclone-huge")}`));
  addRow({ group: "rss", workload: `peak RSS: store 1 x ${fmtSize(HUGE)}`, a: [up], b: [peerUp], peer: "rclone", kind: "rss", target: 150 });
  const down = await pantri(repo, "retrieve", "--no-pull", "--json", "-d", join(WORK, unique("dest-huge")));
  addRow({ group: "rss", workload: `peak RSS: retrieve 1 x ${fmtSize(HUGE)}`, a: [down], kind: "rss", target: 150 });
  await rm(huge, { force: true });
  await removeDests();
}

/** Many small files: pantri vs rclone and swift upload, then down into an empty dest. */
async function benchSmall() {
  log(`store ${count(SMALL_COUNT)} x 4 KiB files to Swift: pantri vs rclone copy vs swift upload`);
  const src = join(WORK, "data", "small");
  await smallFiles(src, SMALL_COUNT, SMALL_SIZE);
  const repos = [];
  const rcloneContainers = [];
  const [a, b, c] = await alternate(REPEAT, [
    async () => {
      const repo = await makeRepo("small", swiftStore(unique("bench-small")));
      await mkdir(join(repo, "shelves", "small"), { recursive: true });
      await linkTree(src, join(repo, "shelves", "small"));
      repos.push(repo);
      return pantri(repo, "store", "--json");
    },
    () => {
      const container = unique("bench-rclone-small");
      rcloneContainers.push(container);
      return measure(...rclone("copy", src, `bswift:${container}`));
    },
    () => measure(...swiftCli("upload", unique("bench-swift-small"), "small"), { cwd: dirname(src) }),
  ]);
  addRow({ group: "small", workload: `store ${count(SMALL_COUNT)} x 4 KiB to Swift`, a, b, peer: "rclone", target: 0.7 });
  const vsSwift = addRow({ group: "small", workload: `store ${count(SMALL_COUNT)} x 4 KiB to Swift`, a, b: c, peer: "swift upload", target: 0.5 });
  // The floor the server sets: the wall time its own CPU for pantri's store needs on these cores.
  const swiftCpu = vsSwift.pantri.serverCpuSeconds;
  if (swiftCpu !== null && vsSwift.peerRuns) {
    const floor = swiftCpu / cpus().length;
    log(
      `  Swift itself used ${swiftCpu.toFixed(2)} s of CPU for pantri's store: on ${cpus().length} cores at least ${floor.toFixed(2)} s of wall time ` +
        `before any client work, ${(floor / vsSwift.peerRuns.median).toFixed(2)}x of swift upload's ${vsSwift.peerRuns.median.toFixed(2)} s`,
    );
  }

  log(`retrieve ${count(SMALL_COUNT)} x 4 KiB files into an empty dest: pantri vs rclone copy`);
  const [d, e] = await alternate(REPEAT, [
    (i) => pantri(repos[i % repos.length], "retrieve", "--no-pull", "--json", "-d", join(WORK, "dests", unique("small"))),
    (i) => measure(...rclone("copy", `bswift:${rcloneContainers[i % rcloneContainers.length]}`, join(WORK, "dests", unique("rclone-small")))),
  ]);
  addRow({ group: "small", workload: `retrieve ${count(SMALL_COUNT)} x 4 KiB into empty dest`, a: d, b: e, peer: "rclone", target: 1.0 });
  await rm(join(WORK, "dests"), { recursive: true, force: true });
  return src;
}

/** The same small files through the S3 API (s3api on the same Swift): information only. */
async function benchS3(src) {
  log(`store ${count(SMALL_COUNT)} x 4 KiB files via S3: pantri (s3 store) vs rclone (s3) vs s3cmd`);
  const [a, b, c] = await alternate(Math.min(REPEAT, 2), [
    async () => {
      const bucket = unique("bench-s3").toLowerCase();
      sh(...swiftCli("post", bucket), { env: baseEnv });
      const repo = await makeRepo("s3", s3Store(bucket));
      await mkdir(join(repo, "shelves", "small"), { recursive: true });
      await linkTree(src, join(repo, "shelves", "small"));
      return pantri(repo, "store", "--json");
    },
    async () => {
      const bucket = unique("bench-rclone-s3").toLowerCase();
      sh(...swiftCli("post", bucket), { env: baseEnv });
      return measure(...rclone("copy", src, `bs3:${bucket}`), { env: baseEnv });
    },
    async () => {
      const bucket = unique("bench-s3cmd").toLowerCase();
      sh(...swiftCli("post", bucket), { env: baseEnv });
      return measure(...s3cmd("put", "--recursive", "--quiet", `${src}/`, `s3://${bucket}/`), { env: baseEnv });
    },
  ]);
  addRow({ group: "s3", workload: `store ${count(SMALL_COUNT)} x 4 KiB via S3`, a, b, peer: "rclone s3" });
  addRow({ group: "s3", workload: `store ${count(SMALL_COUNT)} x 4 KiB via S3`, a, b: c, peer: "s3cmd" });
}

/**
 * A repo of `n` committed pointers (no binaries, as on a build host) plus a dest that already
 * holds matching files, synced once, so the timed retrieves start from a sync record.
 */
async function pointerRepo(n) {
  const repo = await makeRepo(`ptr${n}`, swiftStore(unique("bench-ptr")));
  const dest = join(WORK, "dests", unique(`ptr${n}`));
  const mtime = 1_700_000_000;
  const dirs = new Set();
  for (let i = 0; i < n; i++) {
    const rel = `main/d${String(Math.floor(i / 200)).padStart(3, "0")}/f${String(i).padStart(5, "0")}.bin`;
    const dir = dirname(rel);
    if (!dirs.has(dir)) {
      dirs.add(dir);
      await mkdir(join(repo, "shelves", dir), { recursive: true });
      await mkdir(join(dest, dir), { recursive: true });
    }
    const sha256 = randomBytes(32).toString("hex");
    const sha1 = randomBytes(20).toString("hex");
    const size = 1000 + (i % 100);
    await writeFile(join(repo, "shelves", `${rel}.pitem`), `${JSON.stringify({ pantri: 1, path: rel, size, sha256, sha1, mtime }, null, 2)}\n`);
    await writeFile(join(dest, rel), Buffer.alloc(size));
    await utimes(join(dest, rel), mtime, mtime);
  }
  sh("git", ["add", "shelves"], { cwd: repo, env: baseEnv });
  sh("git", ["commit", "-q", "-m", `${n} pointers`], { cwd: repo, env: baseEnv });
  // First sync: a full comparison finds dest up to date and records the commit.
  await pantri(repo, "retrieve", "--no-pull", "--json", "-d", dest);
  return { repo, dest };
}

/** Changes CHANGED binaries of the repo (new content, stored for real), committing new pointers. */
async function changePointers(repo, round) {
  for (let i = 0; i < CHANGED; i++) {
    const rel = `main/d000/f${String(i * 3).padStart(5, "0")}.bin`;
    const buf = randomBytes(SMALL_SIZE);
    buf[0] = 0;
    await writeFile(join(repo, "shelves", rel), buf);
    await utimes(join(repo, "shelves", rel), 1_700_000_100 + round, 1_700_000_100 + round);
  }
  const r = await pantri(repo, "store", "--json", "shelves/main/d000");
  return r;
}

async function benchNoop() {
  log(`retrieve with ${count(MANY_POINTERS)} vs ${FEW_POINTERS} pointers: nothing changed, then ${CHANGED} changed`);
  const many = await pointerRepo(MANY_POINTERS);
  const few = await pointerRepo(FEW_POINTERS);
  const noop = (p) => pantri(p.repo, "retrieve", "--no-pull", "--json", "-d", p.dest);
  const [a, b] = await alternate(Math.max(REPEAT, 5), [() => noop(many), () => noop(few)]);
  addRow({ group: "noop", workload: `no-op retrieve, ${count(MANY_POINTERS)} pointers`, a, b, peer: `${FEW_POINTERS} pointers`, target: 1.2 });
  const [c, d] = await alternate(REPEAT, [
    async (i) => {
      await changePointers(many.repo, i);
      return noop(many);
    },
    async (i) => {
      await changePointers(few.repo, i);
      return noop(few);
    },
  ]);
  addRow({ group: "noop", workload: `retrieve ${CHANGED} changed, ${count(MANY_POINTERS)} pointers`, a: c, b: d, peer: `${FEW_POINTERS} pointers`, target: 1.5 });
}

async function benchRestore() {
  log(`re-store ${count(RESTORE_COUNT)} unchanged files vs their first store (Swift)`);
  const src = join(WORK, "data", "restore");
  await smallFiles(src, RESTORE_COUNT, SMALL_SIZE);
  const first = [];
  const again = [];
  for (let i = 0; i < REPEAT_LARGE; i++) {
    const repo = await makeRepo("restore", swiftStore(unique("bench-restore")));
    await mkdir(join(repo, "shelves", "many"), { recursive: true });
    await linkTree(src, join(repo, "shelves", "many"));
    first.push(await pantri(repo, "store", "--json"));
    for (let j = 0; j < REPEAT; j++) again.push(await pantri(repo, "store", "--json"));
  }
  addRow({ group: "restore", workload: `re-store ${count(RESTORE_COUNT)} unchanged files`, a: again, b: first, peer: "first store", target: 0.1 });
  await rm(src, { recursive: true, force: true });
}

async function benchCold() {
  log("cold start: pantri --help vs node -e 0");
  const n = Math.max(REPEAT * 3, 9);
  const [a, b] = await alternate(n, [() => measure(NODE, [PANTRI, "--help"]), () => measure(NODE, ["-e", "0"])]);
  addRow({ group: "cold", workload: "pantri --help (cold start)", a, b, peer: "node -e 0", target: 2.5 });
}

// ------------------------------------------------------------------------------ main

async function main() {
  if (!existsSync(join(ROOT, "dist", "cli.js"))) throw new Error("dist/ is missing: run npm run build (npm run bench does)");
  if (!haveTime) log(`${TIME} not found (Debian package "time"): peak RSS is the pantri process's own VmHWM, children not counted`);
  for (const tool of ["git", "openssl", "rclone", "swift", "s3cmd"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is not installed (bash scripts/swift-server.sh install)`);
  }
  rmSync(WORK, { recursive: true, force: true });
  await mkdir(WORK, { recursive: true });
  checkFreeSpace();
  startSwift();
  baseEnv = makeEnv();
  await writePeerConfigs();
  log(`${QUICK ? "QUICK run (sizes / 10)" : "full run"}; ${REPEAT} run(s) per small workload, ${REPEAT_LARGE} per large one`);

  const started = Date.now();
  if (wanted("cold")) await benchCold();
  let big = null;
  if (wanted("hash") || wanted("big")) {
    big = join(WORK, "data", "big.bin");
    log(`writing a ${fmtSize(BIG)} random file`);
    await randomFile(big, BIG);
  }
  if (wanted("hash")) await benchHash(big);
  if (wanted("big")) await benchBig(big);
  if (big) await rm(big, { force: true });
  let src = null;
  if (wanted("small")) src = await benchSmall();
  if (wanted("s3")) {
    if (!src) {
      src = join(WORK, "data", "small");
      await smallFiles(src, SMALL_COUNT, SMALL_SIZE);
    }
    await benchS3(src);
  }
  if (wanted("noop")) await benchNoop();
  if (wanted("restore")) await benchRestore();
  if (wanted("rss")) await benchRss();

  printTable();
  const cpu = cpus();
  const osRelease = existsSync("/etc/os-release") ? /^PRETTY_NAME="?([^"\n]*)/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] : undefined;
  const doc = {
    date: new Date().toISOString(),
    quick: QUICK,
    repeat: REPEAT,
    repeatLarge: REPEAT_LARGE,
    durationSeconds: Math.round((Date.now() - started) / 1000),
    pantri: PANTRI,
    machine: {
      cpus: cpu.length,
      cpuModel: cpu[0]?.model,
      memoryGiB: +(totalmem() / GiB).toFixed(1),
      freeMemoryGiB: +(freemem() / GiB).toFixed(1),
      os: osRelease ?? release(),
      node: process.version,
      rclone: sh("rclone", ["version"]).split("\n")[0],
    },
    rows,
  };
  if (ONLY.size === 0 || process.env.BENCH_WRITE === "1") {
    await writeFile(RESULTS, `${JSON.stringify(doc, null, 2)}\n`);
    log(`wrote ${RESULTS}`);
  } else {
    log(`BENCH_ONLY set: ${RESULTS} left as it was (BENCH_WRITE=1 writes it anyway)`);
  }
  const failed = rows.filter((r) => r.pass === false).length;
  log(`done in ${doc.durationSeconds} s: ${rows.filter((r) => r.pass).length} target(s) met, ${failed} missed`);
}

try {
  await main();
} catch (err) {
  log(`error: ${err instanceof Error ? err.message : String(err)}`);
  // The server's side of the story, before clean-up removes it.
  const proxyLog = swiftDir ? join(swiftDir, "log", "proxy.log") : null;
  if (proxyLog && existsSync(proxyLog)) {
    const errors = readFileSync(proxyLog, "utf8").split("\n").filter((l) => /ERROR|error limit|Timeout| 50[0-9] /.test(l));
    if (errors.length) log(`Swift proxy log, last errors:\n${errors.slice(-10).join("\n")}`);
  }
  process.exitCode = 1;
} finally {
  cleanup();
}
