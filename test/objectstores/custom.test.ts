import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, StoreError } from "../../src/core/errors.js";
import type { ObjectStoreConfig } from "../../src/core/types.js";
import { createStore } from "../../src/objectstores/index.js";
import type { ObjectStore, StoreContext } from "../../src/objectstores/types.js";
import { runStoreContract, sourceFromBuffer } from "./contract.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/memory-store.mjs", import.meta.url));

/** A temporary repo root holding adapters the way a user would: a file, a .ts file, packages. */
async function makeRepo(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "pantri-custom-"));
  const write = async (rel: string, text: string) => {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), text);
  };
  await mkdir(join(root, "stores"), { recursive: true });
  await copyFile(EXAMPLE, join(root, "stores/memory-store.mjs"));
  await write(
    "pantri.config.json",
    JSON.stringify({ objectStore: { type: "./stores/memory-store.mjs", name: "x" } }, null, 2),
  );
  await write(
    "stores/typed-store.ts",
    [
      `import createMemoryStore from "./memory-store.mjs";`,
      `interface TypedOptions { name?: string; label: string }`,
      `export default function createTypedStore(options: TypedOptions, context: unknown): Record<string, unknown> {`,
      `  const store = createMemoryStore({ name: options.name }, context) as Record<string, unknown>;`,
      `  return { ...store, description: \`typed store \${options.label}\` };`,
      `}`,
    ].join("\n"),
  );
  await write("stores/not-a-factory.mjs", `export default { head() {} };\n`);
  await write("stores/half-a-store.mjs", `export default () => ({ description: "half", head: async () => null });\n`);
  // ESM only: no `require` or `default` condition, so require.resolve cannot find it.
  await write(
    "node_modules/my-store/package.json",
    JSON.stringify({ name: "my-store", type: "module", exports: { ".": { import: "./lib/index.js" } } }),
  );
  await mkdir(join(root, "node_modules/my-store/lib"), { recursive: true });
  await copyFile(EXAMPLE, join(root, "node_modules/my-store/lib/index.js"));
  await write(
    "node_modules/@acme/stores/package.json",
    JSON.stringify({ name: "@acme/stores", type: "module", exports: { "./*": { import: "./dist/*.mjs" } } }),
  );
  await mkdir(join(root, "node_modules/@acme/stores/dist"), { recursive: true });
  await copyFile(EXAMPLE, join(root, "node_modules/@acme/stores/dist/memory.mjs"));
  return root;
}

let repo: Promise<string> | undefined;
const repoRoot = (): Promise<string> => (repo ??= makeRepo());

afterAll(async () => {
  if (repo) await rm(await repo, { recursive: true, force: true });
});

async function storeFrom(config: ObjectStoreConfig): Promise<ObjectStore> {
  const root = await repoRoot();
  const context: StoreContext = { repoRoot: root, cacheDir: join(root, ".cache"), env: {}, log: () => undefined };
  return createStore(config, context);
}

async function configError(config: ObjectStoreConfig): Promise<ConfigError> {
  const err: unknown = await storeFrom(config).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

runStoreContract("custom module (examples/memory-store.mjs)", async () => {
  const root = await repoRoot();
  const config = JSON.parse(await readFile(join(root, "pantri.config.json"), "utf8")) as { objectStore: ObjectStoreConfig };
  return { store: await storeFrom(config.objectStore) };
}, { supportsDelete: false });

describe("createStore", () => {
  it("builds the local store by name", async () => {
    const store = await storeFrom({ type: "local", path: "store" });
    expect(store.description).toBe(`local store ${join(await repoRoot(), "store")}`);
  });

  it("shares what a custom store stored with the test, by name", async () => {
    const store = await storeFrom({ type: "./stores/memory-store.mjs", name: "shared" });
    await store.put("k", sourceFromBuffer(Buffer.from("hello")));
    const mod = (await import(pathToFileURL(join(await repoRoot(), "stores/memory-store.mjs")).href)) as { memoryObjects(name: string): Map<string, Buffer> };
    expect(mod.memoryObjects("shared").get("k")?.toString()).toBe("hello");
  });

  it("loads a .ts adapter through jiti", async () => {
    const store = await storeFrom({ type: "./stores/typed-store.ts", name: "ts", label: "L" });
    expect(store.description).toBe("typed store L");
    await store.put("a/b", sourceFromBuffer(Buffer.from("typed")));
    expect(await store.head("a/b")).toEqual({ key: "a/b", size: 5 });
    expect(typeof store.storeObjects).toBe("function");
    await expect(store.get("nope")).rejects.toBeInstanceOf(StoreError);
  });

  it("resolves an ESM-only package from the repo root", async () => {
    const store = await storeFrom({ type: "my-store", name: "pkg" });
    expect(store.description).toBe('memory store "pkg"');
    await store.put("p", sourceFromBuffer(Buffer.from("pkg")));
    const outcomes: unknown[] = [];
    for await (const o of store.storeObjects([{ key: "p", source: sourceFromBuffer(Buffer.from("pkg")), item: 1 }])) outcomes.push(o);
    expect(outcomes).toMatchObject([{ uploaded: false }]);
  });

  it("resolves a scoped package subpath through an exports pattern", async () => {
    const store = await storeFrom({ type: "@acme/stores/memory", name: "scoped" });
    expect(store.description).toBe('memory store "scoped"');
  });

  it("rejects an unknown type with a usage hint (exit 2)", async () => {
    const err = await configError({ type: "foo" });
    expect(err.message).toBe('unknown store type "foo" in objectStore.type: use local, swift, s3, a path to a module, or a package name');
    expect(err.exitCode).toBe(2);
  });

  it("rejects a missing module file", async () => {
    expect((await configError({ type: "./stores/nope.mjs" })).message).toContain("no store module");
  });

  it("rejects a module whose default export is not a function", async () => {
    expect((await configError({ type: "./stores/not-a-factory.mjs" })).message).toContain("default export");
  });

  it("rejects a factory whose store lacks required methods", async () => {
    expect((await configError({ type: "./stores/half-a-store.mjs" })).message).toContain("missing put, get");
  });
});
