// The compose -> stack transform (engine/swarm-stack.ts) and the swarm
// engine's pure parsers (engine/swarm.ts), on the rendered snapshot shapes.
import { describe, expect, it } from "vitest";
import { agentPlacement, currentTasks, retryableStart, parseSwarmNodes, serviceLogLine, swarmConfig, taskExitCode, taskState } from "../../../src/engine/swarm.js";
import { MANAGER_ONLY, SECRET_LOADER, secretName, SWARM_AGENT_EXTRA_CAP_DROP, toStack } from "../../../src/engine/swarm-stack.js";
import { renderCompose } from "../../../src/render/index.js";
import { planOf } from "../../fixtures/shapes.js";

const EGRESS_ENTRY = ["node", "/app/proxy.cjs"];
const entrypoints = { "bot-bottle/egress:0.1.0": EGRESS_ENTRY };
const stackOf = (shape: string, more: { agentConstraints?: string[] } = {}) => {
  const compose = renderCompose(planOf(shape));
  const image = compose.services.egress?.image ?? compose.services.firewall!.image;
  return { compose, ...toStack(compose, { stack: compose.name, entrypoints: { ...entrypoints, [image]: EGRESS_ENTRY }, ...more }) };
};

describe("compose file -> swarm stack", () => {
  it("keeps every service, image, command, user, mount and network alias", () => {
    const { compose, stack } = stackOf("egress");
    expect(Object.keys(stack.services).sort()).toEqual(Object.keys(compose.services).sort());
    for (const [name, c] of Object.entries(compose.services)) {
      const s = stack.services[name]!;
      expect(s.image).toBe(c.image);
      expect(s.command).toEqual(c.command);
      expect(s.user).toBe(c.user);
      expect(s.init).toBe(c.init);
      for (const v of c.volumes ?? []) expect(s.volumes).toContainEqual({ type: "bind", source: v.source, target: v.target, read_only: v.read_only });
      for (const t of c.tmpfs ?? []) expect(s.volumes).toContainEqual({ type: "tmpfs", target: t });
      expect(s.networks).toEqual(c.networks);
      expect(s.labels).toEqual(c.labels);
      expect(s.deploy.labels).toEqual(c.labels);
    }
    expect(stack.networks).toEqual(compose.networks);
  });

  it("drops what Swarm names, builds or orders itself", () => {
    const { stack } = stackOf("egress");
    for (const s of Object.values(stack.services)) {
      for (const key of ["container_name", "build", "pull_policy", "depends_on", "security_opt", "restart", "mem_limit", "cpus", "pids_limit", "tmpfs"]) expect(s).not.toHaveProperty(key);
      expect(s.deploy.restart_policy).toEqual({ condition: "none" });
      expect(s.deploy.endpoint_mode).toBe("dnsrr");
    }
  });

  it("pins every service to the manager, where the state dir is", () => {
    const { stack } = stackOf("egress");
    for (const s of Object.values(stack.services)) expect(s.deploy.placement.constraints).toEqual(MANAGER_ONLY);
    const free = stackOf("egress", { agentConstraints: ["node.labels.agents == yes"] }).stack;
    expect(free.services.agent!.deploy.placement.constraints).toEqual(["node.labels.agents == yes"]);
    expect(free.services.egress!.deploy.placement.constraints).toEqual(MANAGER_ONLY);
  });

  it("turns limits into deploy resources, and the agent's into reservations too", () => {
    const compose = renderCompose(planOf("egress"));
    compose.services.agent = { ...compose.services.agent!, mem_limit: "4g", cpus: 2, pids_limit: 512 };
    const { stack } = toStack(compose, { stack: compose.name, entrypoints: { [compose.services.egress!.image]: EGRESS_ENTRY } });
    expect(stack.services.agent!.deploy.resources).toEqual({ limits: { memory: "4g", cpus: "2", pids: 512 }, reservations: { memory: "4g", cpus: "2" } });
    expect(stack.services.egress!.deploy.resources).toEqual({ limits: { memory: "512m", pids: 256 } });
  });

  it("makes up for the missing no-new-privileges: the agent cannot change identity", () => {
    const { compose, stack } = stackOf("egress");
    expect(stack.services.agent!.cap_drop).toEqual([...new Set([...compose.services.agent!.cap_drop, ...SWARM_AGENT_EXTRA_CAP_DROP])]);
    expect(stack.services.agent!.cap_drop).toEqual(expect.arrayContaining(["SETUID", "SETGID", "SETPCAP", "SETFCAP"]));
    expect(stack.services.egress!.cap_drop).toEqual(["ALL"]);
  });

  it("turns a sidecar's credential env names into Swarm secrets readable by its own uid only", () => {
    const { stack, secrets } = stackOf("egress");
    expect(secrets).toEqual([{ name: "bottle-egress-7f3a-GITHUB_TOKEN", env: "GITHUB_TOKEN" }]);
    expect(stack.secrets).toEqual({ "bottle-egress-7f3a-GITHUB_TOKEN": { external: true, name: "bottle-egress-7f3a-GITHUB_TOKEN" } });
    const egress = stack.services.egress!;
    expect(egress.secrets).toEqual([{ source: "bottle-egress-7f3a-GITHUB_TOKEN", target: "GITHUB_TOKEN", uid: "1000", gid: "1000", mode: 0o400 }]);
    // The name is no longer an env entry (stack deploy would fill it in from its env), and no value appears anywhere.
    expect(egress.environment ?? []).not.toContain("GITHUB_TOKEN");
    expect(egress.entrypoint).toEqual(["/bin/sh", "-c", SECRET_LOADER, "bottle-secrets", ...EGRESS_ENTRY]);
    expect(egress.command).toEqual(renderCompose(planOf("egress")).services.egress!.command);
  });

  it("leaves the agent's forwarded names to stack deploy and gives it no secret", () => {
    const { stack } = stackOf("egress");
    expect(stack.services.agent!.environment).toContain("ANTHROPIC_API_KEY");
    expect(stack.services.agent).not.toHaveProperty("secrets");
    expect(stack.services.agent).not.toHaveProperty("entrypoint");
  });

  it("needs no secrets for a bottle without credentials", () => {
    const { stack, secrets } = stackOf("minimal");
    expect(secrets).toEqual([]);
    expect(stack).not.toHaveProperty("secrets");
    for (const s of Object.values(stack.services)) expect(s).not.toHaveProperty("entrypoint");
  });

  it("escapes the loader's $ for stack interpolation and exports each secret file", () => {
    expect(SECRET_LOADER).not.toMatch(/(^|[^$])\$(?!\$)/);
    expect(SECRET_LOADER.replaceAll("$$", "$")).toBe('for f in /run/secrets/*; do [ -f "$f" ] && export "${f##*/}=$(cat "$f")"; done; exec "$@"');
  });

  it("refuses what Swarm cannot do, naming the service", () => {
    expect(() => stackOf("everything")).toThrow(/service "agent" asks for the runsc runtime/);
    const compose = renderCompose(planOf("egress"));
    compose.services.egress!.environment = ["BAD-NAME"];
    expect(() => toStack(compose, { stack: compose.name, entrypoints })).toThrow(/"BAD-NAME" is not an environment variable name/);
    const other = renderCompose(planOf("egress"));
    expect(() => toStack(other, { stack: other.name, entrypoints: {} })).toThrow(/entrypoint of .* is unknown/);
  });

  it("is pure: the same compose file gives the same stack", () => {
    expect(JSON.stringify(stackOf("egress").stack)).toBe(JSON.stringify(stackOf("egress").stack));
  });

  it("keeps secret names within Swarm's 64 characters, distinct", () => {
    expect(secretName("bottle-a", "TOKEN")).toBe("bottle-a-TOKEN");
    const a = secretName(`bottle-${"x".repeat(40)}`, `A_VERY_LONG_CREDENTIAL_NAME_${"1".repeat(10)}`);
    const b = secretName(`bottle-${"x".repeat(40)}`, `A_VERY_LONG_CREDENTIAL_NAME_${"2".repeat(10)}`);
    expect(a.length).toBe(64);
    expect(a).not.toBe(b);
  });
});

describe("swarm engine parsers", () => {
  it("reads BOTTLE_SWARM_NODES and refuses bad entries whole", () => {
    expect([...parseSwarmNodes("n1=tcp://10.0.0.1:2375, n2=ssh://me@n2")]).toEqual([
      ["n1", "tcp://10.0.0.1:2375"],
      ["n2", "ssh://me@n2"],
    ]);
    expect(parseSwarmNodes(undefined).size).toBe(0);
    expect(() => parseSwarmNodes("n1")).toThrow(/not name=<docker host>/);
    expect(() => parseSwarmNodes("n1=10.0.0.1:2375")).toThrow(/not name=<docker host>/);
    expect(() => parseSwarmNodes("n1=tcp://a:1,n1=tcp://b:1")).toThrow(/twice/);
  });

  it("reads agent placement constraints, only with a shared state root", () => {
    expect(agentPlacement({})).toEqual([]);
    expect(agentPlacement({ BOTTLE_SWARM_SHARED_STATE: "1", BOTTLE_SWARM_AGENT_PLACEMENT: "node.role == worker; node.labels.agents!=no" })).toEqual(["node.role == worker", "node.labels.agents!=no"]);
    expect(() => agentPlacement({ BOTTLE_SWARM_AGENT_PLACEMENT: "node.role == worker" })).toThrow(/needs BOTTLE_SWARM_SHARED_STATE=1/);
    expect(() => agentPlacement({ BOTTLE_SWARM_SHARED_STATE: "1", BOTTLE_SWARM_AGENT_PLACEMENT: "worker" })).toThrow(/not a placement constraint/);
  });

  it("takes the manager from BOTTLE_SWARM_MANAGER, else DOCKER_HOST", () => {
    expect(swarmConfig({ BOTTLE_SWARM_MANAGER: "tcp://m:2375", DOCKER_HOST: "tcp://d:2375" }).manager).toBe("tcp://m:2375");
    expect(swarmConfig({ DOCKER_HOST: "tcp://d:2375" }).manager).toBe("tcp://d:2375");
    expect(swarmConfig({}).manager).toBeUndefined();
  });

  it("maps task states to container states, with exit codes from the task error", () => {
    expect(taskState("Running 3 seconds ago")).toBe("running");
    expect(taskState("Preparing 1 second ago")).toBe("created");
    expect(taskState("Failed 2 seconds ago")).toBe("exited");
    expect(taskState("Complete 2 seconds ago")).toBe("exited");
    expect(taskState("Rejected 2 seconds ago")).toBe("dead");
    expect(taskExitCode("task: non-zero exit (3)")).toBe(3);
    expect(taskExitCode("")).toBeUndefined();
  });

  it("keeps the newest task of each service of the stack", () => {
    const row = (Name: string, CurrentState: string) => ({ Name, Node: "n1", DesiredState: "Running", CurrentState, Error: "" });
    const tasks = currentTasks("bottle-a", [
      row("bottle-a_agent.1", "Running 1 second ago"),
      row("bottle-a_agent.1", "Failed 1 minute ago"),
      row("bottle-a_git-gate.1", "Preparing now"),
      row("bottle-ab_agent.1", "Running"),
    ]);
    expect([...tasks.keys()].sort()).toEqual(["agent", "git-gate"]);
    expect(tasks.get("agent")!.CurrentState).toMatch(/^Running/);
  });

  it("retries a task whose container never started, twice at most; never one that ran and died", () => {
    const task = (error: string) => ({ Name: "bottle-a_egress.1", Node: "n1", DesiredState: "Shutdown", CurrentState: "Failed now", Error: error });
    const busy = task("starting container failed: unable to remount dir as readonly: mount tmpfs:/var/lib/docker/containers/x/mounts/secrets: device or resource busy");
    expect(retryableStart(busy, 0)).toBe(true);
    expect(retryableStart(busy, 1)).toBe(true);
    expect(retryableStart(busy, 2)).toBe(false);
    expect(retryableStart(task("task: non-zero exit (1)"), 0)).toBe(false);
    expect(retryableStart(task(""), 0)).toBe(false);
  });

  it("turns service log lines into '<container> | <text>', timestamps kept when asked", () => {
    const raw = 'bottle-a_egress.1@node-1    | 2026-11-30T12:00:00.123456789Z {"msg":"ready"}';
    expect(serviceLogLine(raw, "bottle-egress-a", false)).toEqual({ ts: "2026-11-30T12:00:00.123456789Z", line: 'bottle-egress-a | {"msg":"ready"}' });
    expect(serviceLogLine(raw, "bottle-egress-a", true)?.line).toBe('bottle-egress-a | 2026-11-30T12:00:00.123456789Z {"msg":"ready"}');
    expect(serviceLogLine("2026-11-30T12:00:00Z bottle-a_egress.1@n    | x | y", "e", false)).toEqual({ ts: "2026-11-30T12:00:00Z", line: "e | x | y" });
    expect(serviceLogLine("no bar here", "e", false)).toBeUndefined();
  });
});
