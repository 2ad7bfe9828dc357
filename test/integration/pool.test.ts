// The warm pool on the real engine (issue 13): a claimed bottle is the
// pooled bottle's containers under the claimer's slug, with fresh CAs that
// the running firewall really serves (reloaded, not restarted) and that the
// agent's bundle trusts, and nothing left from the pool.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { afterAll, expect, it } from "vitest";
import { execInBottle } from "../../src/bottles/exec.js";
import { listBottles } from "../../src/bottles/list.js";
import { poolBottles, startBottle } from "../../src/bottles/start.js";
import { stopBottle } from "../../src/bottles/stop.js";
import { docker } from "../../src/engine/run.js";
import { layoutOf } from "../../src/state/layout.js";
import { describeDocker } from "../helpers/docker.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-pool-"));
const manifest = nodePath.join(dir, "bottle.yaml");
const POOL = "10.239.0.0/16";
writeFileSync(
  manifest,
  `version: 1
agents:
  warm:
    image: node:24-bookworm-slim
    pool: 1
    network:
      allow: [intercept.test]
      allow_cidrs: [${POOL}]
`,
);
const env = { ...process.env, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: POOL };
const tag = process.pid.toString(16).slice(-4);
const slug = `claimed-${tag}`;
const stand = `bb-pool-up-${tag}`;

// From the agent: CONNECT through the firewall, then TLS; print who signed the leaf and whether the bundle trusts it.
const PEEK = `const u=new URL(process.env.HTTPS_PROXY);const http=require('http'),tls=require('tls'),fs=require('fs');
http.request({agent:false,host:u.hostname,port:u.port,method:'CONNECT',path:'intercept.test:443'}).on('connect',(res,sock)=>{
if(res.statusCode!==200){console.log('CONNECT',res.statusCode);process.exit(1)}
const t=tls.connect({socket:sock,servername:'intercept.test',ca:fs.readFileSync(process.env.SSL_CERT_FILE)},()=>{console.log(JSON.stringify({issuer:t.getPeerCertificate().issuer.CN,authorized:t.authorized}));t.destroy()});
t.on('error',e=>{console.log('TLS',e.code||e.message);process.exit(1)})}).on('error',e=>{console.log('ERR',e.message);process.exit(1)}).end()`;

describeDocker("warm pool on real Docker", () => {
  afterAll(async () => {
    await docker(["rm", "-f", stand], { reject: false });
    await stopBottle(slug, { env }).catch(() => {});
    await poolBottles({ profile: "warm", manifest, env, size: 0 }).catch(() => {});
  });

  it("claims a pooled bottle whose running firewall then serves the claimer's fresh CA, with nothing carried over", async () => {
    const filled = await poolBottles({ profile: "warm", manifest, env });
    expect(filled.started).toHaveLength(1);
    const pooled = filled.started[0]!;
    const poolCa = readFileSync(layoutOf(env.BOTTLE_STATE_DIR, pooled).firewallCaCert, "utf8");
    expect((await listBottles({ env })).find((b) => b.slug === pooled)?.state).toBe("pooled");
    await expect(execInBottle(pooled, ["true"], { env })).rejects.toThrow(/warm pool/);

    const t0 = Date.now();
    const r = await startBottle({ profile: "warm", manifest, slug, env });
    const claimMs = Date.now() - t0;
    expect(r.metadata).toMatchObject({ slug, instance: pooled, state: "running" });
    console.log(`claim took ${claimMs} ms`);

    const l = layoutOf(env.BOTTLE_STATE_DIR, slug);
    const ca = readFileSync(l.firewallCaCert, "utf8");
    expect(ca).not.toBe(poolCa);
    // Nothing from the pool: no tasks, no exec records, no proposals.
    expect(readdirSync(l.taskIoDir)).toEqual([]);
    expect(readdirSync(l.tasksDir)).toEqual([]);

    // A name the firewall resolves (Docker's DNS on the bottle's egress network), so it intercepts.
    const egressNet = r.metadata.networks.find((n) => !n.internal)!.name;
    await docker(["run", "-d", "--name", stand, "--network", egressNet, "--network-alias", "intercept.test", "--pull", "never", "local/busybox", "sleep", "300"]);
    const peek = await execInBottle(slug, ["node", "-e", PEEK], { env });
    expect(peek.stdout.trim()).toBe(JSON.stringify({ issuer: `bot-bottle firewall ${slug}`, authorized: true }));

    const listed = (await listBottles({ env })).find((b) => b.slug === slug);
    expect(listed?.state).toBe("running");
    expect(listed?.containers.map((c) => c.service).sort()).toEqual(["agent", "firewall"]);

    await docker(["rm", "-f", stand]);
    await stopBottle(slug, { env });
    const left = await docker(["ps", "-a", "--filter", `label=dev.bot-bottle.slug=${pooled}`, "-q"]);
    expect(left.stdout).toBe("");
    const nets = await docker(["network", "ls", "--filter", `label=dev.bot-bottle.slug=${pooled}`, "-q"]);
    expect(nets.stdout).toBe("");
  });
});
