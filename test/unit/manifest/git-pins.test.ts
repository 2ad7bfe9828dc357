// Upstream address pins (issue 10, item 13): several upstreams on one host
// pin it once in the gate's extra_hosts (Docker refuses a repeated entry),
// and pins of one host to different addresses are refused in the manifest.
import { describe, expect, it } from "vitest";
import { renderCompose } from "../../../src/render/index.js";
import { manifestOf, planOf } from "../../fixtures/shapes.js";

const twoUpstreams = (a: string, b: string, hostB = "github.com") => `
version: 1
agents:
  git:
    image: bottle-agent:latest
    git:
      upstreams:
        - name: app
          url: git@github.com:acme/app.git
          identity_file: ~/.ssh/id_ed25519
          known_hosts: ~/.ssh/known_hosts
          address: ${a}
        - name: lib
          url: ssh://git@${hostB}/acme/lib.git
          identity_file: ~/.ssh/id_ed25519
          known_hosts: ~/.ssh/known_hosts
          address: ${b}
`;

describe("git upstream address pins", () => {
  it("pins a host shared by two upstreams once", () => {
    const gate = renderCompose(planOf(twoUpstreams("192.0.2.10", "192.0.2.10"))).services["git-gate"]!;
    expect(gate.extra_hosts).toEqual(["github.com:192.0.2.10"]);
  });

  it("treats host names case-insensitively and keeps different hosts apart", () => {
    expect(renderCompose(planOf(twoUpstreams("192.0.2.10", "192.0.2.10", "GitHub.com"))).services["git-gate"]!.extra_hosts).toEqual(["github.com:192.0.2.10"]);
    expect(renderCompose(planOf(twoUpstreams("192.0.2.10", "192.0.2.11", "gitlab.com"))).services["git-gate"]!.extra_hosts).toEqual(["github.com:192.0.2.10", "gitlab.com:192.0.2.11"]);
  });

  it("refuses two different addresses for one host, naming both upstreams", () => {
    expect(() => manifestOf(twoUpstreams("192.0.2.10", "192.0.2.99"))).toThrow(
      /agents\.git\.git\.upstreams\[1\]\.address.*same address for every upstream on host github\.com \(git\.upstreams\[0\] pins it to 192\.0\.2\.10, this one to 192\.0\.2\.99\)/s,
    );
  });

  it("compares addresses, not spellings", () => {
    expect(() => manifestOf(twoUpstreams("2001:db8::1", "2001:0db8:0:0::1"))).not.toThrow();
  });
});
