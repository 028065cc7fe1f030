/**
 * Keystone v3 login for the Swift store: one more SwiftAuthMethod (./swift-client.ts).
 *
 * `POST <authUrl>/v3/auth/tokens` with a password (user by name + domain, or by id; project by
 * name + domain, or by id) or an application credential (id + secret, never scoped: the
 * credential carries its project). The token is the `X-Subject-Token` response header; the
 * storage URL is the `object-store` endpoint of the token's catalog for the configured region
 * and interface; `token.expires_at` becomes the session's expiry, which the client honours.
 *
 * Domains default to the id `default`, as python-openstackclient's `--os-default-domain` does:
 * Keystone itself refuses a user or project name without a domain.
 */
import { StoreError } from "../core/errors.js";
import { parseRetryAfter } from "../core/retry.js";
import { header, safeUrl, type AuthContext, type AuthHttpResponse, type SwiftAuthMethod, type SwiftSession } from "./swift-client.js";

export const KEYSTONE_INTERFACES = ["public", "internal", "admin"] as const;
export type KeystoneInterface = (typeof KEYSTONE_INTERFACES)[number];

/** A user's password login, scoped to a project. Names need their domain; ids do not. */
export interface KeystonePassword {
  kind: "password";
  user?: string;
  userId?: string;
  userDomain?: string;
  userDomainId?: string;
  password: string;
  project?: string;
  projectId?: string;
  projectDomain?: string;
  projectDomainId?: string;
}

/** An application credential: already bound to its user and project. */
export interface KeystoneApplicationCredential {
  kind: "applicationCredential";
  id: string;
  secret: string;
}

export type KeystoneCredential = KeystonePassword | KeystoneApplicationCredential;

export interface KeystoneV3Options {
  /** The identity endpoint, with or without the trailing `/v3`. */
  authUrl: string;
  credential: KeystoneCredential;
  /** Only endpoints of this region; unset: the first object-store endpoint of the interface. */
  region?: string;
  interface: KeystoneInterface;
}

const DEFAULT_DOMAIN_ID = "default";

const PASSWORD_SETTINGS =
  "objectStore.user/key/project/userDomain/projectDomain, or userId/projectId/userDomainId/projectDomainId (OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME, OS_USER_ID, OS_PROJECT_ID)";
const APP_CREDENTIAL_SETTINGS =
  "objectStore.applicationCredentialId/applicationCredentialSecret (OS_APPLICATION_CREDENTIAL_ID, OS_APPLICATION_CREDENTIAL_SECRET)";

/** `<base>/v3`, whether the configured URL ends in `/v3`, `/v3/` or neither. */
export function keystoneV3Base(authUrl: string): string {
  const u = new URL(authUrl);
  const path = u.pathname.replace(/\/+$/, "");
  u.pathname = /\/v3$/.test(path) ? path : `${path}/v3`;
  u.search = "";
  u.hash = "";
  return u.toString().replace(/\/+$/, "");
}

/** `name`, `name (domain "d")` or `id "x"`: how a user or project reads in messages. */
function describeNamed(name: string | undefined, id: string | undefined, domain: string | undefined, domainId: string | undefined): string {
  if (id !== undefined) return `id "${id}"`;
  const where = domain !== undefined ? `domain "${domain}"` : `domain id "${domainId ?? DEFAULT_DOMAIN_ID}"`;
  return `"${name ?? ""}" (${where})`;
}

function domainRef(name: string | undefined, id: string | undefined): { id: string } | { name: string } {
  if (id !== undefined) return { id };
  if (name !== undefined) return { name };
  return { id: DEFAULT_DOMAIN_ID };
}

interface CatalogEndpoint {
  interface: string;
  region: string;
  url: string;
}

interface CatalogService {
  type: string;
  endpoints: CatalogEndpoint[];
}

interface TokenBody {
  expiresAt?: number;
  catalog: CatalogService[] | null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The parts of Keystone's token document we use; null when it is not one. */
function readToken(text: string): TokenBody | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(doc) || !isRecord(doc.token)) return null;
  const token = doc.token;
  const expires = typeof token.expires_at === "string" ? Date.parse(token.expires_at) : Number.NaN;
  let catalog: CatalogService[] | null = null;
  if (Array.isArray(token.catalog)) {
    catalog = token.catalog.filter(isRecord).map((s) => ({
      type: typeof s.type === "string" ? s.type : "",
      endpoints: (Array.isArray(s.endpoints) ? s.endpoints : []).filter(isRecord).map((e) => ({
        interface: typeof e.interface === "string" ? e.interface : "",
        // region_id is the v3 field; `region` its deprecated twin, still sent by Keystone.
        region: typeof e.region_id === "string" ? e.region_id : typeof e.region === "string" ? e.region : "",
        url: typeof e.url === "string" ? e.url : "",
      })),
    }));
  }
  return { expiresAt: Number.isFinite(expires) ? expires : undefined, catalog };
}

/** Keystone's own one-line explanation from an error document, if any. */
function keystoneMessage(text: string): string {
  try {
    const doc: unknown = JSON.parse(text);
    if (isRecord(doc) && isRecord(doc.error) && typeof doc.error.message === "string") return doc.error.message.slice(0, 300);
  } catch {
    // not JSON: an HTML error page from a proxy, say
  }
  return "";
}

export class KeystoneV3 implements SwiftAuthMethod {
  readonly renewable = true;
  readonly endpoint: string;
  readonly cacheIdentity: { authUrl: string; user: string };
  readonly secrets: readonly string[];
  readonly refusedAdvice: string;
  private readonly tokensUrl: string;
  private readonly who: string;
  private readonly settings: string;

  constructor(private readonly opts: KeystoneV3Options) {
    const base = keystoneV3Base(opts.authUrl);
    this.tokensUrl = `${base}/auth/tokens`;
    this.endpoint = safeUrl(base);
    const c = opts.credential;
    if (c.kind === "password") {
      this.secrets = [c.password];
      this.who = `user ${describeNamed(c.user, c.userId, c.userDomain, c.userDomainId)} in project ${describeNamed(c.project, c.projectId, c.projectDomain, c.projectDomainId)}`;
      this.settings = PASSWORD_SETTINGS;
    } else {
      this.secrets = [c.secret];
      this.who = `application credential "${c.id}"`;
      this.settings = APP_CREDENTIAL_SETTINGS;
    }
    // The cached storage URL depends on region and interface too; no secret is part of the key.
    this.cacheIdentity = {
      authUrl: base,
      user: `keystone-v3 ${this.who} region ${opts.region === undefined ? "(any)" : `"${opts.region}"`} interface ${opts.interface}`,
    };
    this.refusedAdvice = `Swift refused a fresh Keystone token (401) for ${this.who}: check that this Swift trusts the Keystone at ${this.endpoint} and that objectStore.region/interface (OS_REGION_NAME, OS_INTERFACE) pick its endpoint`;
  }

  async login({ http, store, signal }: AuthContext): Promise<SwiftSession> {
    const res = await http({
      url: this.tokensUrl,
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ auth: this.authBody() }),
      signal,
    });
    if (res.status !== 201 && res.status !== 200) throw this.loginError(res, store);
    const token = header(res.headers, "x-subject-token");
    const body = readToken(res.text);
    if (!token || !body) {
      throw new StoreError(
        `login at ${this.endpoint} answered ${res.status} without a token (X-Subject-Token and a token document): is objectStore.authUrl (OS_AUTH_URL) a Keystone v3 identity endpoint?`,
        { store, retryable: false },
      );
    }
    return { storageUrl: this.storageUrlFrom(body.catalog, store), token, expiresAt: body.expiresAt };
  }

  private authBody(): Record<string, unknown> {
    const c = this.opts.credential;
    if (c.kind === "applicationCredential") {
      return { identity: { methods: ["application_credential"], application_credential: { id: c.id, secret: c.secret } } };
    }
    const user = c.userId !== undefined ? { id: c.userId, password: c.password } : { name: c.user, domain: domainRef(c.userDomain, c.userDomainId), password: c.password };
    const project = c.projectId !== undefined ? { id: c.projectId } : { name: c.project, domain: domainRef(c.projectDomain, c.projectDomainId) };
    return { identity: { methods: ["password"], password: { user } }, scope: { project } };
  }

  /** Never echoes the credential: Keystone's messages do not, and the secrets are scrubbed anyway. */
  private loginError(res: AuthHttpResponse, store: string): StoreError {
    let said = keystoneMessage(res.text);
    for (const s of this.secrets) if (s.length >= 4) said = said.split(s).join("***");
    const detail = said ? ` (Keystone: ${said})` : "";
    const status = res.status;
    if (status === 401 || status === 403) {
      return new StoreError(`Keystone at ${this.endpoint} refused the credentials (${status}) for ${this.who}${detail}: check ${this.settings}`, {
        store,
        status,
        retryable: false,
      });
    }
    if (status === 400) {
      return new StoreError(`Keystone at ${this.endpoint} rejected the login request (400)${detail}: check ${this.settings}`, { store, status, retryable: false });
    }
    if (status === 404) {
      return new StoreError(
        `no Keystone v3 at ${this.endpoint} (404): objectStore.authUrl (OS_AUTH_URL) should be the identity endpoint, e.g. https://keystone.example.com:5000/v3`,
        // A 404 here is a wrong URL, not a missing object.
        { store, status, retryable: false, notFound: false },
      );
    }
    return new StoreError(`login at ${this.endpoint} failed: ${status} ${res.statusText}${detail}`, {
      store,
      status,
      retryAfterMs: parseRetryAfter(res.headers["retry-after"]),
    });
  }

  /** The object-store endpoint for our region and interface, or an error listing what there is. */
  private storageUrlFrom(catalog: CatalogService[] | null, store: string): string {
    const { region, interface: wanted } = this.opts;
    if (!catalog || catalog.length === 0) {
      throw new StoreError(
        `Keystone at ${this.endpoint} issued a token without a service catalog for ${this.who}: the login must be scoped to a project (objectStore.project or projectId, OS_PROJECT_NAME or OS_PROJECT_ID)`,
        { store, retryable: false },
      );
    }
    const endpoints = catalog.filter((s) => s.type === "object-store").flatMap((s) => s.endpoints);
    const match = endpoints.find((e) => e.interface === wanted && (region === undefined || e.region === region) && e.url !== "");
    if (match) return match.url;
    const want = `${region === undefined ? "any region" : `region "${region}"`} and interface "${wanted}"`;
    const has =
      endpoints.length > 0
        ? `its object-store endpoints are: ${endpoints.map((e) => `${e.region || "(no region)"} ${e.interface}`).join(", ")}`
        : `it has no object-store service at all (services: ${[...new Set(catalog.map((s) => s.type))].join(", ") || "none"})`;
    throw new StoreError(
      `no object-store endpoint for ${want} in the Keystone catalog of ${this.who}; ${has}: set objectStore.region and objectStore.interface (OS_REGION_NAME, OS_INTERFACE) to one of those`,
      { store, retryable: false },
    );
  }
}
