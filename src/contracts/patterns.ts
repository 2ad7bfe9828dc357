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
  header: z.string().regex(HEADER_NAME_RE, { error: "expected an HTTP header name" }),
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
