// Bottles on a real three-node Docker Swarm (test/helpers/swarm.ts: DinD
// nodes on a network this test creates; this machine's engine never joins a
// swarm). Through startBottle with BOTTLE_ENGINE=swarm: doctor sees every
// node, the bottle is a stack, exec reaches the agent, the firewall passes an
// allowed request and refuses another, the egress credential is a Swarm
// secret (never in the stack file, the service spec or the agent), and stop
// leaves nothing on any node.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { cleanup } from "../../src/bottles/cleanup.js";
import { contextOf, projectOf } from "../../src/bottles/context.js";
import { execInBottle } from "../../src/bottles/exec.js";
import { reconfigure } from "../../src/bottles/reconfigure.js";
import { layoutOf } from "../../src/state/layout.js";
import { listBottles } from "../../src/bottles/list.js";
import { bottleLogs } from "../../src/bottles/logs.js";
import { readReady } from "../../src/bottles/readiness.js";
import { poolBottles, startBottle } from "../../src/bottles/start.js";
import { runTask, taskStatus } from "../../src/bottles/tasks.js";
import { stopBottle } from "../../src/bottles/stop.js";
import { docker } from "../../src/engine/run.js";
import { SwarmEngine } from "../../src/engine/swarm.js";
import { describeDocker } from "../helpers/docker.js";
import { CLI, connectServer } from "../helpers/mcp.js";
import { startSwarm, type TestSwarm } from "../helpers/swarm.js";

const TOKEN = `ghp_${"SwArMsEcReT".repeat(3)}${process.pid}`;
const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-swarm-"));
const manifest = nodePath.join(dir, "bottle.yaml");
writeFileSync(
  manifest,
  `version: 1
agents:
  sw:
    image: node:24-bookworm-slim
    # The test's upstream sits on the bottle's egress overlay, inside the subnet pool.
    network: { allow: [allowed.test, api.secret.test], allow_cidrs: [10.97.0.0/16] }
    egress:
      routes:
        - { host: api.secret.test, header: Authorization, value: "Bearer \${SW_TOKEN}" }
  broken:
    image: bot-bottle-test/no-such-image:never
  warm:
    image: node:24-bookworm-slim
    pool: 1
    network: { allow: [allowed.test], allow_cidrs: [10.97.0.0/16] }
`,
);
const tag = process.pid.toString(16).slice(-4);
const slug = `sw-${tag}`;

/** GET an absolute URL through the agent's proxy, printing "<status> <body>". */
const viaProxy = (url: string) => [
  "node",
  "-e",
  `const u=new URL(process.env.HTTP_PROXY);require('http').get({agent:false,host:u.hostname,port:u.port,path:${JSON.stringify(url)}},r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>console.log(r.statusCode,b.trim()))}).on('error',e=>{console.log('ERR',e.message);process.exit(1)})`,
];

/** Fetches through the agent's proxy until the upstream (just started on the overlay) answers 200, 5 s at most; the last answer. */
async function untilUp(fetchOnce: () => Promise<{ stdout: string }>): Promise<{ stdout: string }> {
  let last = { stdout: "" };
  for (let i = 0; i < 20; i++) {
    last = await fetchOnce();
    if (/^200 /.test(last.stdout)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}

/** An upstream on the bottle's egress overlay: answers with the Authorization header it got. */
const UPSTREAM = "require('http').createServer((q,r)=>r.end('upstream '+q.headers.host+' auth='+(q.headers.authorization||'none'))).listen(80)";

describeDocker("bottles on a real three-node Docker Swarm", () => {
  let swarm: TestSwarm;
  let env: NodeJS.ProcessEnv;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    const t0 = performance.now();
    // The state root is at the same path on every node (as a shared filesystem would be):
    // the sidecars are pinned to the manager and bind it; an agent on a worker binds it too.
    swarm = await startSwarm({ sharedDirs: [dir] });
    timings.swarmSetup = Math.round(performance.now() - t0) / 1000;
    env = {
      ...process.env,
      BOTTLE_ENGINE: "swarm",
      BOTTLE_SWARM_MANAGER: swarm.manager.host,
      BOTTLE_SWARM_NODES: swarm.nodesEnv,
      BOTTLE_STATE_DIR: nodePath.join(dir, "state"),
      BOTTLE_SUBNET_POOL: "10.97.0.0/16",
      SW_TOKEN: TOKEN,
    };
  });

  afterAll(async () => {
    if (env) await stopBottle(slug, { env }).catch(() => {});
    if (env) await stopBottle(`${slug}-m`, { env }).catch(() => {});
    if (env) await stopBottle(`${slug}-w`, { env: { ...env, BOTTLE_SWARM_SHARED_STATE: "1", BOTTLE_SWARM_AGENT_PLACEMENT: "node.role == worker" } }).catch(() => {});
    await swarm?.stop();
    process.stderr.write(`\n[swarm timings] ${JSON.stringify({ ...timings, ...Object.fromEntries(Object.entries(swarm?.timings ?? {}).map(([k, v]) => [`setup.${k}`, v])) })}\n`);
  });

  it("doctor sees the manager and every node's engine", async () => {
    const checks = await new SwarmEngine(env).checks();
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks.map((c) => c.name).sort()).toEqual(["swarm", ...swarm.nodes.map((n) => `node ${n.name}`)].sort());
    expect(checks.find((c) => c.name === `node ${swarm.nodes[1]!.name}`)?.detail).toMatch(/^worker ready\/active, \d+ CPUs/);
  });

  it("refuses a node list it cannot use, changing nothing", async () => {
    expect(() => new SwarmEngine({ ...env, BOTTLE_SWARM_NODES: "just-a-name" })).toThrow(/not name=<docker host>/);
    const bad = await new SwarmEngine({ ...env, BOTTLE_SWARM_NODES: swarm.nodesEnv.replace(/=tcp:\/\/[\d.]+:2375$/, "=tcp://127.0.0.1:1") }).checks();
    expect(bad.filter((c) => !c.ok).map((c) => c.detail)).toEqual([expect.stringMatching(/unreachable/)]);
  });

  it("starts a bottle as a stack, execs, filters egress, keeps the credential a secret, and stops leaving nothing", async () => {
    const m = swarm.manager;
    let t = performance.now();
    const started = await startBottle({ profile: "sw", manifest, slug, env });
    timings.firstStart = Math.round(performance.now() - t) / 1000;
    expect(started.metadata.state).toBe("running");

    const services = (await swarm.on(m, ["service", "ls", "--filter", `label=com.docker.stack.namespace=${started.metadata.project}`, "--format", "{{.Name}} {{.Replicas}}"])).stdout
      .split("\n")
      .sort();
    expect(services).toEqual(["agent", "egress", "firewall"].map((s) => `${started.metadata.project}_${s} 1/1`));
    const listed = (await listBottles({ env })).find((b) => b.slug === slug);
    expect(listed?.state).toBe("running");
    expect(listed?.containers.map((c) => `${c.service}:${c.state}`).sort()).toEqual(["agent:running", "egress:running", "firewall:running"]);

    // exec in the agent, through the node engine that runs its task.
    t = performance.now();
    const who = await execInBottle(slug, ["sh", "-c", "echo hi; env"], { env });
    timings.exec = Math.round(performance.now() - t) / 1000;
    expect(who.exitCode).toBe(0);
    expect(who.stdout).toMatch(/^hi\n/);
    expect(who.stdout).not.toContain(TOKEN);

    // An upstream beside the sidecars on the bottle's egress overlay (attachable).
    const upstream = `bb-swarm-up-${tag}`;
    await swarm.on(m, [
      "run",
      "-d",
      "--name",
      upstream,
      "--network",
      `bottle-${slug}-egress`,
      "--network-alias",
      "allowed.test",
      "--network-alias",
      "api.secret.test",
      "node:24-bookworm-slim",
      "node",
      "-e",
      UPSTREAM,
    ]);
    try {
      const allowed = await untilUp(() => execInBottle(slug, viaProxy("http://allowed.test/"), { env }));
      expect(allowed.stdout).toMatch(/^200 upstream allowed\.test auth=none/);
      const blocked = await execInBottle(slug, viaProxy("http://blocked.test/"), { env });
      expect(blocked.stdout).toMatch(/^403 /);
      expect(blocked.stdout).not.toContain("upstream");
    } finally {
      await swarm.on(m, ["rm", "-f", upstream], { reject: false });
    }

    // Logs come from `docker service logs`: the firewall's decisions, as "<container> | <ts> <line>".
    const logs = await bottleLogs({ slug, env, service: "firewall" });
    expect(logs.source).toBe("live");
    expect(logs.lines.some((l) => l.startsWith(`bottle-firewall-${slug} | `) && l.includes("blocked.test"))).toBe(true);

    // The agent's overlay has no gateway: no node's own ports (here each engine's API) are reachable.
    const probe = swarm.nodes.map((n) => `${n.address}:2375`);
    const reach = await execInBottle(
      slug,
      [
        "node",
        "-e",
        `Promise.all(${JSON.stringify(probe)}.map(a=>new Promise(r=>{const [h,p]=a.split(':');const s=require('net').connect({host:h,port:+p,timeout:2000},()=>{s.destroy();r(a+' open')});s.on('error',e=>r(a+' '+e.code));s.on('timeout',()=>{s.destroy();r(a+' timeout')})}))).then(x=>console.log(x.join('\\n')))`,
      ],
      { env },
    );
    for (const line of reach.stdout.trim().split("\n")) expect(line).toMatch(/ (ENETUNREACH|EHOSTUNREACH|timeout)$/);
    expect(reach.stdout.trim().split("\n")).toHaveLength(swarm.nodes.length);

    // The egress process holds the credential (its loader exported it from the
    // secret file); the agent has neither the value nor the file.
    const engine = new SwarmEngine(env);
    const project = { slug, project: started.metadata.project, file: started.metadata.composeFile };
    const held = await engine.exec(project, {
      service: "egress",
      argv: ["sh", "-c", "exec 3<&0; for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ; done 2>/dev/null | grep -xqF -f /dev/fd/3"],
      stdin: `SW_TOKEN=${TOKEN}\n`,
      timeoutMs: 30_000,
    });
    expect(held.exitCode).toBe(0);
    const agentFiles = await execInBottle(slug, ["sh", "-c", "ls /run/secrets 2>&1; tr '\\0' '\\n' < /proc/1/environ"], { env });
    expect(agentFiles.stdout).not.toContain(TOKEN);
    expect(agentFiles.stdout).not.toContain("SW_TOKEN");

    // The credential is a Swarm secret, absent from the stack file and every service spec.
    const secrets = (await swarm.on(m, ["secret", "ls", "--format", "{{.Name}}"])).stdout.split("\n").filter(Boolean);
    expect(secrets).toEqual([`${started.metadata.project}-SW_TOKEN`]);
    expect(readFileSync(nodePath.join(nodePath.dirname(started.metadata.composeFile), "stack.yaml"), "utf8")).not.toContain(TOKEN);
    const specs = (await swarm.on(m, ["service", "inspect", `${started.metadata.project}_egress`, `${started.metadata.project}_firewall`, `${started.metadata.project}_agent`])).stdout;
    expect(specs).not.toContain(TOKEN);
    expect(specs).toContain("SW_TOKEN");

    t = performance.now();
    await stopBottle(slug, { env });
    timings.stop = Math.round(performance.now() - t) / 1000;
    for (const n of swarm.nodes) {
      const left = await Promise.all([
        swarm.on(n, ["ps", "-aq", "--filter", `label=dev.bot-bottle.slug=${slug}`]),
        swarm.on(n, ["network", "ls", "-q", "--filter", `label=dev.bot-bottle.slug=${slug}`]),
      ]);
      expect(
        left.map((r) => r.stdout.trim()),
        n.name,
      ).toEqual(["", ""]);
    }
    expect((await swarm.on(m, ["service", "ls", "-q"])).stdout.trim()).toBe("");
    expect((await swarm.on(m, ["secret", "ls", "-q"])).stdout.trim()).toBe("");
  });
  it("places the agent on a worker when the state is shared, and it works across nodes", async () => {
    // Cross-node overlay traffic needs IPsec (ESP with AES-GCM) for --opt encrypted; this VM's kernel lacks it.
    const wenv: NodeJS.ProcessEnv = { ...env, BOTTLE_SWARM_SHARED_STATE: "1", BOTTLE_SWARM_ENCRYPT: "0", BOTTLE_SWARM_AGENT_PLACEMENT: "node.role == worker" };
    const wslug = `${slug}-w`;
    const t = performance.now();
    const started = await startBottle({ profile: "sw", manifest, slug: wslug, env: wenv });
    timings.workerStart = Math.round(performance.now() - t) / 1000;
    const m = swarm.manager;
    const nodeOf = async (svc: string) => (await swarm.on(m, ["service", "ps", `${started.metadata.project}_${svc}`, "--format", "{{.Node}}"])).stdout.trim();
    const agentNode = await nodeOf("agent");
    expect(swarm.nodes.find((n) => n.name === agentNode)?.role).toBe("worker");
    expect(await nodeOf("egress")).toBe(m.name);

    // exec and a task reach the agent through the worker's own engine; the task's output comes back through the shared task-io dir.
    const who = await execInBottle(wslug, ["hostname"], { env: wenv });
    expect(who.exitCode).toBe(0);
    const { taskId } = await runTask(wslug, ["sh", "-c", "echo task-ran"], { env: wenv });
    const done = await taskStatus(wslug, { env: wenv, taskId, waitS: 60 });
    expect(done.tasks[0]).toMatchObject({ state: "exited", exitCode: 0 });
    expect(done.output?.text).toBe("task-ran\n");

    // The agent on the worker reaches the proxies on the manager over the overlay, and the firewall still decides.
    const upstream = `bb-swarm-upw-${tag}`;
    await swarm.on(m, [
      "run",
      "-d",
      "--name",
      upstream,
      "--network",
      `bottle-${wslug}-egress`,
      "--network-alias",
      "allowed.test",
      "--network-alias",
      "granted.test",
      "node:24-bookworm-slim",
      "node",
      "-e",
      UPSTREAM,
    ]);
    try {
      const allowed = await untilUp(() => execInBottle(wslug, viaProxy("http://allowed.test/"), { env: wenv }));
      expect(allowed.stdout).toMatch(/^200 upstream allowed\.test/);
      expect((await execInBottle(wslug, viaProxy("http://blocked.test/"), { env: wenv })).stdout).toMatch(/^403 /);

      // An approval applies without a restart: the grant rewrites the firewall's config in the
      // state dir on the manager, the firewall is signalled through the manager's engine and
      // confirms in its ready file; the same container then lets the granted host through.
      expect((await execInBottle(wslug, viaProxy("http://granted.test/"), { env: wenv })).stdout).toMatch(/^403 /);
      const firewallContainer = async () => (await swarm.on(m, ["ps", "-q", "--filter", `label=com.docker.swarm.service.name=${started.metadata.project}_firewall`])).stdout.trim();
      const before = await firewallContainer();
      const changed = await reconfigure(contextOf({ env: wenv }), { layout: layoutOf(wenv.BOTTLE_STATE_DIR!, wslug), project: projectOf(started.metadata) }, [
        { id: "g-swarm", kind: "domain", target: "granted.test", grantedAt: new Date().toISOString() },
      ]);
      expect(changed).toContain("firewall");
      expect((await execInBottle(wslug, viaProxy("http://granted.test/"), { env: wenv })).stdout).toMatch(/^200 upstream granted\.test/);
      expect(await firewallContainer()).toBe(before);
    } finally {
      await swarm.on(m, ["rm", "-f", upstream], { reject: false });
    }

    await stopBottle(wslug, { env: wenv });
    for (const n of swarm.nodes) {
      const left = await swarm.on(n, ["ps", "-aq", "--filter", `label=dev.bot-bottle.slug=${wslug}`]);
      expect(left.stdout.trim(), n.name).toBe("");
    }
    expect((await swarm.on(m, ["network", "ls", "-q", "--filter", `label=dev.bot-bottle.slug=${wslug}`])).stdout.trim()).toBe("");
    expect((await swarm.on(m, ["secret", "ls", "-q"])).stdout.trim()).toBe("");
  });
  /** Containers, networks and secrets of a bottle on any node of the swarm (empty strings: none). */
  const leftovers = async (s: string) => {
    const out: string[] = [];
    for (const n of swarm.nodes) {
      out.push((await swarm.on(n, ["ps", "-aq", "--filter", `label=dev.bot-bottle.slug=${s}`])).stdout.trim());
      out.push((await swarm.on(n, ["network", "ls", "-q", "--filter", `label=dev.bot-bottle.slug=${s}`])).stdout.trim());
    }
    out.push((await swarm.on(swarm.manager, ["secret", "ls", "-q", "--filter", `label=dev.bot-bottle.slug=${s}`])).stdout.trim());
    out.push((await swarm.on(swarm.manager, ["service", "ls", "-q", "--filter", `label=dev.bot-bottle.slug=${s}`])).stdout.trim());
    return out.filter(Boolean);
  };

  it("rolls back a start whose task Swarm rejects, saying why, and leaves nothing", async () => {
    const bslug = `${slug}-b`;
    const err = await startBottle({ profile: "broken", manifest, slug: bslug, env }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/agent on .*(No such image|no-such-image)/);
    expect(await leftovers(bslug)).toEqual([]);
  });

  it("keeps two bottles apart and the credential off every node's disk; cleanup removes the one whose state dir is gone", async () => {
    const aslug = `${slug}-a`;
    const oslug = `${slug}-o`;
    const [, o] = await Promise.all([startBottle({ profile: "sw", manifest, slug: aslug, env }), startBottle({ profile: "sw", manifest, slug: oslug, env })]);
    try {
      // From A's agent, B's proxies on both of B's overlays are out of reach (no route: other subnets, no gateway).
      // (Its containers all run on the manager, so the manager's view of the overlays lists them.)
      const ips = (await swarm.on(swarm.manager, ["network", "inspect", `bottle-${oslug}-internal`, `bottle-${oslug}-egress`, "--format", "{{range .Containers}}{{.IPv4Address}} {{end}}"])).stdout
        .split(/\s+/)
        .filter(Boolean)
        .map((cidr) => cidr.split("/")[0]!);
      // The proxies' ports (firewall 3128, egress 3129): open to B's own agent, unreachable from A's.
      const targets = ips.flatMap((ip) => [`${ip}:3128`, `${ip}:3129`]);
      expect(targets.length).toBeGreaterThanOrEqual(4);
      const reach = await execInBottle(
        aslug,
        [
          "node",
          "-e",
          `Promise.all(${JSON.stringify(targets)}.map(a=>new Promise(r=>{const [h,p]=a.split(':');const s=require('net').connect({host:h,port:+p,timeout:2000},()=>{s.destroy();r(a+' open')});s.on('error',e=>r(a+' '+e.code));s.on('timeout',()=>{s.destroy();r(a+' timeout')})}))).then(x=>console.log(x.join('\\n')))`,
        ],
        { env },
      );
      for (const line of reach.stdout.trim().split("\n")) expect(line).toMatch(/ (ENETUNREACH|EHOSTUNREACH|timeout)$/);

      // The running bottles' credential is in Swarm's store (encrypted) and the sidecars' tmpfs mounts only:
      // no file on any node's disk (nor the shared state dir) holds it in plain text.
      // The scan runs in each node container itself (its whole filesystem), through this machine's engine;
      // it prints the non-tmpfs files holding the pattern it reads from stdin.
      const scan = (node: string, pattern: string) =>
        docker(
          [
            "exec",
            "-i",
            node,
            "sh",
            "-c",
            'exec 3<&0; grep -rlsF -f /dev/fd/3 / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev | while read -r f; do t=$(stat -f -c %T "$f"); [ "$t" = tmpfs ] || echo "$f"; done; echo scanned',
          ],
          { input: `${pattern}\n`, timeout: 180_000 },
        ).then((r) => r.stdout.trim().split("\n"));
      // Control: the secret's name is in the stack file on the shared state dir, and the scan finds it there.
      expect(await scan(swarm.manager.name, `${o.metadata.project}-SW_TOKEN`)).toContain(nodePath.join(nodePath.dirname(o.metadata.composeFile), "stack.yaml"));
      for (const n of swarm.nodes) expect(await scan(n.name, TOKEN), n.name).toEqual(["scanned"]);

      rmSync(nodePath.dirname(o.metadata.composeFile), { recursive: true, force: true });
      const r = await cleanup({ env });
      const removed = r.removed.find((x) => x.slug === oslug);
      expect(removed?.containers.sort()).toEqual(["agent", "egress", "firewall"].map((s) => `${o.metadata.project}_${s}`));
      expect(removed?.networks.sort()).toEqual([`bottle-${oslug}-egress`, `bottle-${oslug}-internal`]);
      expect(r.removed.map((x) => x.slug)).not.toContain(aslug);
      expect(await leftovers(oslug)).toEqual([]);
      expect((await listBottles({ env })).find((b) => b.slug === aslug)?.state).toBe("running");
    } finally {
      await stopBottle(aslug, { env }).catch(() => {});
    }
    expect(await leftovers(aslug)).toEqual([]);
  });

  it("fills a warm pool on the swarm and claims from it: fresh CA, the running firewall reloaded with the claimer's config, nothing left", async () => {
    const filled = await poolBottles({ profile: "warm", manifest, env });
    expect(filled.started).toHaveLength(1);
    const pooled = filled.started[0]!;
    const poolCa = readFileSync(layoutOf(env.BOTTLE_STATE_DIR!, pooled).firewallCaCert, "utf8");
    expect((await listBottles({ env })).find((b) => b.slug === pooled)?.state).toBe("pooled");
    const cslug = `${slug}-c`;
    try {
      const t = performance.now();
      const r = await startBottle({ profile: "warm", manifest, slug: cslug, env });
      timings.poolClaim = Math.round(performance.now() - t) / 1000;
      expect(r.metadata).toMatchObject({ slug: cslug, instance: pooled, state: "running", engine: "swarm" });
      const l = layoutOf(env.BOTTLE_STATE_DIR!, cslug);
      expect(readFileSync(l.firewallCaCert, "utf8")).not.toBe(poolCa);
      // Reloaded in place, not restarted: the same process counted a reload.
      expect((await readReady(l, "firewall"))?.reloads).toBeGreaterThanOrEqual(1);
      // Still the pooled bottle's stack, and nothing of the claimer's name was started beside it.
      expect((await swarm.on(swarm.manager, ["service", "ls", "-q", "--filter", `label=dev.bot-bottle.slug=${cslug}`])).stdout.trim()).toBe("");

      const upstream = `bb-swarm-upc-${tag}`;
      await swarm.on(swarm.manager, ["run", "-d", "--name", upstream, "--network", `bottle-${pooled}-egress`, "--network-alias", "allowed.test", "node:24-bookworm-slim", "node", "-e", UPSTREAM]);
      try {
        const allowed = await untilUp(() => execInBottle(cslug, viaProxy("http://allowed.test/"), { env }));
        expect(allowed.stdout).toMatch(/^200 upstream allowed\.test/);
        expect((await execInBottle(cslug, viaProxy("http://blocked.test/"), { env })).stdout).toMatch(/^403 /);
      } finally {
        await swarm.on(swarm.manager, ["rm", "-f", upstream], { reject: false });
      }
      await stopBottle(cslug, { env });
      expect(await leftovers(pooled)).toEqual([]);
    } finally {
      await stopBottle(cslug, { env }).catch(() => {});
      await poolBottles({ profile: "warm", manifest, env, size: 0 }).catch(() => {});
    }
  });

  it("runs the lifecycle through the real MCP server over stdio, and a CLI verb, unchanged on engine: swarm", async () => {
    const mslug = `${slug}-m`;
    // The built server, spawned as an MCP client would, with only the engine's settings in its environment.
    const serverEnv = Object.fromEntries(Object.entries({ ...env, BOTTLE_MANIFEST: manifest }).filter((kv): kv is [string, string] => typeof kv[1] === "string"));
    const { client, stderr } = await connectServer(serverEnv);
    const call = async <T>(name: string, args: Record<string, unknown>): Promise<T> => {
      const r = await client.callTool({ name, arguments: args }, undefined, { timeout: 300_000 });
      if (r.isError) throw new Error(`${name}: ${(r.content as Array<{ text: string }>)[0]!.text}\n${stderr().slice(-2000)}`);
      return r.structuredContent as T;
    };
    try {
      const started = await call<{ slug: string; state: string; project: string }>("bottle_start", { profile: "sw", slug: mslug });
      expect(started).toMatchObject({ slug: mslug, state: "running" });
      // It really is a stack on the swarm's manager, not compose on this machine.
      const services = (await swarm.on(swarm.manager, ["service", "ls", "--filter", `label=dev.bot-bottle.slug=${mslug}`, "--format", "{{.Name}} {{.Replicas}}"])).stdout.split("\n").sort();
      expect(services).toEqual(["agent", "egress", "firewall"].map((s) => `bottle-${mslug}_${s} 1/1`));
      expect((await docker(["ps", "-aq", "--filter", `label=dev.bot-bottle.slug=${mslug}`])).stdout.trim()).toBe("");

      const { bottles } = await call<{ bottles: Array<{ slug: string; state: string }> }>("bottle_list", {});
      expect(bottles).toContainEqual(expect.objectContaining({ slug: mslug, state: "running" }));

      // The CLI verb sees the same bottle on the same engine.
      const cli = await promisify(execFile)(process.execPath, [CLI, "list", "--json"], { env: serverEnv, timeout: 60_000 });
      expect((JSON.parse(cli.stdout) as { bottles: Array<{ slug: string; state: string }> }).bottles).toContainEqual(expect.objectContaining({ slug: mslug, state: "running" }));

      const ex = await call<{ exitCode: number; stdout: string }>("bottle_exec", { slug: mslug, argv: ["sh", "-c", "echo on-swarm; exit 3"] });
      expect(ex).toMatchObject({ exitCode: 3, stdout: "on-swarm" });

      const { taskId } = await call<{ taskId: string }>("bottle_run", { slug: mslug, argv: ["sh", "-c", "echo task-on-swarm; echo to-stderr >&2"] });
      const done = await call<{ tasks: Array<{ state: string; exitCode?: number }>; output?: { text: string; complete: boolean } }>("bottle_task", { slug: mslug, task_id: taskId, wait_s: 60 });
      expect(done.tasks[0]).toMatchObject({ state: "exited", exitCode: 0 });
      expect(done.output?.text).toBe("task-on-swarm\nto-stderr\n");

      const upstream = `bb-swarm-upm-${tag}`;
      await swarm.on(swarm.manager, ["run", "-d", "--name", upstream, "--network", `bottle-${mslug}-egress`, "--network-alias", "allowed.test", "node:24-bookworm-slim", "node", "-e", UPSTREAM]);
      try {
        const allowed = await untilUp(() => call("bottle_exec", { slug: mslug, argv: viaProxy("http://allowed.test/") }));
        expect(allowed.stdout).toMatch(/^200 upstream allowed\.test auth=none/);
        const blocked = await call<{ stdout: string }>("bottle_exec", { slug: mslug, argv: viaProxy("http://blocked.test/") });
        expect(blocked.stdout).toMatch(/^403 /);
        expect(blocked.stdout).not.toContain("upstream");
      } finally {
        await swarm.on(swarm.manager, ["rm", "-f", upstream], { reject: false });
      }

      const logs = await call<{ source: string; lines: string[] }>("bottle_logs", { slug: mslug, service: "firewall", tail: 200 });
      expect(logs.source).toBe("live");
      expect(logs.lines.some((l) => l.includes("blocked.test"))).toBe(true);

      const stopped = await call("bottle_stop", { slug: mslug });
      expect(stopped).toMatchObject({ slug: mslug, state: "stopped", wasState: "running" });
      expect(await leftovers(mslug)).toEqual([]);
      expect((await call<{ bottles: Array<{ slug: string; state: string }> }>("bottle_list", {})).bottles).toContainEqual(expect.objectContaining({ slug: mslug, state: "stopped" }));
    } finally {
      await client.callTool({ name: "bottle_stop", arguments: { slug: mslug } }, undefined, { timeout: 300_000 }).catch(() => {});
      await client.close();
    }
  });
});
