/**
 * Hostile input, property-based (fast-check, seeded, a bounded number of runs), always through
 * the REAL command line: pointer files anyone with push access could write, config files, and
 * file names (unicode, spaces, leading dashes, names that look like options, very long ones).
 * Whatever the input: no crash with a stack trace, nothing written outside dest, and either
 * success or exit 1/2 with a message naming the file at fault.
 *
 * These are about input handling, not the store, so they use the local store: the fastest way
 * to spend the time budget on more cases.
 */
import { readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeConfig } from "../helpers/cli.js";
import { makeRepos, randomBinary, type Repos } from "../helpers/gitdir.js";
import { STACK_LINE, auditSecretsAfterAll, describeRun, runPantri, sha256, walkFiles } from "./harness.js";

const SEED = 1337;
const ESCAPE = "PANTRI-ESCAPE";
const HEX64 = "a".repeat(64);
const HEX40 = "b".repeat(40);

auditSecretsAfterAll();

let repos: Repos;
let env: Record<string, string>;
let base: string;
let run = 0;

beforeAll(async () => {
  repos = await makeRepos();
  env = { PANTRI_STATE_DIR: join(repos.root, "state"), PANTRI_CACHE_DIR: join(repos.root, "cache") };
  await writeConfig(repos.packager, { objectStore: { type: "local", path: join(repos.root, "store") } });
  await repos.commitAll(repos.packager, "pantri config");
  await repos.writeFile(repos.packager, "shelves/pkgs/good.bin", randomBinary(5000, 1), 1_700_000_000);
  const stored = await runPantri(["store", "--json"], { cwd: repos.packager, env });
  expect(stored.code, describeRun(stored)).toBe(0);
  base = await repos.git(repos.packager, "rev-parse", "HEAD");
});

afterAll(async () => {
  await repos.cleanup();
});

/** Back to the base commit, with no stray files under shelves/ (good.bin is restored from git's view). */
async function resetRepo(): Promise<void> {
  await repos.git(repos.packager, "reset", "-q", "--hard", base);
  await repos.git(repos.packager, "clean", "-fdq", "--", "shelves/");
}

/**
 * Files named like an escape attempt wherever the attack paths could put them (dest is
 * <root>/dest-N, so `..` leads to <root>, then to tmp), and anything of that name inside dest.
 */
async function escapes(dest?: string): Promise<string[]> {
  const found = [...(await readdir(repos.root)), ...(await readdir(tmpdir()))].filter((f) => f.includes(ESCAPE));
  if (dest) found.push(...(await walkFiles(dest)).filter((f) => f.includes(ESCAPE)));
  return found;
}

function expectNoCrash(r: { code: number; stdout: string; stderr: string }, what: string): void {
  expect(r.stderr, `${what}: no stack trace`).not.toMatch(STACK_LINE);
  expect(r.stdout, `${what}: no stack trace`).not.toMatch(STACK_LINE);
  expect([0, 1, 2], `${what}: ${r.stderr}`).toContain(r.code);
}

// ------------------------------------------------------------------------------------ pointers

const segment = fc.stringMatching(/^[a-z0-9]{1,10}$/);
const attackPath = fc.constantFrom(
  `../${ESCAPE}`,
  `../../${ESCAPE}`,
  `pkgs/h/../../../${ESCAPE}`,
  `/tmp/${ESCAPE}`,
  `pkgs/h/a\\..\\..\\${ESCAPE}`,
  `pkgs/h/${ESCAPE}\u0000.bin`,
  `pkgs/h//${ESCAPE}`,
  `pkgs/./h/${ESCAPE}`,
  `other/${ESCAPE}`,
  `C:${ESCAPE}`,
  `pkgs/h/\n${ESCAPE}`,
);
const anyValue = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.object({ maxDepth: 1 }));

/** The text of a pointer file at shelves/pkgs/h/<name>.pitem: broken in every way we can think of. */
function hostilePointer(name: string): fc.Arbitrary<string> {
  const expected = `pkgs/h/${name}`;
  const v1 = fc.record({
    pantri: fc.oneof(fc.constant(1), fc.constant(1), fc.constant(2), fc.constant("1"), anyValue),
    path: fc.oneof(fc.constant(expected), attackPath, fc.string(), anyValue),
    size: fc.oneof(fc.nat(), fc.constant(-1), fc.constant(1e20), fc.constant(2 ** 53), anyValue),
    sha256: fc.oneof(fc.constant(HEX64), fc.string(), anyValue),
    sha1: fc.oneof(fc.constant(HEX40), fc.string(), anyValue),
    mtime: fc.oneof(fc.nat(), fc.constant(-5), fc.constant(1e300), anyValue),
  });
  const legacy = fc.tuple(fc.oneof(fc.constant(expected), attackPath, fc.string()), fc.record({ sha1_hash: anyValue, sha256_hash: anyValue, modified_time: anyValue, file_size: anyValue }));
  return fc.oneof(
    v1.map((o) => JSON.stringify(o, null, 2)),
    legacy.map(([k, o]) => JSON.stringify({ [k]: o })),
    fc.json(),
    fc.string(),
    fc.constant(`{"pantri": 1, "__proto__": {"path": "${expected}"}}`),
    fc.constant(`{"pantri": 1, "path": "${expected}", "size": 1, "sha256": "${HEX64}", "sha1": "${HEX40}", "mtime": 1, "pad": "${"x".repeat(70_000)}"}`),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString("latin1")),
  );
}

describe("hostile input through the CLI", () => {
  it("pointer files: each bad one fails its item by name; the others are retrieved; nothing escapes dest", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(segment, { minLength: 1, maxLength: 4 }).chain((names) => fc.tuple(...names.map((n) => hostilePointer(n).map((text) => ({ name: n, text }))))),
        async (pointers) => {
          run++;
          await resetRepo();
          for (const p of pointers) await repos.writeFile(repos.packager, `shelves/pkgs/h/${p.name}.pitem`, p.text);
          await repos.commitAll(repos.packager, `hostile ${run}`);
          const dest = join(repos.root, `dest-${run}`);
          const r = await runPantri(["retrieve", "--no-pull", "--json", "-d", dest], { cwd: repos.packager, env });
          expectNoCrash(r, "retrieve");
          expect(r.code, describeRun(r)).not.toBe(2);
          expect(r.json, describeRun(r)).not.toBeNull();
          // The valid item always arrives.
          expect(sha256(await readFile(join(dest, "pkgs/good.bin")).catch(() => Buffer.alloc(0))), describeRun(r)).toBe(sha256(randomBinary(5000, 1)));
          // Every hostile pointer either failed, named, or (valid by chance) was handled as an item.
          for (const p of pointers) {
            const path = `pkgs/h/${p.name}`;
            const failed = r.json?.failed.find((f) => f.path === path);
            const handled = failed ?? [...(r.json?.retrieved ?? []), ...(r.json?.skipped ?? [])].find((i) => i.path === path);
            expect(handled, `${path} is accounted for\n${describeRun(r)}`).toBeDefined();
            if (failed) expect(failed.error, describeRun(r)).toMatch(new RegExp(`${p.name}|not found|missing`));
          }
          if (r.code === 1) expect(r.json?.ok).toBe(false);
          expect(await escapes(dest)).toEqual([]);
          await rm(dest, { recursive: true, force: true });
        },
      ),
      { numRuns: 15, seed: SEED, endOnFailure: true },
    );
  }, 170_000);

  it("config files: a bad one is exit 2 naming the file and the setting; never a stack trace", async () => {
    const settingValue = fc.oneof(anyValue, fc.constant("local"), fc.constant({ type: "local" }), fc.constant({ type: "swift" }), fc.constant({ type: "nope" }));
    const config = fc.oneof(
      fc.json(),
      fc.string(),
      fc.dictionary(
        fc.constantFrom("objectStore", "destSync", "dest_sync", "ignorePatterns", "binaryOverrides", "keepFiles", "checksum", "concurrency", "jsonOutputDir", "shelves", "passwordFile", "bogus"),
        settingValue,
        { maxKeys: 4 },
      ).map((o) => JSON.stringify(o)),
    );
    await fc.assert(
      fc.asyncProperty(config, async (text) => {
        await resetRepo();
        await writeFile(join(repos.packager, "pantri.config.json"), text);
        const r = await runPantri(["status", "--json"], { cwd: repos.packager, env });
        expectNoCrash(r, "status");
        expect(r.json, describeRun(r)).not.toBeNull();
        if (r.code === 2) expect(r.json?.error?.message, describeRun(r)).toContain("pantri.config.json");
        else expect(r.code, describeRun(r)).toBe(0);
        expect(await escapes()).toEqual([]);
      }),
      { numRuns: 20, seed: SEED + 1, endOnFailure: true },
    );
  }, 120_000);

  it("file names (unicode, spaces, leading dashes, option look-alikes, very long): stored and retrieved intact, or failed by name", async () => {
    const optionLike = fc.constantFrom("--help", "-f", "--force", "-rf", "--", "-", "--dest=/tmp", "--repo", "-d", "--version", "-i");
    const unicode = fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 });
    const longName = fc.integer({ min: 200, max: 249 }).map((n) => `${"long-é".repeat(Math.ceil(n / 7))}`.slice(0, n));
    const name = fc
      .oneof(
        optionLike,
        unicode,
        fc.tuple(optionLike, unicode).map(([a, b]) => `${a}${b}`),
        unicode.map((u) => ` ${u} with  spaces `),
        fc.constantFrom("*", "[a]", "?x", "#hash", "!bang", "a\\b", "new\nline", "tab\there", "ünïcödé 日本 ✓", "\u202Eevil", "e\u0301"),
        longName,
      )
      .filter((n) => n !== "" && n !== "." && n !== ".." && !n.includes("/") && !n.includes("\0") && Buffer.byteLength(n) <= 249 && !n.endsWith(".pitem"))
      .filter((n) => !n.endsWith(".pantri-part") && n !== ".gitignore" && !/^\.(_|__|TemporaryItems|DS_Store)/.test(n) && !n.endsWith(".pyc"));
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(name, { minLength: 1, maxLength: 4, selector: (n) => n.normalize("NFC") }), fc.boolean(), async (names, explicit) => {
        run++;
        await resetRepo();
        const files = new Map<string, Buffer>();
        for (const [i, n] of names.entries()) {
          const data = randomBinary(300 + i, run * 10 + i);
          await repos.writeFile(repos.packager, `shelves/pkgs/fuzz/${n}`, data, 1_700_000_000 + i);
          files.set(n, data);
        }
        // Named on the command line after `--` (from inside the folder), or all of shelves/.
        const args = explicit ? ["store", "--json", "--", ...names] : ["store", "--json"];
        const cwd = explicit ? join(repos.packager, "shelves/pkgs/fuzz") : repos.packager;
        const stored = await runPantri(args, { cwd, env });
        expectNoCrash(stored, "store");
        expect(stored.json, describeRun(stored)).not.toBeNull();
        const failed = new Map(stored.json?.failed.map((f) => [f.path, f.error ?? ""]));
        for (const n of names) {
          const path = `pkgs/fuzz/${n}`;
          const ok = stored.json?.stored.some((s) => s.path === path);
          expect(ok || failed.has(path), `${JSON.stringify(n)} stored or failed by name\n${describeRun(stored)}`).toBe(true);
          if (!ok) expect(failed.get(path), describeRun(stored)).toMatch(/newline|backslash|control character|rename/);
        }
        expect(stored.code, describeRun(stored)).toBe(failed.size ? 1 : 0);

        const dest = join(repos.root, `dest-${run}`);
        const got = await runPantri(["retrieve", "--no-pull", "--json", "-d", dest], { cwd: repos.packager, env });
        expectNoCrash(got, "retrieve");
        expect(got.code, describeRun(got)).toBe(0);
        for (const [n, data] of files) {
          if (failed.has(`pkgs/fuzz/${n}`)) continue;
          expect(sha256(await readFile(join(dest, "pkgs/fuzz", n))), JSON.stringify(n)).toBe(sha256(data));
        }
        const inDest = (await walkFiles(dest)).filter((f) => f.startsWith("pkgs/fuzz/"));
        expect(inDest.length).toBe(names.length - failed.size);
        expect(await escapes(dest)).toEqual([]);
        await rm(dest, { recursive: true, force: true });
      }),
      { numRuns: 10, seed: SEED + 2, endOnFailure: true },
    );
  }, 170_000);
});
