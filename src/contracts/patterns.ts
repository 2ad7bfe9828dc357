// Validation atoms both sides share: the host validates the manifest and
// renders configs with them, the sidecars validate those configs again, and
// the supervise queue checks what an agent asks for. One definition each.
import ipaddr from "ipaddr.js";
import { z } from "zod";

const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
export const HOSTNAME_RE = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`, "i");
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A git ref pattern (push_refs, protected, a git_ref grant). */
export const REF_PATTERN_RE = /^refs\/[A-Za-z0-9._/*-]+$/;
/** A git upstream's name. */
export const UPSTREAM_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** `${NAME}` references; only egress route values may carry them. */
export const ENV_REF_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** An HTTP header name a route sets. */
export const HEADER_NAME_RE = /^[A-Za-z0-9-]{1,64}$/;

/**
 * Header names a route may never set (lowercase), whatever the value: they
 * frame the message (a credential in Content-Length or Transfer-Encoding
 * breaks or desyncs it), are hop-by-hop (consumed by the next proxy, never
 * the API's), or route it (egress sets Host to the tunnel's destination
 * itself; proxies and load balancers pick the destination, tenant or method
 * by the others, so a credential there goes where the route did not say).
 */
const RESERVED_ROUTE_HEADERS: ReadonlySet<string> = new Set([
  // framing
  "content-length",
  "transfer-encoding",
  "te",
  "trailer",
  "expect",
  "upgrade",
  // hop-by-hop
  "connection",
  "keep-alive",
  // routing
  "host",
  "forwarded",
  "via",
  "max-forwards",
  "x-real-ip",
  "x-client-ip",
  "x-host",
  "x-http-host",
  "x-original-host",
  "x-original-url",
  "x-rewrite-url",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
]);
/** Whole families: Proxy-* (hop-by-hop to a proxy) and X-Forwarded-* (routing). */
const RESERVED_ROUTE_HEADER_PREFIXES = ["proxy-", "x-forwarded-"];

/** Why a route may not set header `name`, or undefined when it may. */
export function reservedRouteHeader(name: string): string | undefined {
  const n = name.toLowerCase();
  if (!RESERVED_ROUTE_HEADERS.has(n) && !RESERVED_ROUTE_HEADER_PREFIXES.some((p) => n.startsWith(p))) return undefined;
  return `a route may not set the ${name} header: it frames, is consumed on the way (hop-by-hop) or routes the request (Host, Content-Length, Transfer-Encoding, Connection, Proxy-*, X-Forwarded-*, Forwarded and the like), which egress sets or strips itself; name the header the API reads the credential from`;
}

/** A header name a route sets: a valid name, and not one reserved for framing or routing. */
export const routeHeaderName = z
  .string()
  .regex(HEADER_NAME_RE, { error: "expected an HTTP header name (letters, digits and '-')" })
  .check((ctx) => {
    const why = reservedRouteHeader(ctx.value);
    if (why) ctx.issues.push({ code: "custom", message: why, input: ctx.value });
  });
/** A path prefix: starts with "/", no spaces, "?" or "#". */
export const PATH_PREFIX_RE = /^\/[^\s?#]*$/;
/** A supervise proposal id. */
export const PROPOSAL_ID_RE = /^p-[0-9a-f]{12}$/;

export const hostname = z.string().regex(HOSTNAME_RE, { error: "expected a hostname" });
export const domainPattern = z.string().refine((s) => HOSTNAME_RE.test(s.startsWith("*.") ? s.slice(2) : s), {
  error: 'expected a domain name or "*.suffix"',
});
export const envName = z.string().regex(ENV_NAME_RE, { error: "expected an environment variable name" });
export const cidr = z.string().refine(isCidr, { error: "expected a network CIDR like 10.1.2.0/24 (no host bits)" });

export const routeSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { error: "expected a route name ([a-z0-9._-])" })
    .optional(),
  host: hostname,
  /** The destination port the route applies to (CONNECT target's port). */
  port: z.int({ error: "expected a port number" }).min(1).max(65535).default(443),
  path_prefix: z.string().regex(PATH_PREFIX_RE, { error: 'expected a path prefix starting with "/"' }).default("/"),
  header: routeHeaderName,
  value: z
    .string()
    .refine((s) => [...s.matchAll(ENV_REF_RE)].length > 0, {
      error: 'expected a value that references a host env var, like "Bearer ${GITHUB_TOKEN}" (literal credentials do not belong in a manifest)',
    })
    .refine((s) => !/[\r\n]/.test(s), { error: "expected a single-line header value" }),
});

/** Strict spellings only: dotted-quad IPv4 or IPv6 (no octal/hex/short forms). */
export function isIp(s: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(s) || ipaddr.IPv6.isValid(s);
}

/** A network CIDR with no host bits set (pipelock and Docker both insist). */
export function isCidr(s: string): boolean {
  const [addr, bits, extra] = s.split("/");
  if (extra !== undefined || !addr || !bits || !/^\d{1,3}$/.test(bits) || !isIp(addr)) return false;
  try {
    const [net, len] = ipaddr.parseCIDR(s);
    const canonical = net.kind() === "ipv4" ? ipaddr.IPv4.networkAddressFromCIDR(s).toString() : ipaddr.IPv6.networkAddressFromCIDR(s).toString();
    return canonical === ipaddr.parse(addr).toString() && len >= 0;
  } catch {
    return false;
  }
}
