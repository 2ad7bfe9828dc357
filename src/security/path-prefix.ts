// Path prefixes on segment boundaries: egress routes and the approval policy both judge them.

/**
 * `pathname` is under `prefix` on a segment boundary: `/repos/acme` covers
 * `/repos/acme` and `/repos/acme/x`, never `/repos/acme-evil`.
 */
export function underPrefix(pathname: string, prefix: string): boolean {
  if (!pathname.startsWith(prefix)) return false;
  return prefix.endsWith("/") || pathname.length === prefix.length || pathname[prefix.length] === "/";
}
