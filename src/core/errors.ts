/**
 * pantri's error family. Core code throws these; only src/cli.ts turns them into exit codes
 * (usage/config -> 2, everything else -> 1). Messages name the file, object or setting at
 * fault and say what to do; they must never contain a secret.
 */
export class PantriError extends Error {
  /** Process exit code this error maps to when it reaches the CLI. */
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad flag, bad argument, path outside shelves/: exit 2. */
export class UsageError extends PantriError {
  override readonly exitCode = 2;
}

/** Invalid or unreadable configuration, unknown store type: exit 2. */
export class ConfigError extends PantriError {
  override readonly exitCode = 2;
  /** One readable line per problem, each naming its key. */
  readonly problems: string[];
  constructor(message: string, problems: string[] = [], options?: { cause?: unknown }) {
    super(problems.length ? `${message}\n  - ${problems.join("\n  - ")}` : message, options);
    this.problems = problems;
  }
}

/** A pointer file that is not valid or not safe: fails that item (exit 1). */
export class PointerError extends PantriError {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super(`${file}: ${message}`, options);
    this.file = file;
  }
}

/** A git command failed. */
export class GitError extends PantriError {}

/** Content did not match what its pointer promised. Never retried into success silently. */
export class IntegrityError extends PantriError {}

/** Another pantri run holds the lock. */
export class LockError extends PantriError {}

/**
 * The run was stopped on purpose (SIGINT/SIGTERM: the command's AbortSignal fired). src/cli.ts
 * exits 128 + the signal's number for it.
 */
export class InterruptedError extends PantriError {}

/** Stops a command at a safe point once its AbortSignal fired: before the next phase begins. */
export function throwIfInterrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new InterruptedError("interrupted: stopped before finishing; what was finished is kept, run the same command again to complete it");
  }
}

export interface StoreErrorOptions {
  /** Which store, e.g. `swift container "pkgs"`; never a URL with credentials. */
  store: string;
  key?: string;
  /** HTTP status, when the store speaks HTTP. */
  status?: number;
  /** Milliseconds the server asked us to wait (Retry-After). */
  retryAfterMs?: number;
  /** Overrides the status-based retry decision (see core/retry.ts). */
  retryable?: boolean;
  notFound?: boolean;
  cause?: unknown;
}

/** An object store request failed. Carries what the retry policy needs to decide. */
export class StoreError extends PantriError {
  readonly store: string;
  readonly key: string | undefined;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly retryable: boolean | undefined;
  readonly notFound: boolean;
  constructor(message: string, opts: StoreErrorOptions) {
    const where = opts.key !== undefined ? `${opts.store}, object ${opts.key}` : opts.store;
    super(`${where}: ${message}`, { cause: opts.cause });
    this.store = opts.store;
    this.key = opts.key;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
    this.retryable = opts.retryable;
    this.notFound = opts.notFound ?? opts.status === 404;
  }
}

/** The message of any thrown value, for reports. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
