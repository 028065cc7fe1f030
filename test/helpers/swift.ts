/**
 * The real Swift (and its s3api) that scripts/swift-server.sh runs for tests. Suites that need it
 * are declared with `describeSwift`: without a server they are skipped on a developer's machine,
 * and fail in CI, where PANTRI_REQUIRE_SWIFT=1 says the server must be there.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
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

/** The endpoints file written by `scripts/swift-server.sh start`, or null when there is none. */
export function swiftEndpoints(): SwiftEndpoints | null {
  const file = process.env.PANTRI_SWIFT_ENDPOINTS ?? "/tmp/pantri-swift/endpoints.json";
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return null;
  }
  const o = data as Record<string, unknown> | null;
  if (!o || typeof o !== "object" || !KEYS.every((k) => typeof o[k] === "string")) return null;
  return Object.fromEntries(KEYS.map((k) => [k, o[k]])) as unknown as SwiftEndpoints;
}

/** Stands in for the endpoints while a skipped suite is collected (its tests never run). */
const ABSENT: SwiftEndpoints = Object.fromEntries(KEYS.map((k) => [k, ""])) as unknown as SwiftEndpoints;

/**
 * A describe block for tests against the real Swift. `fn` gets the endpoints.
 * No server: with PANTRI_REQUIRE_SWIFT=1 a test fails saying how to start it; otherwise skipped.
 */
export function describeSwift(name: string, fn: (endpoints: SwiftEndpoints) => void): void {
  const endpoints = swiftEndpoints();
  if (endpoints) {
    describe(name, () => fn(endpoints));
  } else if (swiftRequired) {
    describe(name, () => {
      it("needs the Swift test server", () => {
        throw new Error(NOT_RUNNING);
      });
    });
  } else {
    describe.skipIf(true)(name, () => fn(ABSENT));
  }
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
