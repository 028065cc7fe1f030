import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, PantriError, StoreError } from "../../src/core/errors.js";
import { readPasswordFile } from "../../src/core/password-file.js";
import { fileSource } from "../../src/core/source.js";
import createSwiftStore from "../../src/objectstores/swift.js";
import type { ObjectMeta, ObjectStore, PutSource, StoreContext, StoreOptions } from "../../src/objectstores/types.js";
import { describeSwift, uniqueContainer, type SwiftEndpoints } from "../helpers/swift.js";
import { runStoreContract, sha256Hex, sourceFromBuffer } from "./contract.js";

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

async function collect<T>(iterable: AsyncIterable<T> | Iterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

/** The rejection of p (recorded for the secrets check), or a failure if it resolved. */
async function failureOf(p: Promise<unknown>): Promise<Error> {
  const err: unknown = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof Error)) throw new Error("expected a rejection");
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) errorTexts.push(e.message, e.stack ?? "");
  return err;
}

describe("swift store options (no server needed)", () => {
  const context: StoreContext = { repoRoot: "/tmp", cacheDir: "/tmp/none", env: {}, log: () => undefined };
  const make = (options: StoreOptions) => () => createSwiftStore(options, context);

  it("requires objectStore.container", () => {
    expect(make({ authUrl: "http://h/auth/v1.0", user: "a:b", key: "k" })).toThrow(ConfigError);
    expect(make({ authUrl: "http://h/auth/v1.0", user: "a:b", key: "k" })).toThrow(/objectStore\.container/);
  });

  it("names the options and env vars when credentials are missing, without echoing a key", () => {
    expect(make({ container: "c" })).toThrow(/objectStore\.authUrl.*ST_AUTH.*ST_USER.*ST_KEY.*OS_AUTH_TOKEN/s);
    let message = "";
    try {
      make({ container: "c", user: "a:b", key: "s3cr3t-key" })();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).exitCode).toBe(2);
      message = (err as Error).message;
    }
    expect(message).toMatch(/objectStore\.authUrl \(or ST_AUTH\)/);
    expect(message).not.toContain("s3cr3t-key");
  });

  it("takes a /v3 auth URL as Keystone (which needs a project; see swift-keystone.test.ts), and refuses a segment size above 5 GiB", () => {
    expect(make({ container: "c", authUrl: "http://h/v3", user: "u", key: "k" })).toThrow(/OS_PROJECT_NAME or OS_PROJECT_ID/);
    expect(make({ container: "c", authVersion: 3, authUrl: "http://h/auth", user: "u", key: "k" })).toThrow(/OS_PROJECT_NAME or OS_PROJECT_ID/);
    expect(make({ container: "c", authUrl: "http://h/auth/v1.0", user: "u", key: "k", segmentSize: 6 * 1024 ** 3 })).toThrow(/segmentSize/);
  });

  it("takes user and key from the password file, and describes itself without secrets", () => {
    const store = createSwiftStore(
      { container: "c", authUrl: "http://u:pw@h/auth/v1.0" },
      { ...context, passwordFile: { username: "a:b", password: "pw-from-file" } },
    ) as ObjectStore;
    expect(store.description).toBe('swift container "c" at http://h/auth/v1.0');
  });
});

describe("swift store against a stub server without static large objects", () => {
  it.each([
    ["does not publish its capabilities", null],
    ["publishes capabilities without slo", { swift: { version: "2.30.1" } }],
  ])("when it %s: no manifest is left as a plain object, and the error says what to set", async (_name, info) => {
    // A plain object store speaking Swift's v1 API (no slo middleware): a manifest PUT stores its JSON.
    const requests: string[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        requests.push(`${req.method} ${req.url}`);
        const port = (server.address() as AddressInfo).port;
        if (req.url === "/info") {
          if (info) res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(info));
          else res.writeHead(404).end();
        } else if (req.url === "/auth/v1.0") {
          res.writeHead(200, { "x-storage-url": `http://127.0.0.1:${port}/v1/AUTH_x`, "x-auth-token": "AUTH_tk-stub" }).end();
        } else if (req.method === "PUT") {
          res.writeHead(201, { etag: createHash("md5").update(Buffer.concat(chunks)).digest("hex") }).end();
        } else if (req.method === "HEAD") {
          res.writeHead(200, { "content-length": "10" }).end();
        } else {
          res.writeHead(204).end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const cache = await mkdtemp(join(tmpdir(), "pantri-stub-cache-"));
    try {
      const port = (server.address() as AddressInfo).port;
      const store = await createSwiftStore(
        { authUrl: `http://127.0.0.1:${port}/auth/v1.0`, user: "a:b", key: "k", container: "c" },
        { repoRoot: cache, cacheDir: cache, env: {}, log: () => undefined },
      );
      const buf = randomBytes(5000);
      const path = join(cache, "staged.bin");
      await writeFile(path, buf);
      const stage = () => (store.stageUpload as NonNullable<ObjectStore["stageUpload"]>)({ ...sourceFromBuffer(buf), path });
      const key = `sha256/${sha256Hex(buf).slice(0, 2)}/${sha256Hex(buf)}`;
      if (info) {
        // Told by GET /info: refused before any byte goes, as 501 (store falls back to hashing first).
        const err = await failureOf(stage());
        expect(err).toBeInstanceOf(StoreError);
        expect((err as StoreError).status).toBe(501);
        expect(err.message).toMatch(/no static large objects/);
        expect(requests.filter((r) => r.startsWith("PUT"))).toEqual([]);
      } else {
        // Not told: the manifest's answer gives it away; the plain object is removed.
        const staged = await stage();
        const md5 = createHash("md5").update(buf).digest("hex");
        await expect(staged.commit(key, { size: buf.length, sha256: sha256Hex(buf), md5Parts: [md5] })).rejects.toThrow(/no static large objects.*stagedUploads to false/);
        expect(requests).toContain(`DELETE /v1/AUTH_x/c/${key}`);
      }
      await store.close?.();
    } finally {
      server.close();
      await rm(cache, { recursive: true, force: true });
    }
  });
});

describe("swift bulk upload against a stub server whose listings lag behind", () => {
  it("asks about each object the listing does not show, trusts only the right MD5, and removes and re-sends one stored damaged", async () => {
    const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");
    const bufs = Array.from({ length: 10 }, (_, i) => randomBytes(300 + i));
    const keys = bufs.map((b) => `sha256/${sha256Hex(b).slice(0, 2)}/${sha256Hex(b)}`);
    const damaged = keys[3] as string;
    const objects = new Map<string, Buffer>();
    const requests: string[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        const url = new URL(req.url ?? "/", "http://stub");
        const name = decodeURIComponent(url.pathname.replace(/^\/v1\/AUTH_x\/c\/?/, ""));
        requests.push(`${req.method} ${url.pathname}${url.search}`);
        const port = (server.address() as AddressInfo).port;
        if (url.pathname === "/info") res.writeHead(200).end(JSON.stringify({ bulk_upload: { max_failed_extractions: 1000 } }));
        else if (url.pathname === "/auth/v1.0") res.writeHead(200, { "x-storage-url": `http://127.0.0.1:${port}/v1/AUTH_x`, "x-auth-token": "AUTH_tk-stub" }).end();
        else if (req.method === "GET" && name === "") res.writeHead(200, { "content-type": "application/json" }).end("[]"); // the listing lags: shows nothing yet
        else if (req.method === "HEAD" && name === "") res.writeHead(204, { "x-container-object-count": "0" }).end();
        else if (req.method === "PUT" && url.searchParams.get("extract-archive") === "tar") {
          // A ustar reader for the stub: name at 0, octal size at 124, content after each header.
          let created = 0;
          for (let at = 0; at + 512 <= body.length && body[at] !== 0; ) {
            const entry = body.subarray(at, at + 100).toString().replace(/\0.*$/s, "");
            const size = Number.parseInt(body.subarray(at + 124, at + 136).toString(), 8);
            const data = Buffer.from(body.subarray(at + 512, at + 512 + size));
            if (entry === damaged) data[0] = (data[0] ?? 0) ^ 0xff; // damaged on the way
            objects.set(entry, data);
            created++;
            at += 512 + Math.ceil(size / 512) * 512;
          }
          res.writeHead(200).end(`  ${JSON.stringify({ "Response Status": "201 Created", "Number Files Created": created, Errors: [] })}`);
        } else if (req.method === "HEAD") {
          const data = objects.get(name);
          if (data) res.writeHead(200, { "content-length": String(data.length), etag: md5(data) }).end();
          else res.writeHead(404).end();
        } else if (req.method === "DELETE") {
          res.writeHead(objects.delete(name) ? 204 : 404).end();
        } else if (req.method === "PUT") {
          if (objects.has(name) && req.headers["if-none-match"] === "*") res.writeHead(412).end();
          else if (req.headers.etag && req.headers.etag !== md5(body)) res.writeHead(422).end();
          else {
            objects.set(name, body);
            res.writeHead(201, { etag: md5(body) }).end();
          }
        } else res.writeHead(400).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const cache = await mkdtemp(join(tmpdir(), "pantri-stub-cache-"));
    try {
      const port = (server.address() as AddressInfo).port;
      const log: string[] = [];
      const store = await createSwiftStore(
        { authUrl: `http://127.0.0.1:${port}/auth/v1.0`, user: "a:b", key: "k", container: "c" },
        { repoRoot: cache, cacheDir: cache, env: {}, log: (m) => log.push(m) },
      );
      const reqs = bufs.map((b, i) => ({ key: keys[i] as string, source: { ...sourceFromBuffer(b), bytes: b, md5Parts: [md5(b)] }, item: i }));
      const outcomes = await collect(store.storeObjects(reqs, { concurrency: 4 }));
      expect(outcomes.map((o) => [o.uploaded, o.error?.message]).sort()).toEqual(Array(10).fill([true, undefined]));
      expect(requests.filter((r) => r.includes("extract-archive"))).toHaveLength(1);
      // Each object asked about once (the damaged one again before its removal), then only it re-sent alone.
      for (const k of keys) expect(requests).toContain(`HEAD /v1/AUTH_x/c/${k}`);
      expect(requests.filter((r) => r.startsWith("DELETE"))).toEqual([`DELETE /v1/AUTH_x/c/${damaged}`]);
      expect(requests.filter((r) => r.startsWith("PUT /v1/AUTH_x/c/sha256"))).toEqual([`PUT /v1/AUTH_x/c/${damaged}`]);
      expect(log.some((l) => l.startsWith(`swift: ${damaged} was stored with MD5`))).toBe(true);
      for (let i = 0; i < bufs.length; i++) expect(objects.get(keys[i] as string)?.equals(bufs[i] as Buffer)).toBe(true);
      await store.close?.();
    } finally {
      server.close();
      await rm(cache, { recursive: true, force: true });
    }
  });
});

describe("password file", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pantri-pw-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("is refused with mode 0644 (chmod advice, no password), accepted with 0600", async () => {
    const file = join(dir, "password.json");
    await writeFile(file, JSON.stringify({ username: "test:tester", password: "pw-0644-secret" }));
    await chmod(file, 0o644);
    const err = await failureOf(readPasswordFile(file));
    expect(err).toBeInstanceOf(PantriError);
    expect((err as PantriError).exitCode).toBe(1);
    expect(err.message).toContain(`chmod 600 ${file}`);
    expect(err.message).not.toContain("pw-0644-secret");
    await chmod(file, 0o600);
    expect(await readPasswordFile(file)).toEqual({ username: "test:tester", password: "pw-0644-secret" });
  });

  it("names the file and the default location when missing, and never echoes bad content", async () => {
    const missing = join(dir, "nope.json");
    const err = await failureOf(readPasswordFile(missing));
    expect(err.message).toContain(missing);
    expect(err.message).toContain(join(".config", "pantri", "password.json"));
    const bad = join(dir, "bad.json");
    await writeFile(bad, '{"username": "u", "password": "half-a-secret', { mode: 0o600 });
    const parseErr = await failureOf(readPasswordFile(bad));
    expect(parseErr.message).toContain(bad);
    expect(parseErr.message).not.toContain("half-a-secret");
    await writeFile(bad, '{"user": "u"}');
    expect((await failureOf(readPasswordFile(bad))).message).toMatch(/"username" and "password"/);
  });
});

describeSwift("swift store on a real Swift", (ep: SwiftEndpoints) => {
  let cacheDir: string;
  let workDir: string;
  const containers = new Set<string>();
  const stores: ObjectStore[] = [];

  const context = (log?: string[]): StoreContext => ({
    repoRoot: workDir,
    cacheDir,
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
  const open = async (options: StoreOptions, log?: string[]): Promise<ObjectStore> => {
    if (typeof options.container === "string") containers.add(options.container);
    const store = await createSwiftStore({ authUrl: ep.authUrl, user: ep.user, key: ep.key, segmentSize: MiB, ...options }, context(log));
    stores.push(store);
    return store;
  };
  /** The real `swift` command (python-swiftclient), as an admin of account `test`. */
  const swift = async (...args: string[]): Promise<string> => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(OS_|ST_)/.test(k)));
    const { stdout } = await run("swift", ["-A", ep.authUrl, "-U", ep.user, "-K", ep.key, ...args], { env, cwd: workDir, maxBuffer: 64 * MiB });
    return stdout;
  };
  /** A raw request with a fresh admin token, for what the store API does not show (headers). */
  const rawHead = async (c: string, name: string): Promise<Record<string, string | string[] | undefined>> => {
    const auth = await request(ep.authUrl, { headers: { "x-auth-user": ep.user, "x-auth-key": ep.key } });
    await auth.body.dump();
    const storageUrl = String(auth.headers["x-storage-url"]);
    const res = await request(`${storageUrl}/${c}/${name.split("/").map(encodeURIComponent).join("/")}`, {
      method: "HEAD",
      headers: { "x-auth-token": String(auth.headers["x-auth-token"]) },
    });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    return res.headers;
  };
  const tokenFiles = async (): Promise<string[]> => (await readdir(cacheDir)).filter((f) => f.startsWith("swift-token-") && f.endsWith(".json"));
  const cachedToken = async (): Promise<string> => {
    const [file] = await tokenFiles();
    if (!file) throw new Error("no token cache file");
    return (JSON.parse(await readFile(join(cacheDir, file), "utf8")) as { token: string }).token;
  };
  const tokensSeen = new Set<string>();
  const noteToken = async () => tokensSeen.add(await cachedToken());

  beforeAll(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), "pantri-swift-cache-"));
    workDir = await mkdtemp(join(tmpdir(), "pantri-swift-work-"));
  });

  afterAll(async () => {
    for (const s of stores) await s.close?.();
    for (const c of containers) {
      for (const name of [c, `${c}_segments`]) await swift("delete", name).catch(() => undefined); // the segment container may not exist
    }
    await rm(cacheDir, { recursive: true, force: true });
    await rm(workDir, { recursive: true, force: true });
  });

  runStoreContract("swift", async () => ({
    // 1 MiB segments: the contract's 3 MiB object goes through a Static Large Object.
    store: await open({ container: uniqueContainer("pantri-contract"), listPageSize: 10 }),
  }));

  describe("bulk upload of small objects", () => {
    const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");
    const keyOf = (b: Buffer) => `sha256/${sha256Hex(b).slice(0, 2)}/${sha256Hex(b)}`;
    const request = (b: Buffer, i: number, md5Parts = [md5(b)]) => ({ key: keyOf(b), source: { ...sourceFromBuffer(b), bytes: b, md5Parts }, item: i });
    const archives = (log: string[]) => log.map((l) => /^swift: bulk upload of (\d+) objects/.exec(l)?.[1]).filter((n) => n !== undefined).map(Number);
    const objectPuts = (log: string[], c: string) => log.filter((l) => new RegExp(`^swift: PUT \\S+/${c}/sha256/.* -> 201`).test(l)).length;

    it("sends many small objects as a few archives, each verified by listing, and a second run sends nothing", async () => {
      const c = container("pantri-bulk");
      const log: string[] = [];
      const store = await open({ container: c }, log);
      const bufs = Array.from({ length: 300 }, (_, i) => randomBytes(500 + i));
      const first = await collect(store.storeObjects(bufs.map((b, i) => request(b, i)), { concurrency: 4 }));
      expect(first.map((o) => [o.uploaded, o.error?.message])).toEqual(Array(300).fill([true, undefined]));
      // Almost all went up in archives (the first group while the container was near empty, then
      // by first hex digit); only groups left under BULK_MIN_OBJECTS at the end went alone.
      const inArchives = archives(log).reduce((a, b) => a + b, 0);
      expect(inArchives).toBeGreaterThanOrEqual(240);
      expect(archives(log).length).toBeLessThan(30);
      expect(inArchives + objectPuts(log, c)).toBe(300);
      // The container was empty when the run began: only the listing after each archive, none before.
      expect(log.filter((l) => /^swift: GET \S+\?format=json/.test(l)).length).toBe(archives(log).length);
      // What Swift holds is what was sent, as the swift command sees it.
      const listing = JSON.parse(await swift("list", "--json", c)) as Array<{ name: string; bytes: number; hash: string }>;
      expect(listing.map((e) => [e.name, e.bytes, e.hash]).sort()).toEqual(bufs.map((b) => [keyOf(b), b.length, md5(b)]).sort());
      expect((await readAll(await store.get(keyOf(bufs[123] as Buffer)))).equals(bufs[123] as Buffer)).toBe(true);

      log.length = 0;
      const second = await collect(store.storeObjects(bufs.map((b, i) => request(b, i)), { concurrency: 4 }));
      expect(second.map((o) => [o.uploaded, o.error])).toEqual(Array(300).fill([false, undefined]));
      expect(archives(log)).toEqual([]); // each group's listing showed its objects there
      expect(objectPuts(log, c)).toBe(0);
    });

    it("removes an object whose MD5 is not the one pantri hashed and sends it alone, where Swift refuses it; the rest are stored", async () => {
      const c = container("pantri-bulk-bad");
      const log: string[] = [];
      const store = await open({ container: c }, log);
      const bufs = Array.from({ length: 20 }, (_, i) => randomBytes(100 + i));
      // As if the file changed between hashing and sending: the bytes are not what the MD5 (and the sha256 key) name.
      const reqs = bufs.map((b, i) => (i === 7 ? request(b, i, [md5(Buffer.from("other bytes"))]) : request(b, i)));
      const outcomes = await collect(store.storeObjects(reqs, { concurrency: 4 }));
      const bad = outcomes.find((o) => o.request.item === 7);
      expect(bad?.error).toBeInstanceOf(StoreError);
      expect(bad?.error?.message).toMatch(/refused the upload \(422\)/);
      expect(outcomes.filter((o) => o.request.item !== 7).map((o) => [o.uploaded, o.error])).toEqual(Array(19).fill([true, undefined]));
      expect(archives(log)).toEqual([20]);
      expect(log.some((l) => l.includes(`${keyOf(bufs[7] as Buffer)} was stored with MD5 ${md5(bufs[7] as Buffer)}`))).toBe(true);
      expect(await store.head(keyOf(bufs[7] as Buffer))).toBeNull();
      expect(await store.head(keyOf(bufs[8] as Buffer))).toEqual({ key: keyOf(bufs[8] as Buffer), size: 108 });
    });

    it("with write but no read access to the container (a write ACL), stores each object with its own PUT", async () => {
      const c = container("pantri-bulk-acl");
      await swift("post", "-w", ep.user2, c);
      const log: string[] = [];
      // test2:tester2 logs in to its own account but writes into test's, as the ACL lets it. Its
      // own cache dir: other tests here read the one token file of the shared one.
      const store = await createSwiftStore(
        { authUrl: ep.authUrl, user: ep.user2, key: ep.key2, storageUrl: `${ep.proxyUrl}/v1/AUTH_test`, container: c },
        { ...context(log), cacheDir: join(workDir, "acl-cache") },
      );
      stores.push(store);
      const bufs = Array.from({ length: 12 }, (_, i) => randomBytes(70 + i));
      const outcomes = await collect(store.storeObjects(bufs.map((b, i) => request(b, i)), { concurrency: 4 }));
      expect(outcomes.map((o) => [o.uploaded, o.error?.message])).toEqual(Array(12).fill([true, undefined]));
      expect(log.some((l) => l.startsWith("swift: no bulk upload: cannot read the container's object count"))).toBe(true);
      expect(archives(log)).toEqual([]);
      expect(objectPuts(log, c)).toBe(12);
      const listing = JSON.parse(await swift("list", "--json", c)) as Array<{ name: string; hash: string }>;
      expect(listing.map((e) => [e.name, e.hash]).sort()).toEqual(bufs.map((b) => [keyOf(b), md5(b)]).sort());
    });

    it("with bulkUpload false, or for objects over 256 KiB, sends one create-only PUT per object", async () => {
      const c = container("pantri-nobulk");
      const log: string[] = [];
      const off = await open({ container: c, bulkUpload: false }, log);
      const bufs = Array.from({ length: 12 }, (_, i) => randomBytes(50 + i));
      const outcomes = await collect(off.storeObjects(bufs.map((b, i) => request(b, i)), { concurrency: 4 }));
      expect(outcomes.every((o) => o.uploaded && !o.error)).toBe(true);
      expect(archives(log)).toEqual([]);
      expect(objectPuts(log, c)).toBe(12);

      log.length = 0;
      const on = await open({ container: c }, log);
      const big = Array.from({ length: 10 }, () => randomBytes(256 * 1024 + 1));
      expect((await collect(on.storeObjects(big.map((b, i) => request(b, i)), { concurrency: 4 }))).every((o) => o.uploaded && !o.error)).toBe(true);
      expect(archives(log)).toEqual([]);
      expect(objectPuts(log, c)).toBe(10);
    });
  });

  describe("swift specifics", () => {
    it("stores a 5 MiB + 3 object as a Static Large Object of 1 MiB segments, and reads it back", async () => {
      const c = container("pantri-slo");
      const store = await open({ container: c });
      const buf = randomBytes(5 * MiB + 3);
      const key = `sha256/${sha256Hex(buf).slice(0, 2)}/${sha256Hex(buf)}`;
      await store.put(key, sourceFromBuffer(buf));
      const headers = await rawHead(c, key);
      expect(headers["x-static-large-object"]).toBe("True");
      expect(await store.head(key)).toEqual({ key, size: 5 * MiB + 3 });
      expect((await readAll(await store.get(key))).equals(buf)).toBe(true);
      expect((await readAll(await store.get(key, { start: 3 * MiB + 1 }))).equals(buf.subarray(3 * MiB + 1))).toBe(true);
      const segments = (await swift("list", `${c}_segments`)).trim().split("\n");
      expect(segments).toEqual(Array.from({ length: 6 }, (_, i) => `${c}/${key}/slo/${5 * MiB + 3}/${MiB}/${String(i).padStart(8, "0")}`));
      await noteToken();
    });

    it("re-uses the finished segments of an interrupted large upload", async () => {
      const c = container("pantri-resume");
      const log: string[] = [];
      const store = await open({ container: c }, log);
      const buf = randomBytes(5 * MiB + 3);
      const good = sourceFromBuffer(buf);
      // Fails once the upload reaches the third segment, as a dropped connection or a crash would.
      const breaking: PutSource = {
        ...good,
        open(start = 0, end?: number): Readable {
          if (start < 2 * MiB) return good.open(start, end);
          return new Readable({
            read() {
              this.destroy(new Error("disk went away"));
            },
          });
        },
      };
      const segmentPuts = () => log.filter((l) => /^swift: PUT \S+_segments\/.* -> 201/.test(l)).length;
      const err = await failureOf(store.put("big/resumed.bin", breaking));
      expect(err).toBeInstanceOf(StoreError);
      expect(err.message).toContain("disk went away");
      expect(segmentPuts()).toBe(2);
      expect(await store.head("big/resumed.bin")).toBeNull();

      log.length = 0;
      await store.put("big/resumed.bin", good);
      expect(segmentPuts()).toBe(4); // segments 3..6 of 6
      expect(log.filter((l) => l.includes("already uploaded, skipping")).length).toBe(2);
      expect((await readAll(await store.get("big/resumed.bin"))).equals(buf)).toBe(true);
    });

    it("asks for MD5s of segment-size parts, and with them lets Swift check every byte (ETag) instead of hashing again", async () => {
      const c = container("pantri-md5parts");
      const log: string[] = [];
      const store = await open({ container: c }, log);
      expect(store.md5PartSize).toBe(MiB);
      const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");

      // Right MD5s: stored, single and large, and read back whole.
      const small = randomBytes(100_000);
      await store.put("md5/small.bin", { ...sourceFromBuffer(small), md5Parts: [md5(small)] });
      expect((await readAll(await store.get("md5/small.bin"))).equals(small)).toBe(true);
      const big = randomBytes(2 * MiB + 5);
      const parts = [md5(big.subarray(0, MiB)), md5(big.subarray(MiB, 2 * MiB)), md5(big.subarray(2 * MiB))];
      await store.put("md5/big.bin", { ...sourceFromBuffer(big), md5Parts: parts });
      expect((await readAll(await store.get("md5/big.bin"))).equals(big)).toBe(true);

      // Bytes that differ from what was hashed (a file changed after hashing): Swift refuses
      // them, nothing is stored under the key, and the error says why.
      const changed = Buffer.from(small);
      changed[500] = (changed[500] ?? 0) ^ 0xff;
      const err = await failureOf(store.put("md5/changed.bin", { ...sourceFromBuffer(changed), md5Parts: [md5(small)] }));
      expect(err).toBeInstanceOf(StoreError);
      expect(err.message).toMatch(/refused the upload \(422\).*changed since/);
      expect(await store.head("md5/changed.bin")).toBeNull();

      const bigChanged = Buffer.from(big);
      bigChanged[MiB + 7] = (bigChanged[MiB + 7] ?? 0) ^ 0xff;
      const segErr = await failureOf(store.put("md5/big-changed.bin", { ...sourceFromBuffer(bigChanged), md5Parts: parts }));
      expect(segErr.message).toMatch(/refused segment .*00000001 \(422\)/);
      expect(await store.head("md5/big-changed.bin")).toBeNull();

      // The first segment of that refused upload went up; the retry with the right bytes finds it
      // by its known MD5, without reading that range again, and sends only the other two.
      log.length = 0;
      const opened: number[] = [];
      const counting = sourceFromBuffer(big);
      await store.put("md5/big-changed.bin", {
        ...counting,
        md5Parts: parts,
        open: (start?: number, end?: number) => {
          opened.push(start ?? 0);
          return counting.open(start, end);
        },
      });
      expect(opened).toEqual([MiB, 2 * MiB]);
      expect(log.filter((l) => l.includes("already uploaded, skipping")).length).toBe(1);
      expect((await readAll(await store.get("md5/big-changed.bin"))).equals(big)).toBe(true);
    });

    it("sends a checked file from its path through reused buffers, byte for byte, and fails one that ends early", async () => {
      const c = container("pantri-filerange");
      const store = await open({ container: c, segmentSize: 8 * MiB });
      const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");
      // Five 1 MiB reads and a short one through three buffers: each buffer is refilled twice.
      const buf = randomBytes(5 * MiB + 3);
      const path = join(workDir, "filerange.bin");
      await writeFile(path, buf);
      const { sha1, sha256 } = sourceFromBuffer(buf);
      // pantri's own file source, with MD5s: its chunks, not open() (which would send nothing), go up.
      const source: PutSource = { ...fileSource(path, { size: buf.length, sha1, sha256, md5Parts: [md5(buf)] }), open: () => Readable.from([]) };
      await store.put("fr/whole.bin", source);
      expect((await readAll(await store.get("fr/whole.bin"))).equals(buf)).toBe(true);
      // The file lost its tail since it was hashed: the upload fails, naming it, and stores nothing.
      await writeFile(path, buf.subarray(0, 2 * MiB));
      const err = await failureOf(store.put("fr/short.bin", source));
      expect(err.message).toMatch(/filerange\.bin ended \d+ bytes early/);
      expect(await store.head("fr/short.bin")).toBeNull();
    });

    describe("staged uploads (bytes sent while they are hashed)", () => {
      const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");
      const keyOf = (b: Buffer) => `sha256/${sha256Hex(b).slice(0, 2)}/${sha256Hex(b)}`;
      const digestsOf = (b: Buffer) => ({ size: b.length, sha256: sha256Hex(b), md5Parts: [md5(b)] });
      /** The bytes as a local file (a store may read `path` itself), and as a stream of them. */
      const stageSourceOf = (b: Buffer) => {
        const { size, open: openRange } = sourceFromBuffer(b);
        const path = join(workDir, `staged-${sha256Hex(b).slice(0, 12)}.bin`);
        writeFileSync(path, b);
        return { size, open: openRange, path };
      };
      const notes = async (): Promise<string[]> => (await readdir(join(cacheDir, "swift-staged")).catch(() => [])).filter((n) => n.endsWith(".json"));
      const segmentsOf = async (c: string): Promise<string[]> => (await swift("list", `${c}_segments`).catch(() => "")).split("\n").filter(Boolean);
      /** A pid no process has any more (a child that already exited). */
      const deadPid = async (): Promise<number> => {
        const child = execFile(process.execPath, ["-e", "0"]);
        await new Promise((resolve) => child.once("exit", resolve));
        return child.pid as number;
      };

      it("offers staging up to its segment size; a commit with the hashing pass's MD5 makes the object, named by a one-segment manifest", async () => {
        const c = container("pantri-stage");
        const store = await open({ container: c, stageMinBytes: 1000 });
        await swift("post", `${c}_segments`); // so that no first attempt is answered 404 (and sent twice)
        expect(store.stageMinBytes).toBe(1000);
        expect(typeof store.stageUpload).toBe("function");
        const buf = randomBytes(300_000);
        let sent = 0;
        const staged = await (store.stageUpload as NonNullable<ObjectStore["stageUpload"]>)(stageSourceOf(buf), { onBytes: (n) => (sent += n) });
        expect(sent).toBe(buf.length);
        // Sent, noted, and not yet under any key.
        expect(await notes()).toHaveLength(1);
        expect(await store.head(keyOf(buf))).toBeNull();
        const [segment] = await segmentsOf(c);
        expect(segment).toMatch(new RegExp(`^${c}/staged/[0-9a-f-]{36}$`));

        expect(await staged.commit(keyOf(buf), digestsOf(buf))).toBe(true);
        expect((await readAll(await store.get(keyOf(buf)))).equals(buf)).toBe(true);
        expect(await store.head(keyOf(buf))).toEqual({ key: keyOf(buf), size: buf.length });
        expect((await rawHead(c, keyOf(buf)))["x-static-large-object"]).toBe("True");
        // Listed with the object's own size (status --remote compares listings).
        expect(await collect(store.list?.("sha256/") ?? [])).toEqual([{ key: keyOf(buf), size: buf.length }]);
        expect(await notes()).toEqual([]);

        // A commit retried after its answer was lost finds its own manifest: still stored, segment kept.
        expect(await staged.commit(keyOf(buf), digestsOf(buf))).toBe(true);
        expect(await segmentsOf(c)).toEqual([segment]);
        expect((await readAll(await store.get(keyOf(buf)))).equals(buf)).toBe(true);
        // Objects too big for one segment are never staged.
        await expect((store.stageUpload as NonNullable<ObjectStore["stageUpload"]>)(stageSourceOf(randomBytes(MiB + 1)))).rejects.toThrow(/more than segmentSize/);
      });

      it("refuses a commit whose MD5 is not what Swift received (the file changed while sent), and drops the bytes", async () => {
        const c = container("pantri-stage-changed");
        const store = await open({ container: c });
        const buf = randomBytes(200_000);
        const staged = await (store.stageUpload as NonNullable<ObjectStore["stageUpload"]>)(stageSourceOf(buf));
        const hashed = Buffer.from(buf);
        hashed[1234] = (hashed[1234] ?? 0) ^ 0xff; // what the hashing pass read differs from what was sent
        const err = await failureOf(staged.commit(keyOf(hashed), digestsOf(hashed)));
        expect(err).toBeInstanceOf(StoreError);
        expect((err as StoreError).retryable).toBe(false);
        expect(err.message).toMatch(/changed while it was being stored/);
        expect(err.message).toContain(join(workDir, "staged-"));
        expect(await store.head(keyOf(hashed))).toBeNull();
        expect(await store.head(keyOf(buf))).toBeNull();
        expect(await segmentsOf(c)).toEqual([]);
        expect(await notes()).toEqual([]);
      });

      it("drops the staged copy when the key is stored already, leaving the stored object as it was", async () => {
        const c = container("pantri-stage-dup");
        const store = await open({ container: c });
        const buf = randomBytes(150_000);
        await store.put(keyOf(buf), sourceFromBuffer(buf));
        const staged = await (store.stageUpload as NonNullable<ObjectStore["stageUpload"]>)(stageSourceOf(buf));
        expect(await staged.commit(keyOf(buf), digestsOf(buf))).toBe(false);
        expect(await segmentsOf(c)).toEqual([]);
        expect((await rawHead(c, keyOf(buf)))["x-static-large-object"]).toBeUndefined();
        expect((await readAll(await store.get(keyOf(buf)))).equals(buf)).toBe(true);
        expect(await notes()).toEqual([]);
      });

      it("removes the staged segments of a killed run on the next staged upload, but keeps one its manifest names", async () => {
        const c = container("pantri-stage-orphans");
        const log: string[] = [];
        const killed = await open({ container: c });
        const stage = (s: ObjectStore, b: Buffer) => (s.stageUpload as NonNullable<ObjectStore["stageUpload"]>)(stageSourceOf(b));
        // Run 1 "dies" after sending one file (never committed) and right after the manifest of another.
        const orphan = randomBytes(100_000);
        await stage(killed, orphan);
        const done = randomBytes(120_000);
        const committed = await stage(killed, done);
        expect(await committed.commit(keyOf(done), digestsOf(done))).toBe(true);
        const pid = await deadPid();
        const [file] = await notes();
        const orphanPath = join(cacheDir, "swift-staged", file as string);
        const orphanRecord = JSON.parse(await readFile(orphanPath, "utf8")) as { pid: number; segment: string };
        await writeFile(orphanPath, JSON.stringify({ ...orphanRecord, pid }));
        // The committed one's note, as a kill between manifest and note removal would leave it.
        const doneSeg = (await segmentsOf(c)).find((n) => n !== orphanRecord.segment) as string;
        await writeFile(join(cacheDir, "swift-staged", "kept.json"), JSON.stringify({ ...orphanRecord, pid, segment: doneSeg, key: keyOf(done) }));
        // A note of a live run (this one) and of another store are left alone.
        const other = join(cacheDir, "swift-staged", "other.json");
        await writeFile(other, JSON.stringify({ ...orphanRecord, pid, store: "elsewhere" }));

        const next = await open({ container: c }, log);
        const fresh = randomBytes(90_000);
        expect(await (await stage(next, fresh)).commit(keyOf(fresh), digestsOf(fresh))).toBe(true);
        const left = await segmentsOf(c);
        expect(left).not.toContain(orphanRecord.segment);
        expect(left).toContain(doneSeg);
        expect(left).toHaveLength(2); // done's and fresh's
        expect((await readAll(await next.get(keyOf(done)))).equals(done)).toBe(true);
        expect(log.some((l) => l.includes(`removed staged segment ${orphanRecord.segment} left by a killed run`))).toBe(true);
        expect(log.some((l) => l.includes(`has its manifest ${keyOf(done)}; keeping it`))).toBe(true);
        expect(await notes()).toEqual(["other.json"]);
        await rm(other);
      });
    });

    it("creates a missing container once when many uploads find it missing at the same time", async () => {
      const c = container("pantri-create-once");
      const log: string[] = [];
      const store = await open({ container: c }, log);
      const bufs = Array.from({ length: 12 }, () => randomBytes(2000));
      const requests = bufs.map((b, i) => ({ key: `sha256/${sha256Hex(b).slice(0, 2)}/${sha256Hex(b)}`, source: sourceFromBuffer(b), item: i }));
      const outcomes = await collect(store.storeObjects(requests, { concurrency: 12 }));
      expect(outcomes.map((o) => o.error)).toEqual(bufs.map(() => undefined));
      expect(outcomes.every((o) => o.uploaded)).toBe(true);
      expect(log.filter((l) => l.startsWith(`swift: created container "${c}"`))).toHaveLength(1);
      for (const r of requests) expect(await store.head(r.key)).toEqual({ key: r.key, size: 2000 });
    });

    it("logs in again once when the cached token is refused, and caches the new token", async () => {
      const c = container("pantri-reauth");
      await (await open({ container: c })).put("warm-up.bin", sourceFromBuffer(randomBytes(10)));
      const [file] = await tokenFiles();
      const path = join(cacheDir, file as string);
      const entry = JSON.parse(await readFile(path, "utf8")) as { token: string };
      tokensSeen.add(entry.token);
      await writeFile(path, JSON.stringify({ ...entry, token: "AUTH_tk0000000000000000000000000000bogus" }));

      // A fresh store reads the (now bad) cached token; its first request is a streamed upload.
      const log: string[] = [];
      const store = await open({ container: c }, log);
      const buf = randomBytes(300_000);
      await store.put("after-401.bin", sourceFromBuffer(buf));
      expect(log.filter((l) => l.includes("token refused (401)"))).toHaveLength(1);
      expect(log.filter((l) => l.includes("logging in at"))).toHaveLength(1);
      const renewed = await cachedToken();
      expect(renewed).not.toBe("AUTH_tk0000000000000000000000000000bogus");
      tokensSeen.add(renewed);
      expect((await readAll(await store.get("after-401.bin"))).equals(buf)).toBe(true);
      expect(((await stat(path)).mode & 0o777).toString(8)).toBe("600");
    });

    it("creates the container and the segment container when missing", async () => {
      const c = container("pantri-create");
      const store = await open({ container: c });
      expect(await collect(store.list?.("") ?? [])).toEqual([]);
      await store.put("small.bin", sourceFromBuffer(randomBytes(100)));
      await store.put("large.bin", sourceFromBuffer(randomBytes(2 * MiB + 1)));
      const listed = (await swift("list")).trim().split("\n");
      expect(listed).toContain(c);
      expect(listed).toContain(`${c}_segments`);
      expect((await swift("list", c)).trim().split("\n")).toEqual(["large.bin", "small.bin"]);
    });

    it("says clearly when the account may not write or create the container (tempauth: 403 for a non-admin)", async () => {
      const c = container("pantri-denied");
      const store = await open({ container: c, user: ep.user2, key: ep.key2 });
      const err = await failureOf(store.put("x.bin", sourceFromBuffer(randomBytes(10))));
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).status).toBe(403);
      expect(err.message).toContain(`not allowed to write to container "${c}"`);
      expect(err.message).toMatch(/create it .*or use an account with rights/);
      expect(err.message).not.toContain(ep.key2);
    });

    it("fails a wrong key with a clear, non-retryable error that names the settings and hides the key", async () => {
      // Its own cache dir: the cache is per (authUrl, user), and test:tester's token is cached.
      const store = await createSwiftStore(
        { authUrl: ep.authUrl, user: ep.user, key: "wrong-key-value", container: container("pantri-badkey") },
        { ...context(), cacheDir: join(workDir, "badkey-cache") },
      );
      stores.push(store);
      const err = await failureOf(store.head("x.bin"));
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).status).toBe(401);
      expect(err.message).toContain("authentication failed: check user/key (objectStore.user/key or ST_USER/ST_KEY)");
      expect(err.message).not.toContain("wrong-key-value");
      expect((err as StoreError).exitCode).toBe(1);
    });

    it("stores names with spaces, #, ?, %, +, & and UTF-8 exactly as the swift CLI lists them", async () => {
      const c = container("pantri-names");
      const store = await open({ container: c });
      const names = ["a b/c d.deb", "hash#tag.bin", "what?.bin", "100%/x.bin", "plus+and&amp.bin", "ünï/日本 語.pkg"];
      for (const name of names) await store.put(name, sourceFromBuffer(Buffer.from(name)));
      expect((await swift("list", c)).trim().split("\n").sort()).toEqual([...names].sort());
      for (const name of names) expect((await readAll(await store.get(name))).toString()).toBe(name);
    });

    it("stores objects the swift CLI downloads byte for byte (plain and large)", async () => {
      const c = container("pantri-xdown");
      const store = await open({ container: c });
      const small = randomBytes(123_457);
      const large = randomBytes(3 * MiB + 5);
      await store.put("dir/small.bin", sourceFromBuffer(small));
      await store.put("dir/large.bin", sourceFromBuffer(large));
      for (const [name, buf] of [
        ["dir/small.bin", small],
        ["dir/large.bin", large],
      ] as const) {
        const out = join(workDir, `down-${name.replace("/", "-")}`);
        await swift("download", c, name, "-o", out);
        expect((await readFile(out)).equals(buf)).toBe(true);
      }
    });

    it("reads objects the swift CLI uploaded (plain and --use-slo) byte for byte", async () => {
      const c = container("pantri-xup");
      const store = await open({ container: c });
      const plain = randomBytes(200_001);
      const slo = randomBytes(3 * MiB + 11);
      await writeFile(join(workDir, "plain.bin"), plain);
      await writeFile(join(workDir, "slo.bin"), slo);
      await swift("upload", c, "plain.bin", "--object-name", "up/plain.bin");
      await swift("upload", c, "slo.bin", "--object-name", "up/slo.bin", "--use-slo", "-S", String(MiB));
      expect((await rawHead(c, "up/slo.bin"))["x-static-large-object"]).toBe("True");
      expect((await readAll(await store.get("up/plain.bin"))).equals(plain)).toBe(true);
      expect((await readAll(await store.get("up/slo.bin"))).equals(slo)).toBe(true);
      expect(await store.head("up/slo.bin")).toEqual({ key: "up/slo.bin", size: slo.length });
      containers.add(`${c}_segments`);
    });

    it("pages listings with marker (listPageSize 3 over 10 objects)", async () => {
      const c = container("pantri-pages");
      const log: string[] = [];
      const store = await open({ container: c, listPageSize: 3 }, log);
      const expected: ObjectMeta[] = [];
      for (let i = 0; i < 10; i++) {
        const key = `p/obj-${i}.bin`;
        await store.put(key, sourceFromBuffer(randomBytes(i)));
        expected.push({ key, size: i });
      }
      await store.put("q/other.bin", sourceFromBuffer(randomBytes(1)));
      log.length = 0;
      expect(await collect(store.list?.("p/") ?? [])).toEqual(expected);
      const pages = log.filter((l) => /^swift: GET \S+\?format=json/.test(l));
      expect(pages).toHaveLength(4); // 3 + 3 + 3 + 1
      expect(pages[1]).toContain("marker=p%2Fobj-2.bin");
    });

    it("authenticate() caches a token that testAuth() accepts; a garbage cached token makes testAuth() false without logging in", async () => {
      const log: string[] = [];
      const store = await open({ container: container("pantri-auth") }, log);
      const result = await store.authenticate?.();
      expect(result?.detail).toMatch(/\/v1\/AUTH_test$/);
      expect(result?.cachedAt).toMatch(/swift-token-[0-9a-f]+\.json$/);
      await noteToken();
      expect(await store.testAuth?.()).toBe(true);

      const path = result?.cachedAt as string;
      const entry = JSON.parse(await readFile(path, "utf8")) as { token: string };
      await writeFile(path, JSON.stringify({ ...entry, token: "AUTH_tkgarbagegarbagegarbagegarbage00" }));
      log.length = 0;
      expect(await store.testAuth?.()).toBe(false);
      expect(log.some((l) => l.includes("logging in"))).toBe(false);
      await rm(path);
      expect(await store.testAuth?.()).toBe(false);
    });

    it("uses the password file's credentials in place of user/key", async () => {
      const pw = join(workDir, "password.json");
      await writeFile(pw, JSON.stringify({ username: ep.user, password: ep.key }), { mode: 0o600 });
      const c = container("pantri-pwfile");
      const store = await createSwiftStore(
        { authUrl: ep.authUrl, user: "nobody:none", key: "not-the-key", container: c },
        { ...context(), passwordFile: await readPasswordFile(pw) },
      );
      stores.push(store);
      await store.put("via-password-file.bin", sourceFromBuffer(Buffer.from("hello")));
      expect(await store.head("via-password-file.bin")).toEqual({ key: "via-password-file.bin", size: 5 });
    });

    it("never puts a key or token in a log line, an error message or a description", async () => {
      for (const file of await tokenFiles()) tokensSeen.add((JSON.parse(await readFile(join(cacheDir, file), "utf8")) as { token: string }).token);
      expect(tokensSeen.size).toBeGreaterThan(0);
      expect(logLines.length).toBeGreaterThan(100);
      expect(errorTexts.length).toBeGreaterThan(0);
      const secrets = [ep.key, ep.key2, "wrong-key-value", "not-the-key", ...tokensSeen];
      const texts = [...logLines, ...errorTexts, ...stores.map((s) => s.description)];
      for (const secret of secrets) {
        const leaks = texts.filter((t) => t.includes(secret));
        expect(leaks, `"${secret.slice(0, 6)}…" leaked`).toEqual([]);
      }
    });
  });
});
