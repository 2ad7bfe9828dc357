import { describe, expect, it } from "vitest";
import { compileRoutes, normalizeTarget, renderHeaderValue, selectRoute } from "../../../src/sidecars/proxy/routes.js";

const route = (name: string, host: string, path_prefix: string) => ({ name, host, path_prefix, header: "Authorization", value: "Bearer ${TOKEN}" });

describe("selectRoute", () => {
  const table = compileRoutes([route("all", "api.github.com", "/"), route("acme", "api.github.com", "/repos/acme/"), route("other", "Other.Test", "/v1/")]);
  it("picks the longest matching prefix for the host", () => {
    expect(selectRoute(table, "api.github.com", "/repos/acme/app")?.name).toBe("acme");
    expect(selectRoute(table, "api.github.com", "/repos/evil/app")?.name).toBe("all");
    expect(selectRoute(table, "other.test", "/v1/x")?.name).toBe("other");
    expect(selectRoute(table, "other.test", "/v2/x")).toBeUndefined();
    expect(selectRoute(table, "github.com", "/repos/acme/")).toBeUndefined();
  });

  it("matches on the normalised path, so dot segments cannot escape a prefix", () => {
    const narrow = compileRoutes([route("acme", "api.github.com", "/repos/acme/")]);
    for (const raw of ["/repos/acme/../evil/x", "/repos/acme/%2e%2e/evil", "/repos/acme/%2E%2E/%2e%2e/admin", "/repos/acme/..%2f../x"]) {
      const n = normalizeTarget(raw)!;
      const chosen = selectRoute(narrow, "api.github.com", n.pathname);
      // Either no credential, or the request that leaves is still under the prefix.
      if (chosen) expect(n.target.startsWith("/repos/acme/")).toBe(true);
      else expect(n.pathname.startsWith("/repos/acme/")).toBe(false);
    }
    expect(normalizeTarget("/repos/acme/../evil?x=1")).toEqual({ pathname: "/repos/evil", target: "/repos/evil?x=1" });
    expect(normalizeTarget("http://elsewhere/")).toBeUndefined();
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
