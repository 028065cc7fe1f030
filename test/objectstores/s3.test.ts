import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { createServer as createHttpsServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, StoreError } from "../../src/core/errors.js";
import { isRetryable } from "../../src/core/retry.js";
import createS3Store from "../../src/objectstores/s3.js";
import type { ObjectMeta, ObjectStore, PutSource, StoreContext } from "../../src/objectstores/types.js";
import { describeSwift, uniqueContainer, type SwiftEndpoints } from "../helpers/swift.js";
import { runStoreContract, sha256Hex, sourceFromBuffer } from "./contract.js";

const run = promisify(execFile);
const MiB = 1024 * 1024;
const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

function contextWith(env: NodeJS.ProcessEnv = process.env): StoreContext {
  return { repoRoot: tmpdir(), cacheDir: tmpdir(), env, log: () => undefined };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error("expected a failure");
    },
    (err: unknown) => err,
  );
}

describe("s3 store options", () => {
  const make = (options: Record<string, unknown>) => createS3Store(options, contextWith({}));

  it("requires a bucket, naming objectStore.bucket", () => {
    expect(() => make({})).toThrow(ConfigError);
    expect(() => make({})).toThrow(/objectStore\.bucket/);
  });

  it("refuses a partSize under S3's 5 MiB minimum, and other bad values, each by name", () => {
    const err = (() => {
      try {
        make({ bucket: "b", partSize: 5 * MiB - 1, queueSize: 0, endpoint: "ftp://x", forcePathStyle: "yes" });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join("\n");
    expect(problems).toMatch(/objectStore\.partSize/);
    expect(problems).toMatch(/objectStore\.queueSize/);
    expect(problems).toMatch(/objectStore\.endpoint/);
    expect(problems).toMatch(/objectStore\.forcePathStyle/);
    expect(() => make({ bucket: "b", partSize: 5 * MiB })).not.toThrow();
  });

  it("describes itself by bucket and endpoint, never with user info from the URL", async () => {
    expect((await make({ bucket: "pkgs" })).description).toBe('s3 bucket "pkgs"');
    const store = await make({ bucket: "pkgs", endpoint: "https://AKIAX:s3cr3t@s3.example.com:9000/" });
    expect(store.description).toBe('s3 bucket "pkgs" at https://s3.example.com:9000');
  });

  it("imports the AWS SDK only lazily (type-only static imports)", async () => {
    const src = await readFile(fileURLToPath(new URL("../../src/objectstores/s3.ts", import.meta.url)), "utf8");
    const staticSdkImports = src.split("\n").filter((l) => /^import\s+(?!type\b).*from\s+"@aws-sdk\//.test(l));
    expect(staticSdkImports).toEqual([]);
  });
});

describeSwift("s3 store on Swift's s3api", (ep: SwiftEndpoints) => {
  const saved: Record<string, string | undefined> = {};
  const buckets: string[] = [];
  let admin: S3Client;
  let tmp: string;

  beforeAll(async () => {
    // The store finds its credentials through the SDK's default chain, from the environment.
    for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_CA_BUNDLE"]) saved[k] = process.env[k];
    process.env.AWS_ACCESS_KEY_ID = ep.s3AccessKey;
    process.env.AWS_SECRET_ACCESS_KEY = ep.s3SecretKey;
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    process.env.AWS_REGION = ep.region;
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
    admin = new S3Client({
      endpoint: ep.s3Endpoint,
      region: ep.region,
      forcePathStyle: true,
      credentials: { accessKeyId: ep.s3AccessKey, secretAccessKey: ep.s3SecretKey },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    tmp = await mkdtemp(join(tmpdir(), "pantri-s3-test-"));
  });

  afterAll(async () => {
    for (const b of buckets) await removeBucket(b).catch((err: unknown) => console.warn(`could not remove bucket ${b}:`, err));
    admin?.destroy();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  async function newBucket(prefix: string): Promise<string> {
    const bucket = uniqueContainer(prefix);
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    buckets.push(bucket);
    return bucket;
  }

  /** One DeleteObject per key: DeleteObjects needs Content-MD5 on s3api, which the SDK no longer sends. */
  async function removeBucket(bucket: string): Promise<void> {
    const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const u of uploads.Uploads ?? []) {
      await admin.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
    }
    let token: string | undefined;
    do {
      const page = await admin.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    await admin.send(new DeleteBucketCommand({ Bucket: bucket }));
  }

  async function openUploads(bucket: string, prefix?: string): Promise<number> {
    const out = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    return out.Uploads?.length ?? 0;
  }

  async function s3Store(bucket: string, options: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = process.env): Promise<ObjectStore> {
    return createS3Store({ bucket, endpoint: ep.s3Endpoint, partSize: 5 * MiB, ...options }, contextWith(env));
  }

  runStoreContract(
    "s3 (Swift s3api)",
    async () => {
      const bucket = await newBucket("pantri-s3-contract");
      return { store: await s3Store(bucket, { listPageSize: 10 }) };
    },
    { bigObjectSize: 12 * MiB + 5 },
  );

  describe("S3 specifics", () => {
    let bucket: string;
    let store: ObjectStore;
    beforeAll(async () => {
      bucket = await newBucket("pantri-s3-specifics");
      store = await s3Store(bucket);
    });
    afterAll(() => store?.close?.());

    it("sends a 12 MiB + 5 object as a 3-part multipart upload that round-trips", async () => {
      const buf = randomBytes(12 * MiB + 5);
      const key = `multipart/${sha256Hex(buf)}`;
      let reported = 0;
      await store.put(key, sourceFromBuffer(buf), { onBytes: (n) => (reported += n) });
      expect(reported).toBe(buf.length);
      expect(await store.head(key)).toEqual({ key, size: buf.length });
      // S3 ETags of multipart objects end in -<parts>.
      const head = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(head.ETag).toMatch(/-3"?$/);
      expect(sha256Hex(await readAll(await store.get(key)))).toBe(sha256Hex(buf));
      expect(sha256Hex(await readAll(await store.get(key, { start: 11 * MiB })))).toBe(sha256Hex(buf.subarray(11 * MiB)));
      expect(await openUploads(bucket)).toBe(0);
    });

    it("aborts a multipart upload whose source fails midway: no incomplete upload, no object", async () => {
      const buf = randomBytes(13 * MiB);
      const key = "failing/source.bin";
      let sawOpenUpload = false;
      const source: PutSource = {
        ...sourceFromBuffer(buf),
        open: () =>
          Readable.from(
            (async function* () {
              for (let at = 0; at < 11 * MiB; at += MiB) yield buf.subarray(at, at + MiB);
              // Two parts are out; wait until the server has the multipart upload, then fail.
              for (let i = 0; i < 100 && !sawOpenUpload; i++) {
                sawOpenUpload = (await openUploads(bucket, key)) > 0;
                if (!sawOpenUpload) await new Promise((r) => setTimeout(r, 100));
              }
              throw new Error("simulated read error: disk went away");
            })(),
          ),
      };
      const err = await errorOf(store.put(key, source));
      expect(sawOpenUpload).toBe(true);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as Error).message).toMatch(/disk went away/);
      expect(await openUploads(bucket)).toBe(0);
      expect(await store.head(key)).toBeNull();
    });

    it("refuses content that does not match its sha256, single or multipart, and stores nothing", async () => {
      for (const size of [3 * MiB, 11 * MiB]) {
        const announced = sourceFromBuffer(randomBytes(size));
        const actual = sourceFromBuffer(randomBytes(size));
        const key = `mismatch/${size}`;
        const err = await errorOf(store.put(key, { ...announced, open: actual.open }));
        expect(err).toBeInstanceOf(StoreError);
        expect((err as StoreError).retryable).toBe(false);
        expect((err as Error).message).toMatch(/did the file change/);
        expect(await store.head(key)).toBeNull();
        expect(await openUploads(bucket)).toBe(0);
      }
    });

    it("pages through a listing with listPageSize 3", async () => {
      const paged = await s3Store(bucket, { listPageSize: 3 });
      const expected: ObjectMeta[] = [];
      for (let i = 0; i < 10; i++) {
        const key = `paging/item-${String(i).padStart(2, "0")}.bin`;
        await paged.put(key, sourceFromBuffer(randomBytes(i + 1)));
        expected.push({ key, size: i + 1 });
      }
      // The server honours MaxKeys, so a complete listing means the continuation tokens were followed.
      const first = await admin.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "paging/", MaxKeys: 3 }));
      expect(first.KeyCount).toBe(3);
      expect(first.IsTruncated).toBe(true);
      expect(await collect((paged.list as NonNullable<ObjectStore["list"]>)("paging/"))).toEqual(expected);
      await paged.close?.();
    });

    it("works with AWS_CA_BUNDLE set to a real CA bundle", async () => {
      expect(existsSync(SYSTEM_CA_BUNDLE)).toBe(true);
      process.env.AWS_CA_BUNDLE = SYSTEM_CA_BUNDLE;
      const withCa = await s3Store(bucket);
      for (const size of [1000, 3 * MiB, 6 * MiB]) {
        const buf = randomBytes(size);
        const key = `ca-bundle/${size}`;
        await withCa.put(key, sourceFromBuffer(buf));
        expect(await withCa.head(key)).toEqual({ key, size });
        expect((await readAll(await withCa.get(key))).equals(buf)).toBe(true);
      }
      await withCa.close?.();
    });

    it("with no region configured anywhere, signs for us-east-1", async () => {
      const region = process.env.AWS_REGION;
      delete process.env.AWS_REGION;
      try {
        const env = { ...process.env };
        const noRegion = await s3Store(bucket, {}, env);
        const buf = randomBytes(100);
        await noRegion.put("region/default.bin", sourceFromBuffer(buf));
        expect((await readAll(await noRegion.get("region/default.bin"))).equals(buf)).toBe(true);
        await noRegion.close?.();
      } finally {
        process.env.AWS_REGION = region;
      }
    });

    it("a missing bucket is an error naming it, not a missing object", async () => {
      const missing = await s3Store(uniqueContainer("pantri-no-such-bucket"));
      for (const attempt of [() => missing.get("k.bin"), () => missing.put("k.bin", sourceFromBuffer(randomBytes(10)))]) {
        const err = await errorOf(attempt());
        expect(err).toBeInstanceOf(StoreError);
        expect((err as StoreError).notFound).toBe(false);
        expect((err as Error).message).toMatch(/NoSuchBucket.*objectStore\.bucket/);
      }
      await missing.close?.();
    });

    it("an AWS_CA_BUNDLE that cannot be read is a ConfigError naming it", async () => {
      const broken = await s3Store(bucket, {}, { ...process.env, AWS_CA_BUNDLE: join(tmp, "no-such-bundle.pem") });
      const err = await errorOf(broken.head("x"));
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/AWS_CA_BUNDLE/);
    });

    describe("over TLS with a private CA (an https proxy in front of s3api)", () => {
      let server: Server | undefined;
      let endpoint: string;
      let certFile: string;

      beforeAll(async () => {
        const dir = await mkdtemp(join(tmp, "tls-"));
        certFile = join(dir, "cert.pem");
        const keyFile = join(dir, "key.pem");
        await run("openssl", [
          "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
          "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", keyFile, "-out", certFile,
        ]);
        const upstream = new URL(ep.s3Endpoint);
        server = createHttpsServer({ key: await readFile(keyFile), cert: await readFile(certFile) }, (req, res) => {
          // Headers (Host included) go through unchanged, so the SigV4 signature still holds.
          const up = httpRequest(
            { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
            (upRes) => {
              res.writeHead(upRes.statusCode ?? 502, upRes.headers);
              upRes.pipe(res);
            },
          );
          up.on("error", () => res.destroy());
          req.pipe(up);
        });
        await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
        endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      });
      afterAll(async () => {
        server?.closeAllConnections();
        await new Promise((resolve) => server?.close(resolve));
      });

      it("trusts the CA that AWS_CA_BUNDLE names, for single and multipart uploads", async () => {
        const tls = await s3Store(bucket, { endpoint }, { ...process.env, AWS_CA_BUNDLE: certFile });
        for (const size of [100, 3 * MiB, 11 * MiB]) {
          const buf = randomBytes(size);
          const key = `tls/${size}`;
          await tls.put(key, sourceFromBuffer(buf));
          expect(await tls.head(key)).toEqual({ key, size });
          expect((await readAll(await tls.get(key))).equals(buf)).toBe(true);
        }
        await tls.close?.();
      });

      it("without that CA, fails with a clear certificate error", async () => {
        const tls = await s3Store(bucket, { endpoint }, { ...process.env, AWS_CA_BUNDLE: SYSTEM_CA_BUNDLE });
        const err = await errorOf(tls.head("tls/100"));
        expect(err).toBeInstanceOf(StoreError);
        expect((err as Error).message).toMatch(/certificate/i);
        await tls.close?.();
      });
    });

    describe("cross-checked with s3cmd", () => {
      let cfg: string;
      const s3cmd = (...args: string[]) => run("s3cmd", ["-c", cfg, ...args], { timeout: 60_000 });

      beforeAll(async () => {
        const host = new URL(ep.s3Endpoint).host;
        cfg = join(tmp, "s3cfg");
        await writeFile(
          cfg,
          [
            "[default]",
            `access_key = ${ep.s3AccessKey}`,
            `secret_key = ${ep.s3SecretKey}`,
            `host_base = ${host}`,
            `host_bucket = ${host}`,
            "use_https = False",
            `bucket_location = ${ep.region}`,
            "",
          ].join("\n"),
          { mode: 0o600 },
        );
      });

      it("s3cmd get returns the bytes pantri stored (single and multipart)", async () => {
        for (const [key, size] of [["from-pantri/a b ü.deb", 1234], ["from-pantri/big.img", 12 * MiB + 5]] as const) {
          const buf = randomBytes(size);
          await store.put(key, sourceFromBuffer(buf));
          const out = join(tmp, `s3cmd-get-${size}`);
          await s3cmd("get", "--force", `s3://${bucket}/${key}`, out);
          expect((await readFile(out)).equals(buf)).toBe(true);
        }
      });

      it("pantri reads the bytes s3cmd put (single and multipart)", async () => {
        for (const [key, size] of [["from-s3cmd/x y ü.bin", 4321], ["from-s3cmd/big.bin", 12 * MiB + 5]] as const) {
          const buf = randomBytes(size);
          const file = join(tmp, `s3cmd-put-${size}`);
          await writeFile(file, buf);
          await s3cmd("put", "--multipart-chunk-size-mb=5", file, `s3://${bucket}/${key}`);
          expect(await store.head(key)).toEqual({ key, size });
          expect((await readAll(await store.get(key))).equals(buf)).toBe(true);
        }
      });
    });

    it("bad credentials give a clear 403 StoreError, not retried, with no secret in it", async () => {
      const wrongSecret = `wrong-${randomBytes(6).toString("hex")}`;
      for (const env of [
        { ...process.env, AWS_SECRET_ACCESS_KEY: wrongSecret },
        { ...process.env, AWS_ACCESS_KEY_ID: "nobody:nothing", AWS_SECRET_ACCESS_KEY: wrongSecret },
      ]) {
        const bad = await s3Store(bucket, {}, env);
        const failures = [
          await errorOf(bad.head("some/key.bin")),
          await errorOf(bad.put("some/key.bin", sourceFromBuffer(randomBytes(10)))),
          await errorOf(bad.get("some/key.bin")),
        ];
        const [outcome] = await collect(bad.storeObjects([{ key: "some/key.bin", source: sourceFromBuffer(randomBytes(10)), item: 1 }]));
        failures.push(outcome?.error);
        for (const err of failures) {
          expect(err).toBeInstanceOf(StoreError);
          const e = err as StoreError;
          expect(e.status).toBe(403);
          expect(isRetryable(e)).toBe(false);
          expect(e.message).toContain(`s3 bucket "${bucket}"`);
          expect(e.message).toContain("some/key.bin");
          expect(e.message).toContain("403");
          expect(e.message).toMatch(/credentials/);
          expect(e.message).not.toContain(wrongSecret);
          expect(e.message).not.toContain(ep.s3SecretKey);
        }
        await bad.close?.();
      }
    });
  });
});
