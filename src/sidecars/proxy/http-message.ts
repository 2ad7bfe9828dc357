// Pieces of HTTP/1.1 proxying shared by both modes: request-target parsing,
// hop-by-hop header filtering, and replies written on raw sockets.
import type { Duplex } from "node:stream";

export interface HostPort {
  /** As the client wrote it (before canonicalisation). */
  host: string;
  port: number;
}

export interface AbsoluteTarget extends HostPort {
  /** Origin-form path and query, e.g. `/a/b?c=d`. */
  path: string;
}

// RFC 9110 §7.6.1 plus the de-facto Proxy-Connection and Keep-Alive.
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade"]);

/** `host:port` of a CONNECT request; undefined when malformed. */
export function parseConnectTarget(authority: string | undefined): HostPort | undefined {
  const m = /^(\[[^\]]+\]|[^:/?#\s[\]]+):(\d{1,5})$/.exec(authority ?? "");
  if (!m) return undefined;
  const port = Number(m[2]);
  return port > 0 && port < 65536 ? { host: m[1]!, port } : undefined;
}

/**
 * An absolute-form `http://host[:port]/path` request target. Parsed by hand,
 * not with WHATWG URL, so the host stays exactly as written and one parser
 * (parseHost) decides what address it means.
 */
export function parseAbsoluteTarget(url: string | undefined): AbsoluteTarget | undefined {
  const m = /^http:\/\/(?:[^@/?#]*@)?(\[[^\]]+\]|[^:/?#[\]]+)(?::(\d{1,5}))?([/?][^#]*)?(?:#.*)?$/i.exec(url ?? "");
  if (!m) return undefined;
  const port = m[2] ? Number(m[2]) : 80;
  if (port < 1 || port > 65535) return undefined;
  const rest = m[3] ?? "/";
  return { host: m[1]!, port, path: rest.startsWith("?") ? `/${rest}` : rest };
}

/** The Host header value for a canonical host. */
export function authorityOf(host: string, port: number, defaultPort: number): string {
  const h = host.includes(":") ? `[${host}]` : host;
  return port === defaultPort ? h : `${h}:${port}`;
}

/**
 * Request or response headers to pass on, as a flat raw list (keeps
 * duplicates and case): hop-by-hop headers, those named in Connection, Host,
 * and any name in `drop` (lowercase) are removed.
 */
export function endToEndHeaders(raw: readonly string[], drop: ReadonlySet<string> = new Set()): string[] {
  const connectionListed = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === "connection") for (const t of raw[i + 1]!.split(",")) connectionListed.add(t.trim().toLowerCase());
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || connectionListed.has(name) || name === "host" || drop.has(name)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** Pairs view of a raw header list, for scanning. */
export function headerPairs(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

const REASONS: Record<number, string> = { 400: "Bad Request", 403: "Forbidden", 413: "Content Too Large", 502: "Bad Gateway", 504: "Gateway Timeout" };

/** A complete plain-text response on a socket that is not (or no longer) an http.ServerResponse. */
export function writeRawResponse(socket: Duplex, status: number, body: string): void {
  const text = body.endsWith("\n") ? body : `${body}\n`;
  const head = `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n`;
  if (!socket.writable) return void socket.destroy();
  socket.end(head + text);
}
