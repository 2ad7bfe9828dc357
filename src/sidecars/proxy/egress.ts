// Egress mode: credential injection. Intercepts TLS only for routed hosts
// (chosen by the CONNECT target, never by the Host header), replaces the
// route's header with the configured value, and sends everything onward
// through the firewall. Unrouted traffic is relayed to the firewall untouched.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import type { SecureContext } from "node:tls";
import { egressConfigSchema, type EgressConfig } from "../../sidecar-config/egress.js";
import { parseHost } from "./address.js";
import { loadCertificateAuthority, loadUpstreamTrust, type LeafIssuer } from "./certs.js";
import { loadConfigFile, type ReloadableState } from "./config-file.js";
import { authorityOf, endToEndHeaders, type AbsoluteTarget, type HostPort } from "./http-message.js";
import type { EventLog } from "./log.js";
import { dial, ProxyServer } from "./proxy-server.js";
import { relayResponse } from "./relay.js";
import { compileRoutes, normalizeTarget, renderHeaderValue, selectRoute, type RouteTable } from "./routes.js";
import { ConnectTunnelAgent, TunnelRefusedError, type TlsRequestOptions } from "./tunnel-agent.js";

export interface EgressState {
  config: EgressConfig;
  routes: RouteTable;
  issuer: LeafIssuer;
  trust: SecureContext;
  firewall: { host: string; port: number };
  tunnelAgent: ConnectTunnelAgent;
  httpAgent: HttpAgent;
}

interface RoutedTunnel {
  host: string;
  port: number;
}

export async function buildEgressState(configFile: string): Promise<EgressState> {
  const config = await loadConfigFile(configFile, egressConfigSchema);
  const url = new URL(config.upstream_proxy);
  const firewall = { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 80) };
  const [issuer, trust] = await Promise.all([loadCertificateAuthority(config.ca_cert, config.ca_key), loadUpstreamTrust(config.upstream_ca_files)]);
  return {
    config,
    routes: compileRoutes(config.routes),
    issuer,
    trust,
    firewall,
    tunnelAgent: new ConnectTunnelAgent(firewall.host, firewall.port),
    httpAgent: new HttpAgent({ keepAlive: true, maxFreeSockets: 64 }),
  };
}

export function createEgress(state: ReloadableState<EgressState>, log: EventLog, env: NodeJS.ProcessEnv = process.env): ProxyServer<RoutedTunnel> {
  const reply = (res: ServerResponse, status: number, message: string) => {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", connection: "close" });
    res.end(message.endsWith("\n") ? message : `${message}\n`);
  };

  const proxy: ProxyServer<RoutedTunnel> = new ProxyServer<RoutedTunnel>({
    health: () => ({ mode: "egress", routes: state.current.config.routes.length }),

    // Plain HTTP goes to the firewall as a proxy request. Routes are never
    // applied here: a credential must not cross the network in cleartext.
    onHttpRequest(req: IncomingMessage, res: ServerResponse, target: AbsoluteTarget) {
      const started = Date.now();
      const s = state.current;
      const headers = endToEndHeaders(req.rawHeaders);
      headers.push("Host", authorityOf(target.host, target.port, 80));
      const upstream = httpRequest({ host: s.firewall.host, port: s.firewall.port, method: req.method, path: req.url, headers, agent: s.httpAgent });
      const host = parseHost(target.host).name;
      relayResponse(req, res, upstream, undefined, (o) => {
        if (o.error && !res.headersSent) reply(res, 502, `bot-bottle egress: cannot reach the firewall (${o.error})`);
        log("request", { host, port: target.port, method: req.method ?? "", scheme: "http", route: "", status: o.status ?? 502, bytes: o.bytes, ms: Date.now() - started, ...(o.error ? { error: o.error } : {}) });
      });
    },

    onConnect(req, socket: Duplex, head, target: HostPort) {
      const started = Date.now();
      const s = state.current;
      const host = parseHost(target.host).name;
      if (s.routes.has(host)) {
        s.issuer.contextFor(host).then(
          (ctx) => {
            proxy.intercept(socket, head, { host, port: target.port }, ctx);
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
      const norm = normalizeTarget(req.url ?? "");
      if (!norm) {
        reply(res, 400, "bot-bottle egress: expected an origin-form request target");
        return log("request", { ...base, route: "", status: 400, ms: Date.now() - started });
      }
      const route = selectRoute(s.routes, tunnel.host, norm.pathname);
      const routeFields = { route: route?.name ?? "", path_prefix: route?.path_prefix ?? "", header: route?.header.toLowerCase() ?? "" };
      const headers = endToEndHeaders(req.rawHeaders, route ? new Set([route.header.toLowerCase()]) : undefined);
      if (route) {
        const rendered = renderHeaderValue(route.value, env);
        if (!rendered.ok) {
          reply(res, 502, `bot-bottle egress: route "${route.name}" cannot add its ${route.header} header: ${rendered.reason}`);
          return log("request", { ...base, ...routeFields, status: 502, error: "credential unavailable", ms: Date.now() - started });
        }
        headers.push(route.header, rendered.value);
      }
      headers.push("Host", authorityOf(tunnel.host, tunnel.port, 443));
      const options: TlsRequestOptions = {
        host: tunnel.host,
        port: tunnel.port,
        method: req.method,
        path: norm.target,
        headers,
        agent: s.tunnelAgent,
        secureContext: s.trust,
        ...(isIP(tunnel.host) ? {} : { servername: tunnel.host }),
      };
      const upstream = httpsRequest(options);
      relayResponse(req, res, upstream, undefined, (o) => {
        if (o.error && !res.headersSent) {
          // The firewall's refusal of the tunnel is the agent's answer: pass its status and reason on.
          if (o.cause instanceof TunnelRefusedError) reply(res, o.cause.status, o.cause.body || `bot-bottle egress: the firewall refused "${tunnel.host}"`);
          else reply(res, 502, `bot-bottle egress: request to "${tunnel.host}" failed: ${o.error}`);
        }
        log("request", { ...base, ...routeFields, status: o.cause instanceof TunnelRefusedError ? o.cause.status : (o.status ?? 502), bytes: o.bytes, ms: Date.now() - started, ...(o.error ? { error: o.error } : {}) });
      });
    },
  });
  return proxy;
}
