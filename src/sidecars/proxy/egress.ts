// Egress mode: credential injection. Intercepts TLS only for routed hosts
// (chosen by the CONNECT target, never by the Host header), replaces the
// route's header with the configured value, and sends everything onward
// through the firewall. Unrouted traffic is relayed to the firewall untouched.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { isIP } from "node:net";
import { pipeline, type Duplex } from "node:stream";
import type { SecureContext } from "node:tls";
import type { Readable, Transform } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate, createZstdDecompress } from "node:zlib";
import { egressConfigSchema, type EgressConfig, type EgressRouteConfig } from "../../contracts/egress.js";
import { ENV_REF_RE, reservedRouteHeader } from "../../contracts/patterns.js";
import { parseHost } from "../../security/address.js";
import { loadCertificateAuthority, loadUpstreamTrust, type LeafIssuer } from "./certs.js";
import { loadConfigFile, type ReloadableState } from "./config-file.js";
import { buildDlpPolicy, describeFinding, MAX_SCANNED_BODY, RequestHistory, type RequestParts, scanRequest, scanRequestAsync, type DlpFinding, type DlpPolicy } from "./dlp.js";
import { headerValue, scanHostNames } from "./host-names.js";
import { authorityOf, endToEndHeaders, headerPairs, tunnelRequestTarget, writeRawResponse, type AbsoluteTarget, type HostPort } from "./http-message.js";
import type { EventLog, LogFields } from "../kit/log.js";
import { dial, ProxyServer, toProxyLimits } from "./proxy-server.js";
import { upstreamFailure } from "./upstream-tls.js";
import { BodyMasker, credentialNeedles, RedactStream, redactHeaders, redactText, type CredentialNeedles } from "./redact.js";
import { hasNoBody, NO_BODY, readBody, relayDispatch, relayResponse, type UpstreamHead } from "./relay.js";
import { compileRoutes, isRouted, normalizeTarget, renderHeaderValue, selectRoute, type RouteTable } from "./routes.js";
import type { Agent as UndiciAgent } from "undici";
import { createTunnelDispatcher, TunnelRefusedError } from "./tunnel-agent.js";

export interface EgressState {
  config: EgressConfig;
  routes: RouteTable;
  issuer: LeafIssuer;
  trust: SecureContext;
  firewall: { host: string; port: number };
  /** Routed requests: TLS inside CONNECT tunnels through the firewall, pooled per origin. */
  tunnels: UndiciAgent;
  httpAgent: HttpAgent;
  /**
   * DLP for what egress sees in clear: requests to routed hosts (which the
   * firewall tunnels untouched, so egress is the only one who can scan them)
   * and every host name. The credentials egress holds are its canaries.
   */
  dlp: DlpPolicy;
}

interface RoutedTunnel {
  host: string;
  port: number;
  /** `https://host:port`, the pool of the tunnel's requests: worked out once per tunnel, not per request. */
  origin: string;
}

/** A route's log fields and the headers not forwarded as sent (lowercase): the one it replaces, and FORWARD_DROPPED. */
interface RouteShape {
  fields: { route: string; path_prefix: string; header: string };
  dropped: ReadonlySet<string>;
}

/**
 * Request headers egress never forwards as the agent sent them: the body
 * goes out whole, so its length is what egress sends (not the agent's
 * Content-Length), and it is already here, so no Expect: 100-continue.
 */
const FORWARD_DROPPED: ReadonlySet<string> = new Set(["content-length", "expect"]);

/**
 * A header name and its spellings with any of its hyphens as underscores:
 * servers that hand headers over CGI-style (HTTP_X_API_KEY: PHP, WSGI,
 * Rack, nginx with underscores_in_headers) read `X_Api_Key` as
 * `X-Api-Key`, so an agent's `X_Api_Key` next to the one egress sets could
 * stand in for it. Route header names have no underscores (the schema);
 * past 10 hyphens only the first 10 vary (no real header has that many).
 */
function underscoreSpellings(name: string): string[] {
  const hyphens = [...name.matchAll(/-/g)].map((m) => m.index).slice(0, 10);
  const out: string[] = [];
  for (let mask = 0; mask < 1 << hyphens.length; mask++) {
    const chars = [...name];
    hyphens.forEach((at, bit) => {
      if (mask & (1 << bit)) chars[at] = "_";
    });
    out.push(chars.join(""));
  }
  return out;
}

const NO_ROUTE: RouteShape = { fields: { route: "", path_prefix: "", header: "" }, dropped: FORWARD_DROPPED };

const canonicalName = (h: string) => parseHost(h).name;

/** Env names the routes' header templates reference. */
const routeEnvNames = (routes: readonly EgressRouteConfig[]) => [...new Set(routes.flatMap((r) => [...r.value.matchAll(ENV_REF_RE)].map((m) => m[1]!)))];

export async function buildEgressState(configFile: string, env: NodeJS.ProcessEnv = process.env): Promise<EgressState> {
  const config = await loadConfigFile(configFile, egressConfigSchema);
  const url = new URL(config.upstream_proxy);
  const firewall = { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 80) };
  const [issuer, trust] = await Promise.all([loadCertificateAuthority(config.ca_cert, config.ca_key), loadUpstreamTrust(config.upstream_ca_files)]);
  const tunnels = await createTunnelDispatcher(firewall.host, firewall.port, trust);
  // Unset or short values are reported by the route itself when used; no warnings here.
  const { policy: dlp } = buildDlpPolicy({ enabled: true, canary_env: routeEnvNames(config.routes), canary_exempt: [] }, env);
  return {
    config,
    routes: compileRoutes(config.routes),
    issuer,
    trust,
    firewall,
    tunnels,
    httpAgent: new HttpAgent({ keepAlive: true, maxFreeSockets: 64 }),
    dlp,
  };
}

export function createEgress(state: ReloadableState<EgressState>, log: EventLog, env: NodeJS.ProcessEnv = process.env): ProxyServer<RoutedTunnel> {
  // Earlier requests' URL pieces per routed host: a secret sent a piece per request (dlp.ts).
  const history = new RequestHistory();
  const reply = (res: ServerResponse, status: number, message: string) => {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", connection: "close" });
    res.end(message.endsWith("\n") ? message : `${message}\n`);
  };

  // A route's header value, worked out once per route object (a reload brings new route objects).
  const credentials = new WeakMap<EgressRouteConfig, { ok: true; value: string } | { ok: false; reason: string }>();
  const credentialOf = (route: EgressRouteConfig) => {
    let c = credentials.get(route);
    if (!c) {
      // The config schema refuses these already; a route that still names one is never applied (egress sets Host itself).
      const reserved = reservedRouteHeader(route.header);
      const r = reserved ? { ok: false as const, reason: reserved } : renderHeaderValue(route.value, env);
      c = r.ok ? { ok: true, value: r.value } : r;
      credentials.set(route, c);
    }
    return c;
  };

  // The spellings of every credential egress holds, once per route table (a
  // reload brings a new one). Every response egress relays in clear is
  // masked with them, not only the response to a request egress injected
  // into: an upstream that saw the credential once may echo it later to
  // any request (a debug page listing recent requests, a path outside the
  // route's prefix, an error page), and the agent must never read it.
  const heldNeedles = new WeakMap<RouteTable, CredentialNeedles | undefined>();
  const needlesOf = (routes: RouteTable): CredentialNeedles | undefined => {
    if (heldNeedles.has(routes)) return heldNeedles.get(routes);
    const values: string[] = [];
    for (const list of routes.values()) {
      for (const r of list) {
        const c = credentialOf(r);
        if (c.ok) values.push(c.value, ...routeEnvNames([r]).map((n) => env[n] ?? ""));
      }
    }
    const needles = values.length ? credentialNeedles(values) : undefined;
    heldNeedles.set(routes, needles);
    return needles;
  };

  // What a route adds to each request's log line and which header it replaces, also once per route object.
  const shapes = new WeakMap<EgressRouteConfig, RouteShape>();
  const routeShapeOf = (route: EgressRouteConfig): RouteShape => {
    let shape = shapes.get(route);
    if (!shape) {
      const header = route.header.toLowerCase();
      shape = { fields: { route: route.name, path_prefix: route.path_prefix, header }, dropped: new Set([...underscoreSpellings(header), ...FORWARD_DROPPED]) };
      shapes.set(route, shape);
    }
    return shape;
  };

  const proxy: ProxyServer<RoutedTunnel> = new ProxyServer<RoutedTunnel>(
    {
      health: () => ({ mode: "egress", routes: state.current.config.routes.length, connections: proxy.connections }),
      onLimit: (limit, detail) => log("limit", { limit, ...(detail as LogFields) }),

      // Plain HTTP goes to the firewall as a proxy request. Routes are never
      // applied here: a credential must not cross the network in cleartext.
      onHttpRequest(req: IncomingMessage, res: ServerResponse, target: AbsoluteTarget) {
        const started = Date.now();
        const s = state.current;
        const host = parseHost(target.host).name;
        const inName = scanHostNames(s.dlp, [target.host, req.headers.host]);
        if (inName) {
          reply(res, 403, `bot-bottle egress: blocked by dlp: ${describeFinding(inName)}`);
          return log("request", {
            host: "(withheld)",
            port: target.port,
            method: req.method ?? "",
            scheme: "http",
            route: "",
            decision: "blocked",
            rule: "dlp",
            dlp_rule: inName.rule,
            status: 403,
            ms: Date.now() - started,
          });
        }
        const headers = endToEndHeaders(req.rawHeaders);
        headers.push("Host", authorityOf(target.host, target.port, 80));
        const upstream = httpRequest({ host: s.firewall.host, port: s.firewall.port, method: req.method, path: req.url, headers, agent: s.httpAgent });
        relayResponse(req, res, upstream, undefined, (o) => {
          if (o.error && !res.headersSent) reply(res, 502, `bot-bottle egress: cannot reach the firewall (${o.error})`);
          log("request", {
            host,
            port: target.port,
            method: req.method ?? "",
            scheme: "http",
            route: "",
            status: o.status ?? 502,
            bytes: o.bytes,
            ms: Date.now() - started,
            ...(o.error ? { error: o.error } : {}),
          });
        });
      },

      onConnect(req, socket: Duplex, head, target: HostPort) {
        const started = Date.now();
        const s = state.current;
        // Before anything else: a secret in the name would leave in the firewall's DNS query.
        const inName = scanHostNames(s.dlp, [target.host, headerValue(req.rawHeaders, "host")]);
        if (inName) {
          writeRawResponse(socket, 403, `bot-bottle egress: blocked by dlp: CONNECT: ${describeFinding(inName)}`);
          return log("connect", { host: "(withheld)", port: target.port, decision: "blocked", rule: "dlp", dlp_rule: inName.rule, status: 403, ms: Date.now() - started });
        }
        const host = parseHost(target.host).name;
        if (isRouted(s.routes, host, target.port)) {
          s.issuer.contextFor(host).then(
            (ctx) => {
              proxy.intercept(socket, head, { host, port: target.port, origin: `https://${isIP(host) === 6 ? `[${host}]` : host}:${target.port}` }, ctx);
              log("connect", { host, port: target.port, tls: "intercepted", status: 200, ms: Date.now() - started });
            },
            (err: Error) => {
              socket.destroy();
              log("error", { where: "certificate", host, message: err.message });
            },
          );
          return;
        }
        // Unrouted: forward the CONNECT itself, so the client sees the
        // firewall's own answer (200, or 403 with its reason) byte for byte.
        dial(s.firewall.host, s.firewall.port, undefined, true).then(
          async (fw) => {
            fw.write(`CONNECT ${req.url} HTTP/1.1\r\nHost: ${req.url}\r\n\r\n`);
            const { up, down } = await proxy.splice(socket, head, fw, false);
            log("tunnel_closed", { host, port: target.port, route: "", bytes_up: up, bytes: down, ms: Date.now() - started });
          },
          (err: NodeJS.ErrnoException) => {
            socket.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nbot-bottle egress: cannot reach the firewall (${err.code ?? "error"})\n`);
            log("connect", { host, port: target.port, status: 502, error: err.code ?? "error", ms: Date.now() - started });
          },
        );
      },

      onInterceptedRequest(req, res, tunnel) {
        const started = Date.now();
        const s = state.current;
        const base = { host: tunnel.host, port: tunnel.port, method: req.method ?? "", scheme: "https" };
        const refuse = (status: number, message: string, fields: LogFields = {}) => {
          reply(res, status, `bot-bottle egress: ${message}`);
          log("request", { ...base, route: "", status, decision: "blocked", ...fields, ms: Date.now() - started });
        };
        const target = tunnelRequestTarget(req.url, tunnel.host, tunnel.port, canonicalName);
        if (!target.ok) return refuse(400, target.reason, { rule: "tunnel-target" });
        const norm = normalizeTarget(target.target);
        if (!norm) return refuse(400, "expected an origin-form request target", { rule: "tunnel-target" });
        const choice = selectRoute(s.routes, tunnel.host, tunnel.port, norm.pathname);
        if ("refused" in choice) return refuse(400, choice.refused, { rule: "route-path" });
        const route = choice.route;
        const { fields: routeFields, dropped } = route ? routeShapeOf(route) : NO_ROUTE;
        const rendered = route ? credentialOf(route) : undefined;
        if (route && rendered && !rendered.ok) {
          reply(res, 502, `bot-bottle egress: route "${route.name}" cannot add its ${route.header} header: ${rendered.reason}`);
          return log("request", { ...base, ...routeFields, status: 502, error: "credential unavailable", ms: Date.now() - started });
        }
        const send = (scan: AgentScan) => {
          if ("finding" in scan) return refuse(403, `blocked by dlp: request to "${tunnel.host}": ${describeFinding(scan.finding)}`, { ...routeFields, rule: "dlp", dlp_rule: scan.finding.rule });
          if ("tooLarge" in scan) return refuse(413, `blocked by dlp: request body is larger than ${MAX_SCANNED_BODY} bytes and cannot be scanned`, { ...routeFields, rule: "dlp" });
          if ("busy" in scan)
            return refuse(503, `egress is already holding ${Math.round(proxy.bodies.max / 1048576)} MiB of request bodies from this bottle for scanning; retry when uploads in flight finish`, {
              ...routeFields,
              rule: "limits",
            });
          // The body is sent whole (it was read to be scanned): its length, not the agent's framing headers.
          const headers = endToEndHeaders(req.rawHeaders, dropped);
          if (route && rendered?.ok) headers.push(route.header, rendered.value);
          headers.push("Host", authorityOf(tunnel.host, tunnel.port, 443));
          let masked = 0;
          const needles = needlesOf(s.routes);
          const method = req.method ?? "GET";
          const transform = needles
            ? (head: UpstreamHead, h: string[], body: () => Readable) => {
                const t = redactedResponse(head, h, body, needles, method === "HEAD");
                if ("masked" in t) masked = t.masked;
                return t;
              }
            : undefined;
          relayDispatch(
            res,
            s.tunnels,
            { origin: tunnel.origin, method, path: norm.target, headers, body: scan.body },
            (o) => {
              if (o.error && !res.headersSent) {
                // The firewall's refusal of the tunnel is the agent's answer: pass its status and reason on.
                if (o.cause instanceof TunnelRefusedError) reply(res, o.cause.status, o.cause.body || `bot-bottle egress: the firewall refused "${tunnel.host}"`);
                else reply(res, o.error === "ETIMEDOUT" ? 504 : 502, `bot-bottle egress: ${upstreamFailure("egress", tunnel.host, o.error)}`);
              }
              log("request", {
                ...base,
                ...routeFields,
                status: o.cause instanceof TunnelRefusedError ? o.cause.status : (o.status ?? 502),
                bytes: o.bytes,
                ms: Date.now() - started,
                ...(masked ? { credential_masked: masked } : {}),
                ...(o.error ? { error: o.error } : {}),
              });
            },
            { idleTimeoutMs: proxy.limits.idleTimeoutMs, ...(transform ? { transform } : {}) },
          );
        };
        const failed = (err: unknown) => {
          if (!res.headersSent) reply(res, 502, "bot-bottle egress: failed to handle the request");
          log("error", { where: "intercepted", message: String((err as Error)?.message ?? err) });
        };
        // A request without a body (most API calls) is scanned and sent in
        // this same turn; one with a body is read whole and scanned first.
        if (hasNoBody(req)) {
          try {
            send(scanAgentRequest(s.dlp, history, req, tunnel.host, norm.target, dropped, undefined));
          } catch (err) {
            failed(err);
          }
          return;
        }
        readBody(req, MAX_SCANNED_BODY, proxy.bodies, res)
          .then((read): AgentScan | Promise<AgentScan> => {
            if (read === "too-large") return { tooLarge: true };
            if (read === "busy") return { busy: true };
            return scanAgentRequest(s.dlp, history, req, tunnel.host, norm.target, dropped, read);
          })
          .then(send)
          .catch(failed);
      },
    },
    toProxyLimits(state.current.config.limits),
  );
  return proxy;
}

type AgentScan = { finding: DlpFinding } | { tooLarge: true } | { busy: true } | { body: Buffer };

/**
 * DLP over the agent's own request to a routed host, before egress adds
 * the credential: URL, headers (less the one egress replaces) and body
 * (`undefined` for a request that has none by its framing). Without a body
 * it is scanned in this same turn; a body is scanned in slices, so one that
 * takes long never holds up other connections.
 */
function scanAgentRequest(policy: DlpPolicy, history: RequestHistory, req: IncomingMessage, host: string, target: string, dropped: ReadonlySet<string>, body: undefined): AgentScan;
function scanAgentRequest(policy: DlpPolicy, history: RequestHistory, req: IncomingMessage, host: string, target: string, dropped: ReadonlySet<string>, body: Buffer): AgentScan | Promise<AgentScan>;
function scanAgentRequest(
  policy: DlpPolicy,
  history: RequestHistory,
  req: IncomingMessage,
  host: string,
  target: string,
  dropped: ReadonlySet<string>,
  body: Buffer | undefined,
): AgentScan | Promise<AgentScan> {
  const parts = agentRequestParts(req, host, target, dropped, body, history.recent(host));
  const verdict = (finding: DlpFinding | undefined): AgentScan => {
    if (finding) return { finding };
    history.add(host, target);
    return { body: body ?? NO_BODY };
  };
  return body?.length ? scanRequestAsync(policy, parts).then(verdict) : verdict(scanRequest(policy, parts));
}

function agentRequestParts(req: IncomingMessage, host: string, target: string, dropped: ReadonlySet<string>, body: Buffer | undefined, recent: string[]): RequestParts {
  const contentEncoding = req.headers["content-encoding"];
  const contentType = req.headers["content-type"];
  return {
    host,
    url: target,
    headers: headerPairs(req.rawHeaders, dropped),
    ...(body?.length ? { body } : {}),
    ...(contentEncoding ? { contentEncoding } : {}),
    ...(contentType ? { contentType } : {}),
    ...(recent.length ? { recent } : {}),
  };
}

/**
 * A response from a routed host, with every credential egress holds masked
 * in its reason phrase, header names and values, and body. A compressed body is
 * decoded first (and sent decoded), since a credential inside gzip cannot
 * be found as bytes; an encoding we cannot decode is refused rather than
 * passed unchecked. A response that has no body by its framing (to HEAD,
 * 204, 304) keeps its Content-Encoding and Content-Length: they describe a
 * representation that is not there to decode. An empty body is empty
 * decoded too (a decoder fails on no input at all). A body that is
 * compressed data without saying so is held and checked whole by the
 * masker (BodyMasker), and refused when the credential is inside.
 */
function redactedResponse(
  upRes: UpstreamHead,
  headers: string[],
  source: () => Readable,
  needles: CredentialNeedles,
  head: boolean,
): { headers: string[]; statusMessage: string; body: Readable; masked: number } | { headers: string[]; statusMessage: string; chunks: BodyMasker; masked: number } | { refusal: string } {
  const bodiless = head || upRes.statusCode === 204 || upRes.statusCode === 304;
  const encodings = [bodiless ? "" : (upRes.headers["content-encoding"] ?? "")]
    .flat()
    .join(",")
    .split(",")
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e && e !== "identity");
  const decoders: Transform[] = [];
  for (const e of encodings.reverse()) {
    const d = decoderFor(e);
    if (!d) return { refusal: `bot-bottle egress: the response is ${e}-encoded, which egress cannot check for an echoed credential` };
    decoders.push(d);
  }
  const { headers: out, masked: inHeaders } = redactHeaders(decoders.length ? dropHeaders(headers, new Set(["content-encoding", "content-length"])) : headers, needles);
  const { text: statusMessage, masked: inReason } = redactText(upRes.statusMessage, needles);
  const masked = inHeaders + inReason;
  if (!decoders.length) return { headers: out, statusMessage, chunks: new BodyMasker(needles), masked };
  // pipeline, not pipe: a decoder's error (corrupt data) reaches the last
  // stage, which the relay listens to, instead of going unheard.
  const body = new RedactStream(needles);
  // The decoders are set up with the first byte, not before: a body that
  // ends with none is sent empty instead of failing as truncated data.
  const src = source();
  const onEmpty = () => {
    src.off("data", onFirst);
    body.end();
  };
  const onFirst = (first: Buffer) => {
    src.off("end", onEmpty);
    src.pause();
    src.unshift(first);
    pipeline([src, ...decoders, body], () => {});
  };
  src.once("data", onFirst);
  src.once("end", onEmpty);
  src.once("error", (err) => body.destroy(err));
  return { headers: out, statusMessage, body, masked };
}

function decoderFor(encoding: string): Transform | undefined {
  switch (encoding) {
    case "gzip":
    case "x-gzip":
      return createGunzip();
    case "deflate":
      return createInflate();
    case "br":
      return createBrotliDecompress();
    case "zstd":
      return typeof createZstdDecompress === "function" ? createZstdDecompress() : undefined;
    default:
      return undefined;
  }
}

function dropHeaders(raw: readonly string[], names: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!names.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}
