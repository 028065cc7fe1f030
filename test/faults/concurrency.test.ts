/**
 * Concurrent runs against the real Swift: two stores in one repo and two retrieves into one dest
 * at the same time are serialized by pantri's locks and both end right; a lock left by a
 * SIGKILLed run is detected as stale and taken over; a live holder makes the next run wait and
 * then fail with a message naming it.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
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
  leftoversIn,
  readRecord,
  runPantri,
  setUpSwiftFixture,
  swiftGet,
  type SwiftAdmin,
  type SwiftFixture,
} from "./harness.js";

const KiB = 1024;

auditSecretsAfterAll();

describeSwift("concurrent runs and locks", (ep) => {
  let fx: SwiftFixture;
  let repos: Repos;
  let admin: SwiftAdmin;
  let container: string;
  let env: Record<string, string>;
  let state: string;
  /** No faults: it only slows the wire, so that two runs started together surely overlap. */
  let proxy: FaultProxy;

  beforeAll(async () => {
    fx = await setUpSwiftFixture(ep, { prefix: "faults-locks", proxy: {} });
    ({ repos, admin, container, env, state } = fx);
    proxy = fx.proxy as FaultProxy;
  });

  afterAll(() => fx.cleanup());

  const locks = async () => (await readdir(join(state, "locks")).catch(() => [] as string[])).filter((f) => f.endsWith(".lock"));
  let serial = 0;
  async function newFiles(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      serial++;
      await repos.writeFile(repos.packager, `shelves/pkgs/c${serial}.bin`, randomBinary(200 * KiB + serial, serial), 1_700_000_000 + serial);
    }
  }

  it("two stores in one repo at once: serialized, each object stored once, everything committed", async () => {
    await newFiles(6);
    proxy.configure({ bytesPerSecond: 512 * KiB });
    const [a, b] = await Promise.all([
      runPantri(["store", "--json"], { cwd: repos.packager, env }),
      runPantri(["store", "--json"], { cwd: repos.packager, env }),
    ]);
    proxy.configure({ bytesPerSecond: 0 });
    expect(a.code, describeRun(a)).toBe(0);
    expect(b.code, describeRun(b)).toBe(0);
    const stored = [...(a.json?.stored ?? []), ...(b.json?.stored ?? [])].map((s) => s.path).sort();
    expect(stored, "each file stored by exactly one of them").toEqual([...new Set(stored)]);
    expect(stored).toHaveLength(6);
    expect(`${a.stderr}${b.stderr}`, "the second waited for the first").toMatch(/waiting for pid \d+/);
    expect(await auditPointers(repos, repos.packager, (k) => swiftGet(admin, container, k))).toEqual([]);
    expect(await repos.git(repos.packager, "status", "--porcelain", "--", "shelves/")).toBe("");
    expect(await locks()).toEqual([]);
    await repos.git(repos.packager, "push", "--quiet");
  });

  it("two retrieves into one dest at once: serialized, dest right, record at the target", async () => {
    const host = await repos.cloneBuildHost();
    const dest = join(repos.root, "dest");
    proxy.configure({ bytesPerSecond: 512 * KiB });
    const [a, b] = await Promise.all([
      runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env }),
      runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env }),
    ]);
    proxy.configure({ bytesPerSecond: 0 });
    expect(a.code, describeRun(a)).toBe(0);
    expect(b.code, describeRun(b)).toBe(0);
    expect(`${a.stderr}${b.stderr}`).toMatch(/waiting for pid \d+/);
    const head = await repos.git(host, "rev-parse", "HEAD");
    const audit = await auditDest(dest, "pkgs", [await contentAt(repos, host, head, "pkgs")]);
    expect(audit).toEqual({ problems: [], partials: [] });
    expect(await readRecord(state, dest, "pkgs")).toBe(head);
    expect(await locks()).toEqual([]);
  });

  it("a lock left by a SIGKILLed store or retrieve is stale: the next run takes it over at once", async () => {
    await newFiles(3);
    const killed = await runPantri(["store", "--json"], { cwd: repos.packager, env: { ...env, PANTRI_TEST_CRASH_AT: "after-upload-before-pointer:1" } });
    expect(killed.signal, describeRun(killed)).toBe("SIGKILL");
    expect(await locks(), "the dead run's lock is still there").toHaveLength(1);
    const rerun = await runPantri(["store", "--json", "--push"], { cwd: repos.packager, env: { ...env, PANTRI_LOCK_TIMEOUT: "5" } });
    expect(rerun.code, describeRun(rerun)).toBe(0);
    expect(rerun.stderr).not.toMatch(/waiting for/);
    expect(await locks()).toEqual([]);

    const host = await repos.cloneBuildHost("host2");
    const dest = join(repos.root, "dest2");
    const dead = await runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env: { ...env, PANTRI_TEST_CRASH_AT: "mid-download:1" } });
    expect(dead.signal, describeRun(dead)).toBe("SIGKILL");
    expect((await locks()).length).toBeGreaterThan(0);
    const again = await runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env: { ...env, PANTRI_LOCK_TIMEOUT: "5" } });
    expect(again.code, describeRun(again)).toBe(0);
    expect(again.stderr).not.toMatch(/waiting for/);
    expect(await leftoversIn(dest)).toEqual([]);
    expect(await locks()).toEqual([]);
  });

  it("a live holder: the next run waits, then fails naming the holder and what to do", async () => {
    const host = await repos.cloneBuildHost("host3");
    const dest = join(repos.root, "dest3");
    await mkdir(dest, { recursive: true });
    // This test process is alive on this host: its lock is not stale.
    const file = join(state, "locks", `${createHash("sha256").update(`dest:${dest}`).digest("hex").slice(0, 24)}.lock`);
    await mkdir(join(state, "locks"), { recursive: true });
    await writeFile(file, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), what: "a test holding the lock" }));
    const blocked = await runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env: { ...env, PANTRI_LOCK_TIMEOUT: "1" } });
    expect(blocked.code, describeRun(blocked)).toBe(1);
    const message = blocked.json?.error?.message ?? "";
    expect(message).toContain(`pid ${process.pid}`);
    expect(message).toContain("a test holding the lock");
    expect(message).toMatch(/Wait for it to finish, or remove .*\.lock/);
    expect(blocked.stderr).not.toMatch(/^\s+at /m);
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ pid: process.pid });
    expect(await readdir(dest), "nothing was written while locked out").toEqual([]);
  });
});
