import { mkdir, mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { runScenarios } from "./scenarios.js";

/** The local store keeps object K as the plain file <path>/K: the hooks just write and remove files. */
const fileOf = (key: string, objectStore: Record<string, unknown>) => join(String(objectStore.path), key);

runScenarios(
  "local store",
  async () => {
    // Outside every repo, so the packager and the build hosts share it.
    const path = await realpath(await mkdtemp(join(tmpdir(), "pantri-local-store-")));
    return { objectStore: { type: "local", path }, cleanup: () => rm(path, { recursive: true, force: true }) };
  },
  {
    async corrupt(key, data, objectStore) {
      await writeFile(fileOf(key, objectStore), data);
    },
    async put(key, data, objectStore) {
      const file = fileOf(key, objectStore);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, data);
    },
    async remove(key, objectStore) {
      await rm(fileOf(key, objectStore));
    },
  },
);
