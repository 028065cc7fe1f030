import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CONFIG_FILE_NAMES, defineConfig, loadConfig, validateConfig } from "../../src/config/index.js";
import type { LoadConfigOptions } from "../../src/config/index.js";
import { ConfigError } from "../../src/core/errors.js";

const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A fresh repo root holding the given files (path -> contents). */
async function makeRepo(files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pantri-config-"));
  dirs.push(dir);
  for (const [name, contents] of Object.entries(files)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), contents);
  }
  return dir;
}

/** loadConfig with an empty environment and cwd = repo unless told otherwise. */
function load(repoRoot: string, opts: Partial<LoadConfigOptions> = {}): ReturnType<typeof loadConfig> {
  return loadConfig({ repoRoot, cwd: repoRoot, env: {}, ...opts });
}

async function configError(promise: Promise<unknown>): Promise<ConfigError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

const json = (value: unknown): string => JSON.stringify(value, null, 2);

describe("loadConfig: files", () => {
  it("without a config file uses the defaults: a local store under .pantri/store", async () => {
    const repo = await makeRepo();
    const cwd = await makeRepo();
    const config = await load(repo, { cwd });
    expect(config.configFile).toBeNull();
    expect(config.repoRoot).toBe(repo);
    expect(config.configuredShelves).toEqual([]);
    expect(config.base).toEqual({
      objectStore: { type: "local", path: join(repo, ".pantri/store") },
      destSync: join(repo, "dest_sync"),
      ignorePatterns: ["._*", ".__*", ".TemporaryItems*", ".DS_Store", "*.pyc"],
      binaryOverrides: [],
      keepFiles: [],
      checksum: false,
      concurrency: 16,
      jsonOutputDir: cwd,
      passwordFile: join(homedir(), ".config/pantri/password.json"),
    });
    expect(config.forShelf("anything")).toEqual(config.base);
  });

  it("reads pantri.config.json, resolving paths against the repo root", async () => {
    const repo = await makeRepo({
      "pantri.config.json": json({
        $schema: "https://example.invalid/pantri.schema.json",
        objectStore: { type: "local", path: "../objects" },
        destSync: "out",
        ignorePatterns: ["*.tmp"],
        concurrency: 3,
        checksum: true,
      }),
    });
    const config = await load(repo);
    expect(config.configFile).toBe(join(repo, "pantri.config.json"));
    expect(config.base.objectStore).toEqual({ type: "local", path: join(repo, "../objects") });
    expect(config.base.destSync).toBe(join(repo, "out"));
    // Arrays replace the defaults, never add to them.
    expect(config.base.ignorePatterns).toEqual(["*.tmp"]);
    expect(config.base.concurrency).toBe(3);
    expect(config.base.checksum).toBe(true);
  });

  it("reads pantri.config.mjs", async () => {
    const repo = await makeRepo({
      "pantri.config.mjs": `export default { keepFiles: ["keep/**"], concurrency: 2 };\n`,
    });
    const config = await load(repo);
    expect(config.configFile).toBe(join(repo, "pantri.config.mjs"));
    expect(config.base.keepFiles).toEqual(["keep/**"]);
    expect(config.base.concurrency).toBe(2);
  });

  it("reads pantri.config.js exporting a function (ESM package)", async () => {
    const repo = await makeRepo({
      "package.json": json({ type: "module" }),
      "pantri.config.js": `export default async () => ({ binaryOverrides: ["*.bin"] });\n`,
    });
    const config = await load(repo);
    expect(config.base.binaryOverrides).toEqual(["*.bin"]);
  });

  it("reads a CommonJS pantri.config.js", async () => {
    const repo = await makeRepo({
      "package.json": json({ type: "commonjs" }),
      "pantri.config.js": `module.exports = { destSync: "/srv/dest" };\n`,
    });
    const config = await load(repo);
    expect(config.base.destSync).toBe("/srv/dest");
  });

  it("reads pantri.config.ts importing defineConfig from pantri, which the repo does not install", async () => {
    const repo = await makeRepo({
      "pantri.config.ts": [
        `import { defineConfig } from "pantri";`,
        `import type { PantriUserConfig } from "pantri";`,
        `interface Team { name: string; jobs: number }`,
        `const team: Team = { name: "pkgs", jobs: 6 };`,
        `const shelves: PantriUserConfig["shelves"] = { [team.name]: { concurrency: team.jobs as number } };`,
        `export default defineConfig({`,
        `  objectStore: { type: "swift", container: "binaries", authVersion: 3 },`,
        `  shelves,`,
        `});`,
        ``,
      ].join("\n"),
    });
    const config = await load(repo);
    expect(config.configFile).toBe(join(repo, "pantri.config.ts"));
    expect(config.base.objectStore).toEqual({ type: "swift", container: "binaries", authVersion: 3 });
    expect(config.configuredShelves).toEqual(["pkgs"]);
    expect(config.forShelf("pkgs").concurrency).toBe(6);
  });

  it("also reads an .mjs config importing pantri that is not installed", async () => {
    const repo = await makeRepo({
      "pantri.config.mjs": `import { defineConfig } from "pantri";\nexport default defineConfig({ concurrency: 5 });\n`,
    });
    expect((await load(repo)).base.concurrency).toBe(5);
  });

  it("prefers names in CONFIG_FILE_NAMES order", async () => {
    expect(CONFIG_FILE_NAMES).toEqual([
      "pantri.config.ts",
      "pantri.config.mts",
      "pantri.config.mjs",
      "pantri.config.js",
      "pantri.config.json",
    ]);
    const repo = await makeRepo({
      "pantri.config.json": json({ concurrency: 1 }),
      "pantri.config.mjs": `export default { concurrency: 2 };\n`,
      "pantri.config.mts": `const n: number = 3;\nexport default { concurrency: n };\n`,
    });
    const config = await load(repo);
    expect(config.configFile).toBe(join(repo, "pantri.config.mts"));
    expect(config.base.concurrency).toBe(3);
  });

  it("reads a given config file relative to cwd instead of looking at the root", async () => {
    const repo = await makeRepo({
      "pantri.config.json": json({ concurrency: 1 }),
      "ci/pantri.json": json({ concurrency: 9 }),
    });
    const config = await load(repo, { cwd: join(repo, "ci"), configFile: "pantri.json" });
    expect(config.configFile).toBe(join(repo, "ci/pantri.json"));
    expect(config.base.concurrency).toBe(9);
  });

  it("fails with a ConfigError naming a given file that does not exist", async () => {
    const repo = await makeRepo();
    const err = await configError(load(repo, { configFile: "nope.json" }));
    expect(err.message).toContain(join(repo, "nope.json"));
    expect(err.exitCode).toBe(2);
  });

  it("reports a JSON syntax error with the file and line", async () => {
    const repo = await makeRepo({ "pantri.config.json": `{\n  "concurrency": 2\n  "checksum": true\n}\n` });
    const err = await configError(load(repo));
    expect(err.message).toContain(`${join(repo, "pantri.config.json")}:3:`);
    expect(err.message).toContain("invalid JSON");
  });

  it("reports a config that throws on import, naming the file and the cause", async () => {
    const repo = await makeRepo({ "pantri.config.mjs": `throw new Error("no secrets file here");\n` });
    const err = await configError(load(repo));
    expect(err.message).toContain(join(repo, "pantri.config.mjs"));
    expect(err.message).toContain("no secrets file here");
  });

  it("reports a TS config that throws on import", async () => {
    const repo = await makeRepo({
      "pantri.config.ts": `const fail = (why: string): never => { throw new Error(why); };\nexport default fail("broken ts config");\n`,
    });
    const err = await configError(load(repo));
    expect(err.message).toContain(join(repo, "pantri.config.ts"));
    expect(err.message).toContain("broken ts config");
  });

  it("rejects a module without a default export, and a default export that is not an object", async () => {
    const noDefault = await makeRepo({ "pantri.config.mjs": `export const concurrency = 2;\n` });
    expect((await configError(load(noDefault))).message).toContain("no default export");
    const array = await makeRepo({ "pantri.config.mjs": `export default [1, 2];\n` });
    const err = await configError(load(array));
    expect(err.message).toContain(join(array, "pantri.config.mjs"));
    expect(err.problems).toEqual(["pantri.config.mjs: the default export must be a plain object of settings, got an array"]);
  });
});

describe("loadConfig: merge order", () => {
  it("defaults < file < shelf section < environment < command line, each layer winning over the one below", async () => {
    const repo = await makeRepo({
      "pantri.config.json": json({
        concurrency: 2,
        checksum: false,
        keepFiles: ["file-keep"],
        ignorePatterns: ["file-ignore"],
        destSync: "file-dest",
        shelves: {
          pkgs: { concurrency: 3, keepFiles: ["shelf-keep"], checksum: true, destSync: "shelf-dest" },
        },
      }),
    });
    const cwd = await makeRepo();
    const env = { PANTRI_CONCURRENCY: "4", PANTRI_DEST_SYNC: "env-dest" };
    const overrides = { concurrency: 5, checksum: undefined };

    const fileOnly = await load(repo);
    // file > defaults
    expect(fileOnly.base.concurrency).toBe(2);
    expect(fileOnly.base.ignorePatterns).toEqual(["file-ignore"]);
    expect(fileOnly.base.binaryOverrides).toEqual([]);
    // shelf section > file
    expect(fileOnly.forShelf("pkgs")).toMatchObject({
      concurrency: 3,
      keepFiles: ["shelf-keep"],
      ignorePatterns: ["file-ignore"],
      checksum: true,
      destSync: join(repo, "shelf-dest"),
    });
    expect(fileOnly.forShelf("other").concurrency).toBe(2);

    // environment > shelf section (env paths are relative to the repo root)
    const withEnv = await load(repo, { cwd, env });
    expect(withEnv.forShelf("pkgs").concurrency).toBe(4);
    expect(withEnv.forShelf("pkgs").destSync).toBe(join(repo, "env-dest"));
    expect(withEnv.forShelf("pkgs").checksum).toBe(true);

    // command line > environment (flag paths are relative to the current directory)
    const withFlags = await load(repo, { cwd, env, overrides: { ...overrides, destSync: "flag-dest" } });
    expect(withFlags.forShelf("pkgs").concurrency).toBe(5);
    expect(withFlags.base.concurrency).toBe(5);
    expect(withFlags.forShelf("pkgs").destSync).toBe(join(cwd, "flag-dest"));
    // A flag left undefined does not hide the layers below.
    expect(withFlags.forShelf("pkgs").checksum).toBe(true);
  });

  it("environment checksum beats the file, and the command line beats the environment", async () => {
    const repo = await makeRepo({ "pantri.config.json": json({ checksum: true }) });
    expect((await load(repo, { env: { PANTRI_CHECKSUM: "0" } })).base.checksum).toBe(false);
    expect((await load(repo, { env: { PANTRI_CHECKSUM: "0" }, overrides: { checksum: true } })).base.checksum).toBe(true);
  });

  it("resolves jsonOutputDir against cwd and passwordFile with ~ expanded", async () => {
    const repo = await makeRepo({
      "pantri.config.json": json({ jsonOutputDir: "reports", passwordFile: "~/secrets/swift.json" }),
    });
    const cwd = await makeRepo();
    const config = await load(repo, { cwd });
    expect(config.base.jsonOutputDir).toBe(join(cwd, "reports"));
    expect(config.base.passwordFile).toBe(join(homedir(), "secrets/swift.json"));
    const fromEnv = await load(repo, {
      cwd,
      env: { PANTRI_JSON_OUTPUT_DIR: "/var/reports", PANTRI_PASSWORD_FILE: "creds/pw.json" },
    });
    expect(fromEnv.base.jsonOutputDir).toBe("/var/reports");
    expect(fromEnv.base.passwordFile).toBe(join(repo, "creds/pw.json"));
  });

  it("merges a shelf's store of the same type key by key and replaces one of another type", async () => {
    const repo = await makeRepo({
      "pantri.config.json": json({
        objectStore: { type: "swift", authUrl: "https://swift.example/auth/v1.0", container: "main", segmentSize: 1024 },
        shelves: {
          pkgs: { objectStore: { type: "swift", container: "pkgs" } },
          scratch: { objectStore: { type: "local" } },
          mirror: { objectStore: { type: "s3", bucket: "mirror" } },
        },
      }),
    });
    const config = await load(repo);
    expect(config.configuredShelves).toEqual(["pkgs", "scratch", "mirror"]);
    expect(config.forShelf("pkgs").objectStore).toEqual({
      type: "swift",
      authUrl: "https://swift.example/auth/v1.0",
      container: "pkgs",
      segmentSize: 1024,
    });
    expect(config.forShelf("scratch").objectStore).toEqual({ type: "local", path: join(repo, ".pantri/store") });
    expect(config.forShelf("mirror").objectStore).toEqual({ type: "s3", bucket: "mirror" });
    expect(config.base.objectStore).toMatchObject({ container: "main" });
  });

  it("applies PANTRI_STORE_PATH to a local store only, and store flags over everything", async () => {
    const repo = await makeRepo({
      "pantri.config.json": json({
        objectStore: { type: "local", path: "file-store" },
        shelves: { remote: { objectStore: { type: "swift", container: "c" } } },
      }),
    });
    const cwd = await makeRepo();
    const env = { PANTRI_STORE_PATH: "env-store" };
    const config = await load(repo, { cwd, env });
    expect(config.base.objectStore).toEqual({ type: "local", path: join(repo, "env-store") });
    expect(config.forShelf("remote").objectStore).toEqual({ type: "swift", container: "c" });

    const flagged = await load(repo, { cwd, env, overrides: { objectStore: { path: "flag-store" } } });
    expect(flagged.base.objectStore).toEqual({ type: "local", path: join(cwd, "flag-store") });
    const retyped = await load(repo, { cwd, env, overrides: { objectStore: { type: "s3", bucket: "b" } } });
    expect(retyped.forShelf("remote").objectStore).toEqual({ type: "s3", bucket: "b" });
  });

  it("keeps a custom store's type and options exactly as written", async () => {
    const repo = await makeRepo({
      "pantri.config.json": json({ objectStore: { type: "./stores/mine.mjs", bucket_name: "x", path: "rel" } }),
    });
    const config = await load(repo);
    expect(config.base.objectStore).toEqual({ type: "./stores/mine.mjs", bucket_name: "x", path: "rel" });
  });

  it("memoizes forShelf", async () => {
    const repo = await makeRepo({ "pantri.config.json": json({ shelves: { pkgs: { concurrency: 1 } } }) });
    const config = await load(repo);
    expect(config.forShelf("pkgs")).toBe(config.forShelf("pkgs"));
    expect(config.forShelf("constructor")).toEqual(config.base);
  });
});

describe("loadConfig: legacy snake_case", () => {
  it("maps every alias to its camelCase key", async () => {
    const repo = await makeRepo({
      "pantri.config.json": json({
        object_store: {
          type: "swift",
          auth_url: "http://127.0.0.1:8080/auth/v1.0",
          auth_version: "1",
          storage_url: "http://127.0.0.1:8080/v1/AUTH_test",
          user_domain: "Default",
          project_domain: "Default",
          segment_container: "segs",
          segment_size: 1048576,
          key_prefix: "pantri/",
        },
        dest_sync: "/srv/dest",
        ignore_patterns: ["*.tmp"],
        binary_overrides: ["*.dat"],
        keep_files: ["README"],
        json_output_dir: "/tmp/out",
        password_file: "/etc/pantri/pw.json",
        shelves: { pkgs: { dest_sync: "/srv/pkgs", object_store: { type: "s3", force_path_style: true, part_size: 8388608 } } },
      }),
    });
    const config = await load(repo);
    expect(config.base).toMatchObject({
      objectStore: {
        type: "swift",
        authUrl: "http://127.0.0.1:8080/auth/v1.0",
        authVersion: 1,
        storageUrl: "http://127.0.0.1:8080/v1/AUTH_test",
        userDomain: "Default",
        projectDomain: "Default",
        segmentContainer: "segs",
        segmentSize: 1048576,
        keyPrefix: "pantri/",
      },
      destSync: "/srv/dest",
      ignorePatterns: ["*.tmp"],
      binaryOverrides: ["*.dat"],
      keepFiles: ["README"],
      jsonOutputDir: "/tmp/out",
      passwordFile: "/etc/pantri/pw.json",
    });
    expect(config.forShelf("pkgs").destSync).toBe("/srv/pkgs");
    expect(config.forShelf("pkgs").objectStore).toEqual({ type: "s3", forcePathStyle: true, partSize: 8388608 });
  });

  it("flags a setting given in both spellings", async () => {
    const { problems } = validateConfig(
      { destSync: "a", dest_sync: "b", objectStore: { type: "s3", keyPrefix: "x", key_prefix: "y" } },
      "pantri.config.json",
    );
    expect(problems).toEqual([
      "destSync: given twice, as `destSync` and as `dest_sync`: keep only `destSync`",
      "objectStore.keyPrefix: given twice, as `keyPrefix` and as `key_prefix`: keep only `keyPrefix`",
    ]);
  });
});

describe("validation", () => {
  it("suggests the key a typo meant", () => {
    expect(validateConfig({ destSnyc: "x" }, "pantri.config.ts").problems).toEqual([
      "unknown key `destSnyc` (did you mean destSync?)",
    ]);
    expect(validateConfig({ shelves: { pkgs: { Concurency: 2 } } }, "f.json").problems).toEqual([
      "shelves.pkgs: unknown key `Concurency` (did you mean concurrency?)",
    ]);
    expect(validateConfig({ objectStore: { type: "swift", contianer: "c" } }, "f.json").problems).toEqual([
      "objectStore: unknown key `contianer` for a swift store (did you mean container?)",
    ]);
    expect(validateConfig({ container: "c" }, "f.json").problems).toEqual([
      "unknown key `container` (it is an objectStore option)",
    ]);
    expect(validateConfig({ frobnicate: 1 }, "f.json").problems).toEqual(["unknown key `frobnicate`"]);
  });

  it("lists every problem of a bad config in one ConfigError naming the file and each key", async () => {
    const repo = await makeRepo({
      "pantri.config.json": json({
        concurrency: 0,
        checksum: "yes",
        destSync: "",
        ignorePatterns: "*.tmp",
        keepFiles: ["ok", 3],
        jsonOutputDir: 7,
        destSnyc: "typo",
        objectStore: {
          type: "swift",
          authUrl: "ftp://host/auth",
          authVersion: 2,
          segmentSize: -1,
          key: 12345,
          container: "a/b",
        },
        shelves: {
          pkgs: { concurrency: "x", objectStore: { type: "" }, shelves: {} },
          images: { objectStore: { type: "s3", forcePathStyle: "yes", partSize: 100, endpoint: "not a url" } },
          isos: { objectStore: { path: "no-type" } },
          "a/b": {},
          bad: [],
          caps: { objectStore: { type: "Local" } },
        },
      }),
    });
    const file = join(repo, "pantri.config.json");
    const err = await configError(load(repo));
    expect(err.message.split("\n")[0]).toBe(`${file}: invalid configuration`);
    expect(err.problems).toEqual([
      "concurrency: must be a positive integer, got 0",
      'checksum: must be true or false, got "yes"',
      "destSync: must be a non-empty string, got an empty string",
      'ignorePatterns: must be a list of glob patterns, got "*.tmp"',
      "keepFiles[1]: must be a non-empty string (a glob pattern), got 3",
      "jsonOutputDir: must be a non-empty string, got 7",
      "unknown key `destSnyc` (did you mean destSync?)",
      "objectStore.authUrl: must be an http(s) URL, got a ftp: URL",
      "objectStore.authVersion: must be 1 (tempauth, ST_AUTH) or 3 (Keystone, OS_AUTH_URL), got 2",
      "objectStore.segmentSize: must be a positive integer, got -1",
      // A secret in the wrong shape is described, never echoed.
      "objectStore.key: must be a non-empty string, got a number",
      'objectStore.container: must not contain `/` (a Swift container name), got "a/b"',
      "shelves.pkgs: a shelf section cannot have its own `shelves`",
      'shelves.pkgs.concurrency: must be a positive integer, got "x"',
      'shelves.pkgs.objectStore.type: must be a non-empty string ("local", "swift", "s3", or the module specifier or path of a custom store), got an empty string',
      'shelves.images.objectStore.forcePathStyle: must be true or false, got "yes"',
      "shelves.images.objectStore.partSize: must be an integer of at least 5242880 (5 MiB, S3's smallest part), got 100",
      "shelves.images.objectStore.endpoint: must be an http(s) URL, got a string that is not a URL",
      'shelves.isos.objectStore.type: is required ("local", "swift", "s3", or the module specifier or path of a custom store)',
      'shelves: "a/b" is not a shelf name (a folder directly under shelves/)',
      "shelves.bad: must be an object of settings for that shelf, got an array",
      'shelves.caps.objectStore.type: unknown store type "Local" (did you mean local?)',
    ]);
    expect(err.message).not.toContain("12345");
  });

  it("rejects a non-object objectStore and shelves", () => {
    expect(validateConfig({ objectStore: "swift", shelves: [] }, "f.json").problems).toEqual([
      'objectStore: must be an object such as { type: "local" }, got "swift"',
      "shelves: must be an object of per-shelf settings keyed by shelf name, got an array",
    ]);
  });

  it("passes a TS config's undefined values as unset", () => {
    expect(validateConfig({ concurrency: undefined, destSync: "d" }, "f.ts")).toEqual({
      config: { destSync: "d" },
      problems: [],
    });
  });

  it("defineConfig returns its argument", () => {
    const config = { concurrency: 2 };
    expect(defineConfig(config)).toBe(config);
  });
});

describe("loadConfig: environment", () => {
  const swiftRepo = (): Promise<string> =>
    makeRepo({ "pantri.config.json": json({ objectStore: { type: "swift", container: "pkgs", user: "from-file" } }) });

  it("maps the swift v1 variables", async () => {
    const repo = await swiftRepo();
    const config = await load(repo, {
      env: { ST_AUTH: "http://127.0.0.1:8080/auth/v1.0", ST_USER: "test:tester", ST_KEY: "testing" },
    });
    expect(config.base.objectStore).toEqual({
      type: "swift",
      container: "pkgs",
      authUrl: "http://127.0.0.1:8080/auth/v1.0",
      authVersion: 1,
      user: "test:tester",
      key: "testing",
    });
  });

  it("maps the OpenStack (v3) variables", async () => {
    const repo = await swiftRepo();
    const config = await load(repo, {
      env: {
        OS_AUTH_URL: "https://keystone.example/v3",
        OS_USERNAME: "alice",
        OS_PASSWORD: "pw",
        OS_PROJECT_NAME: "builds",
        OS_USER_DOMAIN_NAME: "Default",
        OS_PROJECT_DOMAIN_NAME: "Users",
        OS_REGION_NAME: "RegionTwo",
        OS_STORAGE_URL: "https://swift.example/v1/AUTH_x",
        OS_AUTH_TOKEN: "tok",
        OS_APPLICATION_CREDENTIAL_ID: "app-id",
        OS_APPLICATION_CREDENTIAL_SECRET: "app-secret",
      },
    });
    expect(config.base.objectStore).toEqual({
      type: "swift",
      container: "pkgs",
      authUrl: "https://keystone.example/v3",
      authVersion: 3,
      user: "alice",
      key: "pw",
      project: "builds",
      userDomain: "Default",
      projectDomain: "Users",
      region: "RegionTwo",
      storageUrl: "https://swift.example/v1/AUTH_x",
      token: "tok",
      applicationCredentialId: "app-id",
      applicationCredentialSecret: "app-secret",
    });
  });

  it("lets ST_AUTH win over OS_AUTH_URL, as the swift command does", async () => {
    const repo = await swiftRepo();
    const config = await load(repo, {
      env: { ST_AUTH: "http://st.example/auth/v1.0", OS_AUTH_URL: "http://os.example/v3", OS_USERNAME: "os-user" },
    });
    expect(config.base.objectStore).toMatchObject({ authUrl: "http://st.example/auth/v1.0", authVersion: 1, user: "os-user" });
  });

  it("leaves other stores alone", async () => {
    const repo = await makeRepo();
    const config = await load(repo, { env: { ST_AUTH: "http://st.example/auth/v1.0", OS_USERNAME: "x" } });
    expect(config.base.objectStore).toEqual({ type: "local", path: join(repo, ".pantri/store") });
  });

  it("names each invalid variable, all at once", async () => {
    const repo = await makeRepo();
    const err = await configError(
      load(repo, {
        env: { PANTRI_CONCURRENCY: "abc", PANTRI_CHECKSUM: "maybe", ST_AUTH: "nope", OS_AUTH_VERSION: "2.0" },
        overrides: { concurrency: -2 },
      }),
    );
    expect(err.problems).toEqual([
      'PANTRI_CONCURRENCY: must be a positive integer, got "abc"',
      'PANTRI_CHECKSUM: must be 1/true or 0/false, got "maybe"',
      "ST_AUTH: must be an http(s) URL, got a string that is not a URL",
      'OS_AUTH_VERSION: must be 1 or 3 (pantri speaks Swift v1 auth and Keystone v3), got "2.0"',
      "command line: concurrency: must be a positive integer, got -2",
    ]);
  });

  it("treats an empty variable as unset", async () => {
    const repo = await makeRepo();
    expect((await load(repo, { env: { PANTRI_CONCURRENCY: "" } })).base.concurrency).toBe(16);
  });
});
