import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeRun, runPantri, writeConfig, type RunPantriResult } from "../helpers/cli.js";
import { makeRepos, type Repos } from "../helpers/gitdir.js";
import { describeKeystone, keystoneOsEnv, keystoneStoreOptions, removeKeystoneContainers, uniqueContainer, type KeystoneEndpoints } from "../helpers/swift.js";
import { runScenarios } from "./scenarios.js";

/**
 * The real CLI on the Swift proxy that trusts the real Keystone: the end-to-end store/retrieve
 * suite (every `pantri` run logs in with Keystone v3, password by names and domains, and caches
 * the token in the test's PANTRI_CACHE_DIR), and `pantri auth` / `auth --test` configured by the
 * OS_* variables alone.
 */
describeKeystone("swift store via Keystone v3", (ep: KeystoneEndpoints) => {
  runScenarios("swift store via Keystone v3", async () => {
    const container = uniqueContainer("pantri-e2e-ks");
    return {
      // 1 MiB segments, so the scenarios' larger files could exercise SLOs too.
      objectStore: { type: "swift", ...keystoneStoreOptions(ep), container, segmentSize: 1024 * 1024 },
      cleanup: () => removeKeystoneContainers(ep, [container]),
    };
  });

  describe("pantri auth with Keystone (OS_* variables only)", () => {
    let repos: Repos;
    const container = uniqueContainer("pantri-e2e-ks-auth");
    const runs: RunPantriResult[] = [];
    const osEnv = (): Record<string, string> => ({
      ...keystoneOsEnv(ep),
      PANTRI_CACHE_DIR: join(repos.root, "cache"),
      PANTRI_STATE_DIR: join(repos.root, "state"),
    });
    const pantri = async (env: Record<string, string>, ...args: string[]): Promise<RunPantriResult> => {
      const r = await runPantri(args, { cwd: repos.packager, env });
      runs.push(r);
      return r;
    };

    beforeAll(async () => {
      repos = await makeRepos({ shelves: ["pkgs"] });
      await writeConfig(repos.packager, { objectStore: { type: "swift", container } });
    });
    afterAll(async () => {
      await removeKeystoneContainers(ep, [container]);
      await repos.cleanup();
    });

    it("auth caches a Keystone token that auth --test accepts; a garbled one fails auth --test with exit 1", async () => {
      const env = osEnv();
      const first = await pantri(env, "auth", "--json");
      expect(first.code, describeRun(first)).toBe(0);
      expect(first.json?.ok).toBe(true);
      // The auth result's details are top-level fields of the document.
      const details = first.json as unknown as { detail: string; cachedAt: string; expiresAt: number };
      expect(details.detail).toBe(ep.keystoneSwiftUrl);
      expect(details.cachedAt.startsWith(join(repos.root, "cache"))).toBe(true);
      expect(details.expiresAt).toBeGreaterThan(Date.now());

      const human = await pantri(env, "auth");
      expect(human.code, describeRun(human)).toBe(0);

      const test = await pantri(env, "auth", "--test");
      expect(test.code, describeRun(test)).toBe(0);

      const entry = JSON.parse(await readFile(details.cachedAt, "utf8")) as { token: string };
      await writeFile(details.cachedAt, JSON.stringify({ ...entry, token: `${entry.token.slice(0, -6)}broken` }), { mode: 0o600 });
      const garbled = await pantri(env, "auth", "--test");
      expect(garbled.code, describeRun(garbled)).toBe(1);

      const secrets = [ep.keystonePassword, entry.token];
      for (const r of runs) for (const s of secrets) expect(`${r.stdout}\n${r.stderr}`).not.toContain(s);
    });

    it("a wrong OS_PASSWORD fails auth with exit 1 and a message naming the variables, not the password", async () => {
      const r = await pantri({ ...osEnv(), OS_PASSWORD: "not-the-keystone-password" }, "auth");
      expect(r.code, describeRun(r)).toBe(1);
      expect(r.stderr).toContain("refused the credentials (401)");
      expect(r.stderr).toContain("OS_PASSWORD");
      expect(`${r.stdout}\n${r.stderr}`).not.toContain("not-the-keystone-password");
    });
  });
});
