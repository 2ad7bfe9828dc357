// SPEC §10 #2: the agent cannot reach services on the Docker host through its
// internal network's gateway. A control container on a plain `--internal`
// network shows the leak exists without our rule, so this test can fail.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { hostIsolationSupport } from "../../src/engine/host-isolation.js";
import { hostAddress, pickFreeSubnets } from "../../src/plan/subnets.js";
import { createNetwork, removeNetwork, usedSubnets } from "../../src/engine/networks.js";
import { docker } from "../../src/engine/run.js";
import { execInBottle } from "../../src/bottles/exec.js";
import { startBottle } from "../../src/bottles/start.js";
import { stopBottle } from "../../src/bottles/stop.js";
import { bridgeName } from "../../src/plan/index.js";
import { describeDocker } from "../helpers/docker.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-iso-"));
const manifest = nodePath.join(dir, "bottle.yaml");
writeFileSync(manifest, "version: 1\nagents:\n  iso:\n    image: node:24-bookworm-slim\n");
const env = { ...process.env, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: "10.220.0.0/16" };
const tag = process.pid.toString(16).slice(-4);
const gateway = (subnet: string) => hostAddress(subnet, 1);

/** Node one-liner: try a TCP connect, print "connected" or the error code. */
const probe = (host: string, port: number) => [
  "node",
  "-e",
  `const s=require('net').connect({host:${JSON.stringify(host)},port:${port},timeout:3000});s.on('connect',()=>{console.log('connected');s.destroy()});s.on('timeout',()=>{console.log('timeout');s.destroy()});s.on('error',e=>console.log(e.code))`,
];

describeDocker("agents cannot reach the Docker host", () => {
  let server: Server;
  let port = 0;
  let accepted = 0;
  const control = { net: `bb-iso-control-${tag}`, container: `bb-iso-control-${tag}` };

  beforeAll(async () => {
    const support = await hostIsolationSupport(env);
    expect(support.supported, support.reason).toBe(true); // CI runs as root on the engine's host
    server = createServer((sock) => {
      accepted++;
      sock.destroy();
    });
    await new Promise<void>((r) => server.listen(0, "0.0.0.0", r));
    port = (server.address() as { port: number }).port;
  });

  afterAll(async () => {
    server?.close();
    await docker(["rm", "-f", control.container], { reject: false });
    await removeNetwork(control.net).catch(() => {});
    await stopBottle(`iso-${tag}`, { env, purge: true }).catch(() => {});
  });

  it("without our rule, an internal network reaches host ports (the control)", async () => {
    const [subnet] = pickFreeSubnets("10.220.0.0/16", await usedSubnets(), 1, 200);
    await createNetwork({ name: control.net, subnet: subnet!, internal: true, bridge: `bbiso${tag}`, labels: { "dev.bot-bottle.test": "isolation" } });
    await docker(["run", "-d", "--name", control.container, "--network", control.net, "--label", "dev.bot-bottle.test=isolation", "node:24-bookworm-slim", "sleep", "60"]);
    const before = accepted;
    const r = await docker(["exec", control.container, ...probe(gateway(subnet!), port)]);
    expect(r.stdout).toBe("connected");
    expect(accepted).toBeGreaterThan(before);
  });

  it("a bottle's agent is refused, and the rule goes away with the bottle", async () => {
    const slug = `iso-${tag}`;
    const started = await startBottle({ profile: "iso", manifest, slug, env });
    const internal = started.summary.networks.find((n) => n.internal)!;
    const bridge = bridgeName(internal.name);
    expect(execFileSync("iptables", ["-S", "INPUT"]).toString()).toContain(`bot-bottle:${bridge}`);
    const before = accepted;
    const r = await execInBottle(slug, probe(gateway(internal.subnet), port), { env: env });
    expect(r.stdout).toMatch(/^(ECONNREFUSED|EHOSTUNREACH|timeout)$/);
    expect(accepted).toBe(before);
    await stopBottle(slug, { env });
    expect(execFileSync("iptables", ["-S", "INPUT"]).toString()).not.toContain(`bot-bottle:${bridge}`);
  });
});
