// What a proposal would mean if approved, decided the same way in the
// supervise sidecar (when the agent asks, from its access view) and on the
// host (when the orchestrator approves, from the bottle's base configs):
// - a credential only goes where the profile already sends it (SPEC §10 #10);
// - a target that can never work is refused, a broad one is flagged.
// Pure: no I/O, no clock.
import { parse as parseDomain } from "tldts";
import { ENV_REF_RE, reservedRouteHeader } from "../contracts/patterns.js";
import { blockedRangeOf, inCidrs, parseAddress, parseCidrs } from "./address.js";
import { underPrefix } from "./path-prefix.js";
import { quote } from "../contracts/escape.js";
import { validateTarget, type Proposal } from "../contracts/queue.js";

/** Where the profile sends one credential: its own routes, plus hosts the manifest lists for it. */
export interface CredentialBinding {
  env: string;
  /** The profile's routes using it: a grant may use the same host and port with the same or a narrower path prefix. */
  routes: Array<{ host: string; port: number; path_prefix: string }>;
  /** `egress.credentials.<env>.hosts`: more hosts (exact or `*.suffix`), any path. */
  hosts: string[];
}

/** What the policy needs to know about a bottle. */
export interface PolicyContext {
  bindings: CredentialBinding[];
  /** The firewall's SSRF exceptions (network.allow_cidrs). */
  allowCidrs: string[];
}

export function credentialBindings(
  routes: ReadonlyArray<{ host: string; port?: number; path_prefix: string; value: string }>,
  extraHosts: Readonly<Record<string, readonly string[]>> = {},
): CredentialBinding[] {
  const byEnv = new Map<string, CredentialBinding>();
  const binding = (env: string) => byEnv.get(env) ?? byEnv.set(env, { env, routes: [], hosts: [] }).get(env)!;
  for (const r of routes) {
    for (const m of r.value.matchAll(ENV_REF_RE)) binding(m[1]!).routes.push({ host: r.host.toLowerCase(), port: r.port ?? 443, path_prefix: r.path_prefix });
  }
  for (const [env, hosts] of Object.entries(extraHosts)) binding(env).hosts.push(...hosts.map((h) => h.toLowerCase()));
  return [...byEnv.values()].sort((a, b) => a.env.localeCompare(b.env));
}

export type TemplateParse = { ok: true; names: string[] } | { ok: false; reason: string };

/**
 * A header value template, read by the egress sidecar's one rule: `${NAME}`
 * is replaced, nothing else is. Anything else that looks like an expansion
 * (`$NAME`, `${ NAME }`, `${${NAME}}`, `$(…)`) is refused rather than
 * guessed at, so what we check is exactly what egress will send.
 */
export function parseValueTemplate(value: string): TemplateParse {
  if (!/^[\x20-\x7e]+$/.test(value)) return { ok: false, reason: "the header value must be printable ASCII on one line (no control characters)" };
  const names = [...new Set([...value.matchAll(ENV_REF_RE)].map((m) => m[1]!))];
  const rest = value.replace(ENV_REF_RE, "");
  if (rest.includes("$")) return { ok: false, reason: 'the header value has a "$" that is not a ${NAME} reference; write each credential exactly as ${NAME} (no spaces, no nesting, no $NAME)' };
  if (!names.length) return { ok: false, reason: 'the route value must reference a credential env var, like "Bearer ${GITHUB_TOKEN}"' };
  return { ok: true, names };
}

/** `/a/b/` exactly as a request path is matched after normalisation (no dot segments, no encodings that change). */
export function isNormalPathPrefix(p: string): boolean {
  if (!p.startsWith("/")) return false;
  try {
    return new URL(p, "https://prefix.invalid").pathname === p && !/%2e/i.test(p);
  } catch {
    return false;
  }
}

const matchesHost = (pattern: string, host: string) => (pattern.startsWith("*.") ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : pattern === host);

const hostPort = (host: string, port: number) => (port === 443 ? host : `${host}:${port}`);

const describeBinding = (b: CredentialBinding | undefined) => {
  const places = [...(b?.routes ?? []).map((r) => `${hostPort(r.host, r.port)}${r.path_prefix}`), ...(b?.hosts ?? [])];
  return places.length ? places.join(", ") : "nowhere";
};

/**
 * Why a route grant may not send these credentials to `host` + `pathPrefix`,
 * or undefined when every one of them already goes there (or the manifest
 * lists the host for it).
 */
export function credentialProblem(host: string, port: number, pathPrefix: string, names: readonly string[], bindings: readonly CredentialBinding[]): string | undefined {
  const h = host.toLowerCase();
  if (!isNormalPathPrefix(pathPrefix)) return `the path prefix ${quote(pathPrefix)} is not a normalised path (no "." or ".." segments, no %2e); egress matches normalised paths only`;
  const held = bindings.map((b) => b.env);
  for (const env of names) {
    const b = bindings.find((x) => x.env === env);
    if (!b) return `the route names $${env}, which the profile does not forward to egress (it forwards: ${held.join(", ") || "nothing"})`;
    // Every path under the grant's prefix must be under the route's, on egress's segment rule.
    const viaRoute = b.routes.some((r) => r.host === h && r.port === port && underPrefix(pathPrefix, r.path_prefix));
    const viaManifest = b.hosts.some((p) => matchesHost(p, h));
    if (!viaRoute && !viaManifest) {
      return `the route would send $${env} to ${hostPort(h, port)}${pathPrefix}, but the profile sends $${env} only to ${describeBinding(b)}; a grant may not send a credential anywhere else (to allow more hosts, list them in the manifest under egress.credentials.${env}.hosts)`;
    }
  }
  return undefined;
}

export interface TargetJudgement {
  /** Can never work or must never be granted: refuse. */
  refuse?: string;
  /** Would work, but grants more than one named host: approve only with force. */
  flags: string[];
}

/** Names that always mean this machine or a cloud metadata service. */
const METADATA_NAMES = new Set(["metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"]);
/** Address ranges a grant never opens, whatever allow_cidrs says. */
const NEVER = new Set(["loopback", "unspecified", "cloud metadata"]);

/** Judge a `domain` or `egress_route` target (already shaped as a hostname or `*.suffix`). */
export function judgeHost(target: string, ctx: Pick<PolicyContext, "allowCidrs">): TargetJudgement {
  const t = target.toLowerCase();
  if (t === "*" || t === "*.") return { refuse: 'a bare "*" would allow every host; name the host, or a "*.example.com" suffix', flags: [] };
  const wildcard = t.startsWith("*.");
  const name = wildcard ? t.slice(2) : t;

  const addr = parseAddress(name);
  if (addr) {
    if (wildcard) return { refuse: `${quote(target)} is a wildcard over an IP address, which matches no host name`, flags: [] };
    const canonical = addr.toString();
    if (canonical !== name) return { refuse: `${quote(target)} is the address ${canonical} spelled another way; the firewall compares canonical addresses, so ask for ${canonical}`, flags: [] };
    const range = blockedRangeOf(addr);
    if (range && NEVER.has(range)) return { refuse: `${canonical} is the ${range} address; the firewall never lets the agent reach it`, flags: [] };
    if (range && !inCidrs(addr, parseCidrs(ctx.allowCidrs)))
      return { refuse: `${canonical} is a ${range} address outside the profile's network.allow_cidrs, so the firewall refuses it whatever is granted`, flags: [] };
    return { flags: [`${canonical} is an IP address: it opens every service on that address, not one named host`] };
  }
  if (name === "localhost" || name.endsWith(".localhost")) return { refuse: `${quote(target)} is always this machine (loopback); the firewall never lets the agent reach it`, flags: [] };
  if (METADATA_NAMES.has(name)) return { refuse: `${quote(target)} is a cloud metadata service; the firewall never lets the agent reach it`, flags: [] };
  const info = parseDomain(name, { allowPrivateDomains: true });
  if (!wildcard) {
    if (!name.includes(".")) return { refuse: `${quote(target)} is a single-label name (a top-level domain or a local name), not a host on the internet`, flags: [] };
    if (info.publicSuffix === name && info.isIcann) return { refuse: `${quote(target)} is a public suffix (where anyone registers names), not a host`, flags: [] };
    return { flags: [] };
  }
  if (info.publicSuffix === name) return { flags: [`${quote(target)} matches every host under the public suffix "${name}": sites anyone can register`] };
  return { flags: [] };
}

export interface AssessContext extends PolicyContext {
  /** Whether the bottle has an egress sidecar / a git gate; undefined when the caller cannot tell. */
  egress?: boolean;
  gitGate?: boolean;
}

export interface Assessment {
  refuse?: string;
  flags: string[];
}

/** The whole judgement of one proposal: refused (and why), or approvable with these flags. */
export function assessProposal(p: Pick<Proposal, "kind" | "target" | "route">, ctx: AssessContext): Assessment {
  if ((p.kind === "domain" || p.kind === "egress_route") && (p.target === "*" || p.target === "*.")) return judgeHost(p.target, ctx);
  const shape = validateTarget(p.kind, p.target);
  if (shape) return { refuse: shape, flags: [] };
  let flags: string[] = [];
  if (p.kind === "domain" || p.kind === "egress_route") {
    const j = judgeHost(p.target, ctx);
    if (j.refuse) return j;
    flags = j.flags;
  }
  if (p.kind === "egress_route") {
    if (ctx.egress === false) return { refuse: "this bottle has no egress sidecar (its profile has no egress routes), so no route can be added", flags };
    if (!p.route) return { refuse: "an egress_route proposal must say which header and value template to set", flags };
    const reserved = reservedRouteHeader(p.route.header);
    if (reserved) return { refuse: reserved, flags };
    const t = parseValueTemplate(p.route.value);
    if (!t.ok) return { refuse: t.reason, flags };
    const c = credentialProblem(p.target, p.route.port, p.route.path_prefix, t.names, ctx.bindings);
    if (c) return { refuse: c, flags };
  }
  if (p.kind === "git_ref" && ctx.gitGate === false) return { refuse: "this bottle has no git gate", flags };
  return { flags };
}

/** Credential names a proposal's route value mentions (best effort, for display). */
export function credentialsNamed(p: Pick<Proposal, "route">): string[] {
  return p.route ? [...new Set([...p.route.value.matchAll(ENV_REF_RE)].map((m) => m[1]!))] : [];
}
