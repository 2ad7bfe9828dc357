// HTTPS through an HTTP proxy: connections that are CONNECT tunnels through
// the proxy (the firewall), with TLS to the origin inside, pooled by an
// undici dispatcher (egress's routed requests). Keep-alive pools the
// tunnels, so steady traffic pays for CONNECT and the handshake once per
// connection, not per request.
import type { RequestOptions } from "node:https";
import { isIP, type Socket } from "node:net";
import { connect as tlsConnect, type SecureContext, type TLSSocket } from "node:tls";
import type { Agent as UndiciAgent, buildConnector } from "undici";
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

/** A TLS handshake inside a tunnel that takes longer than this fails (ETIMEDOUT), like a CONNECT that is not answered. */
const HANDSHAKE_TIMEOUT_MS = 15_000;

/**
 * TLS to host:port inside a CONNECT tunnel through the proxy at
 * proxyHost:proxyPort, resolved once the handshake is done (the server's
 * certificate checked against `secureContext` and the name). An IP literal
 * gets no SNI (RFC 6066) and is checked against the certificate's IP names.
 */
export async function openTlsTunnel(proxyHost: string, proxyPort: number, host: string, port: number, secureContext?: SecureContext): Promise<TLSSocket> {
  const bare = host.replace(/^\[|\]$/g, "");
  const authority = `${bare.includes(":") ? `[${bare}]` : bare}:${port}`;
  const socket = await openTunnel(proxyHost, proxyPort, authority);
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({
      socket,
      host: bare,
      ...(isIP(bare) ? {} : { servername: bare }),
      ...(secureContext ? { secureContext } : {}),
      ALPNProtocols: ["http/1.1"],
    });
    const timer = setTimeout(() => fail(Object.assign(new Error(`TLS handshake with ${authority} timed out`), { code: "ETIMEDOUT" })), HANDSHAKE_TIMEOUT_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      tls.destroy();
      reject(err);
    };
    tls.once("error", fail);
    tls.once("secureConnect", () => {
      clearTimeout(timer);
      tls.off("error", fail);
      resolve(tls);
    });
  });
}

type Connector = buildConnector.connector;

/**
 * An undici dispatcher whose connections are TLS inside CONNECT tunnels
 * through the proxy: undici's HTTP/1.1 client costs about half of what
 * node's http client does per request (its llhttp parser is as strict), and
 * its pools key connections by origin (`https://host:port`). Requests must
 * carry their Host header (undici derives SNI from it otherwise; here the
 * origin alone decides the tunnel, the SNI and the name checked).
 */
export async function createTunnelDispatcher(proxyHost: string, proxyPort: number, secureContext: SecureContext): Promise<UndiciAgent> {
  // Loaded on first use (only egress needs it), and only the dispatcher:
  // undici's index also brings fetch, WebSocket, caches and mocks, three
  // times the script every sidecar start would have to read.
  const { default: Agent } = await import("undici/lib/dispatcher/agent.js");
  const connect: Connector = (options, callback) => {
    openTlsTunnel(proxyHost, proxyPort, options.hostname, Number(options.port || 443), secureContext).then(
      (tls) => callback(null, tls),
      (err: Error) => callback(err, null),
    );
  };
  return new Agent({ connect, pipelining: 1 });
}

/** https.request passes `secureContext` through to tls.connect; @types/node omits it. */
export type TlsRequestOptions = RequestOptions & { secureContext?: SecureContext };
