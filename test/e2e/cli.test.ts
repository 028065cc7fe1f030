/**
 * The command line as users meet it (SPEC 4-6): `bin/pantri.js` spawned for real, help and
 * version, usage and config errors (exit 2, readable, no stack trace), one JSON document even on
 * failure, and the zero-config local store.
 */
import { mkdtemp, readFile, realpath, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PACKAGE_ROOT, contentKeyOf, describeRun, expectedPointer, runPantri, writeConfig, type RunPantriResult } from "../helpers/cli.js";
import { makeRepos, randomBinary, type Repos } from "../helpers/gitdir.js";

let repos: Repos;
let env: Record<string, string>;

beforeEach(async () => {
  repos = await makeRepos({ shelves: ["pkgs"] });
  env = { PANTRI_STATE_DIR: join(repos.root, "state"), PANTRI_CACHE_DIR: join(repos.root, "cache") };
});

afterEach(async () => {
  await repos.cleanup();
});

const run = (cwd: string, ...args: string[]): Promise<RunPantriResult> => runPantri(args, { cwd, env });

/** A Node stack frame, as printed by err.stack. */
const STACK_FRAME = /^\s+at .+[(:]\d+/m;

describe("pantri command line", () => {
  it("--help lists every command and global flag", async () => {
    const r = await run(repos.packager, "--help");
    expect(r.code, describeRun(r)).toBe(0);
    for (const command of ["store", "retrieve", "status", "verify", "auth"]) {
      expect(r.stdout, command).toMatch(new RegExp(`pantri ${command}\\b`));
    }
    for (const flag of ["--repo", "--config", "--json", "--quiet", "--verbose", "--help", "--version"]) {
      expect(r.stdout, flag).toContain(flag);
    }
  });

  it("--version prints package.json's version", async () => {
    const { version } = JSON.parse(await readFile(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string };
    const r = await run(repos.packager, "--version");
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  });

  it("an unknown flag is a usage error (exit 2) with a message and no stack trace", async () => {
    const r = await run(repos.packager, "store", "--bogus-flag");
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toContain("bogus-flag");
    expect(r.stderr).not.toMatch(STACK_FRAME);
    expect(r.stdout).not.toMatch(STACK_FRAME);
  });

  it("a bad config is exit 2 and lists every problem with its key", async () => {
    await writeConfig(repos.packager, { concurrency: "x", destSnyc: 1 });
    const r = await run(repos.packager, "status", "--json");
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toContain("concurrency");
    expect(r.stderr).toContain("destSnyc");
    expect(r.stderr).toContain("pantri.config.json");
    expect(r.stderr).not.toMatch(STACK_FRAME);
    expect(r.json, describeRun(r)).not.toBeNull();
    expect(r.json?.ok).toBe(false);
    expect(r.json?.error?.exitCode).toBe(2);
    expect(r.json?.error?.message).toContain("concurrency");
    expect(r.json?.error?.message).toContain("destSnyc");

    // An unknown store type is a configuration error too, named as such.
    await writeConfig(repos.packager, { objectStore: { type: "no-such-store" } });
    await repos.writeFile(repos.packager, "shelves/pkgs/x.bin", randomBinary(300, 4), 1_600_000_004);
    const store = await run(repos.packager, "store", "--json");
    expect(store.code, describeRun(store)).toBe(2);
    expect(store.stderr).toContain("no-such-store");
    expect(store.stderr).not.toMatch(STACK_FRAME);
    expect(await readFile(join(repos.packager, "shelves/pkgs/x.bin.pitem")).catch(() => null)).toBeNull();
  });

  it("--json on failing commands still prints exactly one JSON document with ok: false", async () => {
    // A usage error, a whole-command failure...
    await repos.writeFile(repos.packager, "outside.bin", randomBinary(300, 1));
    for (const args of [
      ["store", "outside.bin", "--json"],
      ["retrieve", "--no-pull", "-s", "nope", "--json"],
      ["store", "--no-such-flag", "--json"],
    ]) {
      const r = await run(repos.packager, ...args);
      expect(r.code, `${args.join(" ")}: ${describeRun(r)}`).toBe(2);
      expect(r.json, `${args.join(" ")}: stdout is not one JSON document: ${describeRun(r)}`).not.toBeNull();
      expect(r.json?.ok).toBe(false);
      expect(r.json?.schemaVersion).toBe(1);
    }
    // ...and an item that failed (a pointer whose object is not in the store).
    await repos.writeFile(repos.packager, "shelves/pkgs/ghost.bin", randomBinary(400, 2), 1_600_000_000);
    const stored = await run(repos.packager, "store", "--json");
    expect(stored.code, describeRun(stored)).toBe(0);
    const key = contentKeyOf(randomBinary(400, 2));
    await rm(join(repos.packager, ".pantri/store", key));
    const r = await run(repos.packager, "retrieve", "--no-pull", "--json");
    expect(r.code, describeRun(r)).toBe(1);
    expect(r.json, describeRun(r)).not.toBeNull();
    expect(r.json?.ok).toBe(false);
    expect(r.json?.command).toBe("retrieve");
    expect(r.json?.failed.map((i) => i.path)).toEqual(["pkgs/ghost.bin"]);
  });

  it("outside a git repository is exit 2 with a clear message", async () => {
    const outside = await realpath(await mkdtemp(join(tmpdir(), "pantri-nogit-")));
    try {
      const r = await run(outside, "status");
      expect(r.code, describeRun(r)).toBe(2);
      expect(r.stderr).toContain(outside);
      expect(r.stderr).toMatch(/git/);
      expect(r.stderr).not.toMatch(STACK_FRAME);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it("with no config the local store in <repo>/.pantri/store just works, kept out of git with dest_sync/", async () => {
    const packager = repos.packager;
    const data = randomBinary(2500, 3);
    await repos.writeFile(packager, "shelves/pkgs/tool.bin", data, 1_600_000_003);

    const stored = await run(packager, "store", "--json");
    expect(stored.code, describeRun(stored)).toBe(0);
    expect(stored.json?.stored.map((i) => i.path)).toEqual(["pkgs/tool.bin"]);
    expect(await readFile(join(packager, "shelves/pkgs/tool.bin.pitem"), "utf8")).toBe(expectedPointer("pkgs/tool.bin", data, 1_600_000_003));
    expect((await readFile(join(packager, ".pantri/store", contentKeyOf(data)))).equals(data)).toBe(true);

    const retrieved = await run(packager, "retrieve", "--no-pull", "--json");
    expect(retrieved.code, describeRun(retrieved)).toBe(0);
    const file = join(packager, "dest_sync/pkgs/tool.bin");
    expect(retrieved.json?.retrieved.map((i) => i.file)).toEqual([file]);
    expect((await readFile(file)).equals(data)).toBe(true);
    expect(Math.floor((await stat(file)).mtimeMs / 1000)).toBe(1_600_000_003);

    const exclude = (await readFile(join(packager, ".git/info/exclude"), "utf8")).split("\n");
    expect(exclude.some((l) => /^\/?\.pantri\/?$/.test(l)), exclude.join("\n")).toBe(true);
    expect(exclude.some((l) => /^\/?dest_sync\/?$/.test(l)), exclude.join("\n")).toBe(true);
    // Nothing of pantri's own shows up in git: no store, no dest, no binary.
    expect(await repos.git(packager, "status", "--porcelain", "--untracked-files=all")).toBe("");
  });
});
