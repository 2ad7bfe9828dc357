// Guards the renderer's output against the real Compose: a rendered file,
// with images swapped for local busybox, must pass `docker compose config`
// and come up and down on pre-created networks.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { compose, composeConfig, composeDown, composeUp } from "../../src/engine/compose.js";
import { hostUser } from "../../src/bottles/profile.js";
import { allocateNetworks } from "../../src/bottles/networks.js";
import { engineFor } from "../../src/engine/index.js";
import { removeNetwork } from "../../src/engine/networks.js";
import { docker } from "../../src/engine/run.js";
import { parseManifest } from "../../src/manifest/index.js";
import { fileReadyServices, resolvePlan, type Plan } from "../../src/plan/index.js";
import { readyDirOf } from "../../src/state/layout.js";
import { renderCompose, serializeCompose, type ComposeFile } from "../../src/render/index.js";
import { describeDocker } from "../helpers/docker.js";

const SECRET = "ghp_renderComposeTestSecret00000000000000";
const TEST_POOL = "10.214.0.0/16";

/** Same file, but every image is local busybox sleeping. */
function onBusybox(c: ComposeFile): ComposeFile {
  const out = structuredClone(c);
  for (const svc of Object.values(out.services)) {
    svc.image = "local/busybox";
    delete svc.build;
    svc.pull_policy = "never";
    svc.command = ["sleep", "infinity"];
  }
  return out;
}

describeDocker("rendered compose file on the real Docker engine", () => {
  const root = mkdtempSync(nodePath.join(tmpdir(), "bb-render-"));
  let plan: Plan;
  let file: string;

  beforeAll(async () => {
    const m = parseManifest(
      `version: 1
agents:
  rt:
    image: local/busybox
    env: { LOG_LEVEL: debug }
    forward_env: [BB_FORWARDED]
    network: { allow: [allowed.test] }
    egress:
      routes:
        - { host: api.test, header: Authorization, value: "Bearer \${GITHUB_TOKEN}" }
    resources: { memory: 128m, pids: 64 }
`,
      nodePath.join(root, "bottle.yaml"),
    );
    const slug = `rt-${process.pid.toString(16).slice(-4)}`;
    const base = { profileName: "rt", profile: m.agents.rt!, defaultFirewall: "builtin" as const, slug, stateRoot: root, packageRoot: root, hostUser: hostUser() };
    const nets = await allocateNetworks(engineFor(), (subnets) => resolvePlan({ ...base, subnets }).networks, TEST_POOL);
    plan = resolvePlan({ ...base, subnets: { internal: nets.internal.subnet, egress: nets.egress.subnet } });
    for (const [k, dir] of Object.entries(plan.paths)) if (!/File|Log$/.test(k)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const service of fileReadyServices(plan)) mkdirSync(readyDirOf(plan.paths, service), { recursive: true, mode: 0o700 });
    file = plan.paths.composeFile;
    writeFileSync(file, serializeCompose(onBusybox(renderCompose(plan))));
  });

  afterAll(async () => {
    if (!plan) return;
    await composeDown({ project: plan.project, file }, { reject: false }).catch(() => {});
    await removeNetwork(plan.networks.internal.name).catch(() => {});
    await removeNetwork(plan.networks.egress.name).catch(() => {});
  });

  it("is accepted by docker compose config", async () => {
    const r = await composeConfig({ project: plan.project, file }, { reject: false });
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
  });

  it("comes up on the pre-created networks with our names, labels and hardening", async () => {
    const p = { project: plan.project, file };
    await composeUp(p, { env: { GITHUB_TOKEN: SECRET, BB_FORWARDED: "forwarded-ok" } });
    const ps = await docker(["ps", "--filter", `label=dev.bot-bottle.slug=${plan.slug}`, "--format", "{{.Names}}"]);
    expect(ps.stdout.split("\n").sort()).toEqual([`bottle-agent-${plan.slug}`, `bottle-egress-${plan.slug}`, `bottle-firewall-${plan.slug}`]);

    const inspect = JSON.parse((await docker(["inspect", `bottle-agent-${plan.slug}`])).stdout)[0];
    expect(Object.keys(inspect.NetworkSettings.Networks)).toEqual([plan.networks.internal.name]);
    expect(inspect.Config.Labels["dev.bot-bottle.profile"]).toBe("rt");
    expect(inspect.HostConfig.Init).toBe(true);
    expect(inspect.HostConfig.SecurityOpt).toContain("no-new-privileges:true");
    expect(inspect.HostConfig.CapDrop).toEqual(expect.arrayContaining(["NET_RAW", "NET_ADMIN"]));
    expect(inspect.HostConfig.PidsLimit).toBe(64);
    expect(inspect.HostConfig.Memory).toBe(128 * 1024 * 1024);
    expect(inspect.Config.Env).toContain("BB_FORWARDED=forwarded-ok");
    expect(inspect.Config.Env).toContain("HTTPS_PROXY=http://egress:3129");
    expect(inspect.Config.Env.some((e: string) => e.includes(SECRET))).toBe(false);

    // The secret reached egress by inheritance, though the file only names it.
    const egressEnv = (await docker(["exec", `bottle-egress-${plan.slug}`, "sh", "-c", 'echo "$GITHUB_TOKEN"'])).stdout;
    expect(egressEnv).toBe(SECRET);

    const fw = JSON.parse((await docker(["inspect", `bottle-firewall-${plan.slug}`])).stdout)[0];
    // With egress, the firewall is on the egress network only: the agent cannot reach it.
    expect(Object.keys(fw.NetworkSettings.Networks)).toEqual([plan.networks.egress.name]);
    expect(fw.NetworkSettings.Networks[plan.networks.egress.name].Aliases).toContain(`bottle-firewall-${plan.slug}`);
    expect(fw.HostConfig.CapDrop).toEqual(["ALL"]);
    expect(fw.HostConfig.ReadonlyRootfs).toBe(true);

    // The agent resolves its sidecars by the names the renderer gave them.
    const ping = await docker(["exec", `bottle-agent-${plan.slug}`, "nslookup", "egress"], { reject: false });
    expect(ping.stdout + ping.stderr).toContain(plan.networks.internal.subnet.split(".").slice(0, 3).join("."));
  });

  it("goes down quickly and leaves no containers", async () => {
    const p = { project: plan.project, file };
    const t0 = Date.now();
    await composeDown(p);
    const ms = Date.now() - t0;
    const left = await compose(p, ["ps", "-a", "-q"]);
    expect(left.stdout).toBe("");
    // init: true makes `sleep infinity` stop on SIGTERM instead of waiting out the timeout.
    expect(ms).toBeLessThan(8_000);
  });
});
