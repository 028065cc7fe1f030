import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { lstat, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PantriError } from "../../src/core/errors.js";
import { assertNoSymlinkInside, ensureDirInside, resolveInside } from "../../src/core/safe-path.js";

let tmp: string;
let root: string;
let outside: string;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), "pantri-safe-"));
  root = join(tmp, "dest");
  outside = join(tmp, "outside");
  await mkdir(outside);
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("resolveInside", () => {
  it("joins a safe relative path", () => {
    expect(resolveInside(root, "a/b/c.deb")).toBe(join(root, "a", "b", "c.deb"));
  });

  it.each(["../x", "a/../../x", "a/..", "/etc/passwd", "a//b", "./a", "a\\..\\x", "a/\0", ""])("refuses %j", (rel) => {
    expect(() => resolveInside(root, rel)).toThrow(PantriError);
  });
});

describe("ensureDirInside", () => {
  it("creates root and nested directories", async () => {
    const dir = await ensureDirInside(root, "shelf/a/b");
    expect(dir).toBe(join(root, "shelf", "a", "b"));
    expect((await lstat(dir)).isDirectory()).toBe(true);
    // Idempotent.
    expect(await ensureDirInside(root, "shelf/a/b")).toBe(dir);
    expect(await ensureDirInside(root, "")).toBe(root);
  });

  it("refuses a symlinked directory inside root and writes nothing through it", async () => {
    await mkdir(join(root, "shelf"), { recursive: true });
    await symlink(outside, join(root, "shelf", "a"));
    await expect(ensureDirInside(root, "shelf/a/b")).rejects.toThrow(/shelf\/a is a symbolic link inside dest/);
    await expect(lstat(join(outside, "b"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses a dangling symlink as the final component", async () => {
    await mkdir(root);
    await symlink(join(outside, "nowhere"), join(root, "shelf"));
    await expect(ensureDirInside(root, "shelf")).rejects.toThrow(PantriError);
    await expect(lstat(join(outside, "nowhere"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses a file in the way", async () => {
    await mkdir(root);
    await writeFile(join(root, "shelf"), "x");
    await expect(ensureDirInside(root, "shelf/a")).rejects.toThrow(/in the way/);
  });

  it("refuses paths that leave root", async () => {
    await expect(ensureDirInside(root, "../outside")).rejects.toThrow(PantriError);
    await expect(ensureDirInside(root, "a/../../outside")).rejects.toThrow(PantriError);
  });

  it("accepts a root that is itself reached through a link", async () => {
    await symlink(outside, root);
    expect(await ensureDirInside(root, "shelf")).toBe(join(root, "shelf"));
    expect((await lstat(join(outside, "shelf"))).isDirectory()).toBe(true);
  });
});

describe("assertNoSymlinkInside", () => {
  it("passes for real and for not-yet-existing components", async () => {
    await mkdir(join(root, "shelf", "a"), { recursive: true });
    await writeFile(join(root, "shelf", "a", "f"), "x");
    await assertNoSymlinkInside(root, "shelf/a/f");
    await assertNoSymlinkInside(root, "shelf/a/new/deeper/f");
    await assertNoSymlinkInside(join(tmp, "no-root-yet"), "shelf/f");
    // A plain file where a directory would be: nothing below it exists to follow.
    await assertNoSymlinkInside(root, "shelf/a/f/below");
  });

  it("refuses a symlink as the final component", async () => {
    await mkdir(join(root, "shelf"), { recursive: true });
    await symlink(join(outside, "target"), join(root, "shelf", "f"));
    await expect(assertNoSymlinkInside(root, "shelf/f")).rejects.toThrow(
      `${join(root, "shelf", "f")} is a symbolic link inside dest; pantri never follows links there: remove it`,
    );
  });

  it("refuses a symlinked directory on the way", async () => {
    await mkdir(root);
    await symlink(outside, join(root, "shelf"));
    await expect(assertNoSymlinkInside(root, "shelf/a/f")).rejects.toThrow(/shelf is a symbolic link/);
  });

  it("refuses .. and absolute paths", async () => {
    await expect(assertNoSymlinkInside(root, "../outside")).rejects.toThrow(PantriError);
    await expect(assertNoSymlinkInside(root, "/etc")).rejects.toThrow(PantriError);
  });
});
