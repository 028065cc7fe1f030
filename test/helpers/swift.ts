/**
 * The real Swift (and its s3api) that scripts/swift-server.sh runs for tests. Suites that need it
 * are declared with `describeSwift`: without a server they are skipped on a developer's machine,
 * and fail in CI, where PANTRI_REQUIRE_SWIFT=1 says the server must be there.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { request } from "undici";
import { describe, it } from "vitest";

export interface SwiftEndpoints {
  proxyUrl: string;
  authUrl: string;
  /** Admin of account `test` (test:tester). */
  user: string;
  key: string;
  /** A non-admin user of another account (test2:tester2). */
  user2: string;
  key2: string;
  s3Endpoint: string;
  s3AccessKey: string;
  s3SecretKey: string;
  region: string;
}

const KEYS = ["proxyUrl", "authUrl", "user", "key", "user2", "key2", "s3Endpoint", "s3AccessKey", "s3SecretKey", "region"] as const;

export const swiftRequired = process.env.PANTRI_REQUIRE_SWIFT === "1";

export const NOT_RUNNING = "Swift test server not running: start it with scripts/swift-server.sh start";

/** These keys of the endpoints file `scripts/swift-server.sh start` writes, or null when it lacks any. */
function readEndpoints<K extends string>(keys: readonly K[]): Record<K, string> | null {
  const file = process.env.PANTRI_SWIFT_ENDPOINTS ?? "/tmp/pantri-swift/endpoints.json";
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return null;
  }
  const o = data as Record<string, unknown> | null;
  if (!o || typeof o !== "object" || !keys.every((k) => typeof o[k] === "string")) return null;
  return Object.fromEntries(keys.map((k) => [k, o[k]])) as Record<K, string>;
}

/**
 * A describe block for tests against a server of scripts/swift-server.sh; `fn` gets its
 * endpoints. Without it: with PANTRI_REQUIRE_SWIFT=1 (CI) a test fails saying how to start it;
 * otherwise the block is skipped.
 */
function describeServer<E>(name: string, endpoints: E | null, absent: E, what: string, howToStart: string, fn: (endpoints: E) => void): void {
  if (endpoints) {
    describe(name, () => fn(endpoints));
  } else if (swiftRequired) {
    describe(name, () => {
      it(`needs the ${what}`, () => {
        throw new Error(howToStart);
      });
    });
  } else {
    describe.skipIf(true)(name, () => fn(absent));
  }
}

/** The endpoints file written by `scripts/swift-server.sh start`, or null when there is none. */
export function swiftEndpoints(): SwiftEndpoints | null {
  return readEndpoints(KEYS) as SwiftEndpoints | null;
}

/** Stands in for the endpoints while a skipped suite is collected (its tests never run). */
const ABSENT: SwiftEndpoints = Object.fromEntries(KEYS.map((k) => [k, ""])) as unknown as SwiftEndpoints;

/** A describe block for tests against the real Swift (see describeServer). */
export function describeSwift(name: string, fn: (endpoints: SwiftEndpoints) => void): void {
  describeServer(name, swiftEndpoints(), ABSENT, "Swift test server", NOT_RUNNING, fn);
}

/**
 * A container name no other run uses, also valid as an S3 bucket name: lowercase letters,
 * digits and `-`, starting and ending with a letter or digit, 3..63 characters, no `_`.
 */
export function uniqueContainer(prefix = "pantri"): string {
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 40) || "pantri";
  return `${clean}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

/**
 * The Keystone that `scripts/swift-server.sh start` runs when Keystone is installed
 * (`install-keystone`), and the second Swift proxy that trusts it (authtoken + keystoneauth).
 */
export interface KeystoneEndpoints {
  /** The identity endpoint, ending in /v3. */
  keystoneUrl: string;
  /** The region of the working object-store endpoints (public and internal). */
  keystoneRegion: string;
  /** A region whose only (public) object-store endpoint is unreachable. */
  keystoneRegion2: string;
  /** swiftuser: role member on swiftproject, both in domain keystoneUserDomain. */
  keystoneUser: string;
  keystonePassword: string;
  keystoneUserId: string;
  keystoneProject: string;
  keystoneProjectId: string;
  keystoneUserDomain: string;
  keystoneUserDomainId: string;
  keystoneProjectDomain: string;
  keystoneProjectDomainId: string;
  /** swiftreader: role reader only, which keystoneauth gives no Swift rights. */
  keystoneReader: string;
  keystoneReaderPassword: string;
  /** An application credential of swiftuser. */
  keystoneAppCredId: string;
  keystoneAppCredSecret: string;
  /** swiftproject's account on the Keystone proxy: the catalog's RegionOne public URL. */
  keystoneSwiftUrl: string;
  keystoneProxyUrl: string;
}

const KEYSTONE_KEYS = [
  "keystoneUrl",
  "keystoneRegion",
  "keystoneRegion2",
  "keystoneUser",
  "keystonePassword",
  "keystoneUserId",
  "keystoneProject",
  "keystoneProjectId",
  "keystoneUserDomain",
  "keystoneUserDomainId",
  "keystoneProjectDomain",
  "keystoneProjectDomainId",
  "keystoneReader",
  "keystoneReaderPassword",
  "keystoneAppCredId",
  "keystoneAppCredSecret",
  "keystoneSwiftUrl",
  "keystoneProxyUrl",
] as const;

export const KEYSTONE_NOT_RUNNING =
  "Keystone test server not running: run scripts/swift-server.sh install-keystone, then scripts/swift-server.sh start --with-keystone";

/** The Keystone keys of the endpoints file, or null when it has none (Swift started without Keystone). */
export function keystoneEndpoints(): KeystoneEndpoints | null {
  return readEndpoints(KEYSTONE_KEYS) as KeystoneEndpoints | null;
}

const KEYSTONE_ABSENT: KeystoneEndpoints = Object.fromEntries(KEYSTONE_KEYS.map((k) => [k, ""])) as unknown as KeystoneEndpoints;

/** A describe block for tests against the real Keystone and its Swift proxy (see describeServer). */
export function describeKeystone(name: string, fn: (endpoints: KeystoneEndpoints) => void): void {
  describeServer(name, keystoneEndpoints(), KEYSTONE_ABSENT, "Keystone test server", KEYSTONE_NOT_RUNNING, fn);
}

/** The OS_* variables of swiftuser's password login by names, as an openrc file sets them. */
export function keystoneOsEnv(ep: KeystoneEndpoints): Record<string, string> {
  return {
    OS_AUTH_URL: ep.keystoneUrl,
    OS_IDENTITY_API_VERSION: "3",
    OS_USERNAME: ep.keystoneUser,
    OS_PASSWORD: ep.keystonePassword,
    OS_PROJECT_NAME: ep.keystoneProject,
    OS_USER_DOMAIN_NAME: ep.keystoneUserDomain,
    OS_PROJECT_DOMAIN_NAME: ep.keystoneProjectDomain,
    OS_REGION_NAME: ep.keystoneRegion,
  };
}

/** swift store options for swiftuser's password login by names, as a clouds.yaml would give them. */
export function keystoneStoreOptions(ep: KeystoneEndpoints): Record<string, string> {
  return {
    authUrl: ep.keystoneUrl,
    user: ep.keystoneUser,
    key: ep.keystonePassword,
    project: ep.keystoneProject,
    userDomain: ep.keystoneUserDomain,
    projectDomain: ep.keystoneProjectDomain,
    region: ep.keystoneRegion,
  };
}

/**
 * Empties and deletes swiftproject's containers (and their `_segments` twins) over plain HTTP with
 * one application-credential token: the swift CLI costs seconds per call.
 */
export async function removeKeystoneContainers(ep: KeystoneEndpoints, containers: readonly string[]): Promise<void> {
  const login = await request(`${ep.keystoneUrl}/auth/tokens`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      auth: { identity: { methods: ["application_credential"], application_credential: { id: ep.keystoneAppCredId, secret: ep.keystoneAppCredSecret } } },
    }),
  });
  await login.body.dump();
  const token = String(login.headers["x-subject-token"]);
  const call = async (method: "GET" | "DELETE", path: string): Promise<string> => {
    const res = await request(`${ep.keystoneSwiftUrl}/${path}`, { method, headers: { "x-auth-token": token } });
    return res.body.text();
  };
  for (const c of containers.flatMap((name) => [name, `${name}_segments`])) {
    let objects: { name: string }[] = [];
    try {
      objects = JSON.parse(await call("GET", `${encodeURIComponent(c)}?format=json`)) as { name: string }[];
    } catch {
      objects = []; // a 404 page: no such container
    }
    // A plain DELETE of a manifest keeps its segments; they go with their own container here.
    await Promise.all(objects.map((o) => call("DELETE", `${encodeURIComponent(c)}/${o.name.split("/").map(encodeURIComponent).join("/")}`)));
    await call("DELETE", encodeURIComponent(c));
  }
}
