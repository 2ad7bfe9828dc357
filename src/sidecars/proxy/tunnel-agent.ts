// HTTPS through an HTTP proxy: an https.Agent whose connections are CONNECT
// tunnels through the proxy (the firewall), with TLS to the origin inside.
// Keep-alive pools the tunnels, so steady traffic pays for CONNECT and the
// handshake once per connection, not per request.
import { Agent as HttpsAgent, type AgentOptions, type RequestOptions } from "node:https";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { connect as tlsConnect, type SecureContext } from "node:tls";
import { dial } from "./proxy-server.js";

/** The proxy refused the CONNECT: carries its status and (short) body for the client. */
export class TunnelRefusedError extends Error {
  override readonly name = "TunnelRefusedError";
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`proxy answered CONNECT with ${status}`);
  }
}

const MAX_HEAD = 16 * 1024;
const MAX_REFUSAL_BODY = 16 * 1024;

/** Open a CONNECT tunnel to `authority` through the proxy at host:port. */
export async function openTunnel(proxyHost: string, proxyPort: number, authority: string, timeoutMs = 15_000): Promise<Socket> {
  const socket = await dial(proxyHost, proxyPort, timeoutMs);
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => fail(Object.assign(new Error("proxy did not answer CONNECT"), { code: "ETIMEDOUT" })), timeoutMs);
    const fail = (err: Error) => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", fail);
      socket.off("end", onEnd);
    };
    const onEnd = () => fail(Object.assign(new Error("proxy closed the connection during CONNECT"), { code: "ECONNRESET" }));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const headEnd = buf.indexOf("\r\n\r\n");
      if (headEnd < 0) {
        if (buf.length > MAX_HEAD) fail(new Error("proxy sent an oversized CONNECT response"));
        return;
      }
      const head = buf.subarray(0, headEnd).toString("latin1");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      const rest = buf.subarray(headEnd + 4);
      if (status === 200) {
        cleanup();
        if (rest.length) socket.unshift(rest);
        return resolve(socket);
      }
      // Read the refusal body (the firewall explains itself there), bounded.
      const length = Math.min(Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0), MAX_REFUSAL_BODY);
      const finish = () => {
        cleanup();
        socket.destroy();
        reject(new TunnelRefusedError(status || 502, buf.subarray(headEnd + 4, headEnd + 4 + length).toString("utf8")));
      };
      if (buf.length - headEnd - 4 >= length) return finish();
      socket.off("end", onEnd);
      socket.once("end", finish);
    };
    socket.on("data", onData);
    socket.on("error", fail);
    socket.on("end", onEnd);
  });
}

/** https.request passes `secureContext` through to tls.connect; @types/node omits it. */
export type TlsRequestOptions = RequestOptions & { secureContext?: SecureContext };

export class ConnectTunnelAgent extends HttpsAgent {
  constructor(
    private readonly proxyHost: string,
    private readonly proxyPort: number,
    options: AgentOptions = {},
  ) {
    super({ keepAlive: true, maxFreeSockets: 64, ...options });
  }

  override createConnection(options: TlsRequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const host = String(options.host ?? "localhost");
    const port = Number(options.port ?? 443);
    const authority = `${host.includes(":") ? `[${host}]` : host}:${port}`;
    openTunnel(this.proxyHost, this.proxyPort, authority).then(
      (socket) => {
        const tls = tlsConnect({
          socket,
          servername: options.servername ?? host,
          ...(options.secureContext ? { secureContext: options.secureContext } : {}),
          ALPNProtocols: ["http/1.1"],
        });
        callback?.(null, tls);
      },
      (err: Error) => callback?.(err, undefined as unknown as Duplex),
    );
    return undefined;
  }
}
