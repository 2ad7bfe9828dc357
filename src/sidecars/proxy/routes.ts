// Egress routes, pure: which route applies to a request (by the real
// destination host and the normalised path, never the Host header) and what
// header value it injects.
import type { EgressRouteConfig } from "../../sidecar-config/egress.js";

export type RouteTable = Map<string, EgressRouteConfig[]>;

/** Routes by lowercase host, longest path prefix first. */
export function compileRoutes(routes: readonly EgressRouteConfig[]): RouteTable {
  const table: RouteTable = new Map();
  for (const r of routes) {
    const host = r.host.toLowerCase();
    table.set(host, [...(table.get(host) ?? []), r]);
  }
  for (const list of table.values()) list.sort((a, b) => b.path_prefix.length - a.path_prefix.length);
  return table;
}

export function selectRoute(table: RouteTable, host: string, pathname: string): EgressRouteConfig | undefined {
  return table.get(host)?.find((r) => pathname.startsWith(r.path_prefix));
}

/**
 * The request target with dot segments resolved (also `%2e` spellings), as
 * WHATWG URL does. Matching and forwarding use this same string, so
 * `/repos/acme/../../admin` can never carry a credential scoped to `/repos/acme/`.
 */
export function normalizeTarget(target: string): { pathname: string; target: string } | undefined {
  if (!target.startsWith("/")) return undefined;
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
  const value = template.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
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
