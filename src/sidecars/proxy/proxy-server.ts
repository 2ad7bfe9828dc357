// The forward-proxy frame both modes share: one listening http.Server for
// absolute-form requests, CONNECT and /health, plus an unlistened server that
// receives decrypted requests from intercepted (MITM) tunnels. Policy lives in
// the mode's handlers; this file only moves bytes.
//
// CONNECT is the hot path (one per HTTPS connection an agent opens), so a
// connection whose first bytes are `CONNECT ` never enters node's HTTP
// machinery: its head is parsed here (strictly, bounded, with the same
// header timeout) and handed to onConnect. Everything else is given to the
// http.Server exactly as it arrived.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket, type SecureContext } from "node:tls";
import { DEFAULT_PROXY_LIMITS, type ProxyLimitsConfig } from "../../contracts/proxy-limits.js";
import { ALERT_UNRECOGNIZED_NAME, parseClientHello } from "./client-hello.js";
import { BodyBudget } from "./relay.js";
import { parseAbsoluteTarget, parseConnectHead, parseConnectTarget, writeRawResponse, type AbsoluteTarget, type ConnectRequest, type HostPort } from "./http-message.js";

export interface ProxyHandlers<T> {
  /** Plain-HTTP forward-proxy request (absolute-form target). */
  onHttpRequest(req: IncomingMessage, res: ServerResponse, target: AbsoluteTarget): void;
  onConnect(req: ConnectRequest, socket: Duplex, head: Buffer, target: HostPort): void;
  /** A request decrypted from a tunnel the handler chose to intercept. */
  onInterceptedRequest(req: IncomingMessage, res: ServerResponse, tunnel: T): void;
  health(): Record<string, unknown>;
  /** A connection was cut by a limit (cap, or a timeout of some connection state): for the decision log. */
  onLimit?(limit: LimitKind, detail: Record<string, unknown>): void;
}

export type LimitKind = "max_connections" | "head_timeout" | "handshake_timeout" | "idle_timeout";

/**
 * Per proxy process, i.e. per bottle. Every connection state has a timeout:
 * the request head, the TLS ClientHello of a tunnel, and idleness (no byte
 * either way) once established; and the number of open client connections
 * is capped, so one agent cannot exhaust the sidecar's sockets or memory.
 */
export interface ProxyLimits {
  maxConnections: number;
  headTimeoutMs: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  maxBufferedBodyBytes: number;
}

export function toProxyLimits(c: ProxyLimitsConfig): ProxyLimits {
  return {
    maxConnections: c.max_connections,
    headTimeoutMs: c.head_timeout_s * 1000,
    handshakeTimeoutMs: c.handshake_timeout_s * 1000,
    idleTimeoutMs: c.idle_timeout_s * 1000,
    maxBufferedBodyBytes: Math.round(c.max_buffered_body_mb * 1024 * 1024),
  };
}

export const DEFAULT_LIMITS: ProxyLimits = toProxyLimits(DEFAULT_PROXY_LIMITS);

/** What a passthrough tunnel came to: spliced (with byte counts) or refused before any byte went upstream. */
export type PassthroughOutcome = { ok: true; sni: string | undefined; up: number; down: number } | { ok: false; reason: string };

const CONNECTED = Buffer.from("HTTP/1.1 200 Connection Established\r\n\r\n", "latin1");
/** The first byte of a TLS ClientHello (a handshake record). */
const TLS_HANDSHAKE_RECORD = 0x16;

/** Whether an intercepted request came over TLS (not plain HTTP in a tunnel). */
export const isTlsRequest = (req: IncomingMessage): boolean => req.socket instanceof TLSSocket;
const CONNECT_PREFIX = Buffer.from("CONNECT ");
const CLIENT_IDLE_GRACE_MS = 2_000;
const NOT_A_PROXY_REQUEST = "bot-bottle proxy: expected an absolute-form http:// request or CONNECT (set this address as HTTP_PROXY/HTTPS_PROXY)";

export class ProxyServer<T> {
  readonly server: Server;
  readonly #mitm: Server;
  readonly #tunnels = new WeakMap<object, T>();
  readonly #open = new Set<Duplex>();
  /** Connections whose first request head is still arriving: since when, and how to stop reading it. */
  readonly #awaitingHead = new Map<Socket, { since: number; buf: Buffer | undefined }>();
  /** The http.Server's own 'connection' listener, for connections that are not CONNECT. */
  readonly #httpConnection: (s: Socket) => void;
  /** Spliced tunnels (and passthrough tunnels waiting for their ClientHello). */
  readonly #splices = new Set<Splice>();
  /** The sweep of #awaitingHead and #splices: armed only while connections are open (see #pauseSweeps). */
  #sweepTimer: NodeJS.Timeout | undefined;
  /** Servers whose own connection sweep #pauseSweeps stopped. */
  readonly #pausedSweeps = new Set<Server>();
  #limits: ProxyLimits = DEFAULT_LIMITS;
  /** Request bodies held for scanning, all connections together (see BodyBudget). */
  readonly bodies = new BodyBudget(DEFAULT_LIMITS.maxBufferedBodyBytes);

  constructor(
    private readonly handlers: ProxyHandlers<T>,
    limits: ProxyLimits = DEFAULT_LIMITS,
  ) {
    // Node checks head timeouts in a sweep (every 30 s by default): often
    // enough that a short head timeout means what it says.
    const options = { keepAliveTimeout: 65_000, requestTimeout: 0, noDelay: true, connectionsCheckingInterval: 500 };
    this.server = createServer(options, (req, res) => this.#onRequest(req, res));
    // The http.Server keeps listening (its timeouts, connection tracking and
    // close() stay as they are); only its 'connection' listener is put
    // behind the CONNECT check, and called for every other connection.
    const [httpConnection, ...others] = this.server.listeners("connection") as Array<(s: Socket) => void>;
    if (!httpConnection || others.length) throw new Error("http.Server has an unexpected set of 'connection' listeners");
    this.server.removeListener("connection", httpConnection);
    this.#httpConnection = httpConnection;
    const proxy = this;
    this.#headData = function (this: Socket, chunk: Buffer) {
      proxy.#onHeadData(this, chunk);
    };
    this.#headEnded = function (this: Socket) {
      proxy.#stopHead(this);
      this.destroy();
    };
    this.#closed = function (this: Socket) {
      proxy.#forget(this);
    };
    this.server.on("connection", (s: Socket) => {
      if (this.#open.size >= this.#limits.maxConnections) return this.#refuseOverCap(s);
      this.#track(s);
      this.#readFirstHead(s);
    });
    // A CONNECT that follows other requests on a kept-alive connection still arrives here.
    this.server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onConnect({ url: req.url ?? "", rawHeaders: req.rawHeaders }, socket, head));
    this.server.on("clientError", (_err, socket: Duplex) => writeRawResponse(socket, 400, "bot-bottle proxy: malformed request"));
    this.#mitm = createServer(options, (req, res) => {
      const tunnel = this.#tunnels.get(req.socket);
      if (tunnel === undefined) return void res.destroy();
      this.handlers.onInterceptedRequest(req, res, tunnel);
    });
    this.#mitm.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Node's own head timeout on a decrypted connection: say so, like the outer server does.
      if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
        this.handlers.onLimit?.("head_timeout", { tls: "intercepted" });
        return writeRawResponse(socket, 408, "bot-bottle proxy: request head not received in time");
      }
      writeRawResponse(socket, 400, "bot-bottle proxy: malformed request");
    });
    // The decrypting server never listens (connections are handed to it), so
    // node would never start the sweep that enforces headersTimeout on its
    // connections; 'listening' is what starts it.
    this.#mitm.emit("listening");
    this.setLimits(limits);
    this.#pauseSweeps();
  }

  /** Apply (new) limits: the cap and timeouts count for connections from now on. */
  setLimits(limits: ProxyLimits): void {
    const period = sweepPeriodMs(this.#limits);
    this.#limits = limits;
    if (this.#sweepTimer && sweepPeriodMs(limits) !== period) {
      clearInterval(this.#sweepTimer);
      this.#sweepTimer = undefined;
      this.#armSweep();
    }
    this.bodies.max = limits.maxBufferedBodyBytes;
    for (const srv of [this.server, this.#mitm]) {
      srv.headersTimeout = limits.headTimeoutMs;
      // Idle: no byte either way on a kept-alive or busy connection. A bit
      // longer than the upstream's idle limit, so a client waiting on a
      // silent upstream is answered 504 instead of being dropped.
      srv.timeout = limits.idleTimeoutMs + CLIENT_IDLE_GRACE_MS;
    }
  }

  get limits(): ProxyLimits {
    return this.#limits;
  }

  /** Open client connections (for /health and tests). */
  get connections(): number {
    return this.#open.size;
  }

  listen(port: number, host = "0.0.0.0"): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        if (this.#open.size === 0) this.#pauseSweeps();
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    clearInterval(this.#sweepTimer);
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.#open) s.destroy();
    await closed;
  }

  /**
   * Answer CONNECT with 200, then speak TLS as `context` and hand requests to
   * onInterceptedRequest. With `plain`, a client that speaks plain HTTP in
   * the tunnel (Node's fetch tunnels http:// URLs through CONNECT) has its
   * requests handed over as they are; `isTlsRequest` tells them apart.
   */
  intercept(socket: Duplex, head: Buffer, tunnel: T, context: SecureContext, o: { plain?: boolean } = {}): void {
    socket.write(CONNECTED);
    // Until the handshake is done, the (shorter) handshake timeout applies;
    // after it, the decrypting server's own idle and head timeouts.
    const handshake = setTimeout(() => {
      this.handlers.onLimit?.("handshake_timeout", { tls: "intercepted" });
      socket.destroy();
    }, this.#limits.handshakeTimeoutMs).unref();
    const start = (first: Buffer) => {
      if (first.length) socket.unshift(first);
      if (o.plain && first[0] !== TLS_HANDSHAKE_RECORD) {
        clearTimeout(handshake);
        this.#tunnels.set(socket, tunnel);
        this.#mitm.emit("connection", socket);
        socket.resume();
        return;
      }
      const tls = new TLSSocket(socket as Socket, { isServer: true, secureContext: context, ALPNProtocols: ["http/1.1"] });
      tls.on("error", () => socket.destroy());
      tls.once("secure", () => clearTimeout(handshake));
      tls.once("close", () => clearTimeout(handshake));
      this.#tunnels.set(tls, tunnel);
      this.#mitm.emit("connection", tls);
    };
    if (head.length || !o.plain) {
      start(head);
      return;
    }
    socket.once("close", () => clearTimeout(handshake));
    socket.once("data", (chunk: Buffer) => {
      socket.pause();
      start(chunk);
    });
  }

  /**
   * Answer CONNECT with 200, read the client's TLS ClientHello without
   * terminating TLS, and splice to `upstream` only if the SNI it asks for is
   * `host` (case-insensitive, trailing dot ignored). A missing SNI passes
   * only when `ipLiteral` (clients send none for IP addresses). Anything
   * that is not a TLS ClientHello, or a mismatch, ends the tunnel with a TLS
   * alert before a single byte reaches the upstream.
   */
  passthrough(socket: Duplex, head: Buffer, upstream: Socket, host: string, ipLiteral: boolean, port?: number): Promise<PassthroughOutcome> {
    socket.write(CONNECTED);
    return new Promise((resolve) => this.#startSplice(socket, head, upstream, { host, ipLiteral, ...(port !== undefined ? { port } : {}) }, resolve));
  }

  /**
   * Ends every passthrough tunnel whose CONNECT host and port `keep` no
   * longer accepts (a reload dropped them): a grant that expired must not
   * keep working on a connection opened while it held. Returns how many.
   */
  closeTunnels(keep: (host: string, port: number | undefined) => boolean): number {
    let closed = 0;
    for (const t of this.#splices) {
      if (!t.sni || keep(t.sni.host, t.sni.port)) continue;
      t.close("the firewall's config no longer lets this tunnel through");
      closed++;
    }
    return closed;
  }

  /**
   * Answer CONNECT with 200 and splice the client to `upstream` (already
   * connected or connecting). Resolves with byte counts when both sides end.
   */
  splice(socket: Duplex, head: Buffer, upstream: Socket, sendEstablished = true): Promise<{ up: number; down: number }> {
    if (sendEstablished) socket.write(CONNECTED);
    return new Promise((resolve) => this.#startSplice(socket, head, upstream, undefined, (o) => resolve(o.ok ? o : { up: 0, down: 0 })));
  }

  #startSplice(socket: Duplex, head: Buffer, upstream: Socket, sni: SniCheck | undefined, done: (o: PassthroughOutcome) => void): void {
    const t = new Splice(socket, upstream, sni, Date.now() + this.#limits.handshakeTimeoutMs, (o) => {
      this.#splices.delete(t);
      if (this.#open.size === 0 && this.#splices.size === 0) this.#pauseSweeps();
      done(o);
    });
    this.#splices.add(t);
    this.#armSweep();
    t.start(head);
  }

  /** Over the cap: tell the agent plainly (it reads this as the answer to its request) and close. */
  #refuseOverCap(s: Socket): void {
    const max = this.#limits.maxConnections;
    this.handlers.onLimit?.("max_connections", { max });
    s.on("error", () => s.destroy());
    writeRawResponse(s, 503, `bot-bottle proxy: too many open connections from this bottle (limit ${max}); close idle connections and retry`);
    s.destroySoon();
  }

  #track(s: Socket): void {
    this.#open.add(s);
    if (this.#open.size === 1) this.#resumeSweeps();
    s.once("close", this.#closed);
  }

  readonly #closed: (this: Socket) => void;

  #forget(s: Socket): void {
    this.#open.delete(s);
    this.#awaitingHead.delete(s);
    if (this.#open.size === 0 && this.#splices.size === 0) this.#pauseSweeps();
  }

  /**
   * Timeout sweeps run only while a connection is open. Idle, each proxy
   * would otherwise wake five times a second (our head sweep, and node's
   * connection sweep in both http servers every 500 ms), which was nearly
   * all of an idle bottle's CPU (0.06 % of a core per proxy in a container,
   * 0.004 % without). A sweep started when the first connection opens
   * enforces the same timeouts: they count from each connection's own
   * clock, not from the sweep's.
   */
  #pauseSweeps(): void {
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    for (const srv of [this.server, this.#mitm]) if (pauseNodeSweep(srv)) this.#pausedSweeps.add(srv);
  }

  #resumeSweeps(): void {
    this.#armSweep();
    for (const srv of this.#pausedSweeps) resumeNodeSweep(srv);
    this.#pausedSweeps.clear();
  }

  /**
   * Our sweep: CONNECT heads still arriving, ClientHellos of passthrough
   * tunnels and idle spliced tunnels, all checked by one timer instead of
   * one armed (and re-armed on every chunk) per connection. It runs often
   * enough for the shortest of those timeouts: a timeout fires at most a
   * sweep period (at most a second) late, never early.
   */
  #armSweep(): void {
    this.#sweepTimer ??= setInterval(() => {
      const now = Date.now();
      this.#expireSlowHeads(now);
      for (const t of this.#splices) t.sweep(now, this.#limits, this.handlers.onLimit);
    }, sweepPeriodMs(this.#limits)).unref();
  }

  /** Whether any timeout sweep is armed (tests: none while idle). */
  get sweeping(): boolean {
    return this.#sweepTimer !== undefined || [this.server, this.#mitm].some((srv) => nodeSweepTimer(srv)?._destroyed === false);
  }

  /**
   * Read a new connection's first bytes. `CONNECT ` → parse the head here
   * and go to onConnect; anything else → the http.Server's own connection
   * listener, then the bytes read so far, as if it had read them itself.
   */
  #readFirstHead(socket: Socket): void {
    this.#awaitingHead.set(socket, { since: Date.now(), buf: undefined });
    socket.on("data", this.#headData);
    socket.on("end", this.#headEnded);
    socket.on("error", this.#headEnded);
  }

  /** Stop reading a first head (its own listeners; 'close' forgets it in #track's). */
  #stopHead(socket: Socket): void {
    socket.off("data", this.#headData);
    socket.off("end", this.#headEnded);
    socket.off("error", this.#headEnded);
    this.#awaitingHead.delete(socket);
  }

  // One listener of each kind for every connection's first head (called with
  // the socket as `this`), rather than closures made per connection.
  readonly #headData: (this: Socket, chunk: Buffer) => void;
  readonly #headEnded: (this: Socket) => void;

  #onHeadData(socket: Socket, chunk: Buffer): void {
    const pending = this.#awaitingHead.get(socket);
    if (!pending) return;
    const from = pending.buf?.length ?? 0;
    const buf = pending.buf ? Buffer.concat([pending.buf, chunk]) : chunk;
    pending.buf = buf;
    const n = Math.min(buf.length, CONNECT_PREFIX.length);
    if (buf.compare(CONNECT_PREFIX, 0, n, 0, n) !== 0) {
      this.#stopHead(socket);
      this.#httpConnection.call(this.server, socket);
      // The parser now listens for 'data': give it what was already read.
      socket.emit("data", buf);
      return;
    }
    if (n < CONNECT_PREFIX.length) return;
    const head = parseConnectHead(buf, from);
    if (head.kind === "incomplete") return;
    this.#stopHead(socket);
    socket.on("error", destroyOnError);
    if (head.kind === "invalid") {
      writeRawResponse(socket, head.status, `bot-bottle proxy: ${head.reason}`);
      return;
    }
    // Like node's server after 'connect': bytes that arrive before the
    // handler reads (or pipes) the socket wait in its buffer.
    (socket as { readableFlowing: boolean | null }).readableFlowing = null;
    this.#connect(head, socket, buf.subarray(head.end));
  }

  #expireSlowHeads(now: number): void {
    const deadline = now - this.#limits.headTimeoutMs;
    for (const [socket, { since }] of this.#awaitingHead) {
      if (since > deadline) continue;
      this.#stopHead(socket);
      this.handlers.onLimit?.("head_timeout", {});
      socket.on("error", destroyOnError);
      writeRawResponse(socket, 408, "bot-bottle proxy: request head not received in time");
      socket.destroySoon();
    }
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

  #onConnect(req: ConnectRequest, socket: Duplex, head: Buffer): void {
    socket.on("error", destroyOnError);
    this.#connect(req, socket, head);
  }

  /** A CONNECT head read: its target, then the mode's handler (the socket already ends itself on error). */
  #connect(req: ConnectRequest, socket: Duplex, head: Buffer): void {
    const target = parseConnectTarget(req.url);
    if (!target) {
      writeRawResponse(socket, 400, "bot-bottle proxy: CONNECT needs a host:port target");
      return;
    }
    this.handlers.onConnect(req, socket, head, target);
  }
}

/** An 'error' listener that ends the socket (called with the socket as `this`). */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** The host a passthrough tunnel's ClientHello must ask for (SNI). */
interface SniCheck {
  host: string;
  ipLiteral: boolean;
  /** The CONNECT port, for re-checking the tunnel after a reload. */
  port?: number;
}

/** How often our sweep runs: a quarter of the shortest timeout it enforces, between 50 ms and 1 s. */
function sweepPeriodMs(l: ProxyLimits): number {
  return Math.max(50, Math.min(1_000, Math.floor(Math.min(l.headTimeoutMs, l.handshakeTimeoutMs, l.idleTimeoutMs) / 4)));
}

const EMPTY = Buffer.alloc(0);
/** A tunnel's phases. Hello: passthrough, reading the ClientHello; nothing goes upstream yet. */
const Phase = { Hello: 0, Spliced: 1, Done: 2 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/**
 * One tunnel between a client and an upstream socket. Bytes are moved by
 * hand rather than with pipe(), whose per-stream listeners and state cost
 * more than the relay itself on short tunnels (one per HTTPS connection an
 * agent opens); what pipe() did is kept: backpressure both ways, and the end
 * of one side's stream ends the other's. A passthrough tunnel starts in the
 * ClientHello phase (see ProxyServer.passthrough). Both of its timeouts, the
 * ClientHello's and idleness (no byte either way), are checked by the
 * proxy's sweep (see sweep()), not by a timer per tunnel re-armed on every
 * chunk.
 */
class Splice {
  #phase: Phase;
  #hello: Buffer = EMPTY;
  /** The SNI the ClientHello asked for (none for an IP literal). */
  #sni: string | undefined;
  /** Bytes moved when the sweep last looked, and since when that count stands. */
  #moved = -1;
  #movedAt = 0;

  constructor(
    readonly client: Duplex,
    readonly upstream: Socket,
    readonly sni: SniCheck | undefined,
    readonly helloBy: number,
    private readonly done: (o: PassthroughOutcome) => void,
  ) {
    this.#phase = sni ? Phase.Hello : Phase.Spliced;
  }

  start(head: Buffer): void {
    const { client, upstream } = this;
    client.on("data", this.#fromClient);
    client.on("end", this.#clientEnded);
    client.on("error", this.#clientClosed);
    client.on("close", this.#clientClosed);
    upstream.on("error", this.#upstreamClosed);
    upstream.on("close", this.#upstreamClosed);
    upstream.on("drain", this.#upstreamDrained);
    if (this.#phase === Phase.Hello) {
      this.#hello = head;
      if (head.length) this.#checkHello();
    } else this.#splice(head);
  }

  /** Ends the tunnel now: before its ClientHello with a TLS alert, after it by closing both sides. */
  close(reason: string): void {
    if (this.#phase === Phase.Hello) this.#refuse(reason, true);
    else this.#finish();
  }

  /** The proxy's sweep: the ClientHello deadline, then idleness once spliced. */
  sweep(now: number, limits: ProxyLimits, onLimit: ProxyHandlers<unknown>["onLimit"]): void {
    if (this.#phase === Phase.Hello) {
      if (now < this.helloBy) return;
      onLimit?.("handshake_timeout", { tls: "passthrough", host: this.sni!.host });
      this.#refuse("no TLS ClientHello in time", false);
      return;
    }
    if (this.#phase !== Phase.Spliced) return;
    // The sockets' own counters: every byte read from one side was written to the other.
    const moved = this.upstream.bytesRead + this.upstream.bytesWritten;
    if (moved !== this.#moved) {
      this.#moved = moved;
      this.#movedAt = now;
      return;
    }
    if (now - this.#movedAt < limits.idleTimeoutMs) return;
    onLimit?.("idle_timeout", { tls: "passthrough" });
    this.#finish();
  }

  #checkHello(): void {
    const hello = parseClientHello(this.#hello);
    if (hello.kind === "incomplete") return;
    if (hello.kind === "invalid") {
      this.#refuse(hello.reason, true);
      return;
    }
    const { host, ipLiteral } = this.sni!;
    const names = hello.serverNames;
    if (names.length === 0 && !ipLiteral) {
      this.#refuse(`the ClientHello names no server (SNI); "${host}" was CONNECTed`, true);
      return;
    }
    let sni: string | undefined;
    for (const raw of names) {
      const n = canonicalSni(raw);
      if (n !== host) {
        this.#refuse(`the ClientHello asks for "${n}" (SNI) but "${host}" was CONNECTed`, true);
        return;
      }
      sni ??= n;
    }
    this.#sni = sni;
    const buf = this.#hello;
    this.#hello = EMPTY;
    this.#splice(buf);
  }

  #splice(head: Buffer): void {
    this.#phase = Phase.Spliced;
    const { client, upstream } = this;
    if (head.length) upstream.write(head);
    const relay = relays.get(upstream);
    if (relay) {
      relay.attach(client);
      return;
    }
    upstream.on("data", this.#fromUpstream);
    upstream.once("end", () => client.end());
    client.on("drain", () => upstream.resume());
  }

  readonly #fromClient = (chunk: Buffer): void => {
    if (this.#phase === Phase.Spliced) {
      // The upstream has ended its side (it closes when its peer does): what
      // pipe() did here was fail the write and end the tunnel.
      if (this.upstream.writableEnded) {
        this.#finish();
        return;
      }
      if (!this.upstream.write(chunk)) this.client.pause();
      return;
    }
    if (this.#phase !== Phase.Hello) return;
    this.#hello = this.#hello.length ? Buffer.concat([this.#hello, chunk]) : chunk;
    this.#checkHello();
  };

  readonly #fromUpstream = (chunk: Buffer): void => {
    if (!this.client.write(chunk)) this.upstream.pause();
  };

  readonly #upstreamDrained = (): void => {
    if (this.#phase === Phase.Spliced) this.client.resume();
  };

  readonly #clientEnded = (): void => {
    if (this.#phase === Phase.Hello) {
      this.#refuse("the client closed the tunnel before its ClientHello", false);
      return;
    }
    this.upstream.end();
  };

  readonly #clientClosed = (): void => {
    if (this.#phase === Phase.Hello) {
      this.#refuse("the client closed the tunnel before its ClientHello", false);
      return;
    }
    this.#finish();
  };

  readonly #upstreamClosed = (): void => {
    if (this.#phase === Phase.Hello) {
      this.#refuse("the upstream closed the connection before the client's ClientHello", false);
      return;
    }
    this.#finish();
  };

  #refuse(reason: string, alert: boolean): void {
    if (this.#phase === Phase.Done) return;
    this.#phase = Phase.Done;
    const { client } = this;
    this.upstream.destroy();
    relays.get(this.upstream)?.release();
    if (alert && client.writable) {
      client.end(ALERT_UNRECOGNIZED_NAME);
      setTimeout(() => client.destroy(), 1_000).unref();
    } else client.destroy();
    this.done({ ok: false, reason });
  }

  #finish(): void {
    if (this.#phase !== Phase.Spliced) return;
    this.#phase = Phase.Done;
    this.client.destroy();
    this.upstream.destroy();
    relays.get(this.upstream)?.release();
    // The sockets' own byte counters: cheaper than counting every chunk.
    this.done({ ok: true, sni: this.#sni, up: this.upstream.bytesWritten, down: this.upstream.bytesRead });
  }
}

/** An SNI as the allowlist compares names: lowercase, no trailing dot. */
function canonicalSni(name: string): string {
  let end = name.length;
  while (end > 0 && name.charCodeAt(end - 1) === 0x2e) end--;
  return (end === name.length ? name : name.slice(0, end)).toLowerCase();
}

/**
 * Upstream → client bytes of a spliced tunnel (the download direction, where
 * bulk data goes). Node gives every socket read a fresh 64 KiB buffer; at
 * hundreds of MB/s that external memory churn alone sets off a full
 * (mark-compact) GC every few dozen MiB. This reads into one buffer per
 * tunnel instead, reused whenever the client socket has nothing queued (so
 * no pending write can still point into it), a fresh one otherwise. Closed
 * tunnels hand their buffer back to a small pool, so short tunnels do not
 * churn 64 KiB each either.
 */
class DownstreamRelay {
  static readonly BUFFER_BYTES = 64 * 1024;
  static readonly #pool: Buffer[] = [];
  static readonly #POOL_MAX = 64;
  #own: Buffer | undefined = DownstreamRelay.#pool.pop() ?? Buffer.allocUnsafe(DownstreamRelay.BUFFER_BYTES);
  #client: Duplex | undefined;
  #early: Buffer[] = [];
  #upstream: Socket | undefined;

  readonly onread = {
    buffer: (): Buffer => (this.#own === undefined || (this.#client !== undefined && this.#client.writableLength > 0) ? Buffer.allocUnsafe(DownstreamRelay.BUFFER_BYTES) : this.#own),
    callback: (n: number, buf: Buffer): boolean => {
      const chunk = buf.subarray(0, n);
      if (this.#client) return this.#client.write(chunk);
      // Bytes that arrive before the client is attached wait (copied: the
      // buffer is reused), and reading stops until attach().
      this.#early.push(buf === this.#own ? Buffer.from(chunk) : chunk);
      return false;
    },
  };

  bind(upstream: Socket): void {
    this.#upstream = upstream;
  }

  /** Both sockets are destroyed: keep the buffer for the next tunnel unless a write may still hold it. */
  release(): void {
    const own = this.#own;
    this.#own = undefined;
    if (own && (this.#client?.writableLength ?? 0) === 0 && DownstreamRelay.#pool.length < DownstreamRelay.#POOL_MAX) DownstreamRelay.#pool.push(own);
  }

  attach(client: Duplex): void {
    const upstream = this.#upstream!;
    this.#client = client;
    for (const c of this.#early) client.write(c);
    this.#early = [];
    client.on("drain", () => upstream.resume());
    upstream.once("end", () => client.end());
    if (client.writableLength <= client.writableHighWaterMark) upstream.resume();
  }
}

const relays = new WeakMap<Socket, DownstreamRelay>();

// Node's http.Server sweeps its connections for head and request timeouts on
// a timer it starts when listening and stops only on close. Its timer and
// setup function are internal: found by their names, and when either is
// missing (another Node), the sweep is left running as before.
const SWEEP_TIMER = "http.server.connectionsCheckingInterval";
const SWEEP_SETUP = "setupConnectionsTracking";

function nodeSweepTimer(srv: Server): (NodeJS.Timeout & { _destroyed?: boolean }) | undefined {
  const key = Object.getOwnPropertySymbols(srv).find((k) => k.description === SWEEP_TIMER);
  return key ? (srv as unknown as Record<symbol, NodeJS.Timeout>)[key] : undefined;
}

const nodeSweepSetup = (srv: Server) => srv.listeners("listening").find((f) => f.name === SWEEP_SETUP) as ((this: Server) => void) | undefined;

/** Stop a server's own sweep if it can be started again; true when stopped. */
function pauseNodeSweep(srv: Server): boolean {
  const timer = nodeSweepTimer(srv);
  if (!timer || !nodeSweepSetup(srv)) return false;
  clearInterval(timer);
  return true;
}

function resumeNodeSweep(srv: Server): void {
  nodeSweepSetup(srv)?.call(srv);
}

/**
 * Connect timeouts of dials in progress, checked by one shared sweep instead
 * of a timer armed and cancelled per connection (to within DIAL_SWEEP_MS).
 */
const pendingDials = new Map<Socket, { deadline: number; expire: () => void }>();
const DIAL_SWEEP_MS = 250;
let dialSweep: NodeJS.Timeout | undefined;

function sweepDials(): void {
  const now = Date.now();
  for (const [s, d] of pendingDials) {
    if (d.deadline > now) continue;
    pendingDials.delete(s);
    d.expire();
  }
  if (pendingDials.size === 0) {
    clearInterval(dialSweep);
    dialSweep = undefined;
  }
}

/**
 * A TCP connection that resolves once connected (or rejects with the dial
 * error). With `forSplice`, what it reads is meant for splice(): it goes to
 * the client through a reused buffer rather than as 'data' events.
 */
export function dial(host: string, port: number, timeoutMs = 10_000, forSplice = false): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const relay = forSplice ? new DownstreamRelay() : undefined;
    const s = netConnect({ host, port, noDelay: true, ...(relay ? { onread: relay.onread } : {}) });
    if (relay) {
      relay.bind(s);
      relays.set(s, relay);
    }
    pendingDials.set(s, {
      deadline: Date.now() + timeoutMs,
      expire: () => {
        s.destroy();
        reject(Object.assign(new Error(`connect timeout to ${host}:${port}`), { code: "ETIMEDOUT" }));
      },
    });
    dialSweep ??= setInterval(sweepDials, DIAL_SWEEP_MS).unref();
    s.once("connect", () => {
      pendingDials.delete(s);
      resolve(s);
    });
    s.once("error", (err) => {
      pendingDials.delete(s);
      reject(err);
    });
  });
}
