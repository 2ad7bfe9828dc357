// Firewall mode: the bottle's only way out. Allowlist + SSRF on every
// destination, DLP on everything it can see (plain HTTP, and HTTPS it
// intercepts with the bottle's firewall CA), raw tunnels for passthrough hosts.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { TlsRequestOptions } from "./tunnel-agent.js";
import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import type { SecureContext } from "node:tls";
import { firewallConfigSchema, type FirewallConfig } from "../../contracts/firewall.js";
import { parseCidrs, parseHost } from "../../security/address.js";
import { compileAllowlist, isAllowed, type Allowlist } from "../../security/allowlist.js";
import { loadCertificateAuthority, loadUpstreamTrust, type LeafIssuer } from "./certs.js";
import { loadConfigFile, type ReloadableState } from "./config-file.js";
import { cachingResolver, checkDestination, systemResolver, type DestinationPolicy, type Resolver } from "./destination.js";
import { buildDlpPolicy, describeFinding, MAX_SCANNED_BODY, RequestHistory, type RequestParts, scanRequest, scanRequestAsync, type DlpPolicy } from "./dlp.js";
import { scanConnectHead, scanHostNames } from "./host-names.js";
import { authorityOf, endToEndHeaders, headerPairs, tunnelRequestTarget, writeRawResponse, type AbsoluteTarget, type HostPort } from "./http-message.js";
import type { EventLog, LogFields } from "../kit/log.js";
import { dial, isTlsRequest, ProxyServer, toProxyLimits } from "./proxy-server.js";
import { upstreamFailure } from "./upstream-tls.js";
import { hasNoBody, NO_BODY, readBody, relayResponse } from "./relay.js";

export interface FirewallState {
  config: FirewallConfig;
  destinations: DestinationPolicy;
  passthrough: Passthrough;
  dlp: DlpPolicy;
  issuer: LeafIssuer | undefined;
  trust: SecureContext;
  httpAgent: HttpAgent;
  httpsAgent: HttpsAgent;
}

/** What an intercepted tunnel was checked for: requests inside it reuse the address. */
interface CheckedTunnel {
  host: string;
  address: string;
  port: number;
}

/** Where tunnels pass untouched: hosts per port (egress routes), and bare hosts on any port (older configs). */
export interface Passthrough {
  anyPort: Allowlist;
  byPort: ReadonlyMap<number, Allowlist>;
}

export function compilePassthrough(entries: FirewallConfig["intercept"]["passthrough"]): Passthrough {
  const any: string[] = [];
  const byPort = new Map<number, string[]>();
  for (const e of entries) {
    if (typeof e === "string") any.push(e);
    else byPort.set(e.port, [...(byPort.get(e.port) ?? []), e.host]);
  }
  return { anyPort: compileAllowlist(any), byPort: new Map([...byPort].map(([port, hosts]) => [port, compileAllowlist(hosts)])) };
}

/** A routed host on another port than its route's is intercepted and scanned like any other. */
export function isPassthrough(p: Passthrough, host: string, port: number): boolean {
  const atPort = p.byPort.get(port);
  return (atPort !== undefined && isAllowed(atPort, host)) || isAllowed(p.anyPort, host);
}

/** One cache for the process, kept across reloads (answers do not depend on the config). */
const defaultResolver = cachingResolver(systemResolver);

export async function buildFirewallState(configFile: string, env: NodeJS.ProcessEnv, log: EventLog, resolve: Resolver = defaultResolver): Promise<FirewallState> {
  const config = await loadConfigFile(configFile, firewallConfigSchema);
  const { policy: dlp, warnings } = buildDlpPolicy(config.dlp, env);
  for (const w of warnings) log("config_warning", { message: w });
  const [issuer, trust] = await Promise.all([
    config.intercept.enabled ? loadCertificateAuthority(config.intercept.ca_cert, config.intercept.ca_key) : undefined,
    loadUpstreamTrust(config.upstream_ca_files),
  ]);
  return {
    config,
    destinations: { allow: compileAllowlist(config.allow), allowCidrs: parseCidrs(config.allow_cidrs), resolve },
    passthrough: compilePassthrough(config.intercept.passthrough),
    dlp,
    issuer,
    trust,
    httpAgent: new HttpAgent({ keepAlive: true, maxFreeSockets: 64 }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxFreeSockets: 64 }),
  };
}

export function createFirewall(state: ReloadableState<FirewallState>, log: EventLog): ProxyServer<CheckedTunnel> {
  // Earlier requests' URL pieces per host: a secret sent a piece per request (dlp.ts).
  const history = new RequestHistory();
  const refuse = (res: ServerResponse, status: number, rule: string, reason: string) => {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "x-bot-bottle-rule": rule, connection: "close" });
    res.end(`bot-bottle firewall: blocked by ${rule}: ${reason}\n`);
  };

  /** DLP, then forward to the checked address with Host set to the checked name (no vhost games). */
  const forward = async (req: IncomingMessage, res: ServerResponse, scheme: "http" | "https", t: CheckedTunnel, path: string, started: number) => {
    const s = state.current;
    const base = { host: t.host, port: t.port, method: req.method ?? "", scheme };
    let body: Buffer | undefined;
    if (s.dlp.enabled) {
      // A request without a body (by its framing) is scanned and sent in this same turn.
      const read = hasNoBody(req) ? NO_BODY : await readBody(req, MAX_SCANNED_BODY, proxy.bodies, res);
      if (read === "too-large") {
        refuse(res, 413, "dlp", `request body is larger than ${MAX_SCANNED_BODY} bytes and cannot be scanned`);
        return log("request", { ...base, decision: "blocked", rule: "dlp", status: 413, ms: Date.now() - started });
      }
      if (read === "busy") {
        refuse(
          res,
          503,
          "limits",
          `the firewall is already holding ${Math.round(proxy.bodies.max / 1048576)} MiB of request bodies from this bottle for scanning; retry when uploads in flight finish`,
        );
        return log("request", { ...base, decision: "blocked", rule: "limits", limit: "max_buffered_body", status: 503, ms: Date.now() - started });
      }
      body = read;
      const contentEncoding = req.headers["content-encoding"];
      const contentType = req.headers["content-type"];
      const recent = history.recent(t.host);
      const parts: RequestParts = {
        host: t.host,
        url: path,
        headers: headerPairs(req.rawHeaders),
        body,
        ...(contentEncoding ? { contentEncoding } : {}),
        ...(contentType ? { contentType } : {}),
        ...(recent.length ? { recent } : {}),
      };
      // Without a body: scanned in this turn. With one: in slices that let
      // other connections (and /health) be served meanwhile, however long
      // the body takes to decode and scan.
      const finding = body.length ? await scanRequestAsync(s.dlp, parts) : scanRequest(s.dlp, parts);
      if (finding) {
        refuse(res, 403, "dlp", `request to "${t.host}": ${describeFinding(finding)}`);
        return log("request", { ...base, decision: "blocked", rule: "dlp", dlp_rule: finding.rule, location: finding.location, encoding: finding.encoding, status: 403, ms: Date.now() - started });
      }
      history.add(t.host, path);
    }
    const headers = endToEndHeaders(req.rawHeaders);
    headers.push("Host", authorityOf(t.host, t.port, scheme === "https" ? 443 : 80));
    const options = { host: t.address, port: t.port, method: req.method, path, headers };
    const tlsOptions: TlsRequestOptions = { ...options, agent: s.httpsAgent, secureContext: s.trust, ...(isIP(t.host) ? {} : { servername: t.host }) };
    const upstream = scheme === "https" ? httpsRequest(tlsOptions) : httpRequest({ ...options, agent: s.httpAgent });
    relayResponse(
      req,
      res,
      upstream,
      body,
      (outcome) => {
        const status = outcome.error === "ETIMEDOUT" ? 504 : 502;
        if (outcome.error && !res.headersSent)
          refuse(res, status, "upstream", status === 504 ? `"${t.host}" sent nothing for ${proxy.limits.idleTimeoutMs / 1000} s` : upstreamFailure("firewall", t.host, outcome.error));
        log("request", {
          ...base,
          decision: outcome.error ? "failed" : "allowed",
          rule: "allowlist",
          status: outcome.status ?? status,
          bytes: outcome.bytes,
          ms: Date.now() - started,
          ...(outcome.error ? { error: outcome.error } : {}),
        });
      },
      { idleTimeoutMs: proxy.limits.idleTimeoutMs },
    );
  };

  const proxy: ProxyServer<CheckedTunnel> = new ProxyServer<CheckedTunnel>(
    {
      health: () => ({ mode: "firewall", allow: state.current.config.allow.length, connections: proxy.connections }),
      onLimit: (limit, detail) => log("limit", { limit, ...(detail as LogFields) }),

      onHttpRequest(req, res, target: AbsoluteTarget) {
        const started = Date.now();
        void (async () => {
          // Names first, before the lookup that would carry them out.
          const inName = scanHostNames(state.current.dlp, [target.host, req.headers.host]);
          if (inName) {
            refuse(res, 403, "dlp", describeFinding(inName));
            return log("request", {
              decision: "blocked",
              rule: "dlp",
              dlp_rule: inName.rule,
              location: inName.location,
              host: "(withheld)",
              port: target.port,
              method: req.method ?? "",
              scheme: "http",
              status: 403,
              ms: Date.now() - started,
            });
          }
          const dest = await checkDestination(state.current.destinations, target.host);
          if (!dest.ok) {
            refuse(res, dest.status, dest.rule, dest.reason);
            return log("request", {
              decision: "blocked",
              rule: dest.rule,
              host: dest.host,
              port: target.port,
              method: req.method ?? "",
              scheme: "http",
              status: dest.status,
              ms: Date.now() - started,
            });
          }
          await forward(req, res, "http", { host: dest.host, address: dest.address, port: target.port }, target.path, started);
        })().catch((err: unknown) => {
          if (!res.headersSent) refuse(res, 502, "internal", "the firewall failed to handle the request");
          log("error", { where: "http", message: String((err as Error)?.message ?? err) });
        });
      },

      onConnect(req, socket: Duplex, head, target: HostPort) {
        const started = Date.now();
        void (async () => {
          const s = state.current;
          // Agents can smuggle data in the CONNECT target, its Host header and
          // its other headers: all scanned before the name is resolved.
          const finding = scanConnectHead(s.dlp, target.host, req.url ?? "", req.rawHeaders);
          if (finding) {
            writeRawResponse(socket, 403, `bot-bottle firewall: blocked by dlp: CONNECT: ${describeFinding(finding)}`);
            return log("connect", {
              host: "(withheld)",
              port: target.port,
              method: "CONNECT",
              decision: "blocked",
              rule: "dlp",
              dlp_rule: finding.rule,
              location: finding.location,
              status: 403,
              ms: Date.now() - started,
            });
          }
          const checked = checkDestination(s.destinations, target.host);
          const dest = checked instanceof Promise ? await checked : checked;
          const base = { host: dest.host, port: target.port, method: "CONNECT" };
          if (!dest.ok) {
            writeRawResponse(socket, dest.status, `bot-bottle firewall: blocked by ${dest.rule}: ${dest.reason}`);
            return log("connect", { ...base, decision: "blocked", rule: dest.rule, status: dest.status, ms: Date.now() - started });
          }
          const tunnel = { host: dest.host, address: dest.address, port: target.port };
          if (s.issuer && !isPassthrough(s.passthrough, dest.host, target.port)) {
            // plain: Node's fetch tunnels http:// URLs too; those requests are scanned and sent as plain HTTP.
            proxy.intercept(socket, head, tunnel, await s.issuer.contextFor(dest.host), { plain: true });
            return log("connect", { ...base, decision: "allowed", rule: "allowlist", tls: "intercepted", status: 200, ms: Date.now() - started });
          }
          let upstream: Awaited<ReturnType<typeof dial>>;
          try {
            upstream = await dial(dest.address, target.port, undefined, true);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code ?? "error";
            writeRawResponse(socket, 502, `bot-bottle firewall: cannot connect to "${dest.host}" port ${target.port} (${code})`);
            return log("connect", { ...base, decision: "failed", rule: "upstream", error: code, status: 502, ms: Date.now() - started });
          }
          log("connect", { ...base, decision: "allowed", rule: "allowlist", tls: "passthrough", status: 200, ms: Date.now() - started });
          // Passthrough is still held to the checked host: the SNI in the
          // client's ClientHello must name it (a shared frontend routes by SNI).
          const outcome = await proxy.passthrough(socket, head, upstream, dest.host, isIP(dest.host) !== 0, target.port);
          if (!outcome.ok) return log("tunnel_refused", { host: dest.host, port: target.port, rule: "sni", reason: outcome.reason, ms: Date.now() - started });
          log("tunnel_closed", { host: dest.host, port: target.port, bytes_up: outcome.up, bytes: outcome.down, ms: Date.now() - started });
        })().catch((err: unknown) => {
          writeRawResponse(socket, 502, "bot-bottle firewall: failed to handle CONNECT");
          log("error", { where: "connect", message: String((err as Error)?.message ?? err) });
        });
      },

      onInterceptedRequest(req, res, tunnel) {
        const started = Date.now();
        const scheme = isTlsRequest(req) ? "https" : "http";
        // A reload that drops the host also ends requests on tunnels opened before it.
        if (!isAllowed(state.current.destinations.allow, tunnel.host)) {
          refuse(res, 403, "allowlist", `host "${tunnel.host}" is not in the allowlist`);
          return log("request", { host: tunnel.host, port: tunnel.port, method: req.method ?? "", scheme, decision: "blocked", rule: "allowlist", status: 403, ms: 0 });
        }
        // Inside a tunnel only the tunnel's own authority is served.
        const target = tunnelRequestTarget(req.url, tunnel.host, tunnel.port, (h) => parseHost(h).name);
        if (!target.ok) {
          refuse(res, 400, "tunnel-target", target.reason);
          return log("request", { host: tunnel.host, port: tunnel.port, method: req.method ?? "", scheme, decision: "blocked", rule: "tunnel-target", status: 400, ms: 0 });
        }
        forward(req, res, scheme, tunnel, target.target, started).catch((err: unknown) => {
          if (!res.headersSent) refuse(res, 502, "internal", "the firewall failed to handle the request");
          log("error", { where: "intercepted", message: String((err as Error)?.message ?? err) });
        });
      },
    },
    toProxyLimits(state.current.config.limits),
  );
  // A reload that drops a host, or stops passing it through on that port,
  // also ends the passthrough tunnels to it opened before (intercepted ones
  // are re-checked on each request): an expired grant stops working at once.
  state.afterSwap(() => {
    const s = state.current;
    const closed = proxy.closeTunnels((host, port) => port !== undefined && isAllowed(s.destinations.allow, host) && isPassthrough(s.passthrough, host, port));
    if (closed) log("tunnels_closed", { count: closed, reason: "config reload" });
  });
  return proxy;
}
