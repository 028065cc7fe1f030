/**
 * A fault-injecting HTTP proxy for tests: it sits on 127.0.0.1 between pantri and a real server
 * (Swift, or Swift's s3api) and, at a configurable rate drawn from a seeded RNG, answers 503 or
 * 500, resets the connection mid-body, stalls past the client's timeout, or truncates a body.
 * Every request is logged (method, path, Range, status, bytes each way, fault applied), so tests
 * can assert what pantri actually sent: a Range request on resume, segments not sent twice.
 *
 * Plain node:http; the Host header is forwarded unchanged (so S3 SigV4 signatures stay valid)
 * and a v1 login's X-Storage-Url is rewritten to point back at the proxy.
 */
import { EventEmitter } from "node:events";
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export type FaultKind = "503" | "500" | "reset" | "stall" | "truncate";
export const ALL_FAULTS: readonly FaultKind[] = ["503", "500", "reset", "stall", "truncate"];

/** mulberry32: a tiny seeded PRNG, so a fault sequence can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FaultSettings {
  /** Probability (0..1) that a matching request gets a fault. */
  rate: number;
  /** Faults to choose from (uniformly). */
  kinds: readonly FaultKind[];
  /** How long a stalled exchange hangs before the proxy drops it; set above the client's timeout. */
  stallMs: number;
  /** Which requests may be faulted (default: all). */
  match: (req: { method: string; path: string }) => boolean;
  /** Throttle request and response bodies to this many bytes per second each (0: no limit). */
  bytesPerSecond: number;
}

export interface ProxyLogEntry {
  id: number;
  method: string;
  /** Path and query as the client sent them. */
  path: string;
  range?: string;
  fault?: FaultKind;
  /** Status sent to the client (undefined when none was). */
  status?: number;
  /** Request body bytes received from the client. */
  bytesIn: number;
  /** Response body bytes sent to the client. */
  bytesOut: number;
  done: boolean;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>` */
  url: string;
  readonly log: ProxyLogEntry[];
  /** Changes the fault settings from now on. */
  configure(settings: Partial<FaultSettings>): void;
  /**
   * Emits "request" with each ProxyLogEntry as it arrives, "data" as body bytes move either way,
   * and "done" as its exchange ends (whatever the outcome).
   */
  events: EventEmitter;
  close(): Promise<void>;
}

export interface FaultProxyOptions extends Partial<FaultSettings> {
  /** The real server, e.g. `http://127.0.0.1:8080`. */
  target: string;
  seed?: number;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "expect", "te", "trailer"]);

function forwardHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
  return out;
}

export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(opts.target);
  const settings: FaultSettings = {
    rate: opts.rate ?? 0,
    kinds: opts.kinds ?? ALL_FAULTS,
    stallMs: opts.stallMs ?? 5000,
    match: opts.match ?? (() => true),
    bytesPerSecond: opts.bytesPerSecond ?? 0,
  };
  const random = seededRandom(opts.seed ?? 1);
  const log: ProxyLogEntry[] = [];
  const events = new EventEmitter();
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let url = "";

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const decide = (method: string, path: string): FaultKind | undefined => {
    if (settings.rate <= 0 || !settings.match({ method, path })) return undefined;
    // Always draw twice, so the sequence of decisions does not depend on the outcome.
    const hit = random() < settings.rate;
    const pick = settings.kinds[Math.floor(random() * settings.kinds.length)];
    return hit ? pick : undefined;
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const entry: ProxyLogEntry = { id: log.length + 1, method, path, bytesIn: 0, bytesOut: 0, done: false };
    if (typeof req.headers.range === "string") entry.range = req.headers.range;
    log.push(entry);
    events.emit("request", entry);
    const fault = decide(method, path);
    if (fault) entry.fault = fault;
    const clientSocket = req.socket;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      entry.done = true;
      events.emit("done", entry);
    };
    res.once("close", finish);
    const requestLength = Number(req.headers["content-length"] ?? 0);
    const hasRequestBody = requestLength > 0 || req.headers["transfer-encoding"] !== undefined;

    if (fault === "503" || fault === "500") {
      // Read (and drop) the upload first, as a real server's error page would.
      req.on("data", (c: Buffer) => (entry.bytesIn += c.length));
      req.on("end", () => {
        const body = `fault proxy: injected ${fault}\n`;
        entry.status = Number(fault);
        res.writeHead(Number(fault), { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }

    const upstream = httpRequest({
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      method,
      path,
      headers: forwardHeaders(req.headers),
      agent,
    });
    upstream.on("error", () => {
      if (!res.headersSent && !clientSocket.destroyed) {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end("fault proxy: upstream failed\n");
        entry.status = 502;
      } else clientSocket.destroy();
    });
    // A reset during an upload: after half of it, both connections are dropped with an RST.
    const resetUpload = fault === "reset" && hasRequestBody;
    req.on("data", (c: Buffer) => {
      entry.bytesIn += c.length;
      events.emit("data", entry);
      if (resetUpload && entry.bytesIn >= requestLength / 2) {
        upstream.destroy();
        clientSocket.resetAndDestroy();
      } else if (settings.bytesPerSecond > 0) {
        req.pause();
        later(Math.ceil((c.length / settings.bytesPerSecond) * 1000), () => req.resume());
      }
    });
    req.pipe(upstream);
    let upstreamDone = false;
    req.on("error", () => upstream.destroy());
    // The client went away (or was cut off): drop the upstream exchange too.
    res.once("close", () => {
      if (!upstreamDone) upstream.destroy();
    });

    upstream.on("response", (up) => {
      const status = up.statusCode ?? 502;
      const headers = forwardHeaders(up.headers);
      const storageUrl = headers["x-storage-url"];
      if (typeof storageUrl === "string") headers["x-storage-url"] = storageUrl.replace(target.origin, url);
      const declared = up.headers["content-length"] !== undefined ? Number(up.headers["content-length"]) : undefined;
      const hasBody = method !== "HEAD" && status !== 204 && status !== 304 && (declared === undefined || declared > 0);
      // Where in the body a fault strikes: half way, or after the first chunk when the length is unknown.
      const cut = declared !== undefined ? Math.floor(declared / 2) : 1;

      if (!hasBody && (fault === "stall" || fault === "truncate" || fault === "reset")) {
        // Nothing to cut short: the response is lost. A stall hangs first, then drops the line.
        up.resume();
        if (fault === "stall") later(settings.stallMs, () => clientSocket.destroy());
        else if (fault === "reset") clientSocket.resetAndDestroy();
        else clientSocket.end();
        return;
      }
      entry.status = status;
      res.writeHead(status, headers);
      if (method === "HEAD" || !hasBody) {
        upstreamDone = true;
        up.resume();
        res.end();
        return;
      }
      let sent = 0;
      let struck = false;
      const strike = () => {
        struck = true;
        up.pause();
        if (fault === "stall") {
          later(settings.stallMs, () => {
            up.destroy();
            clientSocket.destroy();
          });
        } else if (fault === "reset") {
          up.destroy();
          clientSocket.resetAndDestroy();
        } else {
          // truncate: a clean close (FIN) before the promised length.
          up.destroy();
          clientSocket.end();
        }
      };
      up.on("data", (chunk: Buffer) => {
        if (struck) return;
        let part = chunk;
        if (fault && sent + part.length >= cut) part = part.subarray(0, Math.max(0, cut - sent));
        sent += part.length;
        entry.bytesOut += part.length;
        events.emit("data", entry);
        const ok = part.length ? res.write(part) : true;
        if (fault && sent >= cut) {
          strike();
          return;
        }
        if (settings.bytesPerSecond > 0) {
          up.pause();
          later(Math.ceil((part.length / settings.bytesPerSecond) * 1000), () => up.resume());
        } else if (!ok) {
          up.pause();
          res.once("drain", () => up.resume());
        }
      });
      up.on("end", () => {
        upstreamDone = true;
        if (!struck) res.end();
      });
      up.on("error", () => clientSocket.destroy());
    });
  };

  const server = createServer(handle);
  server.keepAliveTimeout = 30_000;
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("clientError", (_err, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    log,
    events,
    configure(s) {
      Object.assign(settings, s);
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
