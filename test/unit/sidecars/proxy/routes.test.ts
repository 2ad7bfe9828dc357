import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { underPrefix } from "../../../../src/security/path-prefix.js";
import { compileRoutes, decodedPath, isRouted, normalizeTarget, renderHeaderValue, selectRoute } from "../../../../src/sidecars/proxy/routes.js";

const route = (name: string, host: string, path_prefix: string, port = 443) => ({ name, host, port, path_prefix, header: "Authorization", value: "Bearer ${TOKEN}" });
const chosen = (c: ReturnType<typeof selectRoute>) => ("route" in c ? c.route?.name : `refused: ${c.refused}`);

describe("selectRoute", () => {
  const table = compileRoutes([route("all", "api.github.com", "/"), route("acme", "api.github.com", "/repos/acme/"), route("other", "Other.Test", "/v1/")]);
  it("picks the longest matching prefix for the host", () => {
    expect(chosen(selectRoute(table, "api.github.com", 443, "/repos/acme/app"))).toBe("acme");
    expect(chosen(selectRoute(table, "api.github.com", 443, "/repos/evil/app"))).toBe("all");
    expect(chosen(selectRoute(table, "other.test", 443, "/v1/x"))).toBe("other");
    expect(chosen(selectRoute(table, "other.test", 443, "/v2/x"))).toBeUndefined();
    expect(chosen(selectRoute(table, "github.com", 443, "/repos/acme/"))).toBeUndefined();
  });

  it("matches prefixes on path-segment boundaries", () => {
    const t = compileRoutes([route("acme", "api.github.com", "/repos/acme")]);
    expect(chosen(selectRoute(t, "api.github.com", 443, "/repos/acme"))).toBe("acme");
    expect(chosen(selectRoute(t, "api.github.com", 443, "/repos/acme/app"))).toBe("acme");
    for (const p of ["/repos/acme-evil/", "/repos/acmeevil", "/repos/acme.evil/x", "/repos/acm"]) expect(chosen(selectRoute(t, "api.github.com", 443, p))).toBeUndefined();
    expect(underPrefix("/a/b", "/a/")).toBe(true);
    expect(underPrefix("/a", "/a/")).toBe(false);
    expect(underPrefix("/anything", "/")).toBe(true);
  });

  it("matches the destination port too (443 unless the route says otherwise)", () => {
    const t = compileRoutes([route("tls", "api.test", "/"), route("alt", "alt.test", "/", 8443)]);
    expect(isRouted(t, "api.test", 443)).toBe(true);
    expect(isRouted(t, "api.test", 8443)).toBe(false);
    expect(chosen(selectRoute(t, "api.test", 8443, "/x"))).toBeUndefined();
    expect(isRouted(t, "alt.test", 8443)).toBe(true);
    expect(chosen(selectRoute(t, "alt.test", 8443, "/x"))).toBe("alt");
    expect(chosen(selectRoute(t, "alt.test", 443, "/x"))).toBeUndefined();
  });

  it("never carries a credential to a path that leaves the prefix once decoded", () => {
    const narrow = compileRoutes([route("acme", "api.github.com", "/repos/acme/")]);
    for (const raw of [
      "/repos/acme/../evil/x",
      "/repos/acme/%2e%2e/evil",
      "/repos/acme/%2E%2E/%2e%2e/admin",
      "/repos/acme/..%2f../x",
      "/repos/acme/..%2fadmin",
      "/repos/acme/..%5cadmin",
      "/repos/acme/..\\..\\admin",
      "/repos/acme/%252e%252e%252fadmin",
      "/repos/acme/.%2e/x",
    ]) {
      const n = normalizeTarget(raw)!;
      const c = selectRoute(narrow, "api.github.com", 443, n.pathname);
      if ("route" in c && c.route) {
        expect(n.target.startsWith("/repos/acme/")).toBe(true);
        expect(decodedPath(n.pathname)!.startsWith("/repos/acme/")).toBe(true);
      } else if ("route" in c) expect(n.pathname.startsWith("/repos/acme/")).toBe(false);
    }
    // The encoded ones that stay under the prefix as sent are refused, not forwarded with the credential.
    expect(chosen(selectRoute(narrow, "api.github.com", 443, "/repos/acme/..%2fadmin"))).toMatch(/^refused: .*percent-decoded/);
    expect(chosen(selectRoute(compileRoutes([route("api", "h.test", "/api/")]), "h.test", 443, "/api/..%2fadmin"))).toMatch(/^refused/);
    // Encoded slashes that stay inside the prefix are fine (GitLab's project ids look like this).
    expect(chosen(selectRoute(compileRoutes([route("gl", "gitlab.test", "/api/v4/")]), "gitlab.test", 443, "/api/v4/projects/acme%2Fapp"))).toBe("gl");
    expect(normalizeTarget("/repos/acme/../evil?x=1")).toEqual({ pathname: "/repos/evil", target: "/repos/evil?x=1" });
    expect(normalizeTarget("http://elsewhere/")).toBeUndefined();
  });
});

/** normalizeTarget as it was before its fast path: always through WHATWG URL. */
function normalizeByUrl(target: string): { pathname: string; target: string } | undefined {
  if (!target.startsWith("/")) return undefined;
  try {
    const u = new URL(target, "https://route.invalid");
    return { pathname: u.pathname, target: `${u.pathname}${u.search}` };
  } catch {
    return undefined;
  }
}

describe("plain paths skip the URL parser with the parser's answers", () => {
  // Targets built from the characters that matter to URL: separators, dots, encodings, quotes, controls, non-ASCII.
  const target = fc
    .array(
      fc.constantFrom(
        "/",
        "/",
        "a",
        "Z",
        "0",
        ".",
        "..",
        "%2e",
        "%2F",
        "%",
        "?",
        "#",
        "\\",
        "'",
        '"',
        " ",
        "\t",
        "<",
        "`",
        "{",
        "|",
        "^",
        "[",
        "~",
        "-",
        "_",
        "!",
        "$",
        "&",
        "=",
        ";",
        ":",
        "@",
        "+",
        ",",
        "*",
        "(",
        "é",
        "\u0000",
      ),
      {
        maxLength: 14,
      },
    )
    .map((parts) => `/${parts.join("")}`);

  it("normalizeTarget equals the URL-based normalisation for every target", () => {
    fc.assert(
      fc.property(target, (t) => {
        expect(normalizeTarget(t)).toEqual(normalizeByUrl(t));
      }),
      { numRuns: 20_000 },
    );
    for (const t of ["/", "/a?", "/a?b=1&c='x'", "//evil.test/x", "/a/./b", "/a/..", "/a//b", "/x?y=%zz", "/a#frag", "/a b"]) expect(normalizeTarget(t)).toEqual(normalizeByUrl(t));
  });

  it("selectRoute refuses and chooses exactly as when every path is percent-decoded through URL", () => {
    const table = compileRoutes([route("all", "h.test", "/"), route("acme", "h.test", "/repos/acme/"), route("api", "h.test", "/api")]);
    const reference = (pathname: string) => {
      const r = table.get("h.test:443")!.find((x) => underPrefix(pathname, x.path_prefix));
      if (!r) return undefined;
      const d = decodedPath(pathname);
      return d === undefined || !underPrefix(d, r.path_prefix) ? "refused" : r.name;
    };
    const path = fc.array(fc.constantFrom("/", "repos", "acme", "api", "..", ".", "%2e", "%2f", "%5c", "\\", "x", "%25"), { maxLength: 8 }).map((p) => `/${p.join("")}`);
    fc.assert(
      fc.property(path, (p) => {
        const n = normalizeTarget(p);
        if (!n) return;
        const c = selectRoute(table, "h.test", 443, n.pathname);
        expect("refused" in c ? "refused" : c.route?.name).toBe(reference(n.pathname));
      }),
      { numRuns: 20_000 },
    );
  });
});

describe("renderHeaderValue", () => {
  it("substitutes env vars", () => {
    expect(renderHeaderValue("Bearer ${TOKEN}", { TOKEN: "abc" })).toEqual({ ok: true, value: "Bearer abc" });
    expect(renderHeaderValue("${A}:${B}", { A: "1", B: "2" })).toEqual({ ok: true, value: "1:2" });
  });
  it("names missing vars and never guesses", () => {
    const r = renderHeaderValue("Bearer ${MISSING}", {});
    expect(r).toEqual({ ok: false, reason: "env var MISSING is not set in the egress sidecar" });
  });
  it("refuses values that would split the header", () => {
    const r = renderHeaderValue("Bearer ${T}", { T: "abc\r\nX-Evil: 1" });
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).not.toContain("abc");
  });
});
