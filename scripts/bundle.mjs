#!/usr/bin/env node
/**
 * Bundles the CLI (src/cli.ts) into dist/cli.js, with everything a command loads lazily in
 * dist/chunks/. Node 20 compiles every ES module file on each start and has no compile cache:
 * `pantri --help` spent about a third of its time resolving and loading ~120 small files (yargs
 * and its helpers above all). One file on the start-up path took 50 ms off every command.
 *
 * The library entry (dist/index.js) stays tsc's per-file output. The AWS SDK (optional), jiti
 * (only for a .ts config) and undici stay outside the bundle: they are imported on first use.
 */
import { readFile } from "node:fs/promises";
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * yargs looks for its app's package.json from `mainFilename`: the folder above its own
 * node_modules/. Bundled, its path has no node_modules, so it fell back to the current folder and
 * read every folder from there up to / (one readdir each) on every start, even with the version
 * given. Here the start is pantri's own folder (dist/..), which has the package.json.
 */
const yargsFromPantri = {
  name: "yargs-main-filename",
  setup(b) {
    b.onLoad({ filter: /[\\/]yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/ }, async (args) => {
      const text = await readFile(args.path, "utf8");
      const line = /^const mainFilename = .*$/m;
      if (!line.test(text)) throw new Error(`${args.path}: no mainFilename line to point at pantri's folder (yargs changed?)`);
      return { contents: text.replace(line, 'const mainFilename = fileURLToPath(new URL("../", import.meta.url));'), loader: "js" };
    });
  },
};

/**
 * After every command handler, yargs renders the whole help text ahead of time (usage.js
 * `cacheHelpMessage`), in case an async failure later wants to show it: cliui measuring every
 * line's width cost ~25 ms of each command's start. pantri never shows help after a handler
 * ran (its .fail() rethrows handler errors; src/cli.ts prints its own hint), so the rendering is
 * skipped; `--help` itself renders as before.
 */
const yargsNoEagerHelp = {
  name: "yargs-no-eager-help",
  setup(b) {
    b.onLoad({ filter: /[\\/]yargs[\\/]build[\\/]lib[\\/]usage\.js$/ }, async (args) => {
      const text = await readFile(args.path, "utf8");
      const eager = "cachedHelpMessage = this.help();";
      if (!text.includes(eager)) throw new Error(`${args.path}: no eager help rendering to skip (yargs changed?)`);
      return { contents: text.replace(eager, "/* pantri: rendered only when asked (scripts/bundle.mjs) */"), loader: "js" };
    });
  },
};

await build({
  absWorkingDir: root,
  entryPoints: { cli: "src/cli.ts" },
  outdir: "dist",
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: true,
  external: ["@aws-sdk/*", "jiti", "undici"],
  // CommonJS dependencies (simple-git, fast-glob) call require() for Node's own modules.
  banner: { js: 'import { createRequire as __pantriCreateRequire } from "node:module"; const require = __pantriCreateRequire(import.meta.url);' },
  plugins: [yargsFromPantri, yargsNoEagerHelp],
  logLevel: "warning",
});
