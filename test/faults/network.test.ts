/**
 * Network faults between pantri and the real Swift, injected by ./fault-proxy.ts: 503s, 500s,
 * connection resets mid-body, stalls past the per-request timeout, truncated bodies. At 20% of
 * requests pantri must still store and retrieve the right bytes; at 100% it must fail (exit 1)
 * within a bounded time, naming the store and what to do; SIGINT/SIGTERM must stop it cleanly.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { randomBinary, type Repos } from "../helpers/gitdir.js";
import { describeSwift } from "../helpers/swift.js";
import { type FaultProxy } from "./fault-proxy.js";
import {
  auditDest,
  auditPointers,
  auditSecretsAfterAll,
  contentAt,
  describeRun,
  keyOf,
  leftoversIn,
  MiB,
  proxyEntry,
  readRecord,
  runPantri,
  setUpSwiftFixture,
  sha256,
  spawnPantri,
  swiftGet,
  walkFiles,
  type SwiftAdmin,
  type SwiftFixture,
} from "./harness.js";

const SEED = 4242;
const KiB = 1024;
/** objectStore.timeoutMs for these tests: a stalled request is abandoned (and retried) after it. */
const TIMEOUT_MS = 1500;
/** Attempts per request (PANTRI_RETRY_ATTEMPTS default). */
const ATTEMPTS = 5;
/**
 * The bound a dead store must fail within here: each object gets ATTEMPTS attempts (nested
 * retries do not multiply), an attempt is at most two requests (HEAD and PUT, or a segment's)
 * that may each stall for the whole timeout, plus backoff (20 ms base here, well under a second in
 * all) and the CLI's own start-up and git work on a loaded two-core machine. Objects fail in
 * parallel, and the batch gives up after a few in a row. README "Guarantees" states the general form.
 */
const FAIL_BOUND_MS = ATTEMPTS * 2 * TIMEOUT_MS + 12_000;

auditSecretsAfterAll();

describeSwift("network faults (fault-injecting proxy in front of Swift)", (ep) => {
  let fx: SwiftFixture;
  let repos: Repos;
  let admin: SwiftAdmin;
  let container: string;
  let proxy: FaultProxy;
  let env: Record<string, string>;
  let host: string;
  let dest: string;
  let state: string;

  beforeAll(async () => {
    fx = await setUpSwiftFixture(ep, {
      prefix: "faults-net",
      proxy: { seed: SEED, stallMs: TIMEOUT_MS + 1000 },
      // 200 KiB files are staged (sent while hashed), bigger ones are SLOs: both meet the faults.
      store: { timeoutMs: TIMEOUT_MS, segmentSize: 256 * KiB, stageMinBytes: 100 * KiB },
    });
    ({ repos, admin, container, env, state } = fx);
    proxy = fx.proxy as FaultProxy;
    host = await repos.cloneBuildHost();
    dest = join(repos.root, "dest");
  });

  afterAll(() => fx.cleanup());

  let serial = 0;
  async function newFiles(sizes: number[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    for (const size of sizes) {
      serial++;
      const data = randomBinary(size, 7000 + serial);
      await repos.writeFile(repos.packager, `shelves/pkgs/n${serial}.bin`, data, 1_700_000_000 + serial);
      out.set(`pkgs/n${serial}.bin`, data);
    }
    return out;
  }

  async function expectDestHas(files: Map<string, Buffer>): Promise<void> {
    for (const [path, data] of files) expect(sha256(await readFile(join(dest, path))), path).toBe(sha256(data));
  }

  it("at 20% faults (503, 500, resets, stalls, truncated bodies) store and retrieve complete with the right bytes", async () => {
    const files = await newFiles([2 * KiB, 60 * KiB, 200 * KiB, 500 * KiB, 900 * KiB]);
    proxy.configure({ rate: 0.2 });
    // An upload attempt is two requests (HEAD and PUT, per object or per segment), so at 20% per
    // request it fails 36% of the time: with the default 5 attempts about one object in 170
    // would fail for good. 8 attempts make a failed run here a rare event, not a coin toss.
    const stored = await runPantri(["store", "--json", "--push"], { cwd: repos.packager, env: { ...env, PANTRI_RETRY_ATTEMPTS: "8" } });
    expect(stored.code, describeRun(stored)).toBe(0);
    expect(stored.json?.stored).toHaveLength(files.size);
    for (const [path, data] of files) {
      const got = await swiftGet(admin, container, keyOf(sha256(data)));
      expect(got && sha256(got), `object of ${path}`).toBe(sha256(data));
    }
    expect(await auditPointers(repos, repos.packager, (k) => swiftGet(admin, container, k))).toEqual([]);

    const retrieved = await runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env: { ...env, PANTRI_RETRY_ATTEMPTS: "8" } });
    expect(retrieved.code, describeRun(retrieved)).toBe(0);
    await expectDestHas(files);
    expect(await leftoversIn(dest)).toEqual([]);

    const faults = proxy.log.filter((e) => e.fault);
    expect(faults.length, "faults were injected").toBeGreaterThanOrEqual(5);
    expect(new Set(faults.map((f) => f.fault)).size, `kinds injected: ${faults.map((f) => f.fault).join(" ")}`).toBeGreaterThanOrEqual(4);
    proxy.configure({ rate: 0 });
  });

  it("at 100% faults store and retrieve fail with exit 1 within a bounded time, naming the store and what to do", async () => {
    // Something new to retrieve (stored while the network is fine), and something new to store.
    const pending = await newFiles([100 * KiB, 300 * KiB]);
    const ok = await runPantri(["store", "--json", "--push"], { cwd: repos.packager, env });
    expect(ok.code, describeRun(ok)).toBe(0);
    const unstored = await newFiles([5 * KiB, 250 * KiB, 500 * KiB]);
    const headBefore = await repos.git(repos.packager, "rev-parse", "HEAD");
    const recordBefore = await readRecord(state, dest, "pkgs");
    const destBefore = await contentAt(repos, host, recordBefore ?? "HEAD", "pkgs");

    proxy.configure({ rate: 1 });
    const store = await runPantri(["store", "--json"], { cwd: repos.packager, env });
    expect(store.code, describeRun(store)).toBe(1);
    expect(store.ms, `store failed within ${FAIL_BOUND_MS} ms`).toBeLessThan(FAIL_BOUND_MS);
    const storeErrors = [store.json?.error?.message ?? "", ...(store.json?.failed ?? []).map((f) => f.error ?? "")].join("\n");
    expect(storeErrors).toContain(`swift container "${container}"`);
    expect(storeErrors).toMatch(/run the same command again/);
    expect(store.stderr).not.toMatch(/^\s+at /m);
    // Every new file failed, unless one of its uploads reached Swift whole before its response
    // was cut (a stall or truncation after the PUT): then a retry is told "already there" (412),
    // which is true, and the audit below checks that object's bytes.
    const failed = new Set(store.json?.failed.map((f) => f.path));
    expect(failed.size, describeRun(store)).toBeGreaterThan(0);
    for (const path of unstored.keys()) expect(failed.has(path) || store.json?.stored.some((s) => s.path === path), path).toBe(true);
    if (!store.json?.stored.length) expect(await repos.git(repos.packager, "rev-parse", "HEAD")).toBe(headBefore);
    expect(await auditPointers(repos, repos.packager, (k) => swiftGet(admin, container, k))).toEqual([]);

    const retrieve = await runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env });
    expect(retrieve.code, describeRun(retrieve)).toBe(1);
    expect(retrieve.ms, `retrieve failed within ${FAIL_BOUND_MS} ms`).toBeLessThan(FAIL_BOUND_MS);
    const retrieveErrors = [retrieve.json?.error?.message ?? "", ...(retrieve.json?.failed ?? []).map((f) => f.error ?? "")].join("\n");
    expect(retrieveErrors).toContain(`swift container "${container}"`);
    expect(retrieveErrors).toMatch(/run the same command again/);
    expect(retrieve.stderr).toMatch(/not marked as synced|run the same command again/);
    expect(await readRecord(state, dest, "pkgs"), "the sync record did not advance").toBe(recordBefore);
    const audit = await auditDest(dest, "pkgs", [destBefore]);
    expect(audit.problems).toEqual([]);

    proxy.configure({ rate: 0 });
    const again = await runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env });
    expect(again.code, describeRun(again)).toBe(0);
    await expectDestHas(pending);
    expect(await leftoversIn(dest), "partial files of the failed run were resumed or removed").toEqual([]);
    const storeAgain = await runPantri(["store", "--json", "--push"], { cwd: repos.packager, env });
    expect(storeAgain.code, describeRun(storeAgain)).toBe(0);
  });

  it("gives up on a dead store after a few objects in a row, however many objects are left", async () => {
    await newFiles(Array.from({ length: 14 }, (_, i) => 1 * KiB + i));
    proxy.configure({ rate: 1, kinds: ["503", "reset"] });
    const started = proxy.log.length;
    const store = await runPantri(["store", "--json", "--concurrency", "2"], { cwd: repos.packager, env });
    proxy.configure({ rate: 0, kinds: ["503", "500", "reset", "stall", "truncate"] });
    expect(store.code, describeRun(store)).toBe(1);
    expect(store.json?.error?.message).toMatch(/objects in a row failed.*the rest were not tried.*run the same command again/s);
    expect(store.stderr).toContain(`swift container "${container}"`);
    const tried = new Set(proxy.log.slice(started).filter((e) => /\/sha256\//.test(e.path)).map((e) => e.path.replace(/\?.*$/, "")));
    expect(tried.size, "objects tried before giving up").toBeLessThan(14);
    const rerun = await runPantri(["store", "--json", "--push"], { cwd: repos.packager, env });
    expect(rerun.code, describeRun(rerun)).toBe(0);
  });

  it("gives up on a dead store after a few staged files in a row too", async () => {
    await newFiles(Array.from({ length: 14 }, (_, i) => 100 * KiB + i)); // unique sizes in the staged range
    proxy.configure({ rate: 1, kinds: ["503", "reset"] });
    const started = proxy.log.length;
    const store = await runPantri(["store", "--json"], { cwd: repos.packager, env });
    proxy.configure({ rate: 0, kinds: ["503", "500", "reset", "stall", "truncate"] });
    expect(store.code, describeRun(store)).toBe(1);
    expect(store.json?.error?.message).toMatch(/objects in a row failed.*the rest were not tried.*run the same command again/s);
    const staged = new Set(proxy.log.slice(started).filter((e) => e.path.includes("/staged/")).map((e) => e.path.replace(/\?.*$/, "")));
    expect(staged.size, "staged uploads were tried").toBeGreaterThan(0);
    expect(staged.size, "staged uploads tried before giving up").toBeLessThan(14);
    const rerun = await runPantri(["store", "--json", "--push"], { cwd: repos.packager, env });
    expect(rerun.code, describeRun(rerun)).toBe(0);
    expect(rerun.json?.stored.length).toBeGreaterThanOrEqual(14);
  });

  it("SIGINT stops a store mid-upload cleanly: exit 130, no commit, only complete pointers; the rerun completes", async () => {
    await newFiles([3 * MiB, 20 * KiB, 30 * KiB]);
    const headBefore = await repos.git(repos.packager, "rev-parse", "HEAD");
    proxy.configure({ bytesPerSecond: 2 * MiB });
    const run = spawnPantri(["store", "--json"], { cwd: repos.packager, env });
    await proxyEntry(proxy, "data", (e) => e.method === "PUT" && e.bytesIn > 128 * KiB);
    const signalled = Date.now();
    run.child.kill("SIGINT");
    const stopped = await run.done;
    proxy.configure({ bytesPerSecond: 0 });
    expect(stopped.code, describeRun(stopped)).toBe(130);
    expect(Date.now() - signalled, "stopped promptly").toBeLessThan(10_000);
    expect(stopped.stderr).toMatch(/SIGINT/);
    expect(stopped.json?.ok).toBe(false);
    expect(await repos.git(repos.packager, "rev-parse", "HEAD"), "no commit").toBe(headBefore);
    expect(await auditPointers(repos, repos.packager, (k) => swiftGet(admin, container, k))).toEqual([]);
    expect(await leftoversIn(join(repos.packager, "shelves"))).toEqual([]);

    const rerun = await runPantri(["store", "--json", "--push"], { cwd: repos.packager, env });
    expect(rerun.code, describeRun(rerun)).toBe(0);
    const status = await repos.git(repos.packager, "status", "--porcelain", "--untracked-files=all", "--", "shelves/");
    expect(status, "everything committed by the rerun").toBe("");
  });

  it("SIGTERM stops a retrieve mid-download cleanly: exit 143, no partial file, record not advanced; the rerun completes", async () => {
    const recordBefore = await readRecord(state, dest, "pkgs");
    expect(recordBefore).not.toBeNull();
    const destBefore = await contentAt(repos, host, recordBefore ?? "HEAD", "pkgs");
    await repos.git(host, "pull", "--quiet", "--ff-only");
    const destAfter = await contentAt(repos, host, "HEAD", "pkgs");
    proxy.configure({ bytesPerSecond: 2 * MiB });
    const run = spawnPantri(["retrieve", "--json", "-d", dest], { cwd: host, env });
    await proxyEntry(proxy, "data", (e) => e.method === "GET" && e.bytesOut > 256 * KiB);
    const signalled = Date.now();
    run.child.kill("SIGTERM");
    const stopped = await run.done;
    proxy.configure({ bytesPerSecond: 0 });
    expect(stopped.code, describeRun(stopped)).toBe(143);
    expect(Date.now() - signalled, "stopped promptly").toBeLessThan(10_000);
    expect(stopped.stderr).toMatch(/SIGTERM/);
    const audit = await auditDest(dest, "pkgs", [destBefore, destAfter]);
    expect(audit.problems).toEqual([]);
    expect(audit.partials, "in-flight partial files removed").toEqual([]);
    expect(await readRecord(state, dest, "pkgs"), "record not advanced").toBe(recordBefore);

    const rerun = await runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env });
    expect(rerun.code, describeRun(rerun)).toBe(0);
    const done = await auditDest(dest, "pkgs", [destAfter]);
    expect(done.problems).toEqual([]);
    expect((await walkFiles(join(dest, "pkgs"))).map((f) => `pkgs/${f}`)).toEqual([...destAfter.keys()].sort());
    expect(await readRecord(state, dest, "pkgs")).toBe(await repos.git(host, "rev-parse", "HEAD"));
  });
});
