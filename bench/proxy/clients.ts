// The benchmark's client side: keep-alive HTTPS through a CONNECT proxy (what
// an agent's HTTP client does), one fresh tunnel per request, and the same
// two shapes without a proxy as the baseline.
import { Agent as HttpsAgent, type AgentOptions, request as httpsRequest } from "node:https";
import type { Duplex } from "node:stream";
import { connect as tlsConnect, createSecureContext, type SecureContext } from "node:tls";
import { openTlsTunnel, openTunnel, type TlsRequestOptions } from "../../src/sidecars/proxy/tunnel-agent.js";

/** An https.Agent whose connections are TLS inside CONNECT tunnels through the proxy (what an agent's HTTP client does). */
class ConnectTunnelAgent extends HttpsAgent {
  constructor(
    private readonly proxyHost: string,
    private readonly proxyPort: number,
    options: AgentOptions,
  ) {
    super({ keepAlive: true, ...options });
  }

  override createConnection(options: TlsRequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    openTlsTunnel(this.proxyHost, this.proxyPort, String(options.host ?? "localhost"), Number(options.port ?? 443), options.secureContext).then(
      (tls) => callback?.(null, tls),
      (err: Error) => callback?.(err, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

export interface Target {
  host: string;
  port: number;
  path: string;
  /** PEM of the CA the client must trust for this path (proxy CA or upstream CA). */
  ca: string;
  /** Check that the upstream saw an injected Authorization header. */
  expectInjected?: boolean;
}

function get(o: {
  agent?: HttpsAgent;
  host: string;
  port: number;
  path: string;
  ctx: SecureContext;
  expectInjected?: boolean;
  createConnection?: () => import("node:tls").TLSSocket;
}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: o.host,
        port: o.port,
        path: o.path,
        servername: o.host,
        ...(o.agent ? { agent: o.agent } : {}),
        ...(o.createConnection ? { createConnection: o.createConnection } : {}),
        secureContext: o.ctx,
      } as unknown as Parameters<typeof httpsRequest>[0],
      (res) => {
        let n = 0;
        res.on("data", (c: Buffer) => (n += c.length));
        res.on("end", () => {
          if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
          if (o.expectInjected && res.headers["x-saw-authorization"] !== "yes") return reject(new Error("credential was not injected"));
          resolve(n);
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Keep-alive requests, `sockets` connections, optionally through an HTTP CONNECT proxy. */
export function keepAliveClient(t: Target, sockets: number, proxy?: { host: string; port: number }): { once: () => Promise<number>; close: () => void } {
  const agent = proxy
    ? new ConnectTunnelAgent(proxy.host, proxy.port, { maxSockets: sockets, maxFreeSockets: sockets })
    : new HttpsAgent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  const ctx = createSecureContext({ ca: t.ca });
  return { once: () => get({ agent, host: t.host, port: t.port, path: t.path, ctx, ...(t.expectInjected ? { expectInjected: true } : {}) }), close: () => agent.destroy() };
}

/** A fresh TCP (+CONNECT) + TLS connection per request: measures tunnel set-up. */
export function freshConnectionClient(t: Target, proxy?: { host: string; port: number }): { once: () => Promise<number> } {
  const ctx = createSecureContext({ ca: t.ca });
  return {
    async once() {
      const socket = proxy ? await openTunnel(proxy.host, proxy.port, `${t.host}:${t.port}`) : undefined;
      const tls = tlsConnect({ ...(socket ? { socket } : { host: t.host, port: t.port }), servername: t.host, secureContext: ctx, ALPNProtocols: ["http/1.1"] });
      try {
        return await get({ host: t.host, port: t.port, path: t.path, ctx, createConnection: () => tls });
      } finally {
        tls.destroy();
      }
    },
  };
}
