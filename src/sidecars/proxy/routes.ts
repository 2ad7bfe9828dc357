// Egress routes, pure: which route applies to a request (by the real
// destination host and the normalised path, never the Host header) and what
// header value it injects.
import type { EgressRouteConfig } from "../../contracts/egress.js";
import { ENV_REF_RE } from "../../contracts/patterns.js";
import { underPrefix } from "../../security/path-prefix.js";

/** Routes by `host:port` (lowercase host), longest path prefix first. */
export type RouteTable = Map<string, EgressRouteConfig[]>;

const key = (host: string, port: number) => `${host.toLowerCase()}:${port}`;

export function compileRoutes(routes: readonly EgressRouteConfig[]): RouteTable {
  const table: RouteTable = new Map();
  for (const r of routes) {
    const k = key(r.host, r.port);
    table.set(k, [...(table.get(k) ?? []), r]);
  }
  for (const list of table.values()) list.sort((a, b) => b.path_prefix.length - a.path_prefix.length);
  return table;
}

/** Whether egress intercepts a CONNECT to host:port (some route names exactly that destination). */
export function isRouted(table: RouteTable, host: string, port: number): boolean {
  return table.has(key(host, port));
}

export type RouteChoice = { route: EgressRouteConfig | undefined } | { refused: string };

/**
 * The route for a request (by the tunnel's real host and port and the
 * normalised path). A route applies only when the path is under its prefix
 * both as sent (normalised) and fully percent-decoded: an upstream that
 * decodes `%2f` or `%2e` before routing must not see a path outside the
 * prefix the credential is scoped to. When the two disagree the request is
 * refused rather than sent with or without the credential.
 */
export function selectRoute(table: RouteTable, host: string, port: number, pathname: string): RouteChoice {
  const route = table.get(key(host, port))?.find((r) => underPrefix(pathname, r.path_prefix));
  if (!route) return { route: undefined };
  const decoded = isPlainPath(pathname) ? pathname : decodedPath(pathname);
  if (decoded === undefined || !underPrefix(decoded, route.path_prefix)) {
    return { refused: `the path leaves route "${route.name}"'s prefix ${route.path_prefix} once percent-decoded; send it without encoded separators or dot segments` };
  }
  return { route };
}

/**
 * What a decoding upstream may take the path to mean: percent-decoded
 * (up to three rounds, for double encoding), backslashes as slashes, dot
 * segments resolved. Undefined when it does not decode to a valid path.
 */
export function decodedPath(pathname: string): string | undefined {
  let p = pathname;
  for (let round = 0; round < 3 && p.includes("%"); round++) {
    try {
      p = decodeURIComponent(p);
    } catch {
      return undefined;
    }
  }
  if (/[\0\r\n]/.test(p)) return undefined;
  p = p.replace(/\\/g, "/");
  try {
    return new URL(p.replace(/[?#%]/g, encodeURIComponent), "https://route.invalid").pathname;
  } catch {
    return undefined;
  }
}

/**
 * Paths that WHATWG URL (and so normalizeTarget and decodedPath) leaves as
 * they are: RFC 3986 path characters only, so nothing to percent-encode,
 * no `%` (no encoded dot segment or separator), no backslash, no `.` or
 * `..` segment, and no leading `//` (which URL reads as an authority). Most
 * API paths are like this; they skip the URL parser. The property test in
 * routes.test.ts holds this to the parser's answers.
 */
const PLAIN_PATH = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;
/** A query URL keeps byte for byte (no char of the special-query percent-encode set, no `#`). */
const PLAIN_QUERY = /^[A-Za-z0-9\-._~!$&()*+,;=:@/?%]*$/;

function isPlainPath(path: string): boolean {
  return PLAIN_PATH.test(path) && !DOT_SEGMENT.test(path);
}

/**
 * The request target with dot segments resolved (also `%2e` spellings), as
 * WHATWG URL does. Matching and forwarding use this same string, so
 * `/repos/acme/../../admin` can never carry a credential scoped to `/repos/acme/`.
 */
export function normalizeTarget(target: string): { pathname: string; target: string } | undefined {
  if (!target.startsWith("/")) return undefined;
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  if (isPlainPath(path) && (q < 0 || PLAIN_QUERY.test(target.slice(q + 1)))) {
    // What WHATWG URL would give, without parsing: nothing in it to resolve or encode.
    return { pathname: path, target: q === target.length - 1 ? path : target };
  }
  try {
    const u = new URL(target, "https://route.invalid");
    return { pathname: u.pathname, target: `${u.pathname}${u.search}` };
  } catch {
    return undefined;
  }
}

export type RenderedValue = { ok: true; value: string } | { ok: false; reason: string };

/** Substitute `${NAME}` from `env`. Missing or empty vars are reported by name, never guessed. */
export function renderHeaderValue(template: string, env: NodeJS.ProcessEnv): RenderedValue {
  const missing: string[] = [];
  const broken: string[] = [];
  const value = template.replace(ENV_REF_RE, (_, name: string) => {
    const v = env[name];
    if (!v) missing.push(name);
    // A line break would let the env var smuggle extra headers.
    else if (/[\r\n\0]/.test(v)) broken.push(name);
    return v ?? "";
  });
  if (missing.length) return { ok: false, reason: `env var ${missing.join(", ")} is not set in the egress sidecar` };
  if (broken.length) return { ok: false, reason: `env var ${broken.join(", ")} contains a line break and cannot be sent as a header` };
  return { ok: true, value };
}
