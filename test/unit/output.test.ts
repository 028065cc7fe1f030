import { describe, expect, it } from "vitest";
import { emptyResult, finish } from "../../src/core/result.js";
import { SCHEMA_VERSION, errorJson, toJson } from "../../src/output/json.js";
import { renderHuman } from "../../src/output/human.js";
import { PassThrough } from "node:stream";

describe("toJson", () => {
  it("is one versioned document with every list, items sorted, details beside them but never over them", () => {
    const r = emptyResult("retrieve");
    r.retrieved.push({ path: "p/b", file: "/d/p/b", size: 3 }, { path: "p/a", file: "/d/p/a" });
    r.failed.push({ path: "p/c", error: "boom" });
    r.details = { target: "abc", ok: "not me" };
    const j = toJson(finish(r));
    expect(j.schemaVersion).toBe(SCHEMA_VERSION);
    expect(Object.keys(j).slice(0, 4)).toEqual(["schemaVersion", "command", "ok", "dryRun"]);
    expect(j.ok).toBe(false);
    expect(j.target).toBe("abc");
    expect(j.retrieved.map((i) => i.path)).toEqual(["p/a", "p/b"]);
    expect(j.failed).toEqual([{ path: "p/c", error: "boom" }]);
    for (const k of ["stored", "removed", "copied", "skipped"]) expect(j[k]).toEqual([]);
  });
  it("describes a whole-command failure", () => {
    expect(errorJson("store", "bad config", 2)).toMatchObject({ ok: false, command: "store", error: { message: "bad config", exitCode: 2 }, stored: [] });
  });
});

describe("renderHuman", () => {
  it("writes items to stdout, failures and the summary to stderr, and nothing but failures with --quiet", () => {
    const r = emptyResult("store");
    r.stored.push({ path: "p/a", uploaded: false });
    r.failed.push({ path: "p/b", error: "no" });
    const capture = () => {
      const s = new PassThrough();
      let text = "";
      s.on("data", (d: Buffer) => (text += d.toString()));
      return { s, get: () => text };
    };
    const out = capture();
    const err = capture();
    renderHuman(finish(r), { json: false, quiet: false, verbose: false, stdout: out.s, stderr: err.s as unknown as NodeJS.WriteStream });
    expect(out.get()).toContain("p/a (already in store)");
    expect(out.get()).not.toContain("p/b");
    expect(err.get()).toContain("FAILED");
    expect(err.get()).toMatch(/1 stored, 1 failed/);
    const out2 = capture();
    const err2 = capture();
    renderHuman(finish(r), { json: false, quiet: true, verbose: false, stdout: out2.s, stderr: err2.s as unknown as NodeJS.WriteStream });
    expect(out2.get()).toBe("");
    expect(err2.get()).toContain("p/b");
  });
  it("words status as what would happen, and dry runs as 'would'", () => {
    const capture = () => {
      const s = new PassThrough();
      let text = "";
      s.on("data", (d: Buffer) => (text += d.toString()));
      return { s, get: () => text };
    };
    const st = emptyResult("status", true);
    st.retrieved.push({ path: "p/a", reason: "missing in dest" });
    const out = capture();
    renderHuman(finish(st), { json: false, quiet: true, verbose: false, stdout: out.s, stderr: capture().s as unknown as NodeJS.WriteStream });
    expect(out.get()).toBe("");
    const out2 = capture();
    renderHuman(finish(st), { json: false, quiet: false, verbose: false, stdout: out2.s, stderr: capture().s as unknown as NodeJS.WriteStream });
    expect(out2.get()).toMatch(/^to retrieve\s+p\/a/);
    const dry = emptyResult("store", true);
    dry.stored.push({ path: "p/b" });
    const out3 = capture();
    renderHuman(finish(dry), { json: false, quiet: false, verbose: false, stdout: out3.s, stderr: capture().s as unknown as NodeJS.WriteStream });
    expect(out3.get()).toMatch(/^would store\s+p\/b/);
  });
});
