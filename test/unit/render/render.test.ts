import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { parse as parseYaml } from "yaml";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MOUNTS, TRUST_BUNDLE } from "../../../src/contracts/mounts.js";
import { PIPELOCK_IMAGE, readyProbes, stateRootId } from "../../../src/plan/index.js";
import { readyDirOf } from "../../../src/state/layout.js";
import { renderBottle, renderCompose, renderPipelockConfig, renderFirewallConfig, renderEgressConfig } from "../../../src/render/index.js";
import { firewallConfigSchema } from "../../../src/contracts/firewall.js";
import { egressConfigSchema } from "../../../src/contracts/egress.js";
import { PACKAGE_VERSION } from "../../../src/package.js";
import { planOf, SHAPES, type Shape } from "../../fixtures/shapes.js";

const envOf = (svc: { environment?: string[] }) => svc.environment ?? [];

describe("renderer snapshots", () => {
  for (const shape of Object.keys(SHAPES) as Shape[]) {
    it(`renders the ${shape} shape`, () => {
      const r = renderBottle(planOf(shape));
      expect(r.composeYaml).toMatchSnapshot();
      expect(r.files).toMatchSnapshot();
    });
  }
});

describe("renderer rules (SPEC §5)", () => {
  it("is pure: the same plan renders byte-identical output", () => {
    const plan = planOf("everything");
    expect(renderBottle(plan).composeYaml).toBe(renderBottle(structuredClone(plan)).composeYaml);
  });

  it("names project, containers and networks from the slug", () => {
    const c = renderCompose(planOf("everything"));
    expect(c.name).toBe("bottle-everything-7f3a");
    for (const [name, svc] of Object.entries(c.services)) expect(svc.container_name).toBe(`bottle-${name}-everything-7f3a`);
    expect(c.networks.internal).toEqual({ external: true, name: "bottle-everything-7f3a-internal" });
    expect(c.networks.egress).toEqual({ external: true, name: "bottle-everything-7f3a-egress" });
  });

  it("labels every service and network with slug, profile and state root", () => {
    const expected = { "dev.bot-bottle.slug": "everything-7f3a", "dev.bot-bottle.profile": "everything", "dev.bot-bottle.state-root": stateRootId("/state") };
    const c = renderCompose(planOf("everything"));
    for (const svc of Object.values(c.services)) expect(svc.labels).toEqual(expected);
    const plan = planOf("everything");
    expect(plan.networks.internal.labels).toEqual(expected);
    expect(plan.networks.egress.labels).toEqual(expected);
    expect(stateRootId("/state")).not.toBe(stateRootId("/other"));
    expect(stateRootId("/state/")).toBe(stateRootId("/state"));
  });

  it("includes services only when the profile needs them", () => {
    expect(Object.keys(renderCompose(planOf("minimal")).services).sort()).toEqual(["agent", "firewall"]);
    expect(Object.keys(renderCompose(planOf("egress")).services).sort()).toEqual(["agent", "egress", "firewall"]);
    expect(Object.keys(renderCompose(planOf("git")).services).sort()).toEqual(["agent", "firewall", "git-gate"]);
    expect(Object.keys(renderCompose(planOf("everything")).services).sort()).toEqual(["agent", "egress", "firewall", "git-gate", "supervise"]);
  });

  it("attaches networks and aliases per service", () => {
    const s = renderCompose(planOf("everything")).services;
    // With egress the agent's proxy is egress, and the firewall is off the agent's network (no direct CONNECT past egress's DLP).
    expect(s.firewall!.networks).toEqual({ egress: { aliases: ["bottle-firewall-everything-7f3a"] } });
    expect(envOf(s.agent!)).toContain("HTTPS_PROXY=http://egress:3129");
    for (const firewall of ["builtin", "pipelock"] as const) {
      const alone = renderCompose(planOf("minimal", { defaultFirewall: firewall })).services;
      expect(alone.firewall!.networks, firewall).toEqual({ internal: { aliases: [expect.stringMatching(/^bottle-firewall-minimal-/)] }, egress: {} });
      const routed = renderCompose(planOf("everything", { defaultFirewall: firewall })).services;
      expect(Object.keys(routed.firewall!.networks), firewall).toEqual(["egress"]);
    }
    expect(s.egress!.networks).toEqual({ internal: { aliases: ["egress"] }, egress: {} });
    expect(s["git-gate"]!.networks).toEqual({ internal: { aliases: ["bottle-git-gate-everything-7f3a"] }, egress: {} });
    expect(s.supervise!.networks).toEqual({ internal: { aliases: ["supervise"] } });
    expect(s.agent!.networks).toEqual({ internal: {} });
  });

  it("uses long-form binds, read-only except supervise's queue, the agent's task dirs and each sidecar's ready dir", () => {
    const s = renderCompose(planOf("everything")).services;
    for (const [name, svc] of Object.entries(s)) {
      for (const v of svc.volumes ?? []) {
        expect(v.type).toBe("bind");
        expect(nodePath.isAbsolute(v.source)).toBe(true);
        expect(v.read_only).toBe(
          !((name === "supervise" && v.target === "/var/lib/bottle/queue") || (name === "agent" && v.target === "/var/lib/bottle/tasks") || (name !== "agent" && v.target === MOUNTS.ready)),
        );
      }
    }
    expect(s.supervise!.volumes).toContainEqual({ type: "bind", source: "/state/everything-7f3a/queue", target: "/var/lib/bottle/queue", read_only: false });
    expect(s.agent!.volumes).toContainEqual({ type: "bind", source: "/state/everything-7f3a/task-io", target: "/var/lib/bottle/tasks", read_only: false });
  });

  it("mounts config as directories, never single files, for reloadable sidecars", () => {
    const s = renderCompose(planOf("everything")).services;
    expect(s.firewall!.volumes!.map((v) => v.source)).toEqual(["/state/everything-7f3a/firewall", "/state/everything-7f3a/firewall-ca"]);
    const builtin = renderCompose(planOf("minimal")).services;
    expect(builtin.firewall!.volumes!.map((v) => v.source)).toEqual([
      "/state/minimal-7f3a/firewall",
      "/state/minimal-7f3a/firewall-ca",
      "/state/minimal-7f3a/trust",
      "/state/minimal-7f3a/ready/firewall",
    ]);
    expect(s.egress!.volumes!.map((v) => v.source)).toEqual([
      "/state/everything-7f3a/egress",
      "/state/everything-7f3a/egress-ca",
      "/state/everything-7f3a/trust",
      "/state/everything-7f3a/ready/egress",
    ]);
  });

  it("points the agent's proxy at egress when routes exist, else at the firewall", () => {
    const withEgress = envOf(renderCompose(planOf("egress")).services.agent!);
    for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]) expect(withEgress).toContain(`${k}=http://egress:3129`);
    const without = envOf(renderCompose(planOf("minimal")).services.agent!);
    for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]) expect(without).toContain(`${k}=http://bottle-firewall-minimal-7f3a:3128`);
    const pipelock = envOf(renderCompose(planOf("minimal", { defaultFirewall: "pipelock" })).services.agent!);
    expect(pipelock).toContain("HTTPS_PROXY=http://bottle-firewall-minimal-7f3a:8888");
  });

  it("sets NO_PROXY to loopback plus supervise and the git gate when present", () => {
    expect(envOf(renderCompose(planOf("minimal")).services.agent!)).toContain("NO_PROXY=localhost,127.0.0.1");
    const all = envOf(renderCompose(planOf("everything")).services.agent!);
    expect(all).toContain("NO_PROXY=localhost,127.0.0.1,supervise,bottle-git-gate-everything-7f3a");
    expect(all).toContain("no_proxy=localhost,127.0.0.1,supervise,bottle-git-gate-everything-7f3a");
  });

  it("points every CA variable at the read-only trust bundle", () => {
    const agent = renderCompose(planOf("minimal")).services.agent!;
    const caVars = [
      "NODE_EXTRA_CA_CERTS",
      "SSL_CERT_FILE",
      "REQUESTS_CA_BUNDLE",
      "GIT_SSL_CAINFO",
      "CURL_CA_BUNDLE",
      "PIP_CERT",
      "AWS_CA_BUNDLE",
      "NPM_CONFIG_CAFILE",
      "CARGO_HTTP_CAINFO",
      "DENO_CERT",
    ];
    for (const k of caVars) expect(envOf(agent)).toContain(`${k}=${TRUST_BUNDLE}`);
    expect(agent.volumes).toContainEqual({ type: "bind", source: "/state/minimal-7f3a/trust", target: "/etc/bottle/trust", read_only: true });
  });

  it("makes Node's built-in fetch use the proxy (NODE_USE_ENV_PROXY)", () => {
    expect(envOf(renderCompose(planOf("minimal")).services.agent!)).toContain("NODE_USE_ENV_PROXY=1");
  });

  it("runs the agent as sleep infinity under an init", () => {
    const agent = renderCompose(planOf("minimal")).services.agent!;
    expect(agent.command).toEqual(["sleep", "infinity"]);
    expect(agent.init).toBe(true);
  });

  it("hardens the agent and every sidecar", () => {
    for (const svc of Object.values(renderCompose(planOf("everything")).services)) {
      expect(svc.security_opt).toContain("no-new-privileges:true");
      expect(svc.cap_drop.includes("ALL") || (svc.cap_drop.includes("NET_RAW") && svc.cap_drop.includes("NET_ADMIN"))).toBe(true);
      expect(svc.pids_limit).toBeGreaterThan(0);
    }
  });

  it("applies the profile's resource limits to the agent", () => {
    const agent = renderCompose(planOf("everything")).services.agent!;
    expect(agent.cpus).toBe(2);
    expect(agent.mem_limit).toBe("4g");
    expect(agent.pids_limit).toBe(512);
    expect(renderCompose(planOf("minimal")).services.agent!.mem_limit).toBeUndefined();
  });

  it("runs no periodic healthcheck: each builtin sidecar says it is ready in a dir only it mounts", () => {
    const plan = planOf("everything");
    const s = renderCompose(plan).services;
    expect(s.egress!.depends_on).toBeUndefined();
    expect(s.agent!.depends_on).toEqual({
      firewall: { condition: "service_started" },
      egress: { condition: "service_started" },
      "git-gate": { condition: "service_started" },
      supervise: { condition: "service_started" },
    });
    for (const svc of Object.values(s)) expect(svc).not.toHaveProperty("healthcheck");
    const readyMounts = (name: string) => (s[name]!.volumes ?? []).filter((v) => v.target === MOUNTS.ready);
    // pipelock (this shape's firewall) is probed with its own command instead (plan/readiness.ts).
    expect(readyProbes(plan).map((r) => [r.service, r.kind])).toEqual([
      ["firewall", "exec"],
      ["egress", "file"],
      ["git-gate", "file"],
      ["supervise", "file"],
    ]);
    for (const name of ["egress", "git-gate", "supervise"]) expect(readyMounts(name)).toEqual([{ type: "bind", source: readyDirOf(plan.paths, name), target: MOUNTS.ready, read_only: false }]);
    for (const name of ["firewall", "agent"]) expect(readyMounts(name)).toEqual([]);
    const builtin = planOf("egress");
    expect(renderCompose(builtin).services.firewall!.volumes).toContainEqual({ type: "bind", source: readyDirOf(builtin.paths, "firewall"), target: MOUNTS.ready, read_only: false });
    // No two services share a ready dir: one sidecar cannot say another is ready.
    const sources = Object.values(s).flatMap((svc) => (svc.volumes ?? []).filter((v) => v.target === MOUNTS.ready).map((v) => v.source));
    expect(new Set(sources).size).toBe(sources.length);
  });

  it("makes the agent's failing name lookups fail fast (nothing outside the bottle resolves)", () => {
    expect(renderCompose(planOf("minimal")).services.agent!.dns_opt).toEqual(["timeout:1", "attempts:1"]);
  });

  it("asks for gVisor only when the profile does", () => {
    expect(renderCompose(planOf("everything")).services.agent!.runtime).toBe("runsc");
    expect(renderCompose(planOf("minimal")).services.agent!.runtime).toBeUndefined();
  });

  describe("env_file", () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(nodePath.join(tmpdir(), "bb-envfile-"));
    });
    const withEnvFile = (content?: string) => {
      const file = nodePath.join(dir, "agent.env");
      if (content !== undefined) writeFileSync(file, content);
      return renderCompose(planOf(`version: 1\nagents:\n  a:\n    image: x\n    env_file: ${file}\n`)).services.agent!;
    };
    it("is used when the file exists and is non-empty", () => expect(withEnvFile("A=1\n").env_file).toEqual([nodePath.join(dir, "agent.env")]));
    it("is skipped when the file is empty", () => expect(withEnvFile("").env_file).toBeUndefined());
    it("is skipped when the file is missing", () => expect(withEnvFile().env_file).toBeUndefined());
  });

  it("lists secret and forwarded env by bare name only", () => {
    const s = renderCompose(planOf("everything")).services;
    expect(envOf(s.egress!)).toEqual(["GITHUB_TOKEN", "OPENAI_KEY"]);
    expect(envOf(s.agent!)).toContain("ANTHROPIC_API_KEY");
    expect(envOf(s.agent!).some((e) => e.startsWith("GITHUB_TOKEN"))).toBe(false);
    expect(envOf(s.agent!)).toContain("LOG_LEVEL=info");
    expect(envOf(s.agent!)).toContain("RETRIES=3");
  });

  it("gives images we build a build block and a version-tagged image, never pulled", () => {
    const s = renderCompose(planOf("everything", { defaultFirewall: "builtin" })).services;
    for (const [name, df] of [
      ["firewall", "egress"],
      ["egress", "egress"],
      ["git-gate", "git-gate"],
      ["supervise", "supervise"],
    ] as const) {
      expect(s[name]!.image).toBe(`bot-bottle/${df}:${PACKAGE_VERSION}`);
      expect(s[name]!.build).toEqual({ context: "/pkg", dockerfile: `Dockerfile.${df}` });
      expect(s[name]!.pull_policy).toBe("never");
    }
    expect(s.agent!.build).toEqual({ context: "/manifests/agent", dockerfile: "Dockerfile.agent" });
  });

  it("renders the builtin firewall from our image in firewall mode", () => {
    const fw = renderCompose(planOf("minimal")).services.firewall!;
    expect(fw.command).toEqual(["firewall", "--config", "/etc/bottle/firewall/config.json", "--port", "3128"]);
  });

  it("renders pipelock pinned, with run --config --listen, probed at start with its own health command", () => {
    const fw = renderCompose(planOf("everything")).services.firewall!;
    expect(fw.image).toBe(PIPELOCK_IMAGE);
    expect(fw.image).not.toMatch(/:latest$/);
    expect(fw.build).toBeUndefined();
    expect(fw.command).toEqual(["run", "--config", "/etc/bottle/firewall/pipelock.yaml", "--listen", "0.0.0.0:8888"]);
    expect(readyProbes(planOf("everything"))[0]).toEqual({ service: "firewall", kind: "exec", argv: ["/pipelock", "healthcheck", "--addr", "127.0.0.1:8888"] });
  });

  it("mounts git identities only into the gate, and pins upstream addresses", () => {
    const s = renderCompose(planOf("git")).services;
    expect(s["git-gate"]!.volumes).toContainEqual({ type: "bind", source: "/home/user/.ssh/id_ed25519", target: "/run/bottle/git/app/identity", read_only: true });
    for (const [name, svc] of Object.entries(s)) if (name !== "git-gate") expect(JSON.stringify(svc)).not.toContain("id_ed25519");
    expect(s["git-gate"]!.extra_hosts).toEqual(["github.com:192.0.2.10"]);
  });

  it("quotes ambiguous scalars so Compose reads strings", () => {
    // 0:0 is a base-60 integer to a YAML 1.1 reader.
    const yaml = renderBottle(planOf("minimal", { hostUser: { uid: 0, gid: 0 } })).composeYaml;
    expect(yaml).toContain('user: "0:0"');
    expect(yaml).toContain('- "3128"');
    expect(parseYaml(yaml, { version: "1.1" })).toEqual(JSON.parse(JSON.stringify(renderCompose(planOf("minimal", { hostUser: { uid: 0, gid: 0 } })))));
  });
});

describe("sidecar configs", () => {
  it("pipelock: strict mode, non-empty allowlist, forward proxy, exact CIDRs, CA paths, passthrough, raised rate limit", () => {
    // biome-ignore lint/suspicious/noExplicitAny: the test walks pipelock's untyped config
    const c = renderPipelockConfig(planOf("everything")) as Record<string, any>;
    expect(c.mode).toBe("strict");
    expect(c.api_allowlist).toEqual(["api.anthropic.com", "*.npmjs.org", "api.github.com", "api.openai.com"]);
    expect(c.forward_proxy.enabled).toBe(true);
    expect(c.ssrf.ip_allowlist).toEqual(["10.213.4.0/24", "10.99.0.0/16"]);
    expect(c.tls_interception).toMatchObject({ enabled: true, ca_cert: "/etc/bottle/firewall-ca/ca.pem", ca_key: "/etc/bottle/firewall-ca/ca.key" });
    expect(c.tls_interception.passthrough_domains).toEqual(["api.github.com", "api.openai.com"]);
    expect(c.fetch_proxy.monitoring.max_requests_per_minute).toBeGreaterThan(60);
    const keys = ["version", "mode", "enforce", "api_allowlist", "fetch_proxy", "forward_proxy", "ssrf", "tls_interception", "dlp", "logging"];
    expect(Object.keys(c).sort()).toEqual(keys.sort());
  });

  it("pipelock: an empty allowlist becomes a name that never resolves (strict refuses empty)", () => {
    // biome-ignore lint/suspicious/noExplicitAny: the test walks pipelock's untyped config
    const c = renderPipelockConfig(planOf("version: 1\nagents:\n  a: {image: x}\n", { defaultFirewall: "pipelock" })) as Record<string, any>;
    expect(c.api_allowlist).toEqual(["nothing-allowed.invalid"]);
  });

  it("builtin firewall config validates against the sidecar's own schema", () => {
    const c = renderFirewallConfig(planOf("everything"));
    expect(firewallConfigSchema.parse(c)).toEqual(c);
    expect(c.allow).toContain("api.github.com");
    expect(c.intercept.passthrough).toEqual([
      { host: "api.github.com", port: 443 },
      { host: "api.openai.com", port: 443 },
    ]);
    expect(c.dlp.canary_env).toEqual(["GITHUB_TOKEN", "OPENAI_KEY"]);
  });

  it("trusts the profile's extra upstream CAs in the firewall and egress", () => {
    const plan = planOf(`version: 1
agents:
  t:
    image: x
    network: { allow: [a.test], trust: [./internal-ca.pem, ~/other.pem] }
    egress:
      routes: [{ host: api.test, header: Authorization, value: "Bearer \${T}" }]
`);
    expect(plan.firewall.trustFiles).toEqual(["/manifests/internal-ca.pem", "/home/user/other.pem"]);
    expect(renderFirewallConfig(plan).upstream_ca_files).toEqual(["/etc/bottle/trust/upstream-ca-0.pem", "/etc/bottle/trust/upstream-ca-1.pem"]);
    expect(renderEgressConfig(plan)!.upstream_ca_files).toEqual(["/etc/bottle/trust/firewall-ca.pem", "/etc/bottle/trust/upstream-ca-0.pem", "/etc/bottle/trust/upstream-ca-1.pem"]);
  });

  it("egress config validates against the sidecar's schema and holds templates, not values", () => {
    const c = renderEgressConfig(planOf("everything"))!;
    expect(egressConfigSchema.parse(c)).toEqual(c);
    expect(c.upstream_proxy).toBe("http://bottle-firewall-everything-7f3a:8888");
    expect(c.routes[0]).toEqual({ name: "github", host: "api.github.com", port: 443, path_prefix: "/repos/acme/", header: "Authorization", value: "Bearer ${GITHUB_TOKEN}" });
  });
});

describe("secret values never reach rendered output", () => {
  const SECRETS = { GITHUB_TOKEN: "ghp_SECRETVALUE0123456789abcdefghijklmnop", OPENAI_KEY: "sk-secret-openai-value-xyz", ANTHROPIC_API_KEY: "sk-ant-secret-value-123" };
  const saved: Record<string, string | undefined> = {};
  beforeEach(() => {
    for (const [k, v] of Object.entries(SECRETS)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });
  afterEach(() => {
    for (const k of Object.keys(SECRETS)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  it("is absent from the plan, the compose file and every sidecar config", () => {
    for (const shape of Object.keys(SHAPES) as Shape[]) {
      const plan = planOf(shape);
      const out = JSON.stringify(plan) + JSON.stringify(renderBottle(plan));
      for (const v of Object.values(SECRETS)) expect(out).not.toContain(v);
    }
  });
});
