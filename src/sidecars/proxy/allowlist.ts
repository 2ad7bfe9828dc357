// Domain allowlist: exact names and `*.suffix` patterns. `*.example.com`
// matches any subdomain at any depth but not `example.com` itself, the way
// TLS wildcards and most proxy allowlists read it (list both to allow both).

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

/** `host` must already be canonical (lowercase, no trailing dot): see parseHost. */
export function isAllowed(list: Allowlist, host: string): boolean {
  return list.exact.has(host) || list.suffixes.some((s) => host.endsWith(s) && host.length > s.length);
}
