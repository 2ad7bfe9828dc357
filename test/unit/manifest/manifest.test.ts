import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { describe, expect, it } from "vitest";
import { BottleError } from "../../../src/errors.js";
import { getProfile, loadManifest, parseManifest } from "../../../src/manifest/index.js";
import { HOME, MANIFEST_FILE, SHAPES } from "../../fixtures/shapes.js";

function errorOf(fn: () => unknown): BottleError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BottleError);
    return err as BottleError;
  }
  throw new Error("expected an error");
}

const parse = (text: string, file = "bottle.yaml") => parseManifest(text, file, HOME);

describe("manifest validation errors", () => {
  it("names file, YAML path and expectation for a bad route host", () => {
    const e = errorOf(() =>
      parse(`version: 1
agents:
  implementer:
    image: x
    egress:
      routes:
        - host: "http://x"
          header: Authorization
          value: "Bearer \${T}"
`),
    );
    expect(e.code).toBe("manifest");
    expect(e.message).toContain('bottle.yaml:7: agents.implementer.egress.routes[0].host: expected a hostname, got "http://x"');
  });

  it("rejects unknown keys at any depth", () => {
    const e = errorOf(() => parse("version: 1\nagents:\n  a:\n    image: x\n    netwrok: {}\n"));
    expect(e.message).toContain('agents.a: unknown key "netwrok"');
    const top = errorOf(() => parse("version: 1\nagnets: {}\nagents:\n  a: {image: x}\n"));
    expect(top.message).toContain('unknown key "agnets"');
  });

  it("reports duplicate keys with line and column", () => {
    const e = errorOf(() => parse("version: 1\nagents:\n  a:\n    image: x\n    image: y\n"));
    expect(e.message).toMatch(/^bottle\.yaml:5:5: duplicate key: /);
  });

  it("reports YAML syntax errors with line and column", () => {
    const e = errorOf(() => parse("version: 1\nagents:\n  a: [unclosed\n"));
    expect(e.message).toMatch(/^bottle\.yaml:\d+:\d+: YAML syntax error: /);
  });

  it("rejects an empty file", () => {
    expect(errorOf(() => parse("  \n")).message).toBe('bottle.yaml: the file is empty; expected a manifest with "version: 1" and "agents:"');
  });

  it("rejects a non-mapping document", () => {
    expect(errorOf(() => parse("- a\n- b\n")).message).toContain('expected a mapping with "version: 1" and "agents:", got a list');
  });

  it("reports a missing file with the path", () => {
    const e = errorOf(() => loadManifest("/nonexistent/dir/bottle.yaml"));
    expect(e.message).toBe("/nonexistent/dir/bottle.yaml: file not found");
    expect(e.hint).toContain("--manifest");
  });

  it("lists the known profiles for an unknown profile", () => {
    const m = parse("version: 1\nagents:\n  implementer: {image: x}\n  reviewer: {image: y}\n");
    const e = errorOf(() => getProfile({ file: nodePath.resolve("bottle.yaml"), manifest: m }, "nope"));
    expect(e.code).toBe("unknown-profile");
    expect(e.message).toBe('unknown profile "nope" in bottle.yaml');
    expect(e.hint).toBe("Known profiles: implementer, reviewer.");
  });

  it("does not treat inherited object keys as profiles", () => {
    const m = parse("version: 1\nagents:\n  a: {image: x}\n");
    expect(() => getProfile({ file: "bottle.yaml", manifest: m }, "constructor")).toThrow(/unknown profile/);
  });

  it("reports wrong types with what was expected and what was found", () => {
    const e = errorOf(() => parse("version: 1\nagents:\n  a:\n    image: x\n    supervise: 'yes please'\n"));
    expect(e.message).toContain('agents.a.supervise: expected boolean, got "yes please"');
    const v = errorOf(() => parse("version: 2\nagents:\n  a: {image: x}\n"));
    expect(v.message).toContain("version: expected 1, got number 2");
    const miss = errorOf(() => parse("agents:\n  a: {image: x}\n"));
    expect(miss.message).toContain("version: missing; expected 1");
  });

  it("allows ${NAME} only in egress route values", () => {
    const e = errorOf(() => parse("version: 1\nagents:\n  a:\n    image: x\n    env: { TOKEN: '${GITHUB_TOKEN}' }\n"));
    expect(e.message).toContain("agents.a.env.TOKEN: ${NAME} references are only allowed in egress route values");
    const ok = parse(SHAPES.egress);
    expect(ok.agents.egress!.egress.routes[0]!.value).toBe("Bearer ${GITHUB_TOKEN}");
  });

  it("refuses a literal credential in a route value", () => {
    const e = errorOf(() => parse("version: 1\nagents:\n  a:\n    image: x\n    egress:\n      routes:\n        - {host: api.x.test, header: Authorization, value: 'Bearer abc'}\n"));
    expect(e.message).toContain("agents.a.egress.routes[0].value: expected a value that references a host env var");
  });

  it("checks env names, domains, CIDRs, runtimes and profile names", () => {
    expect(errorOf(() => parse("version: 1\nagents:\n  a: {image: x, forward_env: ['bad-name']}\n")).message).toContain(
      'agents.a.forward_env[0]: expected an environment variable name, got "bad-name"',
    );
    expect(errorOf(() => parse("version: 1\nagents:\n  a: {image: x, network: {allow: ['*.']}}\n")).message).toContain('expected a domain name or "*.suffix"');
    expect(errorOf(() => parse("version: 1\nagents:\n  a: {image: x, network: {allow_cidrs: ['10.0.0.5/24']}}\n")).message).toContain("no host bits");
    expect(errorOf(() => parse("version: 1\nagents:\n  a: {image: x, runtime: kata}\n")).message).toContain('agents.a.runtime: expected "runc" or "runsc", got "kata"');
    expect(errorOf(() => parse("version: 1\nagents:\n  Bad_Name: {image: x}\n")).message).toContain("expected a profile name");
    expect(errorOf(() => parse("version: 1\nagents: {}\n")).message).toContain("expected at least one agent profile");
    expect(errorOf(() => parse("version: 1\nagents:\n  a: {image: x, build: {context: .}}\n")).message).toContain("expected either image or build, not both");
  });

  it("resolves ~ and relative paths against home and the manifest folder", () => {
    const m = parseManifest(SHAPES.everything, MANIFEST_FILE, HOME);
    const p = m.agents.everything!;
    expect(p.build!.context).toBe("/manifests/agent");
    expect(p.env_file).toBe("/manifests/agent.env");
    expect(p.git.upstreams[0]!.identity_file).toBe("/manifests/keys/deploy");
    const g = parseManifest(SHAPES.git, MANIFEST_FILE, HOME).agents.git!.git.upstreams[0]!;
    expect(g.identity_file).toBe("/home/user/.ssh/id_ed25519");
    expect(g.known_hosts).toBe("/home/user/.ssh/known_hosts");
  });

  it("keeps an inline known_hosts line as is", () => {
    const m = parseManifest(SHAPES.everything, MANIFEST_FILE, HOME);
    expect(m.agents.everything!.git.upstreams[0]!.known_hosts).toMatch(/^\[git\.example\.test\]:2222 ssh-ed25519 /);
  });

  it("loads a file from disk and resolves paths against its folder", () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-manifest-"));
    mkdirSync(nodePath.join(dir, "sub"));
    const file = nodePath.join(dir, "sub", "bottle.yaml");
    writeFileSync(file, "version: 1\nagents:\n  a:\n    image: x\n    env_file: ../agent.env\n");
    const loaded = loadManifest(file);
    expect(loaded.manifest.agents.a!.env_file).toBe(nodePath.join(dir, "agent.env"));
  });

  it("re-reads a manifest that changed since it was last loaded", () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-manifest-"));
    const file = nodePath.join(dir, "bottle.yaml");
    writeFileSync(file, "version: 1\nagents:\n  a: {image: x}\n");
    expect(Object.keys(loadManifest(file).manifest.agents)).toEqual(["a"]);
    expect(loadManifest(file).manifest).toBe(loadManifest(file).manifest);
    writeFileSync(file, "version: 1\nagents:\n  b: {image: x}\n");
    expect(Object.keys(loadManifest(file).manifest.agents)).toEqual(["b"]);
    writeFileSync(file, "version: 1\nagents:\n  b: {image: x, bogus: 1}\n");
    expect(() => loadManifest(file)).toThrow(/unknown key "bogus"/);
  });
});
