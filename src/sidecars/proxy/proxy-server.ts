// The forward-proxy frame both modes share: one listening http.Server for
// absolute-form requests, CONNECT and /health, plus an unlistened server that
// receives decrypted requests from intercepted (MITM) tunnels. Policy lives in
// the mode's handlers; this file only moves bytes.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket, type SecureContext } from "node:tls";
import { parseAbsoluteTarget, parseConnectTarget, writeRawResponse, type AbsoluteTarget, type HostPort } from "./http-message.js";

export interface ProxyHandlers<T> {
  /** Plain-HTTP forward-proxy request (absolute-form target). */
  onHttpRequest(req: IncomingMessage, res: ServerResponse, target: AbsoluteTarget): void;
  onConnect(req: IncomingMessage, socket: Duplex, head: Buffer, target: HostPort): void;
  /** A request decrypted from a tunnel the handler chose to intercept. */
  onInterceptedRequest(req: IncomingMessage, res: ServerResponse, tunnel: T): void;
  health(): Record<string, unknown>;
}

const CONNECTED = "HTTP/1.1 200 Connection Established\r\n\r\n";
const NOT_A_PROXY_REQUEST = "bot-bottle proxy: expected an absolute-form http:// request or CONNECT (set this address as HTTP_PROXY/HTTPS_PROXY)";

export class ProxyServer<T> {
  readonly server: Server;
  readonly #mitm: Server;
  readonly #tunnels = new WeakMap<object, T>();
  readonly #open = new Set<Duplex>();

  constructor(private readonly handlers: ProxyHandlers<T>) {
    const options = { keepAliveTimeout: 65_000, headersTimeout: 60_000, requestTimeout: 0, noDelay: true };
    this.server = createServer(options, (req, res) => this.#onRequest(req, res));
    this.server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onConnect(req, socket, head));
    this.server.on("connection", (s: Socket) => this.#track(s));
    this.server.on("clientError", (_err, socket: Duplex) => writeRawResponse(socket, 400, "bot-bottle proxy: malformed request"));
    this.#mitm = createServer(options, (req, res) => {
      const tunnel = this.#tunnels.get(req.socket);
      if (tunnel === undefined) return void res.destroy();
      this.handlers.onInterceptedRequest(req, res, tunnel);
    });
    this.#mitm.on("clientError", (_err, socket: Duplex) => socket.destroy());
  }

  listen(port: number, host = "0.0.0.0"): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.#open) s.destroy();
    await closed;
  }

  /** Answer CONNECT with 200, then speak TLS as `context` and hand requests to onInterceptedRequest. */
  intercept(socket: Duplex, head: Buffer, tunnel: T, context: SecureContext): void {
    socket.write(CONNECTED);
    if (head.length) socket.unshift(head);
    const tls = new TLSSocket(socket as Socket, { isServer: true, secureContext: context, ALPNProtocols: ["http/1.1"] });
    tls.on("error", () => socket.destroy());
    this.#tunnels.set(tls, tunnel);
    this.#mitm.emit("connection", tls);
  }

  /**
   * Answer CONNECT with 200 and splice the client to `upstream` (already
   * connected or connecting). Resolves with byte counts when both sides end.
   */
  splice(socket: Duplex, head: Buffer, upstream: Socket, sendEstablished = true): Promise<{ up: number; down: number }> {
    return new Promise((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        socket.destroy();
        upstream.destroy();
        // The sockets' own byte counters: cheaper than a second 'data' listener per chunk.
        resolve({ up: upstream.bytesWritten, down: upstream.bytesRead });
      };
      if (sendEstablished) socket.write(CONNECTED);
      if (head.length) upstream.write(head);
      socket.pipe(upstream);
      upstream.pipe(socket);
      socket.on("error", finish).on("close", finish);
      upstream.on("error", finish).on("close", finish);
    });
  }

  #track(s: Socket): void {
    this.#open.add(s);
    s.once("close", () => this.#open.delete(s));
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (req.url === "/health" && req.method === "GET") {
      const body = JSON.stringify({ status: "ok", ...this.handlers.health() });
      return void res.writeHead(200, { "content-type": "application/json" }).end(body);
    }
    const target = parseAbsoluteTarget(req.url);
    if (!target) return void res.writeHead(400, { "content-type": "text/plain; charset=utf-8" }).end(`${NOT_A_PROXY_REQUEST}\n`);
    this.handlers.onHttpRequest(req, res, target);
  }

  #onConnect(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    (socket as Socket).setNoDelay?.(true);
    const target = parseConnectTarget(req.url);
    if (!target) return writeRawResponse(socket, 400, "bot-bottle proxy: CONNECT needs a host:port target");
    this.handlers.onConnect(req, socket, head, target);
  }
}

/** A TCP connection that resolves once connected (or rejects with the dial error). */
export function dial(host: string, port: number, timeoutMs = 10_000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error(`connect timeout to ${host}:${port}`), { code: "ETIMEDOUT" }));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
