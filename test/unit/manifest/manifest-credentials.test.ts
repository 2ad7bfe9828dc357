// egress.credentials: the manifest's way to let a supervise grant send a
// credential to hosts beyond the profile's own routes (issue 10, item 1).
import { describe, expect, it } from "vitest";
import { BottleError } from "../../../src/errors.js";
import { parseManifest } from "../../../src/manifest/index.js";
import { HOME, planOf } from "../../fixtures/shapes.js";

const manifest = (credentials: string) => `version: 1
agents:
  a:
    image: x
    egress:
      routes:
        - { host: api.github.com, path_prefix: /repos/acme/, header: Authorization, value: "Bearer \${GITHUB_TOKEN}" }
${credentials}`;

const errorOf = (text: string): BottleError => {
  try {
    parseManifest(text, "bottle.yaml", HOME);
  } catch (err) {
    expect(err).toBeInstanceOf(BottleError);
    return err as BottleError;
  }
  throw new Error("expected an error");
};

describe("egress.credentials", () => {
  it("lists more hosts per credential, lowercased into the plan", () => {
    const text = manifest(`      credentials:\n        GITHUB_TOKEN: { hosts: [Uploads.GitHub.com, "*.githubusercontent.com"] }\n`);
    expect(parseManifest(text, "bottle.yaml", HOME).agents.a!.egress.credentials).toEqual({ GITHUB_TOKEN: { hosts: ["Uploads.GitHub.com", "*.githubusercontent.com"] } });
    expect(planOf(text).egress!.credentialHosts).toEqual({ GITHUB_TOKEN: ["uploads.github.com", "*.githubusercontent.com"] });
  });

  it("is absent from plans that do not use it", () => {
    expect(planOf(manifest("")).egress).not.toHaveProperty("credentialHosts");
  });

  it("refuses a variable no route uses: egress would not hold it", () => {
    const e = errorOf(manifest(`      credentials:\n        OTHER: { hosts: [a.example.com] }\n`));
    expect(e.message).toContain("agents.a.egress.credentials.OTHER: expected a variable one of the egress routes uses (egress holds only those; routes use: GITHUB_TOKEN)");
  });

  it("refuses bad hosts, empty lists and unknown keys", () => {
    expect(errorOf(manifest(`      credentials:\n        GITHUB_TOKEN: { hosts: ["http://x"] }\n`)).message).toContain("agents.a.egress.credentials.GITHUB_TOKEN.hosts[0]");
    expect(errorOf(manifest(`      credentials:\n        GITHUB_TOKEN: { hosts: [] }\n`)).message).toContain("expected at least one host");
    expect(errorOf(manifest(`      credentials:\n        GITHUB_TOKEN: { hosts: [a.example.com], paths: [/] }\n`)).message).toContain("paths");
  });
});
