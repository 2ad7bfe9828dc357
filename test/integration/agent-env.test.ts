// The agent's environment on the real engine (issue 12): the CA variables
// and NODE_USE_ENV_PROXY reach the agent, Node's built-in fetch goes through
// the firewall, and a profile `user` that is neither root nor the host user
// runs exec and tasks as that uid, tasks still writing their output.
// network.trust: [system] copies the host's store into what the firewall reads.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { execInBottle } from "../../src/bottles/exec.js";
import { startBottle } from "../../src/bottles/start.js";
import { stopBottle } from "../../src/bottles/stop.js";
import { readSystemCaBundle } from "../../src/bottles/system-trust.js";
import { runTask, taskStatus } from "../../src/bottles/tasks.js";
import { TRUST_BUNDLE } from "../../src/contracts/mounts.js";
import { layoutOf, systemCaFile } from "../../src/state/layout.js";
import { describeDocker } from "../helpers/docker.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-env-"));
const manifest = nodePath.join(dir, "bottle.yaml");
// A uid:gid that is neither root nor (in any sane CI) the host user.
const USER = "4321:4321";
writeFileSync(
  manifest,
  `version: 1
agents:
  env:
    image: node:24-bookworm-slim
    user: "${USER}"
    network:
      allow: [allowed.test]
      trust: [system]
`,
);
const env = { ...process.env, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: "10.236.0.0/16" };
const slug = `env-${process.pid.toString(16).slice(-4)}`;

describeDocker("agent environment on real Docker", () => {
  beforeAll(async () => {
    await startBottle({ profile: "env", manifest, slug, env });
  }, 300_000);
  afterAll(async () => {
    await stopBottle(slug, { env }).catch(() => {});
  });

  it("gives the agent every CA variable, NODE_USE_ENV_PROXY and the profile's user", async () => {
    const r = await execInBottle(slug, ["sh", "-c", "env; echo uid=$(id -u):$(id -g)"], { env });
    expect(r.exitCode).toBe(0);
    for (const k of [
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
    ])
      expect(r.stdout).toContain(`${k}=${TRUST_BUNDLE}\n`);
    expect(r.stdout).toContain("NODE_USE_ENV_PROXY=1\n");
    expect(r.stdout).toContain(`uid=${USER}`);
    // The non-root user reads the bundle.
    const bundle = await execInBottle(slug, ["sh", "-c", `grep -c 'BEGIN CERTIFICATE' ${TRUST_BUNDLE}`], { env });
    expect(Number(bundle.stdout.trim())).toBeGreaterThan(1);
  });

  it("Node's built-in fetch goes through the firewall", async () => {
    // Node tunnels even http:// through CONNECT; the firewall refuses the host with 403.
    // Without NODE_USE_ENV_PROXY, fetch would resolve blocked.test itself and fail on DNS.
    const script = "fetch('http://blocked.test/x').then(r=>console.log('STATUS',r.status),e=>console.log('ERR',String(e.cause?.cause?.message??e.cause?.message??e)))";
    const r = await execInBottle(slug, ["node", "-e", script], { env });
    expect(r.stdout.trim()).toBe("ERR Proxy response (403) !== 200 when HTTP Tunneling");
  });

  it("runs a task as the profile's user and reads its output", async () => {
    const { taskId } = await runTask(slug, ["sh", "-c", "echo task-uid=$(id -u)"], { env });
    const done = await taskStatus(slug, { env, taskId, waitS: 60 });
    expect(done.tasks[0]).toMatchObject({ state: "exited", exitCode: 0 });
    expect(done.output?.text).toBe(`task-uid=${USER.split(":")[0]}\n`);
  });

  it("copies the host's CA store for the firewall (network.trust: [system])", async () => {
    const l = layoutOf(env.BOTTLE_STATE_DIR, slug);
    expect(readFileSync(systemCaFile(l), "utf8")).toBe(await readSystemCaBundle());
    expect(JSON.parse(readFileSync(l.firewallConfigFile, "utf8")).upstream_ca_files).toContain("/etc/bottle/trust/system-ca.pem");
  });
});
