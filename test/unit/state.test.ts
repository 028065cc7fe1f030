import { mkdtemp, readFile, stat, writeFile, mkdir } from "node:fs/promises";
import { tmpdir, hostname } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { LockError } from "../../src/core/errors.js";
import { SyncRecords, acquireLock, writeFileAtomic } from "../../src/core/state.js";

describe("sync records", () => {
  it("round-trip per (dest, shelf), with mode 0600, and ignore a damaged record", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pantri-state-"));
    const r = new SyncRecords(dir);
    expect(await r.read("/d", "p")).toBeNull();
    await r.write({ commit: "a".repeat(40), dest: "/d", shelf: "p", repo: "/r" });
    expect(await r.read("/d", "p")).toMatchObject({ commit: "a".repeat(40) });
    expect(await r.read("/d", "q")).toBeNull();
    expect(await r.read("/other", "p")).toBeNull();
    const file = join(dir, "sync");
    const { readdir } = await import("node:fs/promises");
    const [sub] = await readdir(file);
    const rec = join(file, sub as string, "p.json");
    expect((await stat(rec)).mode & 0o777).toBe(0o600);
    await writeFile(rec, "{torn");
    expect(await r.read("/d", "p")).toBeNull();
  });
  it("writeFileAtomic leaves no temp file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pantri-state-"));
    await writeFileAtomic(join(dir, "x.json"), "1");
    const { readdir } = await import("node:fs/promises");
    expect(await readdir(dir)).toEqual(["x.json"]);
    expect(await readFile(join(dir, "x.json"), "utf8")).toBe("1");
  });
});

describe("locks", () => {
  it("serialize holders, time out with a message naming the holder, and take over a dead holder's lock", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pantri-lock-"));
    const release = await acquireLock("dest:/x", "test", { dir });
    await expect(acquireLock("dest:/x", "second", { dir, waitMs: 300 })).rejects.toThrow(LockError);
    await expect(acquireLock("dest:/x", "second", { dir, waitMs: 300 })).rejects.toThrow(new RegExp(`pid ${process.pid}`));
    const order: string[] = [];
    const waiter = acquireLock("dest:/x", "third", { dir, waitMs: 5000 }).then((r) => {
      order.push("third");
      return r;
    });
    await new Promise((r) => setTimeout(r, 200));
    order.push("released");
    await release();
    await (await waiter)();
    expect(order).toEqual(["released", "third"]);

    // A lock left by a process that no longer exists is stale.
    const child = spawn(process.execPath, ["-e", "0"]);
    const deadPid = child.pid as number;
    await new Promise((r) => child.on("exit", r));
    const { readdir } = await import("node:fs/promises");
    const r2 = await acquireLock("dest:/y", "t", { dir });
    const lockFile = (await readdir(join(dir, "locks")))[0] as string;
    await r2();
    await mkdir(join(dir, "locks"), { recursive: true });
    await writeFile(join(dir, "locks", lockFile), JSON.stringify({ pid: deadPid, host: hostname(), since: "then", what: "killed" }));
    const r3 = await acquireLock("dest:/y", "t", { dir, waitMs: 1000 });
    await r3();
  });
});
