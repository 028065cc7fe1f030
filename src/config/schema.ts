import { basename, extname } from "node:path";
import type { PantriUserConfig, ShelfUserConfig } from "./define.js";

/**
 * Validation of a config file's contents into errors-as-data: every problem found, each one a
 * readable line naming its key path, and a normalized config (camelCase keys, legacy snake_case
 * aliases mapped, `authVersion` as a number). Pure: no file system, no environment.
 */

export interface ValidateConfigResult {
  /** The valid part of the config, normalized. Meaningful only when `problems` is empty. */
  config: PantriUserConfig;
  problems: string[];
}

/** Checks one value; pushes problems naming `at` and returns the normalized value, or undefined. */
type Check = (value: unknown, at: string, problems: string[]) => unknown;

interface Field {
  /** The legacy snake_case spelling, accepted as an alias. */
  alias?: string;
  check: Check;
}

interface Spec {
  fields: ReadonlyMap<string, Field>;
  aliases: ReadonlyMap<string, string>;
}

function spec(fields: Record<string, Field>): Spec {
  const map = new Map(Object.entries(fields));
  const aliases = new Map<string, string>();
  for (const [name, field] of map) if (field.alias !== undefined) aliases.set(field.alias, name);
  return { fields: map, aliases };
}

/** A plain object (also one from another realm), not an array, class instance or null. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || Object.getPrototypeOf(proto) === null;
}

/**
 * How a value reads in a problem line. Secret settings are described by type only, so a key or
 * token given in the wrong place never reaches a terminal or a log.
 */
export function describeValue(value: unknown, secret = false): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "string":
      if (value === "") return "an empty string";
      if (secret) return "a string";
      return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
    case "number":
    case "boolean":
    case "bigint":
      return secret ? `a ${typeof value}` : String(value);
    case "undefined":
      return "undefined";
    case "function":
      return "a function";
    case "symbol":
      return "a symbol";
    default:
      return "an object";
  }
}

function fail(problems: string[], at: string, expected: string, value: unknown, secret = false): undefined {
  problems.push(`${at}: ${expected}, got ${describeValue(value, secret)}`);
  return undefined;
}

/** `a.b`, or `a["odd key"]` when the key would not read well dotted. */
export function keyPath(path: string, key: string): string {
  if (path === "") return key;
  return /^[A-Za-z_$][\w$-]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

// ---- checks ---------------------------------------------------------------------------------

const nonEmptyString =
  (secret = false): Check =>
  (value, at, problems) =>
    typeof value === "string" && value !== "" ? value : fail(problems, at, "must be a non-empty string", value, secret);

const anyString: Check = (value, at, problems) =>
  typeof value === "string" ? value : fail(problems, at, "must be a string", value);

const boolean: Check = (value, at, problems) =>
  typeof value === "boolean" ? value : fail(problems, at, "must be true or false", value);

const positiveInteger: Check = (value, at, problems) =>
  typeof value === "number" && Number.isSafeInteger(value) && value > 0
    ? value
    : fail(problems, at, "must be a positive integer", value);

/** Why `value` is not an http(s) URL, or undefined when it is one. Never echoes the value. */
export function httpUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "must be an http(s) URL, got a string that is not a URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `must be an http(s) URL, got a ${url.protocol} URL`;
  return undefined;
}

const httpUrl: Check = (value, at, problems) => {
  if (typeof value !== "string" || value === "") return fail(problems, at, "must be an http(s) URL", value);
  // The value itself is not echoed: URLs sometimes carry credentials.
  const problem = httpUrlProblem(value);
  if (problem === undefined) return value;
  problems.push(`${at}: ${problem}`);
  return undefined;
};

const patterns: Check = (value, at, problems) => {
  if (!Array.isArray(value)) return fail(problems, at, "must be a list of glob patterns", value);
  const out: string[] = [];
  let ok = true;
  value.forEach((item: unknown, i) => {
    if (typeof item === "string" && item !== "") {
      out.push(item);
    } else {
      fail(problems, `${at}[${i}]`, "must be a non-empty string (a glob pattern)", item);
      ok = false;
    }
  });
  return ok ? out : undefined;
};

const authVersion: Check = (value, at, problems) => {
  if (value === 1 || value === "1") return 1;
  if (value === 3 || value === "3") return 3;
  return fail(problems, at, "must be 1 (tempauth, ST_AUTH) or 3 (Keystone, OS_AUTH_URL)", value);
};

/** Which catalog URL of the object-store service; python-swiftclient's `publicURL` spellings too. */
const keystoneInterface: Check = (value, at, problems) => {
  const bare = typeof value === "string" ? value.replace(/URL$/, "") : value;
  if (bare === "public" || bare === "internal" || bare === "admin") return bare;
  return fail(problems, at, 'must be "public", "internal" or "admin" (the Keystone catalog interface)', value);
};

const containerName: Check = (value, at, problems) => {
  if (typeof value !== "string" || value === "") return fail(problems, at, "must be a non-empty string", value);
  if (value.includes("/")) return fail(problems, at, "must not contain `/` (a Swift container name)", value);
  return value;
};

const MIN_S3_PART_SIZE = 5 * 1024 * 1024;

const s3PartSize: Check = (value, at, problems) =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= MIN_S3_PART_SIZE
    ? value
    : fail(problems, at, `must be an integer of at least ${MIN_S3_PART_SIZE} (5 MiB, S3's smallest part)`, value);

// ---- object stores --------------------------------------------------------------------------

const keepType: Field = { check: (value) => value };

/** Options of the built-in stores; any other `type` is a custom store whose options pass through. */
const STORE_SPECS: ReadonlyMap<string, Spec> = new Map([
  ["local", spec({ type: keepType, path: { check: nonEmptyString() } })],
  [
    "swift",
    spec({
      type: keepType,
      authUrl: { alias: "auth_url", check: httpUrl },
      authVersion: { alias: "auth_version", check: authVersion },
      user: { check: nonEmptyString() },
      key: { check: nonEmptyString(true) },
      project: { check: nonEmptyString() },
      projectId: { alias: "project_id", check: nonEmptyString() },
      userId: { alias: "user_id", check: nonEmptyString() },
      userDomain: { alias: "user_domain", check: nonEmptyString() },
      userDomainId: { alias: "user_domain_id", check: nonEmptyString() },
      projectDomain: { alias: "project_domain", check: nonEmptyString() },
      projectDomainId: { alias: "project_domain_id", check: nonEmptyString() },
      region: { check: nonEmptyString() },
      interface: { alias: "endpoint_type", check: keystoneInterface },
      storageUrl: { alias: "storage_url", check: httpUrl },
      token: { check: nonEmptyString(true) },
      applicationCredentialId: { alias: "application_credential_id", check: nonEmptyString() },
      applicationCredentialSecret: { alias: "application_credential_secret", check: nonEmptyString(true) },
      container: { check: containerName },
      segmentContainer: { alias: "segment_container", check: containerName },
      segmentSize: { alias: "segment_size", check: positiveInteger },
      keyPrefix: { alias: "key_prefix", check: anyString },
      timeoutMs: { alias: "timeout_ms", check: positiveInteger },
      listPageSize: { alias: "list_page_size", check: positiveInteger },
      stagedUploads: { alias: "staged_uploads", check: boolean },
      stageMinBytes: { alias: "stage_min_bytes", check: positiveInteger },
      bulkUpload: { alias: "bulk_upload", check: boolean },
      concurrency: { check: positiveInteger },
    }),
  ],
  [
    "s3",
    spec({
      type: keepType,
      bucket: { check: nonEmptyString() },
      keyPrefix: { alias: "key_prefix", check: anyString },
      region: { check: nonEmptyString() },
      endpoint: { check: httpUrl },
      forcePathStyle: { alias: "force_path_style", check: boolean },
      partSize: { alias: "part_size", check: s3PartSize },
      queueSize: { alias: "queue_size", check: positiveInteger },
      listPageSize: { alias: "list_page_size", check: positiveInteger },
      concurrency: { check: positiveInteger },
    }),
  ],
]);

/** The built-in store types. */
export const BUILTIN_STORE_TYPES: readonly string[] = [...STORE_SPECS.keys()];

const STORE_TYPE_HINT = '"local", "swift", "s3", or the module specifier or path of a custom store';

const objectStore: Check = (value, at, problems) => {
  if (!isPlainObject(value)) return fail(problems, at, 'must be an object such as { type: "local" }', value);
  const type = value.type;
  if (type === undefined) {
    problems.push(`${keyPath(at, "type")}: is required (${STORE_TYPE_HINT})`);
    return undefined;
  }
  if (typeof type !== "string" || type.trim() === "") {
    return fail(problems, keyPath(at, "type"), `must be a non-empty string (${STORE_TYPE_HINT})`, type);
  }
  const storeSpec = STORE_SPECS.get(type);
  if (storeSpec === undefined) {
    const builtin = BUILTIN_STORE_TYPES.find((t) => t === type.toLowerCase());
    if (builtin !== undefined) {
      problems.push(`${keyPath(at, "type")}: unknown store type ${JSON.stringify(type)} (did you mean ${builtin}?)`);
      return undefined;
    }
    // A custom store validates its own options; copy so later merging never touches the user's object.
    return { ...value };
  }
  return readFields(value, storeSpec, at, problems, `a ${type} store`);
};

// ---- settings -------------------------------------------------------------------------------

const SHELF_FIELDS: Record<string, Field> = {
  objectStore: { alias: "object_store", check: objectStore },
  destSync: { alias: "dest_sync", check: nonEmptyString() },
  ignorePatterns: { alias: "ignore_patterns", check: patterns },
  binaryOverrides: { alias: "binary_overrides", check: patterns },
  keepFiles: { alias: "keep_files", check: patterns },
  checksum: { check: boolean },
  concurrency: { check: positiveInteger },
  jsonOutputDir: { alias: "json_output_dir", check: nonEmptyString() },
  passwordFile: { alias: "password_file", check: nonEmptyString() },
};

const SHELF_SPEC = spec(SHELF_FIELDS);

/** A shelf is a folder directly under `shelves/`. */
function isShelfName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !/[/\\\0]/.test(name);
}

const shelves: Check = (value, at, problems) => {
  if (!isPlainObject(value)) return fail(problems, at, "must be an object of per-shelf settings keyed by shelf name", value);
  const entries: [string, Record<string, unknown>][] = [];
  for (const [name, section] of Object.entries(value)) {
    const here = keyPath(at, name);
    if (!isShelfName(name)) {
      problems.push(`${at}: ${JSON.stringify(name)} is not a shelf name (a folder directly under shelves/)`);
      continue;
    }
    if (section === undefined) continue;
    if (!isPlainObject(section)) {
      fail(problems, here, "must be an object of settings for that shelf", section);
      continue;
    }
    const { shelves: nested, ...settings } = section;
    if (nested !== undefined) problems.push(`${here}: a shelf section cannot have its own \`shelves\``);
    entries.push([name, readFields(settings, SHELF_SPEC, here, problems)]);
  }
  // fromEntries defines properties, so a shelf named "__proto__" cannot touch the prototype.
  return Object.fromEntries(entries);
};

const ROOT_SPEC = spec({
  ...SHELF_FIELDS,
  shelves: { check: shelves },
  // Editors' JSON schema hint in pantri.config.json: allowed, ignored.
  $schema: { check: () => undefined },
});

// ---- reading objects against a spec ---------------------------------------------------------

function readFields(
  obj: Record<string, unknown>,
  fieldSpec: Spec,
  path: string,
  problems: string[],
  what?: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    const name = fieldSpec.fields.has(key) ? key : fieldSpec.aliases.get(key);
    const field = name === undefined ? undefined : fieldSpec.fields.get(name);
    if (name === undefined || field === undefined) {
      problems.push(unknownKey(path, key, fieldSpec, what));
      continue;
    }
    if (name !== key && Object.hasOwn(obj, name)) {
      problems.push(`${keyPath(path, name)}: given twice, as \`${name}\` and as \`${key}\`: keep only \`${name}\``);
      continue;
    }
    // `undefined` means "not set" (a TS config may compute optional values).
    if (value === undefined) continue;
    const checked = field.check(value, keyPath(path, key), problems);
    if (checked !== undefined) out[name] = checked;
  }
  return out;
}

function unknownKey(path: string, key: string, fieldSpec: Spec, what: string | undefined): string {
  const where = path === "" ? "" : `${path}: `;
  const kind = what === undefined ? "" : ` for ${what}`;
  const candidates = [...fieldSpec.fields.keys()].filter((name) => name !== "type" && name !== "$schema");
  const suggestion = suggestKey(key, candidates);
  if (suggestion !== undefined) return `${where}unknown key \`${key}\`${kind} (did you mean ${suggestion}?)`;
  // A store option written next to objectStore instead of inside it, or one of another store.
  const owners = BUILTIN_STORE_TYPES.filter((type) => {
    const s = STORE_SPECS.get(type);
    return s !== undefined && (s.fields.has(key) || s.aliases.has(key)) && key !== "type";
  });
  if (owners.length > 0) {
    const hint = what === undefined ? "it is an objectStore option" : `it is an option of the ${owners.join(" and ")} store`;
    return `${where}unknown key \`${key}\`${kind} (${hint})`;
  }
  return `${where}unknown key \`${key}\`${kind}`;
}

/** The candidate a mistyped key most likely meant, if any is close enough. */
export function suggestKey(key: string, candidates: Iterable<string>): string | undefined {
  const normalize = (s: string): string => s.toLowerCase().replace(/[-_\s]/g, "");
  const wanted = normalize(key);
  if (wanted === "") return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(wanted, normalize(candidate));
    if (distance === 0) return candidate;
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(wanted.length / 3)));
  return bestDistance <= limit ? best : undefined;
}

/** Levenshtein distance where swapping two neighbours costs 1 (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, at(i - 2, j - 2) + 1);
      d[i * cols + j] = value;
    }
  }
  return at(rows - 1, cols - 1);
}

// ---- entry points ---------------------------------------------------------------------------

/**
 * Validates the contents of a config file (its default export, or its JSON document).
 * `file` only names the file in the message about a root that is not an object.
 */
export function validateConfig(raw: unknown, file: string): ValidateConfigResult {
  const problems: string[] = [];
  if (!isPlainObject(raw)) {
    const what = extname(file) === ".json" ? "must hold a JSON object" : "the default export must be a plain object";
    problems.push(`${basename(file)}: ${what} of settings, got ${describeValue(raw)}`);
    return { config: {}, problems };
  }
  // The checks above produce exactly the shapes PantriUserConfig describes.
  const config = readFields(raw, ROOT_SPEC, "", problems) as PantriUserConfig;
  return { config, problems };
}

/**
 * Validates shelf-level settings that did not come from a file (command-line flags). Problems
 * name the bare key; the caller says where the values came from.
 */
export function validateShelfSettings(raw: Record<string, unknown>): { config: ShelfUserConfig; problems: string[] } {
  const problems: string[] = [];
  const config = readFields(raw, SHELF_SPEC, "", problems) as ShelfUserConfig;
  return { config, problems };
}
