// A route may put a credential only into a header the API reads it from,
// never into one that frames, is consumed on the way (hop-by-hop) or routes
// the request: refused the same way in an approval (assessProposal), in the
// manifest and in the egress sidecar's own config.
import { describe, expect, it } from "vitest";
import { egressConfigSchema } from "../../../src/contracts/egress.js";
import { reservedRouteHeader } from "../../../src/contracts/patterns.js";
import { BottleError } from "../../../src/errors.js";
import { parseManifest } from "../../../src/manifest/index.js";
import { assessProposal, credentialBindings } from "../../../src/security/access-policy.js";
import { HOME } from "../../fixtures/shapes.js";

const RESERVED = [
  "Host",
  "host",
  "X-Forwarded-Host",
  "X-Forwarded-For",
  "x-forwarded-anything",
  "Forwarded",
  "Transfer-Encoding",
  "Content-Length",
  "Connection",
  "Keep-Alive",
  "TE",
  "Trailer",
  "Upgrade",
  "Expect",
  "Proxy-Authorization",
  "Proxy-Connection",
  "Via",
  "X-Original-URL",
  "X-HTTP-Method-Override",
];
const ALLOWED = ["Authorization", "X-Api-Key", "PRIVATE-TOKEN", "Cookie", "X-Goog-Api-Key", "Hostname-Hint", "X-Forwarded"];

describe("route header names reserved for framing and routing", () => {
  const bindings = credentialBindings([{ host: "api.example.test", port: 443, path_prefix: "/", value: "Bearer ${API_TOKEN}" }]);
  const assess = (header: string) =>
    assessProposal(
      { kind: "egress_route", target: "api.example.test", route: { header, value: "${API_TOKEN}.tenant.example", path_prefix: "/", port: 443 } },
      { bindings, allowCidrs: [], egress: true },
    );

  it("an approval refuses a route grant that sets one, and says why", () => {
    for (const header of RESERVED) {
      const a = assess(header);
      expect(a.refuse, header).toContain(`a route may not set the ${header} header`);
    }
  });

  it("an approval still passes a grant for the header the API reads", () => {
    for (const header of ALLOWED) expect(assess(header), header).toEqual({ flags: [] });
  });

  it("the manifest refuses a route that sets one, naming the place", () => {
    for (const header of ["Host", "Transfer-Encoding", "X-Forwarded-Host"]) {
      const text = `version: 1\nagents:\n  a:\n    image: x\n    egress:\n      routes:\n        - {host: api.x.test, header: ${header}, value: 'Bearer \${TOKEN}'}\n`;
      let err: unknown;
      try {
        parseManifest(text, "bottle.yaml", HOME);
      } catch (e) {
        err = e;
      }
      expect(err, header).toBeInstanceOf(BottleError);
      expect((err as Error).message).toContain(`agents.a.egress.routes[0].header: a route may not set the ${header} header`);
    }
    const ok = parseManifest("version: 1\nagents:\n  a:\n    image: x\n    egress:\n      routes:\n        - {host: api.x.test, header: X-Api-Key, value: '${TOKEN}'}\n", "bottle.yaml", HOME);
    expect(ok.agents.a!.egress.routes[0]!.header).toBe("X-Api-Key");
  });

  it("the egress sidecar's config refuses one too (a hand-written or stale config)", () => {
    const config = (header: string) => ({
      version: 1,
      upstream_proxy: "http://firewall:3128",
      ca_cert: "/ca.pem",
      ca_key: "/ca.key",
      upstream_ca_files: [],
      routes: [{ name: "r", host: "api.example.test", port: 443, path_prefix: "/", header, value: "Bearer ${T}" }],
    });
    const host = egressConfigSchema.safeParse(config("Host"));
    expect(host.success).toBe(false);
    expect(host.error?.issues.map((i) => i.message).join("\n")).toContain("a route may not set the Host header");
    expect(egressConfigSchema.safeParse(config("Content-Length")).success).toBe(false);
    expect(egressConfigSchema.safeParse(config("Authorization")).success).toBe(true);
  });

  it("is one list, case-insensitive", () => {
    for (const h of RESERVED) expect(reservedRouteHeader(h.toUpperCase()), h).toBeDefined();
    for (const h of ALLOWED) expect(reservedRouteHeader(h), h).toBeUndefined();
  });
});
