/**
 * An object changed in Swift after it was stored (same size, other bytes, written behind
 * pantri's back through the Swift API) is detected by retrieve and by `verify --remote`: the item
 * fails with exit 1 naming the object and the pointer, the old dest file stays, nothing holds the
 * bad bytes, and the sync record does not advance.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { randomBinary, type Repos } from "../helpers/gitdir.js";
import { describeSwift } from "../helpers/swift.js";
import {
  auditSecretsAfterAll,
  describeRun,
  keyOf,
  leftoversIn,
  readRecord,
  runPantri,
  setUpSwiftFixture,
  sha256,
  swiftPut,
  walkFiles,
  type SwiftAdmin,
  type SwiftFixture,
} from "./harness.js";

const KiB = 1024;

auditSecretsAfterAll();

describeSwift("corruption in the store", (ep) => {
  let fx: SwiftFixture;
  let repos: Repos;
  let admin: SwiftAdmin;
  let container: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    fx = await setUpSwiftFixture(ep, { prefix: "faults-corrupt" });
    ({ repos, admin, container, env } = fx);
  });

  afterAll(() => fx.cleanup());

  it("is detected by retrieve and verify --remote; the old dest file stays; exit 1 names object and pointer", async () => {
    const p = repos.packager;
    const v1 = randomBinary(300 * KiB, 1);
    const other = randomBinary(20 * KiB, 2);
    await repos.writeFile(p, "shelves/pkgs/app.bin", v1, 1_700_000_001);
    await repos.writeFile(p, "shelves/pkgs/other.bin", other, 1_700_000_002);
    expect((await runPantri(["store", "--json", "--push"], { cwd: p, env })).code).toBe(0);

    const host = await repos.cloneBuildHost();
    const dest = join(repos.root, "dest");
    const state = env.PANTRI_STATE_DIR ?? "";
    const first = await runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env });
    expect(first.code, describeRun(first)).toBe(0);
    const synced = await readRecord(state, dest, "pkgs");

    // A new version is stored, then its object is overwritten in Swift with other bytes of the same size.
    const v2 = randomBinary(300 * KiB, 3);
    await repos.writeFile(p, "shelves/pkgs/app.bin", v2, 1_700_000_003);
    expect((await runPantri(["store", "--json", "--push"], { cwd: p, env })).code).toBe(0);
    const key = keyOf(sha256(v2));
    const garbage = randomBinary(v2.length, 4);
    expect(await swiftPut(admin, container, key, garbage)).toBe(201);

    const failed = await runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env });
    expect(failed.code, describeRun(failed)).toBe(1);
    expect(failed.json?.failed.map((f) => f.path)).toEqual(["pkgs/app.bin"]);
    const error = failed.json?.failed[0]?.error ?? "";
    expect(error).toContain(key);
    expect(error).toContain("shelves/pkgs/app.bin.pitem");
    expect(error).toMatch(/corrupt/);
    expect(failed.stderr).not.toMatch(/^\s+at /m);
    expect(sha256(await readFile(join(dest, "pkgs/app.bin"))), "the old file stays").toBe(sha256(v1));
    expect(await leftoversIn(dest)).toEqual([]);
    expect(await readRecord(state, dest, "pkgs"), "the record did not advance").toBe(synced);

    // A fresh host gets nothing under the final name, and no bad bytes anywhere.
    const fresh = await repos.cloneBuildHost("fresh");
    const freshDest = join(repos.root, "fresh-dest");
    const none = await runPantri(["retrieve", "--json", "-d", freshDest], { cwd: fresh, env });
    expect(none.code, describeRun(none)).toBe(1);
    expect(await walkFiles(freshDest)).toEqual(["pkgs/.gitkeep", "pkgs/other.bin"]);

    const verify = await runPantri(["verify", "--remote", "--json", "-d", dest], { cwd: host, env });
    expect(verify.code, describeRun(verify)).toBe(1);
    const problem = verify.json?.failed.find((f) => f.path === "pkgs/app.bin")?.error ?? "";
    expect(problem).toContain(key);
    expect(problem).toContain("shelves/pkgs/app.bin.pitem");
    expect(problem).toMatch(/corrupt/);

    // Once the object is put right, the next run heals dest and advances the record.
    expect(await swiftPut(admin, container, key, v2)).toBe(201);
    const healed = await runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env });
    expect(healed.code, describeRun(healed)).toBe(0);
    expect(sha256(await readFile(join(dest, "pkgs/app.bin")))).toBe(sha256(v2));
    expect(await readRecord(state, dest, "pkgs")).toBe(await repos.git(host, "rev-parse", "HEAD"));
  });
});
