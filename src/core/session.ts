import { realpath } from "node:fs/promises";
import { resolve } from "node:path";
import { loadConfig } from "../config/load.js";
import { ConfigError } from "./errors.js";
import { createStore } from "../objectstores/index.js";
import type { ObjectStore } from "../objectstores/types.js";
import { debug, silentReporter, type Reporter } from "./events.js";
import { findRepoRoot, Git } from "./git.js";
import { cacheDir } from "./state.js";
import type { ObjectStoreConfig, PantriConfig, ShelfSettings } from "./types.js";

export interface SessionOptions {
  cwd?: string;
  /** --repo */
  repo?: string;
  /** --config */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Settings given as command-line flags (highest precedence). */
  overrides?: Partial<Pick<ShelfSettings, "destSync" | "concurrency" | "checksum" | "jsonOutputDir" | "passwordFile">>;
  /** -p: read Swift credentials from the password file. */
  usePasswordFile?: boolean;
  report?: Reporter;
}

export interface ShelfStore {
  store: ObjectStore;
  /** objectStore.keyPrefix, applied by core to every key. */
  prefix: string;
}

/** One command's view of a repo: root, git, config and the stores, opened lazily. */
export class Session {
  private readonly stores = new Map<string, Promise<ShelfStore>>();

  private constructor(
    readonly root: string,
    readonly git: Git,
    readonly config: PantriConfig,
    readonly report: Reporter,
    readonly env: NodeJS.ProcessEnv,
    private readonly opts: SessionOptions,
  ) {}

  static async open(opts: SessionOptions = {}): Promise<Session> {
    const cwd = opts.cwd ?? process.cwd();
    const env = opts.env ?? process.env;
    const root = await findRepoRoot(opts.repo ? resolve(cwd, opts.repo) : cwd);
    const config = await loadConfig({ repoRoot: root, configFile: opts.configFile, env, cwd, overrides: opts.overrides });
    const session = new Session(root, new Git(root), config, opts.report ?? silentReporter, env, opts);
    // Open every configured store now: an unknown store type or bad store options are a
    // configuration error (exit 2) whether or not this run has anything to transfer. Adapters
    // load their SDKs and authenticate only on first use, so this costs no request.
    await Promise.all([session.baseStore(), ...config.configuredShelves.map((s) => session.storeFor(s))]);
    return session;
  }

  settings(shelf: string): ShelfSettings {
    return this.config.forShelf(shelf);
  }

  /** The store a shelf uses; shelves with the same store config share one instance. */
  storeFor(shelf: string): Promise<ShelfStore> {
    return this.storeOf(this.settings(shelf));
  }

  /** The store of the top-level config (no shelf section): what `pantri auth` talks to. */
  baseStore(): Promise<ShelfStore> {
    return this.storeOf(this.config.base);
  }

  private storeOf(settings: ShelfSettings): Promise<ShelfStore> {
    const cfg = settings.objectStore;
    const id = JSON.stringify(cfg);
    let s = this.stores.get(id);
    if (!s) {
      s = this.openStore(cfg, settings);
      this.stores.set(id, s);
    }
    return s;
  }

  private async openStore(cfg: ObjectStoreConfig, settings: ShelfSettings): Promise<ShelfStore> {
    const passwordFile = this.opts.usePasswordFile ? await (await import("./password-file.js")).readPasswordFile(settings.passwordFile) : undefined;
    // Stores size their connection pools from the transfer concurrency.
    const store = await createStore({ ...cfg, concurrency: cfg.concurrency ?? settings.concurrency }, {
      repoRoot: this.root,
      cacheDir: cacheDir(this.env),
      env: this.env,
      log: (message) => debug(this.report, message),
      passwordFile,
    }).catch((err: unknown) => {
      // A store's options come from the config file (and the environment): name the file.
      const file = this.config.configFile;
      if (err instanceof ConfigError && file && !err.message.includes(file)) {
        throw new ConfigError(`${file}: ${err.message.split("\n")[0] ?? ""}`, err.problems, { cause: err });
      }
      throw err;
    });
    const prefix = typeof cfg.keyPrefix === "string" ? cfg.keyPrefix : "";
    return { store, prefix };
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled(this.stores.values());
    for (const s of all) if (s.status === "fulfilled") await s.value.store.close?.();
  }
}

/** A dest folder's identity for records and locks: its real path when it exists. */
export async function canonicalDir(dir: string): Promise<string> {
  try {
    return await realpath(dir);
  } catch {
    return resolve(dir);
  }
}
