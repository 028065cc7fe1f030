import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { ConfigError, StoreError } from "../../src/core/errors.js";
import { KeystoneV3, keystoneV3Base } from "../../src/objectstores/swift-keystone.js";
import { SwiftClient, type AuthHttp, type SwiftAuthMethod, type SwiftSession } from "../../src/objectstores/swift-client.js";
import createSwiftStore from "../../src/objectstores/swift.js";
import type { ObjectStore, StoreContext, StoreOptions } from "../../src/objectstores/types.js";
import { describeKeystone, keystoneOsEnv, keystoneStoreOptions, removeKeystoneContainers, uniqueContainer, type KeystoneEndpoints } from "../helpers/swift.js";
import { runStoreContract, sourceFromBuffer } from "./contract.js";

const run = promisify(execFile);
const MiB = 1 << 20;

/** Every log line and error message this file produces, checked for secrets at the end. */
const logLines: string[] = [];
const errorTexts: string[] = [];

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** The rejection of p (recorded for the secrets check), or a failure if it resolved. */
async function failureOf(p: Promise<unknown> | (() => unknown)): Promise<Error> {
  const err: unknown =
    typeof p === "function"
      ? await Promise.resolve()
          .then(p)
          .then(
            () => null,
            (e: unknown) => e,
          )
      : await p.then(
          () => null,
          (e: unknown) => e,
        );
  if (!(err instanceof Error)) throw new Error("expected a rejection");
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) errorTexts.push(e.message, e.stack ?? "");
  return err;
}

const noServer: StoreContext = { repoRoot: "/tmp", cacheDir: "/tmp/none", env: {}, log: (m) => logLines.push(m) };

describe("swift store Keystone options (no server needed)", () => {
  const make = (options: StoreOptions) => () => createSwiftStore({ container: "c", ...options }, noServer);

  it("accepts a /v3 auth URL, or authVersion 3 with any URL, and describes itself without secrets", async () => {
    const store = await make({ authUrl: "http://h:5000/v3", user: "u", key: "pw-in-options", project: "p" })();
    expect(store.description).toBe('swift container "c" at http://h:5000/v3');
    await store.close?.();
    const other = await make({ authVersion: 3, authUrl: "http://h:5000", user: "u", key: "pw-in-options", projectId: "0123" })();
    await other.close?.();
  });

  it("names every missing Keystone setting with its OS_* variable, never the password or secret", async () => {
    const err = await failureOf(make({ authUrl: "http://h/v3", key: "pw-missing-user" }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain("OS_USERNAME or OS_USER_ID");
    expect(err.message).toContain("OS_PROJECT_NAME or OS_PROJECT_ID");
    expect(err.message).not.toContain("pw-missing-user");
    const appCred = await failureOf(make({ authUrl: "http://h/v3", applicationCredentialSecret: "half-an-app-cred" }));
    expect(appCred.message).toContain("OS_APPLICATION_CREDENTIAL_ID");
    expect(appCred.message).not.toContain("half-an-app-cred");
    const nothing = await failureOf(make({ authUrl: "http://h/v3" }));
    expect(nothing.message).toMatch(/no Keystone credentials: .*OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME/);
    const noUrl = await failureOf(make({ authVersion: 3, user: "u", key: "k", project: "p" }));
    expect(noUrl.message).toContain("objectStore.authUrl (OS_AUTH_URL) is not set");
  });

  it("refuses a v2.0 URL and an unknown interface; takes python-swiftclient's publicURL spelling", async () => {
    expect((await failureOf(make({ authUrl: "http://h/v2.0", authVersion: 3, user: "u", key: "k", project: "p" }))).message).toContain("Keystone v2.0 URL");
    expect((await failureOf(make({ authUrl: "http://h/v3", user: "u", key: "k", project: "p", interface: "private" }))).message).toMatch(
      /objectStore\.interface must be one of public, internal, admin/,
    );
    const store = await make({ authUrl: "http://h/v3", user: "u", key: "k", project: "p", interface: "internalURL" })();
    await store.close?.();
  });

  it("finds the /v3 base whether the URL has it, a trailing slash, or a path prefix", () => {
    expect(keystoneV3Base("https://k.example.com:5000/v3")).toBe("https://k.example.com:5000/v3");
    expect(keystoneV3Base("https://k.example.com:5000/v3/")).toBe("https://k.example.com:5000/v3");
    expect(keystoneV3Base("https://k.example.com:5000")).toBe("https://k.example.com:5000/v3");
    expect(keystoneV3Base("https://k.example.com/identity/")).toBe("https://k.example.com/identity/v3");
  });

  it("says what the catalog has when it lacks an object-store service, and honours expires_at", async () => {
    const token = "gAAAAAfake-token-for-the-unit-test";
    const catalog = (services: unknown[]) => JSON.stringify({ token: { expires_at: "2031-01-02T03:04:05.000000Z", catalog: services } });
    let body = catalog([{ type: "identity", endpoints: [{ interface: "public", region_id: "R1", url: "http://k/v3" }] }]);
    const http: AuthHttp = (req) => {
      expect(req.url).toBe("http://k/v3/auth/tokens");
      return Promise.resolve({ status: 201, statusText: "Created", headers: { "x-subject-token": token }, text: body });
    };
    const auth = new KeystoneV3({ authUrl: "http://k", credential: { kind: "applicationCredential", id: "ac", secret: "sec-ret-unit" }, interface: "public" });
    const err = await failureOf(auth.login({ http, store: "s" }));
    expect(err.message).toContain("it has no object-store service at all (services: identity)");
    body = catalog([{ type: "object-store", endpoints: [{ interface: "public", region_id: "R1", url: "http://swift/v1/AUTH_p" }] }]);
    const session = await auth.login({ http, store: "s" });
    expect(session).toEqual({ storageUrl: "http://swift/v1/AUTH_p", token, expiresAt: Date.UTC(2031, 0, 2, 3, 4, 5) });
  });
});

describe("token expiry in a long run (no server needed)", () => {
  /** A login that counts itself and hands out tokens valid for `validMs`. */
  function countingAuth(validMs: number): SwiftAuthMethod & { logins: number } {
    const auth = {
      logins: 0,
      renewable: true,
      endpoint: "http://auth.invalid/v3",
      cacheIdentity: null,
      secrets: [],
      refusedAdvice: "refused",
      login(): Promise<SwiftSession> {
        auth.logins++;
        return Promise.resolve({ storageUrl: "http://swift.invalid/v1/AUTH_x", token: `tok-${auth.logins}`, expiresAt: Date.now() + validMs });
      },
    };
    return auth;
  }

  it("logs in again when the in-memory token gets within a minute of its expiry, once for concurrent callers", async () => {
    const auth = countingAuth(60_000 + 300);
    const client = new SwiftClient({ auth, description: "test", concurrency: 1, timeoutMs: 1000, log: (m) => logLines.push(m) });
    expect((await client.session()).token).toBe("tok-1");
    expect((await client.session()).token).toBe("tok-1");
    await new Promise((r) => setTimeout(r, 400));
    const again = await Promise.all([client.session(), client.session(), client.session()]);
    expect(again.map((s) => s.token)).toEqual(["tok-2", "tok-2", "tok-2"]);
    expect(auth.logins).toBe(2);
    await client.close();
  });

  it("keeps a token that is far from its expiry", async () => {
    const auth = countingAuth(3_600_000);
    const client = new SwiftClient({ auth, description: "test", concurrency: 1, timeoutMs: 1000, log: (m) => logLines.push(m) });
    for (let i = 0; i < 5; i++) await client.session();
    expect(auth.logins).toBe(1);
    await client.close();
  });
});

describeKeystone("swift store on a real Keystone v3", (ep: KeystoneEndpoints) => {
  let cacheDir: string;
  let workDir: string;
  const containers = new Set<string>();
  const stores: ObjectStore[] = [];
  const tokensSeen = new Set<string>();

  const context = (log?: string[], cache?: string): StoreContext => ({
    repoRoot: workDir,
    cacheDir: cache ?? cacheDir,
    env: {},
    log: (m) => {
      logLines.push(m);
      log?.push(m);
    },
  });
  const container = (prefix: string): string => {
    const c = uniqueContainer(prefix);
    containers.add(c);
    return c;
  };
  /** A store over the Keystone proxy; by default swiftuser's password login by names. */
  const open = async (options: StoreOptions, opts: { log?: string[]; cache?: string; base?: StoreOptions } = {}): Promise<ObjectStore> => {
    if (typeof options.container === "string") containers.add(options.container);
    const store = await createSwiftStore({ ...(opts.base ?? keystoneStoreOptions(ep)), segmentSize: MiB, ...options }, context(opts.log, opts.cache));
    stores.push(store);
    return store;
  };
  const appCredOptions = (): StoreOptions => ({
    authUrl: ep.keystoneUrl,
    applicationCredentialId: ep.keystoneAppCredId,
    applicationCredentialSecret: ep.keystoneAppCredSecret,
  });
  const logins = (log: string[]) => log.filter((l) => l.startsWith("swift: logging in at ")).length;
  const freshCache = async () => mkdtemp(join(workDir, "cache-"));
  const tokenFiles = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((f) => f.startsWith("swift-token-") && f.endsWith(".json")).map((f) => join(dir, f));
  const noteTokens = async (dir: string) => {
    for (const f of await tokenFiles(dir)) tokensSeen.add((JSON.parse(await readFile(f, "utf8")) as { token: string }).token);
  };

  /** python-swiftclient's `swift`, logged in through Keystone as swiftuser (credentials in its environment, not argv). */
  const swift = async (...args: string[]): Promise<string> => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(OS_|ST_)/.test(k)));
    Object.assign(env, keystoneOsEnv(ep));
    const { stdout } = await run("swift", ["--auth-version", "3", ...args], { env, cwd: workDir, maxBuffer: 16 * MiB });
    return stdout;
  };

  beforeAll(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), "pantri-keystone-cache-"));
    workDir = await mkdtemp(join(tmpdir(), "pantri-keystone-work-"));
  });

  afterAll(async () => {
    for (const s of stores) await s.close?.();
    await removeKeystoneContainers(ep, [...containers]);
    await rm(cacheDir, { recursive: true, force: true });
    await rm(workDir, { recursive: true, force: true });
  });

  runStoreContract("swift via Keystone v3", async () => ({
    // 1 MiB segments: the contract's 3 MiB object goes through a Static Large Object.
    store: await open({ container: uniqueContainer("pantri-ks-contract"), listPageSize: 10 }),
  }));

  describe("Keystone v3 specifics", () => {
    it("logs in by names (user, project and their domain names) and stores what the swift CLI lists", async () => {
      const c = container("pantri-ks-names");
      const log: string[] = [];
      const store = await open({ container: c }, { log });
      const buf = randomBytes(200_003);
      await store.put("by-names/a b#c.bin", sourceFromBuffer(buf));
      expect((await readAll(await store.get("by-names/a b#c.bin"))).equals(buf)).toBe(true);
      expect(logins(log)).toBeLessThanOrEqual(1);
      expect((await swift("list", c)).trim().split("\n")).toEqual(["by-names/a b#c.bin"]);
      await noteTokens(cacheDir);
    });

    it("logs in by ids (userId, projectId) and by names with domain ids, on the same account", async () => {
      for (const base of [
        { authUrl: ep.keystoneUrl, userId: ep.keystoneUserId, key: ep.keystonePassword, projectId: ep.keystoneProjectId },
        {
          authUrl: ep.keystoneUrl,
          user: ep.keystoneUser,
          userDomainId: ep.keystoneUserDomainId,
          key: ep.keystonePassword,
          project: ep.keystoneProject,
          projectDomainId: ep.keystoneProjectDomainId,
        },
      ]) {
        const cache = await freshCache();
        const store = await open({ container: container("pantri-ks-ids") }, { base, cache });
        const result = await store.authenticate?.();
        expect(result?.detail).toBe(ep.keystoneSwiftUrl);
        await store.put("x.bin", sourceFromBuffer(Buffer.from("by id")));
        expect(await store.head("x.bin")).toEqual({ key: "x.bin", size: 5 });
        await noteTokens(cache);
      }
    });

    it("logs in with an application credential (id + secret)", async () => {
      const cache = await freshCache();
      const c = container("pantri-ks-appcred");
      const store = await open({ container: c }, { base: appCredOptions(), cache });
      const result = await store.authenticate?.();
      expect(result?.detail).toBe(ep.keystoneSwiftUrl);
      const buf = randomBytes(2 * MiB + 7); // a large object too
      await store.put("app/cred.bin", sourceFromBuffer(buf));
      expect((await readAll(await store.get("app/cred.bin"))).equals(buf)).toBe(true);
      await noteTokens(cache);
    });

    it("is configured from the OS_* variables the swift command reads, through loadConfig", async () => {
      const repo = await mkdtemp(join(workDir, "repo-"));
      const c = container("pantri-ks-env");
      await writeFile(join(repo, "pantri.config.json"), JSON.stringify({ objectStore: { type: "swift", container: c } }));
      const password = {
        ...keystoneOsEnv(ep),
        // Without /v3: python-swiftclient users often give the bare endpoint.
        OS_AUTH_URL: ep.keystoneUrl.replace(/\/v3$/, ""),
      };
      const appCred = {
        OS_AUTH_URL: ep.keystoneUrl,
        OS_AUTH_TYPE: "v3applicationcredential",
        OS_APPLICATION_CREDENTIAL_ID: ep.keystoneAppCredId,
        OS_APPLICATION_CREDENTIAL_SECRET: ep.keystoneAppCredSecret,
        OS_INTERFACE: "internal",
      };
      for (const [i, env] of [password, appCred].entries()) {
        const config = await loadConfig({ repoRoot: repo, env });
        const { type, ...options } = config.base.objectStore;
        expect(type).toBe("swift");
        expect(options.authVersion).toBe(3);
        const store = await createSwiftStore(options, { ...context(), env, cacheDir: await freshCache() });
        stores.push(store);
        await store.put(`env-${i}.bin`, sourceFromBuffer(Buffer.from(`via env ${i}`)));
        expect(await store.head(`env-${i}.bin`)).toEqual({ key: `env-${i}.bin`, size: 9 });
      }
      expect((await swift("list", c)).trim().split("\n")).toEqual(["env-0.bin", "env-1.bin"]);
    });

    it("picks the storage URL by region and interface, and lists the catalog when nothing matches", async () => {
      const detail = async (options: StoreOptions) => (await (await open({ container: container("pantri-ks-region"), ...options }, { cache: await freshCache() })).authenticate?.())?.detail;
      expect(await detail({})).toBe(ep.keystoneSwiftUrl);
      expect(await detail({ interface: "internal" })).toBe(ep.keystoneSwiftUrl);
      expect(await detail({ interface: "admin" })).toBe(`${ep.keystoneProxyUrl}/v1`);
      expect(await detail({ region: ep.keystoneRegion2 })).toBe(ep.keystoneSwiftUrl.replace("127.0.0.1", "127.0.0.2"));

      for (const options of [{ region: "Nowhere" }, { region: ep.keystoneRegion2, interface: "internal" }]) {
        const store = await open({ container: container("pantri-ks-noregion"), ...options }, { cache: await freshCache() });
        const err = await failureOf(store.head("x.bin"));
        expect(err).toBeInstanceOf(StoreError);
        expect(err.message).toContain(`no object-store endpoint for region "${options.region}"`);
        expect(err.message).toContain(`its object-store endpoints are: ${ep.keystoneRegion} public, ${ep.keystoneRegion} internal, ${ep.keystoneRegion} admin, ${ep.keystoneRegion2} public`);
        expect(err.message).toContain("OS_REGION_NAME, OS_INTERFACE");
      }
    });

    it("works over the internal interface end to end", async () => {
      const store = await open({ container: container("pantri-ks-internal"), interface: "internal" }, { cache: await freshCache() });
      await store.put("internal.bin", sourceFromBuffer(Buffer.from("inside")));
      expect((await readAll(await store.get("internal.bin"))).toString()).toBe("inside");
    });

    it("honours the token's expiry: a cached token past (or within a minute of) it is not used", async () => {
      const cache = await freshCache();
      const c = container("pantri-ks-expiry");
      const first = await (await open({ container: c }, { cache })).authenticate?.();
      const file = first?.cachedAt as string;
      const entry = JSON.parse(await readFile(file, "utf8")) as { token: string; expiresAt: number; storageUrl: string };
      tokensSeen.add(entry.token);
      // Keystone's default token lifetime is an hour; the cache records when it ends.
      expect(entry.expiresAt).toBeGreaterThan(Date.now() + 50 * 60_000);
      expect(entry.expiresAt).toBeLessThan(Date.now() + 70 * 60_000);
      expect(((await stat(file)).mode & 0o777).toString(8)).toBe("600");

      // Still valid: used, no login.
      let log: string[] = [];
      await (await open({ container: c }, { cache, log })).head("x.bin");
      expect(logins(log)).toBe(0);
      expect(log.some((l) => l.includes("using the cached token"))).toBe(true);

      for (const expiresAt of [Date.now() - 1000, Date.now() + 30_000]) {
        await writeFile(file, JSON.stringify({ ...entry, expiresAt }), { mode: 0o600 });
        log = [];
        await (await open({ container: c }, { cache, log })).head("x.bin");
        expect(logins(log), `expiresAt ${expiresAt - Date.now()} ms from now`).toBe(1);
        expect(log.some((l) => l.includes("token refused (401)"))).toBe(false);
        const renewed = JSON.parse(await readFile(file, "utf8")) as { token: string; expiresAt: number };
        expect(renewed.expiresAt).toBeGreaterThan(Date.now() + 50 * 60_000);
        tokensSeen.add(renewed.token);
      }
    });

    it("logs in again once when Swift refuses the cached token (401), and caches the new token", async () => {
      const cache = await freshCache();
      const c = container("pantri-ks-reauth");
      await (await open({ container: c }, { cache })).put("warm-up.bin", sourceFromBuffer(randomBytes(10)));
      const [file] = await tokenFiles(cache);
      const entry = JSON.parse(await readFile(file as string, "utf8")) as { token: string };
      tokensSeen.add(entry.token);
      const bogus = "gAAAAABbogusbogusbogusbogusbogusbogusbogusbogus";
      await writeFile(file as string, JSON.stringify({ ...entry, token: bogus }), { mode: 0o600 });

      const log: string[] = [];
      const store = await open({ container: c }, { cache, log });
      const buf = randomBytes(300_000);
      await store.put("after-401.bin", sourceFromBuffer(buf));
      expect(log.filter((l) => l.includes("token refused (401)"))).toHaveLength(1);
      expect(logins(log)).toBe(1);
      const renewed = JSON.parse(await readFile(file as string, "utf8")) as { token: string };
      expect(renewed.token).not.toBe(bogus);
      tokensSeen.add(renewed.token);
      expect((await readAll(await store.get("after-401.bin"))).equals(buf)).toBe(true);
    });

    it("authenticate() caches a Keystone token that testAuth() accepts; garbled or expired, testAuth() is false without logging in", async () => {
      const cache = await freshCache();
      const log: string[] = [];
      const store = await open({ container: container("pantri-ks-auth") }, { cache, log });
      const result = await store.authenticate?.();
      expect(result?.detail).toBe(ep.keystoneSwiftUrl);
      expect(result?.cachedAt).toMatch(/swift-token-[0-9a-f]+\.json$/);
      expect(result?.expiresAt).toBeGreaterThan(Date.now());
      await noteTokens(cache);
      expect(await store.testAuth?.()).toBe(true);

      const path = result?.cachedAt as string;
      const entry = JSON.parse(await readFile(path, "utf8")) as { token: string; expiresAt: number };
      await writeFile(path, JSON.stringify({ ...entry, token: `${entry.token.slice(0, -8)}garbled0` }));
      log.length = 0;
      expect(await store.testAuth?.()).toBe(false);
      await writeFile(path, JSON.stringify({ ...entry, expiresAt: Date.now() - 1000 }));
      expect(await store.testAuth?.()).toBe(false);
      expect(logins(log)).toBe(0);
      await rm(path);
      expect(await store.testAuth?.()).toBe(false);
    });

    it("fails a wrong password or secret with a clear, non-retryable error naming the settings, never the secret", async () => {
      const cases: [StoreOptions, string, RegExp][] = [
        [{ ...keystoneStoreOptions(ep), key: "wrong-keystone-password" }, "wrong-keystone-password", /OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME/],
        [{ ...appCredOptions(), applicationCredentialSecret: "wrong-app-cred-secret" }, "wrong-app-cred-secret", /OS_APPLICATION_CREDENTIAL_ID, OS_APPLICATION_CREDENTIAL_SECRET/],
        [{ ...keystoneStoreOptions(ep), userDomain: "no-such-domain" }, ep.keystonePassword, /objectStore\.user\/key\/project\/userDomain\/projectDomain/],
      ];
      for (const [base, secret, settings] of cases) {
        const log: string[] = [];
        const store = await open({ container: container("pantri-ks-badpw") }, { base, log, cache: await freshCache() });
        const err = await failureOf(store.put("x.bin", sourceFromBuffer(Buffer.from("x"))));
        expect(err).toBeInstanceOf(StoreError);
        expect((err as StoreError).status).toBe(401);
        expect((err as StoreError).exitCode).toBe(1);
        expect(err.message).toContain(`Keystone at ${ep.keystoneUrl} refused the credentials (401)`);
        expect(err.message).toMatch(settings);
        expect(err.message).not.toContain(secret);
        expect(logins(log), "a refused login is not retried").toBe(1);
      }
    });

    it("a user without an operator role gets a clear 403", async () => {
      const base = { ...keystoneStoreOptions(ep), user: ep.keystoneReader, key: ep.keystoneReaderPassword };
      const store = await open({ container: container("pantri-ks-reader") }, { base, cache: await freshCache() });
      const err = await failureOf(store.put("x.bin", sourceFromBuffer(Buffer.from("x"))));
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).status).toBe(403);
      expect(err.message).not.toContain(ep.keystoneReaderPassword);
    });

    it("never puts a password, secret or token in a log line, an error message, a description or the token cache's name", async () => {
      await noteTokens(cacheDir);
      expect(tokensSeen.size).toBeGreaterThan(3);
      expect(logLines.length).toBeGreaterThan(50);
      expect(errorTexts.length).toBeGreaterThan(5);
      const secrets = [
        ep.keystonePassword,
        ep.keystoneReaderPassword,
        ep.keystoneAppCredSecret,
        "wrong-keystone-password",
        "wrong-app-cred-secret",
        "pw-in-options",
        "pw-missing-user",
        "half-an-app-cred",
        "sec-ret-unit",
        ...tokensSeen,
      ];
      const cacheNames: string[] = [];
      for (const dir of [cacheDir, ...(await readdir(workDir)).filter((d) => d.startsWith("cache-")).map((d) => join(workDir, d))]) {
        await mkdir(dir, { recursive: true });
        cacheNames.push(...(await readdir(dir)));
      }
      const texts = [...logLines, ...errorTexts, ...stores.map((s) => s.description), ...cacheNames];
      for (const secret of secrets) {
        const leaks = texts.filter((t) => t.includes(secret));
        expect(leaks, `"${secret.slice(0, 6)}…" leaked`).toEqual([]);
      }
    });
  });
});
