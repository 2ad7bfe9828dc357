// Pieces of HTTP/1.1 proxying shared by both modes: request-target parsing,
// hop-by-hop header filtering, and replies written on raw sockets.
import type { Duplex } from "node:stream";
import { isIpv6Literal } from "../../security/address.js";

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

/** What a CONNECT request carries besides its socket (http.IncomingMessage fits). */
export interface ConnectRequest {
  /** The request target (authority) as sent. */
  url: string;
  /** Header names and values, flat, as sent (latin1, like node's parser). */
  rawHeaders: readonly string[];
}

/** The blank line that ends a head (a Buffer: a string needle is encoded again on every search). */
const HEAD_END = Buffer.from("\r\n\r\n", "latin1");

/** Node's default --max-http-header-size: the same bound for heads parsed here. */
export const MAX_HEAD_BYTES = 16 * 1024;

export type ConnectHead =
  | { kind: "incomplete" }
  | { kind: "invalid"; status: 400 | 431; reason: string }
  | (ConnectRequest & { kind: "connect" /** Offset of the first byte after the head. */; end: number });

// The target: visible ASCII only (parseConnectTarget then wants host:port).
const CONNECT_REQUEST_LINE = /^CONNECT ([\x21-\x7e]+) HTTP\/1\.[01]$/;
// RFC 9110 §5.1: field-name is a token; the value may hold visible ASCII,
// obs-text, SP and HTAB, nothing else (no CR, LF, NUL or other controls, so
// no obs-fold or bare-LF line games). Both checks are linear-time.
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Strip optional whitespace (SP and HTAB only, as HTTP defines it). */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return s.slice(a, b);
}

/**
 * A CONNECT request head read straight off a client socket (the proxies'
 * hot path skips node's HTTP server for it). Strict on purpose: anything
 * that is not plainly `CONNECT authority HTTP/1.x` followed by well-formed
 * CRLF-terminated header lines is refused. `from` lets a caller that
 * appends chunks resume the terminator search instead of rescanning.
 */
export function parseConnectHead(buf: Buffer, from = 0): ConnectHead {
  const headEnd = buf.indexOf(HEAD_END, Math.max(0, from - 3));
  if (headEnd < 0) return buf.length > MAX_HEAD_BYTES ? { kind: "invalid", status: 431, reason: "request head too large" } : { kind: "incomplete" };
  if (headEnd + 4 > MAX_HEAD_BYTES) return { kind: "invalid", status: 431, reason: "request head too large" };
  const lines = buf.toString("latin1", 0, headEnd).split("\r\n");
  const requestLine = CONNECT_REQUEST_LINE.exec(lines[0]!);
  if (!requestLine) return { kind: "invalid", status: 400, reason: "malformed CONNECT request line" };
  const rawHeaders: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    const value = trimOws(line.slice(colon + 1));
    if (colon <= 0 || !FIELD_NAME.test(name) || !FIELD_VALUE.test(value)) return { kind: "invalid", status: 400, reason: "malformed header line" };
    rawHeaders.push(name, value);
  }
  return { kind: "connect", url: requestLine[1]!, rawHeaders, end: headEnd + 4 };
}

/**
 * A host in brackets must be an IPv6 literal: "[name]" is no host at all,
 * and passing it on would have it resolved, dialed and sent as Host and SNI
 * as `name`, past the checks that read names.
 */
const bracketsFit = (host: string) => !host.startsWith("[") || isIpv6Literal(host.slice(1, -1));

/** `host:port` of a CONNECT request (a bracketed host must be an IPv6 literal); undefined when malformed. */
export function parseConnectTarget(authority: string | undefined): HostPort | undefined {
  const m = /^(\[[^\]]+\]|[^:/?#\s[\]]+):(\d{1,5})$/.exec(authority ?? "");
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!bracketsFit(m[1]!)) return undefined;
  return port > 0 && port < 65536 ? { host: m[1]!, port } : undefined;
}

/**
 * An absolute-form `http://host[:port]/path` request target. Parsed by hand,
 * not with WHATWG URL, so the host stays exactly as written and one parser
 * (parseHost) decides what address it means.
 */
export function parseAbsoluteTarget(url: string | undefined): AbsoluteTarget | undefined {
  const m = /^http:\/\/(?:[^@/?#]*@)?(\[[^\]]+\]|[^:/?#[\]]+)(?::(\d{1,5}))?([/?][^#]*)?(?:#.*)?$/i.exec(url ?? "");
  if (!m || !bracketsFit(m[1]!)) return undefined;
  const port = m[2] ? Number(m[2]) : 80;
  if (port < 1 || port > 65535) return undefined;
  const rest = m[3] ?? "/";
  return { host: m[1]!, port, path: rest.startsWith("?") ? `/${rest}` : rest };
}

export type TunnelTarget = { ok: true; target: string } | { ok: false; reason: string };

/**
 * The one rule for request targets inside a CONNECT tunnel (both proxies):
 * origin-form (`/path?query`) passes as is; absolute-form passes only when
 * its authority is the tunnel's own (then it is rewritten to origin-form);
 * anything else (another host, `*`, authority-form) is refused. Forwarding a
 * foreign absolute-form target would let a shared frontend (CDN, ingress)
 * that routes by the target reach a host the tunnel was never checked for.
 * `tunnelHost` must be canonical (see parseHost).
 */
export function tunnelRequestTarget(url: string | undefined, tunnelHost: string, tunnelPort: number, canonicalHost: (raw: string) => string): TunnelTarget {
  const target = url ?? "";
  if (target.startsWith("/")) return { ok: true, target };
  const m = /^https?:\/\/(?:[^@/?#]*@)?(\[[^\]]+\]|[^:/?#[\]]+)(?::(\d{1,5}))?([/?][^#]*)?(?:#.*)?$/i.exec(target);
  if (!m) return { ok: false, reason: "inside a tunnel only origin-form request targets (/path) are forwarded" };
  const scheme = target.slice(0, target.indexOf(":")).toLowerCase();
  const port = m[2] ? Number(m[2]) : scheme === "https" ? 443 : 80;
  if (/^https?:\/\/[^/?#]*@/i.test(target)) return { ok: false, reason: "request target carries userinfo" };
  if (canonicalHost(m[1]!) !== tunnelHost || port !== tunnelPort) {
    return { ok: false, reason: `request target names another authority than the tunnel's ("${authorityOf(tunnelHost, tunnelPort, 0)}")` };
  }
  const rest = m[3] ?? "/";
  return { ok: true, target: rest.startsWith("?") ? `/${rest}` : rest };
}

/** The Host header value for a host: canonical, or an IPv6 literal already in brackets (never bracketed twice). */
export function authorityOf(host: string, port: number, defaultPort: number): string {
  const h = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return port === defaultPort ? h : `${h}:${port}`;
}

/**
 * Request or response headers to pass on, as a flat raw list (keeps
 * duplicates and case): hop-by-hop headers, those named in Connection, Host,
 * and any name in `drop` (lowercase) are removed.
 */
export function endToEndHeaders(raw: readonly string[], drop?: ReadonlySet<string>): string[] {
  // Called twice per proxied request: no set unless a Connection header names any.
  let connectionListed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== "connection") continue;
    connectionListed ??= new Set();
    for (const t of raw[i + 1]!.split(",")) connectionListed.add(t.trim().toLowerCase());
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || name === "host" || connectionListed?.has(name) || drop?.has(name)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** Pairs view of a raw header list, for scanning; names in `drop` (lowercase) left out. */
export function headerPairs(raw: readonly string[], drop?: ReadonlySet<string>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i += 2) if (!drop?.has(raw[i]!.toLowerCase())) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  408: "Request Timeout",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
  504: "Gateway Timeout",
};

/** A complete plain-text response on a socket that is not (or no longer) an http.ServerResponse. */
export function writeRawResponse(socket: Duplex, status: number, body: string): void {
  const text = body.endsWith("\n") ? body : `${body}\n`;
  const head = `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n`;
  if (!socket.writable) return void socket.destroy();
  socket.end(head + text);
}
