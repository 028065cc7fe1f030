/**
 * Resume after a crash, proved from what actually went over the wire (the fault proxy's request
 * log): an interrupted download continues from its partial file with a Range request; an
 * interrupted Swift SLO upload re-uses the segments already stored; an interrupted S3 multipart
 * upload leaves no parts behind once the next store of that object has run.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, expect, it } from "vitest";
import { writeConfig } from "../helpers/cli.js";
import { makeRepos, randomBinary, type Repos } from "../helpers/gitdir.js";
import { describeSwift, uniqueContainer } from "../helpers/swift.js";
import { startFaultProxy, type FaultProxy } from "./fault-proxy.js";
import {
  MiB,
  auditPointers,
  auditSecretsAfterAll,
  cachedTokens,
  describeRun,
  keyOf,
  leftoversIn,
  proxyEntry,
  runPantri,
  secrets,
  sha256,
  spawnPantri,
  swiftDrop,
  swiftEnv,
  swiftGet,
  swiftLogin,
  swiftPut,
  walkFiles,
  type SwiftAdmin,
} from "./harness.js";

auditSecretsAfterAll();

describeSwift("resume after a crash", (ep) => {
  let admin: SwiftAdmin;
  let proxy: FaultProxy;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    // The SDK's notice about future Node versions is noise here (src/objectstores/s3.ts does the same).
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
    admin = await swiftLogin(ep);
    secrets.add(admin.token);
    secrets.add(ep.s3SecretKey);
    proxy = await startFaultProxy({ target: ep.proxyUrl, seed: 99 });
  });

  afterAll(async () => {
    await proxy.close();
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  /** Repos with a Swift store whose `slo` shelf uses 1 MiB segments. */
  async function swiftRepos(name: string): Promise<{ repos: Repos; container: string; direct: Record<string, string>; viaProxy: Record<string, string> }> {
    const repos = await makeRepos({ shelves: ["pkgs", "slo"] });
    const container = uniqueContainer(name);
    cleanups.push(async () => {
      for (const t of await cachedTokens(join(repos.root, "cache"))) secrets.add(t);
      await swiftDrop(admin, container);
      await swiftDrop(admin, `${container}_segments`);
      await repos.cleanup();
    });
    await writeConfig(repos.packager, {
      objectStore: { type: "swift", container },
      shelves: { slo: { objectStore: { type: "swift", segmentSize: MiB } } },
    });
    await repos.commitAll(repos.packager, "pantri config");
    await repos.git(repos.packager, "push", "--quiet");
    const state = join(repos.root, "state");
    const cache = join(repos.root, "cache");
    return {
      repos,
      container,
      direct: swiftEnv({ endpoints: ep, state, cache }),
      viaProxy: swiftEnv({ endpoints: ep, via: proxy.url, state, cache }),
    };
  }

  it("an interrupted 50 MiB download resumes from its partial file with a Range request, verified end to end", async () => {
    const { repos, viaProxy, direct } = await swiftRepos("faults-resume-get");
    const size = 50 * MiB;
    const data = randomBinary(size, 50);
    await repos.writeFile(repos.packager, "shelves/pkgs/big.bin", data, 1_700_000_050);
    const stored = await runPantri(["store", "--json", "--push"], { cwd: repos.packager, env: direct });
    expect(stored.code, describeRun(stored)).toBe(0);

    const host = await repos.cloneBuildHost();
    const dest = join(repos.root, "dest");
    const killed = await runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env: { ...viaProxy, PANTRI_TEST_CRASH_AT: "mid-download:1" } });
    expect(killed.signal, describeRun(killed)).toBe("SIGKILL");
    const partName = (await walkFiles(join(dest, "pkgs"))).find((f) => f.endsWith(".pantri-part"));
    expect(partName, "the killed download left its partial file").toBeDefined();
    const have = (await stat(join(dest, "pkgs", partName ?? ""))).size;
    expect(have).toBeGreaterThan(0);
    expect(have).toBeLessThan(size);

    const mark = proxy.log.length;
    const rerun = await runPantri(["retrieve", "--json", "-d", dest], { cwd: host, env: viaProxy });
    expect(rerun.code, describeRun(rerun)).toBe(0);
    const gets = proxy.log.slice(mark).filter((e) => e.method === "GET" && e.path.includes(keyOf(sha256(data))));
    expect(gets.map((g) => g.range), "one GET, from where the partial file ends").toEqual([`bytes=${have}-`]);
    const transferred = gets.reduce((n, g) => n + g.bytesOut, 0);
    expect(transferred).toBe(size - have);
    expect(transferred).toBeLessThan(size);
    expect(rerun.json?.retrieved.map((r) => r.path)).toEqual(["pkgs/big.bin"]);
    expect(sha256(await readFile(join(dest, "pkgs/big.bin")))).toBe(sha256(data));
    expect(await leftoversIn(dest)).toEqual([]);
  });

  it("an interrupted Swift SLO upload re-uses the segments already stored", async () => {
    const { repos, container, viaProxy } = await swiftRepos("faults-resume-slo");
    const data = randomBinary(6 * MiB + 1234, 60);
    await repos.writeFile(repos.packager, "shelves/slo/image.bin", data, 1_700_000_060);
    const isSegmentPut = (e: { method: string; path: string }) => e.method === "PUT" && e.path.includes("_segments/");
    // Slow the wire so the kill lands between segments, after the third is stored.
    proxy.configure({ bytesPerSecond: 8 * MiB });
    const run = spawnPantri(["store", "--json"], { cwd: repos.packager, env: viaProxy });
    let stored = 0;
    await proxyEntry(proxy, "done", (e) => isSegmentPut(e) && e.status === 201 && ++stored === 3);
    run.child.kill("SIGKILL");
    const killed = await run.done;
    proxy.configure({ bytesPerSecond: 0 });
    expect(killed.signal, describeRun(killed)).toBe("SIGKILL");
    const firstRun = proxy.log.filter((e) => isSegmentPut(e) && e.status === 201).map((e) => e.path);
    expect(firstRun.length).toBeGreaterThanOrEqual(3);
    expect(await auditPointers(repos, repos.packager, (k) => swiftGet(admin, container, k))).toEqual([]);

    const mark = proxy.log.length;
    const rerun = await runPantri(["store", "--json"], { cwd: repos.packager, env: viaProxy });
    expect(rerun.code, describeRun(rerun)).toBe(0);
    const log = proxy.log.slice(mark);
    const resent = log.filter((e) => isSegmentPut(e) && firstRun.includes(e.path));
    expect(resent.map((e) => e.path), "segments stored before the kill are not sent again").toEqual([]);
    for (const path of firstRun) expect(log.some((e) => e.method === "HEAD" && e.path === path), `${path} was checked`).toBe(true);
    expect(log.filter((e) => isSegmentPut(e)).length).toBeLessThanOrEqual(7 - firstRun.length);
    // One manifest stored (a first 404 only says the object container is not created yet).
    expect(log.filter((e) => e.method === "PUT" && e.path.includes("multipart-manifest=put") && e.status === 201)).toHaveLength(1);
    const object = await swiftGet(admin, container, keyOf(sha256(data)));
    expect(object && sha256(object)).toBe(sha256(data));
  });

  it("an S3 multipart upload leaves no parts behind: a failed one aborts itself, a killed one is cleaned by the next store", async () => {
    const repos = await makeRepos();
    const bucket = uniqueContainer("faults-s3");
    expect(await swiftPut(admin, bucket, undefined)).toBeLessThan(300);
    cleanups.push(async () => {
      await swiftDrop(admin, bucket);
      await swiftDrop(admin, `${bucket}+segments`);
      await repos.cleanup();
    });
    await writeConfig(repos.packager, {
      objectStore: { type: "s3", bucket, endpoint: proxy.url, forcePathStyle: true, region: ep.region, partSize: 5 * MiB },
    });
    await repos.commitAll(repos.packager, "pantri config");
    const env = {
      AWS_ACCESS_KEY_ID: ep.s3AccessKey,
      AWS_SECRET_ACCESS_KEY: ep.s3SecretKey,
      PANTRI_STATE_DIR: join(repos.root, "state"),
      PANTRI_CACHE_DIR: join(repos.root, "cache"),
      PANTRI_RETRY_BASE_MS: "20",
    };
    const s3 = new S3Client({
      endpoint: ep.s3Endpoint,
      forcePathStyle: true,
      region: ep.region,
      credentials: { accessKeyId: ep.s3AccessKey, secretAccessKey: ep.s3SecretKey },
    });
    cleanups.push(async () => {
      const left = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      for (const u of left.Uploads ?? []) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
      s3.destroy();
    });
    const uploads = async () => ((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).map((u) => u.Key);
    const isPart = (e: { method: string; path: string }) => e.method === "PUT" && /[?&]partNumber=/.test(e.path);

    // 1. Every part upload fails: the store fails, and aborts each multipart upload it began.
    const failing = randomBinary(12 * MiB, 70);
    await repos.writeFile(repos.packager, "shelves/pkgs/failing.bin", failing, 1_700_000_070);
    proxy.configure({ rate: 1, kinds: ["503"], match: isPart });
    const failed = await runPantri(["store", "--json"], { cwd: repos.packager, env });
    proxy.configure({ rate: 0, match: () => true });
    expect(failed.code, describeRun(failed)).toBe(1);
    expect(proxy.log.some((e) => isPart(e) && e.fault === "503")).toBe(true);
    expect(await uploads(), "no multipart upload left after a failed store").toEqual([]);

    // 2. Killed mid-upload: the dead process cannot abort; the next store of the object does.
    const big = randomBinary(16 * MiB, 71);
    await repos.writeFile(repos.packager, "shelves/pkgs/big.bin", big, 1_700_000_071);
    proxy.configure({ bytesPerSecond: 16 * MiB });
    const run = spawnPantri(["store", "shelves/pkgs/big.bin", "--json"], { cwd: repos.packager, env });
    await proxyEntry(proxy, "done", (e) => isPart(e) && e.status === 200);
    run.child.kill("SIGKILL");
    const killed = await run.done;
    proxy.configure({ bytesPerSecond: 0 });
    expect(killed.signal, describeRun(killed)).toBe("SIGKILL");
    expect(await uploads(), "the killed run's upload is orphaned").toContain(keyOf(sha256(big)));

    const rerun = await runPantri(["store", "--json"], { cwd: repos.packager, env });
    expect(rerun.code, describeRun(rerun)).toBe(0);
    expect(await uploads(), "the rerun aborted the orphaned upload").toEqual([]);
    for (const data of [failing, big]) {
      const got = await swiftGet(admin, bucket, keyOf(sha256(data)));
      expect(got && sha256(got)).toBe(sha256(data));
    }
  });
});
