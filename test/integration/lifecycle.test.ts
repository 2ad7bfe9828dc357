// Bottles on the real engine: start -> list -> exec through the firewall ->
// logs -> stop -> list -> logs from file -> nothing left behind. And a start
// that fails leaves nothing behind (SPEC §10 #6), with 0700/0600 modes (#5).
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { afterAll, expect, it } from "vitest";
import { docker } from "../../src/engine/run.js";
import { execInBottle } from "../../src/bottles/exec.js";
import { listBottles } from "../../src/bottles/list.js";
import { bottleLogs } from "../../src/bottles/logs.js";
import { readMetadata } from "../../src/state/metadata.js";
import { SOURCE_LABEL, sourceHash } from "../../src/engine/images.js";
import { startBottle } from "../../src/bottles/start.js";
import { PACKAGE_VERSION } from "../../src/package.js";
import { stopBottle } from "../../src/bottles/stop.js";
import { describeDocker } from "../helpers/docker.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-life-"));
const manifest = nodePath.join(dir, "bottle.yaml");
writeFileSync(
  manifest,
  `version: 1
agents:
  life:
    image: node:24-bookworm-slim
    network:
      allow: [allowed.test]
  broken:
    image: bot-bottle-test/no-such-image:never
`,
);
const env = { ...process.env, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: "10.215.0.0/16" };
const tag = process.pid.toString(16).slice(-4);

/** GET an absolute URL through the agent's proxy, printing "<status> <body>". */
const viaProxy = (url: string) => [
  "node",
  "-e",
  `const u=new URL(process.env.HTTP_PROXY);require('http').get({agent:false,host:u.hostname,port:u.port,path:${JSON.stringify(url)}},r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>console.log(r.statusCode,b.trim()))}).on('error',e=>{console.log('ERR',e.message);process.exit(1)})`,
];

async function dockerObjects(slug: string): Promise<string> {
  const ps = await docker(["ps", "-a", "--filter", `label=dev.bot-bottle.slug=${slug}`, "-q"]);
  const nets = await docker(["network", "ls", "--filter", `label=dev.bot-bottle.slug=${slug}`, "-q"]);
  return (ps.stdout + nets.stdout).trim();
}

describeDocker("bottle lifecycle on real Docker", () => {
  const slug = `life-${tag}`;
  afterAll(async () => {
    await stopBottle(slug, { env }).catch(() => {});
  });

  it("starts, runs commands through the firewall, logs, stops and leaves nothing", async () => {
    const steps: string[] = [];
    const started = await startBottle({ profile: "life", manifest, slug, env, onProgress: (s) => steps.push(s) });
    expect(started.metadata.state).toBe("running");
    expect(steps).toEqual(expect.arrayContaining(["images", "networks", "prepare", "up", "health", "done"]));

    // The sidecar image was built from the current bundle, not reused from older code.
    const image = `bot-bottle/egress:${PACKAGE_VERSION}`;
    const label = await docker(["image", "inspect", "--format", `{{index .Config.Labels "${SOURCE_LABEL}"}}`, image]);
    expect(label.stdout).toBe(sourceHash({ image, dockerfile: "Dockerfile.egress", context: nodePath.resolve(import.meta.dirname, "../..") }));

    const listed = (await listBottles({ env })).find((b) => b.slug === slug);
    expect(listed?.state).toBe("running");
    expect(listed?.containers.map((c) => c.service).sort()).toEqual(["agent", "firewall"]);

    const blocked = await execInBottle(slug, viaProxy("http://blocked.test/secret"), { env: env });
    expect(blocked.exitCode).toBe(0);
    expect(blocked.stdout).toMatch(/^403 .*blocked by allowlist.*blocked\.test/);

    // SPEC §10 #1: no route out but the proxies. The firewall's address on the
    // egress network stands in for "outside": the agent must not reach it directly.
    const fwInspect = JSON.parse((await docker(["inspect", `bottle-firewall-${slug}`])).stdout)[0];
    const outside = fwInspect.NetworkSettings.Networks[`bottle-${slug}-egress`].IPAddress as string;
    const direct = await execInBottle(
      slug,
      [
        "node",
        "-e",
        `const s=require('net').connect({host:'${outside}',port:3128,timeout:3000});s.on('connect',()=>{console.log('connected');s.destroy()});s.on('timeout',()=>{console.log('timeout');s.destroy()});s.on('error',e=>console.log(e.code))`,
      ],
      { env: env },
    );
    expect(direct.stdout).toMatch(/^(timeout|ENETUNREACH|EHOSTUNREACH|ECONNREFUSED)$/);

    // A name outside the bottle never resolves; the lookup gives up in about a second, not 10-20 s.
    const t1 = Date.now();
    const lookup = await execInBottle(slug, ["getent", "hosts", "nowhere.example"], { env: env });
    expect(lookup.exitCode).not.toBe(0);
    expect(Date.now() - t1).toBeLessThan(5_000);

    const failing = await execInBottle(slug, ["sh", "-c", "echo out; echo err >&2; exit 7"], { env: env });
    expect(failing).toMatchObject({ exitCode: 7, stdout: "out", stderr: "err", timedOut: false });

    const live = await bottleLogs({ slug, env, service: "firewall", grep: "blocked.test" });
    expect(live.source).toBe("live");
    expect(live.lines.length).toBeGreaterThan(0);

    const stateDir = nodePath.join(env.BOTTLE_STATE_DIR!, slug);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    expect(statSync(nodePath.join(stateDir, "firewall-ca", "ca.key")).mode & 0o777).toBe(0o600);
    expect(readFileSync(nodePath.join(stateDir, "firewall-ca", "ca.key"), "utf8")).toContain("-----BEGIN EC PRIVATE KEY-----");
    expect(readFileSync(nodePath.join(stateDir, "exec.jsonl"), "utf8").trim().split("\n")).toHaveLength(4);

    // Readiness came from the sidecars' ready files: no container runs a
    // Docker healthcheck for the bottle's life, and none restarts by itself.
    for (const name of [`bottle-firewall-${slug}`, `bottle-agent-${slug}`]) {
      const c = JSON.parse((await docker(["inspect", name])).stdout)[0];
      expect(c.Config.Healthcheck ?? null).toBeNull();
      expect(c.HostConfig.RestartPolicy.Name).toBe("no");
    }
    expect(JSON.parse(readFileSync(nodePath.join(stateDir, "ready", "firewall", "ready"), "utf8")).pid).toBeGreaterThan(0);
    // A sidecar that dies is still noticed, from container state.
    await docker(["kill", `bottle-firewall-${slug}`]);
    const killed = (await listBottles({ env })).find((b) => b.slug === slug);
    expect(killed?.state).toBe("degraded");
    expect(killed?.detail).toBe("1/2 services running");

    const t0 = Date.now();
    const stopped = await stopBottle(slug, { env });
    expect(stopped.state).toBe("stopped");
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await dockerObjects(slug)).toBe("");
    expect((await listBottles({ env })).find((b) => b.slug === slug)?.state).toBe("stopped");

    const fromFile = await bottleLogs({ slug, env, grep: "blocked.test", tail: 5 });
    expect(fromFile.source).toBe("file");
    expect(fromFile.lines.length).toBeGreaterThan(0);
    expect(fromFile.lines.join("\n")).not.toContain("\x1b[");

    // Idempotent.
    expect((await stopBottle(slug, { env })).state).toBe("stopped");
  });

  it("refuses a second start of the same slug while the first holds it", async () => {
    const s = `dup-${tag}`;
    const results = await Promise.allSettled([startBottle({ profile: "life", manifest, slug: s, env }), startBottle({ profile: "life", manifest, slug: s, env })]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const rejected = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(String(rejected.reason.message)).toMatch(/busy|already exists/);
    await stopBottle(s, { env, purge: true });
    expect(await dockerObjects(s)).toBe("");
  });

  it("rolls back a failed start: no containers, no networks, metadata says failed", async () => {
    const s = `broken-${tag}`;
    await expect(startBottle({ profile: "broken", manifest, slug: s, env })).rejects.toThrow(/no-such-image/);
    expect(await dockerObjects(s)).toBe("");
    const meta = readMetadata({ metadataFile: nodePath.join(env.BOTTLE_STATE_DIR!, s, "metadata.json") });
    expect(meta?.state).toBe("failed");
    expect(meta?.error).toMatch(/no-such-image/);
    expect(readdirSync(nodePath.join(env.BOTTLE_STATE_DIR!, s))).toContain("docker-compose.yml");
    expect((await listBottles({ env })).find((b) => b.slug === s)?.state).toBe("failed");
  });
});
