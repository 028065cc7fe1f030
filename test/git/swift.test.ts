import { execFile } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, expect, it } from "vitest";
import { contentKeyOf, describeRun, expectedPointer, pathsOf, runPantri, writeConfig } from "../helpers/cli.js";
import { makeRepos, randomBinary, type Repos } from "../helpers/gitdir.js";
import { describeSwift, uniqueContainer } from "../helpers/swift.js";
import { runScenarios } from "./scenarios.js";

// The whole end-to-end suite (real git repos, the real CLI) against the real Swift. A 1 MiB
// segment size sends the suite's larger files through Static Large Objects too.
describeSwift("swift end to end", (ep) => {
  runScenarios("swift store (real OpenStack Swift)", async () => ({
    objectStore: { type: "swift", authUrl: ep.authUrl, user: ep.user, key: ep.key, container: uniqueContainer("pantri-e2e"), segmentSize: 1024 * 1024 },
  }));
  // Again with staged uploads from 1,000 bytes: the suite's binaries (1.5-5 KB, sizes no other
  // pointer has) go up while they are hashed, and every scenario (changes, deletions, corrupt
  // objects, legacy pointers, --ref, -i ...) must hold for objects stored that way as well.
  runScenarios("swift store, staged uploads", async () => ({
    objectStore: {
      type: "swift",
      authUrl: ep.authUrl,
      user: ep.user,
      key: ep.key,
      container: uniqueContainer("pantri-e2e-staged"),
      segmentSize: 1024 * 1024,
      stageMinBytes: 1000,
    },
  }));
});

describeSwift("swift staged uploads through the CLI", (ep) => {
  const run = promisify(execFile);
  let repos: Repos;
  let env: Record<string, string>;
  afterEach(async () => repos.cleanup());

  it("stages new big files, hashes first those whose size a pointer has, and the next run removes what a killed run staged, even one that stages nothing", async () => {
    repos = await makeRepos({ shelves: ["pkgs"] });
    const { packager, root } = repos;
    env = { PANTRI_STATE_DIR: join(root, "state"), PANTRI_CACHE_DIR: join(root, "cache") };
    const container = uniqueContainer("pantri-stage-cli");
    await writeConfig(packager, {
      objectStore: { type: "swift", authUrl: ep.authUrl, user: ep.user, key: ep.key, container, segmentSize: 1024 * 1024, stageMinBytes: 10_000 },
    });
    await repos.commitAll(packager, "pantri config");
    const swiftEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(OS_|ST_)/.test(k)));
    const swift = async (...args: string[]) => (await run("swift", ["-A", ep.authUrl, "-U", ep.user, "-K", ep.key, ...args], { env: swiftEnv })).stdout;
    const staged = async () => (await swift("list", `${container}_segments`).catch(() => "")).split("\n").filter((n) => n.startsWith(`${container}/staged/`));
    const notes = async () => readdir(join(root, "cache", "swift-staged")).catch(() => [] as string[]);
    const store = async (extra: Record<string, string> = {}) => runPantri(["store", "--json", "-v"], { cwd: packager, env: { ...env, ...extra } });
    const data = { a: randomBinary(50_000, 1), b: randomBinary(50_000, 2), c: randomBinary(70_000, 3), d: randomBinary(90_000, 4), small: randomBinary(9_000, 5), small2: randomBinary(8_000, 6) };
    const write = (name: keyof typeof data) => repos.writeFile(packager, `shelves/pkgs/${name}.bin`, data[name], 1_600_000_000);

    try {
      // New sizes from 10,000 bytes up go up while they are hashed; a smaller file is hashed first.
      await write("a");
      await write("small");
      let r = await store();
      expect(r.code, describeRun(r)).toBe(0);
      expect(await staged()).toHaveLength(1);
      expect(r.stderr).toMatch(/stored while it was hashed/);

      // b has a's size (a pointer has it: maybe stored already), so it is hashed first; c is staged.
      await write("b");
      await write("c");
      r = await store();
      expect(r.code, describeRun(r)).toBe(0);
      expect(pathsOf(r.json?.stored).sort()).toEqual(["pkgs/b.bin", "pkgs/c.bin"]);
      expect(await staged()).toHaveLength(2);
      for (const name of ["a", "b", "c", "small"] as const) {
        expect(await readFile(join(packager, "shelves", "pkgs", `${name}.bin.pitem`), "utf8")).toBe(expectedPointer(`pkgs/${name}.bin`, data[name], 1_600_000_000));
        expect(await swift("stat", container, contentKeyOf(data[name]))).toMatch(new RegExp(`Content Length: ${data[name].length}\\b`));
      }

      // Killed after d's bytes were staged, before its commit: the segment and its note stay ...
      await write("d");
      r = await store({ PANTRI_TEST_CRASH_AT: "after-stage-before-commit" });
      expect(r.code).not.toBe(0);
      expect(await staged()).toHaveLength(3);
      expect(await notes()).toHaveLength(1);
      await expect(readFile(join(packager, "shelves", "pkgs", "d.bin.pitem"))).rejects.toThrow();
      // ... and the next run removes it, also one that stages nothing itself (it stores only a
      // small file) ...
      await write("small2");
      r = await runPantri(["store", "--json", "-v", "shelves/pkgs/small2.bin"], { cwd: packager, env });
      expect(r.code, describeRun(r)).toBe(0);
      expect(r.stderr).toMatch(/removed staged segment .* left by a killed run/);
      expect(pathsOf(r.json?.stored)).toEqual(["pkgs/small2.bin"]);
      expect(await staged()).toHaveLength(2);
      expect(await notes()).toEqual([]);
      // ... and d is staged again and stored by the run after.
      r = await store();
      expect(r.code, describeRun(r)).toBe(0);
      expect(pathsOf(r.json?.stored)).toEqual(["pkgs/d.bin"]);
      expect(await staged()).toHaveLength(3);
      expect(await notes()).toEqual([]);
      await repos.git(packager, "push", "--quiet");
      const host = await repos.cloneBuildHost("host");
      const got = await runPantri(["retrieve", "--json", "-d", join(root, "dest")], { cwd: host, env });
      expect(got.code, describeRun(got)).toBe(0);
      for (const name of ["a", "b", "c", "d", "small", "small2"] as const) expect((await readFile(join(root, "dest", "pkgs", `${name}.bin`))).equals(data[name])).toBe(true);
    } finally {
      for (const name of [container, `${container}_segments`]) await swift("delete", name).catch(() => undefined);
    }
  });

  it("falls back to hashing first when the account may not write the segment container (403), and stores everything", async () => {
    repos = await makeRepos({ shelves: ["pkgs"] });
    const { packager, root } = repos;
    env = { PANTRI_STATE_DIR: join(root, "state"), PANTRI_CACHE_DIR: join(root, "cache") };
    const container = uniqueContainer("pantri-stage-acl");
    const swiftEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(OS_|ST_)/.test(k)));
    const swift = async (...args: string[]) => (await run("swift", ["-A", ep.authUrl, "-U", ep.user, "-K", ep.key, ...args], { env: swiftEnv })).stdout;
    // A container of account test that user2 (no admin, another account) may read and write;
    // it may not create test's segment container.
    await swift("post", "-r", ep.user2, "-w", ep.user2, container);
    try {
      await writeConfig(packager, {
        objectStore: { type: "swift", authUrl: ep.authUrl, user: ep.user2, key: ep.key2, storageUrl: `${ep.proxyUrl}/v1/AUTH_test`, container, stageMinBytes: 10_000 },
      });
      await repos.commitAll(packager, "pantri config");
      const data = [randomBinary(40_000, 7), randomBinary(45_000, 8), randomBinary(2_000, 9)];
      for (const [i, d] of data.entries()) await repos.writeFile(packager, `shelves/pkgs/f${i}.bin`, d, 1_600_000_000);
      const r = await runPantri(["store", "--json"], { cwd: packager, env });
      expect(r.code, describeRun(r)).toBe(0);
      expect(pathsOf(r.json?.stored)).toEqual(["pkgs/f0.bin", "pkgs/f1.bin", "pkgs/f2.bin"]);
      expect(r.stderr).toMatch(/refused a staged upload .*403.*hashing big files before uploading them instead/);
      for (const d of data) expect(await swift("stat", container, contentKeyOf(d))).toMatch(new RegExp(`Content Length: ${d.length}\\b`));
    } finally {
      await swift("delete", container).catch(() => undefined);
    }
  });
});
