/**
 * Crash tests against the real Swift: `pantri store` and `pantri retrieve` are SIGKILLed at named
 * points (PANTRI_TEST_CRASH_AT, src/core/crash-point.ts) and at seeded random moments. After every
 * kill the audits of ./harness.ts must pass (no pointer without its object, no wrong or partial
 * file under a final name in dest, no sync record ahead of what dest holds), and a plain rerun
 * must complete, commit everything, and leave no temporary file behind.
 */
import { cp, readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SyncRecords } from "../../src/core/state.js";
import { randomBinary, type Repos } from "../helpers/gitdir.js";
import { describeSwift } from "../helpers/swift.js";
import { seededRandom } from "./fault-proxy.js";
import {
  auditDest,
  auditPointers,
  auditSecretsAfterAll,
  catBlobs,
  contentAt,
  describeRun,
  leftoversIn,
  readRecord,
  runPantri,
  setUpSwiftFixture,
  sha256,
  spawnPantri,
  swiftGet,
  swiftList,
  walkFiles,
  type SwiftAdmin,
  type SwiftFixture,
} from "./harness.js";

const SEED = 20240611;
const KiB = 1024;

auditSecretsAfterAll();

describeSwift("crash safety (SIGKILL)", (ep) => {
  let fx: SwiftFixture;
  let repos: Repos;
  let admin: SwiftAdmin;
  let container: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    // Small segments: the bigger objects are static large objects, so crashes hit SLO uploads too;
    // staging from 30 KiB: the mid-sized ones (sizes no other file has) go up while they are hashed.
    fx = await setUpSwiftFixture(ep, { prefix: "faults-crash", shelves: ["pkgs", "rel"], store: { segmentSize: 256 * KiB, stageMinBytes: 30 * KiB } });
    ({ repos, admin, container, env } = fx);
  });

  afterAll(() => fx.cleanup());

  const fetchObject = (key: string) => swiftGet(admin, container, key);
  const verified = new Map<string, string>();
  let serial = 0;
  /** Writes n new binaries (and changes one old one) in the packager: work for the next store. */
  async function addWork(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      serial++;
      // Unique mid sizes: a size that a pointer has already is hashed first, not staged.
      const size = [3 * KiB, 40 * KiB + serial, 300 * KiB][serial % 3] ?? KiB;
      await repos.writeFile(repos.packager, `shelves/pkgs/d${serial % 3}/f${serial}.bin`, randomBinary(size, serial), 1_700_000_000 + serial);
    }
    if (serial > n) {
      const old = `shelves/pkgs/d${(serial - n) % 3}/f${serial - n}.bin`;
      await repos.writeFile(repos.packager, old, randomBinary(50 * KiB + serial, 1000 + serial), 1_700_100_000 + serial);
    }
  }

  /** The notes of staged Swift segments (see the swift store) in the test's cache dir. */
  const stagedNotes = async (): Promise<string[]> => (await readdir(join(env.PANTRI_CACHE_DIR ?? "", "swift-staged")).catch(() => [] as string[])).filter((n) => n.endsWith(".json"));

  /** After a complete run: every binary has a committed pointer of its content; nothing pending. */
  async function expectAllCommitted(): Promise<void> {
    const status = await repos.git(repos.packager, "status", "--porcelain", "--untracked-files=all", "--", "shelves/");
    expect(status, "nothing left uncommitted or untracked under shelves/").toBe("");
    const files = (await walkFiles(join(repos.packager, "shelves"))).filter((f) => f.endsWith(".bin"));
    const committed = await catBlobs(repos.packager, files.map((f) => `HEAD:shelves/${f}.pitem`));
    for (const f of files) {
      const ptr = JSON.parse(committed.get(`HEAD:shelves/${f}.pitem`)?.toString("utf8") ?? "null") as { sha256: string } | null;
      expect(ptr?.sha256, f).toBe(sha256(await readFile(join(repos.packager, "shelves", f))));
    }
    expect(await leftoversIn(join(repos.packager, "shelves"))).toEqual([]);
  }

  it(
    "store: a kill at any point leaves only pointers whose objects are stored; the rerun completes and commits all",
    async () => {
      const random = seededRandom(SEED);
      await addWork(3);
      const first = await runPantri(["store", "--json"], { cwd: repos.packager, env });
      expect(first.code, describeRun(first)).toBe(0);
      const baseline = first.ms;
      await expectAllCommitted();

      const rounds: { crashAt?: string; delayMs?: number }[] = [
        { crashAt: "after-upload-before-pointer:2" },
        { crashAt: "after-stage-before-commit:1" },
        { crashAt: "after-pointer-before-ignore:1" },
        { crashAt: "before-commit:1" },
        ...[0, 1].map(() => ({ delayMs: Math.round(baseline * (0.25 + random() * 0.6)) })),
      ];
      for (const round of rounds) {
        const what = round.crashAt ?? `SIGKILL after ${round.delayMs} ms`;
        await addWork(3);
        const run = spawnPantri(["store", "--json"], { cwd: repos.packager, env: { ...env, ...(round.crashAt ? { PANTRI_TEST_CRASH_AT: round.crashAt } : {}) } });
        const timer = round.delayMs !== undefined ? setTimeout(() => run.child.kill("SIGKILL"), round.delayMs) : undefined;
        const killed = await run.done;
        clearTimeout(timer);
        if (round.crashAt) expect(killed.signal, `${what}: the crash point was reached\n${describeRun(killed)}`).toBe("SIGKILL");
        expect(await auditPointers(repos, repos.packager, fetchObject, "", verified), `after ${what}`).toEqual([]);

        // Killed between staging and commit: a staged segment (and maybe one more in flight),
        // noted, named by no manifest.
        const orphans: string[] = [];
        if (round.crashAt === "after-stage-before-commit:1") {
          for (const note of await stagedNotes()) {
            orphans.push((JSON.parse(await readFile(join(env.PANTRI_CACHE_DIR ?? "", "swift-staged", note), "utf8")) as { segment: string }).segment);
          }
          const names = (await swiftList(admin, `${container}_segments`)).map((o) => o.name);
          expect(orphans.filter((o) => names.includes(o)).length, "the staged segment is in Swift").toBeGreaterThanOrEqual(1);
        }
        const rerun = await runPantri(["store", "--json"], { cwd: repos.packager, env });
        expect(rerun.code, `rerun after ${what}\n${describeRun(rerun)}`).toBe(0);
        if (round.crashAt === "after-upload-before-pointer:2") {
          // The object uploaded just before the kill is found in the store, not sent again.
          expect(rerun.json?.stored.some((s) => s.uploaded === false), describeRun(rerun)).toBe(true);
        }
        expect(await auditPointers(repos, repos.packager, fetchObject, "", verified), `after the rerun (${what})`).toEqual([]);
        await expectAllCommitted();
        if (orphans.length) {
          // The segments staged by the killed run were removed by the rerun, and their notes.
          expect(await stagedNotes()).toEqual([]);
          const names = (await swiftList(admin, `${container}_segments`)).map((o) => o.name);
          expect(orphans.filter((o) => names.includes(o))).toEqual([]);
        }
      }
    },
    150_000,
  );

  it(
    "retrieve: a kill at any point leaves dest with complete old or new files and the record behind; the rerun completes",
    async () => {
      const random = seededRandom(SEED + 1);
      const p = repos.packager;
      // Commit A: six binaries and a text file. Commit B: two changed, one removed, two added, text changed.
      const sizes = [300 * KiB, 1200 * KiB, 2 * KiB, 600 * KiB, 900 * KiB, 450 * KiB];
      for (const [i, size] of sizes.entries()) await repos.writeFile(p, `shelves/rel/a${i}.bin`, randomBinary(size, 500 + i), 1_710_000_000 + i);
      await repos.writeFile(p, "shelves/rel/notes.txt", "version A\n");
      await repos.git(p, "add", "shelves/rel/notes.txt");
      const storeA = await runPantri(["store", "shelves/rel", "--json", "--push"], { cwd: p, env });
      expect(storeA.code, describeRun(storeA)).toBe(0);
      const commitA = await repos.git(p, "rev-parse", "HEAD");
      await repos.writeFile(p, "shelves/rel/a0.bin", randomBinary(800 * KiB, 600), 1_720_000_000);
      await repos.writeFile(p, "shelves/rel/a4.bin", randomBinary(1500 * KiB, 601), 1_720_000_001);
      await rm(join(p, "shelves/rel/a3.bin"));
      await repos.git(p, "rm", "-q", "shelves/rel/a3.bin.pitem");
      await repos.writeFile(p, "shelves/rel/new/b0.bin", randomBinary(700 * KiB, 602), 1_720_000_002);
      await repos.writeFile(p, "shelves/rel/new/b1.bin", randomBinary(1100 * KiB, 603), 1_720_000_003);
      await repos.writeFile(p, "shelves/rel/notes.txt", "version B\n");
      await repos.git(p, "commit", "-q", "-am", "text B, a3 removed");
      const storeB = await runPantri(["store", "shelves/rel", "--json", "--push"], { cwd: p, env });
      expect(storeB.code, describeRun(storeB)).toBe(0);
      const commitB = await repos.git(p, "rev-parse", "HEAD");

      const host = await repos.cloneBuildHost("crash-host");
      const dest = join(repos.root, "dest");
      const snapshot = join(repos.root, "dest-at-A");
      const state = env.PANTRI_STATE_DIR ?? "";
      const hostEnv = { ...env };
      const base = await runPantri(["retrieve", "--json", "-s", "rel", "-d", dest, "--ref", commitA], { cwd: host, env: hostEnv });
      expect(base.code, describeRun(base)).toBe(0);
      await cp(dest, snapshot, { recursive: true, preserveTimestamps: true });
      const contentA = await contentAt(repos, host, commitA, "rel");
      const contentB = await contentAt(repos, host, commitB, "rel");

      /** dest back at A, as a host that synced A and now retrieves B (or, firstSync, empty). */
      const reset = async (firstSync: boolean) => {
        await rm(dest, { recursive: true, force: true });
        await rm(join(state, "sync"), { recursive: true, force: true });
        if (firstSync) return;
        await cp(snapshot, dest, { recursive: true, preserveTimestamps: true });
        await new SyncRecords(state).write({ commit: commitA, dest, shelf: "rel", repo: host });
      };

      const rounds: { crashAt?: string; delayMs?: number; firstSync?: boolean }[] = [
        { crashAt: "mid-download:2" },
        { crashAt: "after-downloads-before-deletions:1" },
        { crashAt: "before-record:1" },
        { crashAt: "mid-download:1", firstSync: true },
        // Random moments, scaled to how long an uninterrupted run takes here.
        { delayMs: Math.round(base.ms * (0.25 + random() * 0.6)) },
      ];

      for (const round of rounds) {
        const what = `${round.crashAt ?? `SIGKILL after ${round.delayMs} ms`}${round.firstSync ? " (first sync)" : ""}`;
        await reset(!!round.firstSync);
        const run = spawnPantri(["retrieve", "--json", "-s", "rel", "-d", dest], {
          cwd: host,
          env: { ...hostEnv, ...(round.crashAt ? { PANTRI_TEST_CRASH_AT: round.crashAt } : {}) },
        });
        const timer = round.delayMs !== undefined ? setTimeout(() => run.child.kill("SIGKILL"), round.delayMs) : undefined;
        const killed = await run.done;
        clearTimeout(timer);
        if (round.crashAt) expect(killed.signal, `${what}: the crash point was reached\n${describeRun(killed)}`).toBe("SIGKILL");
        const after = await auditDest(dest, "rel", round.firstSync ? [contentB] : [contentA, contentB]);
        expect(after.problems, `dest after ${what}`).toEqual([]);
        const record = await readRecord(state, dest, "rel");
        if (killed.signal && record === commitB) {
          // A kill that lands after the record was written (the run was exiting): the record may
          // say B only because dest is wholly B.
          expect((await auditDest(dest, "rel", [contentB])).problems, `dest with the record at B (${what})`).toEqual([]);
          expect((await walkFiles(join(dest, "rel"))).map((f) => `rel/${f}`), `dest with the record at B (${what})`).toEqual([...contentB.keys()].sort());
        } else if (killed.signal) expect(record, `the record did not advance (${what})`).toBe(round.firstSync ? null : commitA);
        else expect([commitA, commitB]).toContain(record);

        const rerun = await runPantri(["retrieve", "--json", "-s", "rel", "-d", dest], { cwd: host, env: hostEnv });
        expect(rerun.code, `rerun after ${what}\n${describeRun(rerun)}`).toBe(0);
        const done = await auditDest(dest, "rel", [contentB]);
        expect(done.problems, `dest after the rerun (${what})`).toEqual([]);
        expect(done.partials, `leftover partial files after the rerun (${what})`).toEqual([]);
        expect((await walkFiles(join(dest, "rel"))).map((f) => `rel/${f}`)).toEqual([...contentB.keys()].sort());
        expect(await readRecord(state, dest, "rel")).toBe(commitB);
      }
    },
    150_000,
  );
});
