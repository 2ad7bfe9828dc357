// Domain allowlist: exact names and `*.suffix` patterns. `*.example.com`
// matches any subdomain at any depth but not `example.com` itself, the way
// TLS wildcards and most proxy allowlists read it (list both to allow both).
import { isIP } from "node:net";

export interface Allowlist {
  exact: Set<string>;
  suffixes: string[];
}

export function compileAllowlist(patterns: readonly string[]): Allowlist {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const p of patterns) {
    const norm = p.toLowerCase().replace(/\.+$/, "");
    if (norm.startsWith("*.")) suffixes.push(norm.slice(1));
    else exact.add(norm);
  }
  return { exact, suffixes };
}

/**
 * `host` must already be canonical (lowercase, no trailing dot): see
 * parseHost. A wildcard never matches an IP literal (`*.0.0.1` is not a
 * way to allow 127.0.0.1): addresses are allowed only by exact entry.
 */
export function isAllowed(list: Allowlist, host: string): boolean {
  if (list.exact.has(host)) return true;
  return list.suffixes.length > 0 && isIP(host) === 0 && list.suffixes.some((s) => host.endsWith(s) && host.length > s.length);
}
