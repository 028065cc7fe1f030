// pantri's own demo configuration: the built-in local store, so `npm run demo` needs no server.
// `defineConfig` only adds types; a config works without importing it (or without pantri
// installed in the repo).
import { defineConfig } from "pantri";

export default defineConfig({
  objectStore: { type: "local", path: ".pantri/store" },
  destSync: "dest_sync",
  ignorePatterns: ["._*", ".__*", ".TemporaryItems*", ".DS_Store", "*.pyc"],
  shelves: {
    demo: { keepFiles: ["local-notes/**"] },
  },
});
