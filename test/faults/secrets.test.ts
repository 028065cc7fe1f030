/**
 * Secrets never appear in any output: every run of this file is made to fail or talk as much as
 * it can (--verbose, --json, stack traces, 100% network faults, a refused key, a pre-issued
 * token), and its stdout and stderr are searched for the key (as a word), a wrong key, and every
 * token value pantri obtained (read back from its token cache). Every other file of the fault
 * suite runs the same search over its own outputs (auditSecretsAfterAll in ./harness.ts).
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { writeConfig } from "../helpers/cli.js";
import { makeRepos, randomBinary, type Repos } from "../helpers/gitdir.js";
import { describeSwift, uniqueContainer } from "../helpers/swift.js";
import { startFaultProxy, type FaultProxy } from "./fault-proxy.js";
import {
  auditSecretsAfterAll,
  cachedTokens,
  describeRun,
  outputs,
  runPantri,
  secretLeaks,
  secrets,
  swiftConfig,
  swiftDrop,
  swiftEnv,
  swiftLogin,
  type SwiftAdmin,
} from "./harness.js";

auditSecretsAfterAll();

describeSwift("no secret in any output", (ep) => {
  let repos: Repos;
  let admin: SwiftAdmin;
  let container: string;
  let proxy: FaultProxy;
  let env: Record<string, string>;
  const cache = () => join(repos.root, "cache");

  beforeAll(async () => {
    repos = await makeRepos();
    container = uniqueContainer("faults-secrets");
    admin = await swiftLogin(ep);
    secrets.add(admin.token);
    proxy = await startFaultProxy({ target: ep.proxyUrl, seed: 7, stallMs: 2500 });
    env = swiftEnv({ endpoints: ep, via: proxy.url, state: join(repos.root, "state"), cache: cache() });
    await writeConfig(repos.packager, swiftConfig({ endpoints: ep, repos, container, store: { timeoutMs: 1500 } }));
    await repos.commitAll(repos.packager, "pantri config");
    await repos.git(repos.packager, "push", "--quiet");
    await repos.writeFile(repos.packager, "shelves/pkgs/a.bin", randomBinary(40_000, 1), 1_700_000_001);
  });

  afterAll(async () => {
    await proxy.close();
    await swiftDrop(admin, container).catch(() => undefined);
    await repos.cleanup();
  });

  it("verbose, JSON, failing and faulted runs print no key and no token", async () => {
    const cwd = repos.packager;
    const verbose = async (args: string[], extra: Record<string, string> = {}) => runPantri([...args, "--verbose"], { cwd, env: { ...env, ...extra } });

    const auth = await verbose(["auth"]);
    expect(auth.code, describeRun(auth)).toBe(0);
    const tokens = await cachedTokens(cache());
    expect(tokens.length, "a token was cached").toBeGreaterThan(0);
    for (const t of tokens) secrets.add(t);
    const cacheFiles = (await readdir(cache())).filter((f) => f.startsWith("swift-token-"));
    for (const f of cacheFiles) expect((await stat(join(cache(), f))).mode & 0o077, `${f} is private`).toBe(0);

    expect((await verbose(["auth", "--test"])).code).toBe(0);
    expect((await verbose(["store", "--json", "--push"])).code).toBe(0);

    // Everything failing at once: stack traces printed (--verbose), token in use on every request.
    // (Faults that never let an upload through whole: a stalled PUT may still store its object.)
    proxy.configure({ rate: 1, kinds: ["503", "500", "reset"] });
    await repos.writeFile(repos.packager, "shelves/pkgs/b.bin", randomBinary(30_000, 2), 1_700_000_002);
    const failingStore = await verbose(["store", "--json"]);
    expect(failingStore.code).toBe(1);
    const host = await repos.cloneBuildHost();
    const failingRetrieve = await runPantri(["retrieve", "--verbose", "-d", join(repos.root, "dest")], { cwd: host, env });
    expect(failingRetrieve.code).toBe(1);
    expect((await verbose(["status", "--remote", "--json"])).code).not.toBe(0);
    proxy.configure({ rate: 0 });

    // A refused key: the message says what to fix, never the key.
    const wrongKey = "pantri-wrong-key-Zq81x";
    secrets.add(wrongKey);
    const refused = await verbose(["auth"], { ST_KEY: wrongKey, PANTRI_CACHE_DIR: join(repos.root, "cache-wrong") });
    expect(refused.code, describeRun(refused)).toBe(1);
    expect(refused.stderr).toMatch(/authentication failed|401|403/);

    // A pre-issued token (OS_STORAGE_URL + OS_AUTH_TOKEN), refused and accepted.
    const preIssued = { ST_AUTH: "", ST_USER: "", ST_KEY: "", OS_STORAGE_URL: admin.storageUrl, OS_AUTH_TOKEN: admin.token };
    expect((await verbose(["status", "--remote"], preIssued)).code).toBe(0);
    const badToken = `AUTH_tk${"0".repeat(32)}`;
    secrets.add(badToken);
    const badTokenRun = await verbose(["status", "--remote", "--json"], { ...preIssued, OS_AUTH_TOKEN: badToken });
    expect(badTokenRun.code, describeRun(badTokenRun)).not.toBe(0);
    expect(badTokenRun.stdout).toMatch(/token was refused|401/);

    for (const t of await cachedTokens(cache())) secrets.add(t);
    // The search finds what it looks for (a key as a word, a token anywhere)...
    expect(secretLeaks([`x-auth-key: ${ep.key}\n`, `token=${tokens[0] ?? ""}`])).toHaveLength(2);
    // ...and all the outputs above hold none.
    expect(outputs.length).toBeGreaterThan(10);
    expect(secretLeaks(), "secrets in pantri's output").toEqual([]);
  });
});
