import { describe, it, expect } from "vitest";
import { compilePatterns } from "../../src/core/patterns.js";

describe("compilePatterns", () => {
  it("matches nothing for an empty list", () => {
    const m = compilePatterns([]);
    expect(m("a")).toBe(false);
    expect(m("x/y/z")).toBe(false);
    expect(compilePatterns([""])("a")).toBe(false);
  });

  it("matches a pattern without / against the name at any depth", () => {
    const m = compilePatterns(["*.pyc", ".DS_Store"]);
    expect(m("x.pyc")).toBe(true);
    expect(m("a/b/c/x.pyc")).toBe(true);
    expect(m("a/.DS_Store")).toBe(true);
    expect(m("a/x.pyc.bak")).toBe(false);
    expect(m("x.pyc/real.deb")).toBe(false);
  });

  it("matches dotfiles (dot: true)", () => {
    const defaults = compilePatterns(["._*", ".__*", ".TemporaryItems*", ".DS_Store", "*.pyc"]);
    expect(defaults("dir/._foo")).toBe(true);
    expect(defaults(".TemporaryItems")).toBe(true);
    expect(defaults("a/b/.__x")).toBe(true);
    expect(defaults("a/b/x.deb")).toBe(false);
    expect(compilePatterns(["*"])(".hidden")).toBe(true);
    expect(compilePatterns(["a/*"])("a/.hidden")).toBe(true);
  });

  it("matches a pattern with / against the path relative to the shelf", () => {
    const m = compilePatterns(["keep/*.conf", "logs/**"]);
    expect(m("keep/a.conf")).toBe(true);
    expect(m("other/keep/a.conf")).toBe(false);
    expect(m("keep/sub/a.conf")).toBe(false);
    expect(m("logs/2024/x.log")).toBe(true);
    expect(m("a.conf")).toBe(false);
  });

  it("treats a leading / as anchored to the shelf root", () => {
    const m = compilePatterns(["/top.bin"]);
    expect(m("top.bin")).toBe(true);
    expect(m("a/top.bin")).toBe(false);
  });

  it("treats a trailing / as everything under that folder", () => {
    const m = compilePatterns(["cache/"]);
    expect(m("cache/a")).toBe(true);
    expect(m("cache/a/b")).toBe(true);
    expect(m("cachex/a")).toBe(false);
  });

  it("supports braces and character classes", () => {
    const m = compilePatterns(["*.{iso,dmg}", "img[0-9].raw"]);
    expect(m("a/b.iso")).toBe(true);
    expect(m("b.dmg")).toBe(true);
    expect(m("img7.raw")).toBe(true);
    expect(m("imgx.raw")).toBe(false);
  });

  it("returns the same results from cached matchers", () => {
    const a = compilePatterns(["*.deb"]);
    const b = compilePatterns(["*.deb", "x/*"]);
    expect(a("p/q.deb")).toBe(true);
    expect(b("p/q.deb")).toBe(true);
    expect(b("x/y")).toBe(true);
    expect(a("x/y")).toBe(false);
  });
});
