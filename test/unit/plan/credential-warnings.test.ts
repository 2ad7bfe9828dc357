import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { describe, expect, it } from "vitest";
import { reviewManifest } from "../../../src/bottles/doctor.js";
import { renderProfile } from "../../../src/bottles/render.js";
import { credentialInput, credentialWarnings, looksLikeCredential, routeYaml, warningText, type CredentialInput } from "../../../src/plan/credential-warnings.js";
import { planOf } from "../../fixtures/shapes.js";

const EXAMPLE = nodePath.resolve(import.meta.dirname, "../../../examples/claude-code/bottle.yaml");

const input = (o: Partial<CredentialInput>): CredentialInput => ({ forwardEnv: [], allow: [], routes: [], ...o });
const profile = (body: string) =>
  planOf(`
version: 1
agents:
  p:
    image: bottle-agent:latest
${body.replace(/^/gm, "    ")}
`);

describe("credential-looking env names", () => {
  it.each([
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "MY_SERVICE_TOKEN",
    "DB_PASSWORD",
    "APP_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "STRIPE_SECRET_KEY",
    "GITLAB_PAT",
    "SOME_APIKEY",
    "token",
    "Npm_Token",
    "CLAUDE_CODE_OAUTH_TOKEN",
  ])("%s looks like one", (name) => {
    expect(looksLikeCredential(name)).toBe(true);
  });

  it.each(["LANG", "LOG_LEVEL", "TOKENIZERS_PARALLELISM", "GITHUB_TOKEN_FILE", "AWS_ACCESS_KEY_ID", "PASSWORD_STORE_DIR", "SECRETARY", "HOME", "ANTHROPIC_BASE_URL"])("%s does not", (name) => {
    expect(looksLikeCredential(name)).toBe(false);
  });
});

describe("credential warnings", () => {
  it("names the variable, the allowed host and the route for a forwarded Anthropic key", () => {
    const [w, ...rest] = credentialWarnings(credentialInput(planOf("egress")));
    expect(rest).toEqual([]);
    expect(w).toMatchObject({
      kind: "forwarded",
      variable: "ANTHROPIC_API_KEY",
      hosts: ["api.anthropic.com"],
      route: { host: "api.anthropic.com", header: "x-api-key", value: "${ANTHROPIC_API_KEY}" },
    });
    expect(w!.message).toContain("forward_env ANTHROPIC_API_KEY is the credential for api.anthropic.com, which this profile allows");
    expect(w!.message).toContain('403 "blocked by dlp"');
    expect(w!.message).toContain("env: { ANTHROPIC_API_KEY: injected-by-egress }");
    expect(warningText(w!)).toBe(`${w!.message}\negress:\n  routes:\n    - host: api.anthropic.com\n      header: x-api-key\n      value: "\${ANTHROPIC_API_KEY}"`);
  });

  it("uses each API's own header: a Bearer token for OpenAI", () => {
    const [w] = credentialWarnings(input({ forwardEnv: ["OPENAI_API_KEY"], allow: ["api.openai.com", "pypi.org"] }));
    expect(w).toMatchObject({ variable: "OPENAI_API_KEY", hosts: ["api.openai.com"], route: { host: "api.openai.com", header: "Authorization", value: "Bearer ${OPENAI_API_KEY}" } });
  });

  it("sees a vendor host allowed through a wildcard (and not through one for its apex only)", () => {
    expect(credentialWarnings(input({ forwardEnv: ["ANTHROPIC_API_KEY"], allow: ["*.anthropic.com"] }))[0]).toMatchObject({ hosts: ["api.anthropic.com"], route: { host: "api.anthropic.com" } });
    // `*.api.anthropic.com` does not allow api.anthropic.com itself: the generic warning applies.
    expect(credentialWarnings(input({ forwardEnv: ["ANTHROPIC_API_KEY"], allow: ["*.api.anthropic.com"] }))[0]!.message).toContain(
      "looks like a credential, and this profile allows *.api.anthropic.com",
    );
  });

  it("warns about a generic credential name with any allowed host, suggesting a route for an exact one", () => {
    const [w] = credentialWarnings(input({ forwardEnv: ["INTERNAL_API_TOKEN"], allow: ["*.example.com", "api.example.com"] }));
    expect(w).toMatchObject({
      kind: "forwarded",
      variable: "INTERNAL_API_TOKEN",
      hosts: ["*.example.com", "api.example.com"],
      route: { host: "api.example.com", header: "Authorization", value: "Bearer ${INTERNAL_API_TOKEN}" },
    });
    expect(w!.message).toContain("this one assumes api.example.com and a Bearer token");
  });

  it("prefers a host no route already serves for the suggested route", () => {
    const [w] = credentialWarnings(
      input({
        forwardEnv: ["DB_PASSWORD"],
        allow: ["api.github.com", "db.example.com"],
        routes: [{ host: "api.github.com", header: "Authorization", envNames: ["GITHUB_TOKEN"], valueTemplate: "Bearer ${GITHUB_TOKEN}" }],
      }),
    );
    expect(w!.route?.host).toBe("db.example.com");
  });

  it("never suggests sending a generic credential to another vendor's API, and guesses no host among several", () => {
    const [w] = credentialWarnings(input({ forwardEnv: ["DB_PASSWORD"], allow: ["api.anthropic.com", "db.internal.example"] }));
    expect(w!.route).toEqual({ host: "db.internal.example", header: "Authorization", value: "Bearer ${DB_PASSWORD}" });
    const [v] = credentialWarnings(input({ forwardEnv: ["DB_PASSWORD"], allow: ["api.anthropic.com"] }));
    expect(v!.route).toBeUndefined();
    const [x] = credentialWarnings(input({ forwardEnv: ["DB_PASSWORD"], allow: ["a.example.com", "b.example.com"] }));
    expect(x!.route).toBeUndefined();
    expect(x!.message).toContain("looks like a credential, and this profile allows a.example.com, b.example.com");
  });

  it("gives no route when only wildcards are allowed, but says what a route needs", () => {
    const [w] = credentialWarnings(input({ forwardEnv: ["SERVICE_SECRET"], allow: ["*.example.com"] }));
    expect(w!.route).toBeUndefined();
    expect(w!.message).toContain('egress.routes: host, header, value: "${SERVICE_SECRET}"');
    expect(warningText(w!)).toBe(w!.message);
  });

  it("points a known key whose API is not allowed at that API's route", () => {
    const [w] = credentialWarnings(input({ forwardEnv: ["GH_TOKEN"], allow: ["pypi.org"] }));
    expect(w).toMatchObject({ hosts: ["pypi.org"], route: { host: "api.github.com", header: "Authorization", value: "Bearer ${GH_TOKEN}" } });
    expect(w!.message).toContain("a route also lets the agent reach api.github.com");
  });

  it("says the agent need not hold a key that an egress route already injects", () => {
    const plan = profile(`forward_env: [OPENAI_API_KEY]
egress:
  routes:
    - { host: api.openai.com, header: Authorization, value: "Bearer \${OPENAI_API_KEY}" }`);
    const [w, ...rest] = credentialWarnings(credentialInput(plan));
    expect(rest).toEqual([]);
    expect(w).toMatchObject({ kind: "routed", variable: "OPENAI_API_KEY", hosts: ["api.openai.com"], route: { host: "api.openai.com", header: "Authorization", value: "Bearer ${OPENAI_API_KEY}" } });
    expect(w!.message).toContain("Remove it from forward_env");
    expect(warningText(w!)).toBe(w!.message); // nothing to add
  });

  it("sees a route that already sets a known key's header from another variable", () => {
    const [w] = credentialWarnings(
      input({ forwardEnv: ["ANTHROPIC_API_KEY"], allow: ["api.anthropic.com"], routes: [{ host: "api.anthropic.com", header: "X-Api-Key", envNames: ["MODEL_KEY"], valueTemplate: "${MODEL_KEY}" }] }),
    );
    expect(w).toMatchObject({ kind: "routed", variable: "ANTHROPIC_API_KEY", route: { host: "api.anthropic.com", header: "X-Api-Key", value: "${MODEL_KEY}" } });
    expect(w!.message).toContain('egress already sets X-Api-Key on requests to api.anthropic.com ("${MODEL_KEY}")');
  });

  it("stays quiet for non-credentials, for a profile that allows nothing, and for the injected way", () => {
    expect(credentialWarnings(input({ forwardEnv: ["LANG", "TZ", "TOKENIZERS_PARALLELISM"], allow: ["api.anthropic.com"] }))).toEqual([]);
    expect(credentialWarnings(input({ forwardEnv: ["ANTHROPIC_API_KEY", "DB_PASSWORD"], allow: [] }))).toEqual([]);
    const injected = profile(`env: { ANTHROPIC_API_KEY: placeholder }
network: { allow: [api.anthropic.com] }
egress:
  routes:
    - { host: api.anthropic.com, header: x-api-key, value: "\${ANTHROPIC_API_KEY}" }`);
    expect(credentialWarnings(credentialInput(injected))).toEqual([]);
  });

  it("counts routed hosts as allowed: they are reachable too", () => {
    const plan = profile(`forward_env: [DEPLOY_TOKEN]
egress:
  routes:
    - { host: api.github.com, header: Authorization, value: "Bearer \${GITHUB_TOKEN}" }`);
    expect(credentialWarnings(credentialInput(plan)).map((w) => [w.variable, w.hosts])).toEqual([["DEPLOY_TOKEN", ["api.github.com"]]]);
  });

  it("warns once per variable, even when it is listed twice", () => {
    expect(credentialWarnings(input({ forwardEnv: ["GH_TOKEN", "GH_TOKEN"], allow: ["api.github.com"] }))).toHaveLength(1);
  });

  it("quotes route values as YAML strings", () => {
    expect(routeYaml({ host: "h.test", header: "Authorization", value: "Bearer ${X}" })).toContain('value: "Bearer ${X}"');
  });
});

describe("render and doctor carry the warnings", () => {
  it("render returns them without changing anything else", () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-credwarn-"));
    const file = nodePath.join(dir, "bottle.yaml");
    writeFileSync(file, "version: 1\nagents:\n  a:\n    image: x:1\n    forward_env: [ANTHROPIC_API_KEY]\n    network: { allow: [api.anthropic.com] }\n");
    const r = renderProfile({ profile: "a", manifest: file, slug: "a-1", env: { BOTTLE_STATE_DIR: nodePath.join(dir, "state") } });
    expect(r.warnings.map((w) => w.variable)).toEqual(["ANTHROPIC_API_KEY"]);
    expect(r.summary.forwardedEnv).toEqual(["ANTHROPIC_API_KEY"]);
  });

  it("the shipped claude-code example injects the key and draws no warning", () => {
    const r = renderProfile({ profile: "claude-code", manifest: EXAMPLE, slug: "cc-1", env: { BOTTLE_STATE_DIR: "/nonexistent/state" } });
    expect(r.warnings).toEqual([]);
    expect(r.plan.agent.env.ANTHROPIC_API_KEY).toBe("placeholder-injected-by-egress");
    expect(r.summary.routes).toMatchObject([{ host: "api.anthropic.com", header: "x-api-key", env: ["ANTHROPIC_API_KEY"] }]);
    expect(r.summary.allow).toEqual(["api.anthropic.com"]);
  });

  it("doctor reviews ./bottle.yaml when it exists, per profile", () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-credwarn-"));
    expect(reviewManifest({ env: {}, cwd: dir })).toBeUndefined();
    writeFileSync(nodePath.join(dir, "bottle.yaml"), "version: 1\nagents:\n  a:\n    image: x:1\n    forward_env: [GH_TOKEN]\n    network: { allow: [api.github.com] }\n  b:\n    image: x:1\n");
    const r = reviewManifest({ env: {}, cwd: dir })!;
    expect(r).toMatchObject({ file: nodePath.join(dir, "bottle.yaml"), ok: true, detail: `${nodePath.join(dir, "bottle.yaml")} is valid (profiles a, b)` });
    expect(r.warnings.map((w) => [w.profile, w.variable, w.route?.host])).toEqual([["a", "GH_TOKEN", "api.github.com"]]);
  });

  it("doctor reports a named manifest that is missing or invalid as a problem", () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-credwarn-"));
    const missing = reviewManifest({ manifest: "none.yaml", env: {}, cwd: dir })!;
    expect(missing).toMatchObject({ ok: false, warnings: [] });
    expect(missing.detail).toContain("none.yaml: file not found");
    const fromEnv = reviewManifest({ env: { BOTTLE_MANIFEST: nodePath.join(dir, "gone.yaml") }, cwd: dir })!;
    expect(fromEnv.ok).toBe(false);
    writeFileSync(nodePath.join(dir, "bottle.yaml"), "version: 1\nagents:\n  a:\n    image: x:1\n    forward_env: [not a name]\n");
    const invalid = reviewManifest({ env: {}, cwd: dir })!;
    expect(invalid.ok).toBe(false);
    expect(invalid.detail).toContain("forward_env[0]");
    expect(invalid.fix).toBeTruthy();
  });
});
