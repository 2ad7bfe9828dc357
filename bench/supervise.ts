// Time from bottle_decide (approve) to the first request that passes the
// firewall, median over 20 approvals (issue 6; target < 500 ms). A poller
// inside the agent requests each host every 20 ms and stamps the first 200;
// the host stamps the start of each decide. Same machine, same clock.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { pickFreeSubnets } from "../src/plan/subnets.js";
import { createNetwork, removeNetwork, usedSubnets } from "../src/engine/networks.js";
import { docker } from "../src/engine/run.js";
import { execInBottle } from "../src/bottles/exec.js";
import { startBottle } from "../src/bottles/start.js";
import { stopBottle } from "../src/bottles/stop.js";
import { bridgeName } from "../src/plan/index.js";
import { decide, inbox } from "../src/bottles/decide.js";
import { layoutOf } from "../src/state/layout.js";
import { safeJson } from "../src/contracts/escape.js";
import { formatInbox } from "../src/bottles/present.js";
import { writeProposal } from "../src/contracts/queue.js";
import { fakeBottle } from "../test/helpers/supervise.js";
import { median, percentile, printTable } from "./table.js";

const N = 20;
const POOL = "10.225.0.0/16";

export async function benchSupervise(): Promise<void> {
  await benchInbox();
  const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-bench-sup-"));
  const env = { ...process.env, BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: POOL };
  const slug = `bench-sup-${process.pid.toString(16).slice(-4)}`;
  const net = `bb-bench-sup-up-${process.pid}`;
  const hosts = Array.from({ length: N }, (_, i) => `grant${i}.example.test`);
  const [subnet] = pickFreeSubnets(POOL, await usedSubnets(), 1, 50);
  await createNetwork({ name: net, subnet: subnet!, internal: true, bridge: bridgeName(net), labels: { "dev.bot-bottle.test": "bench-supervise" } });
  try {
    await docker([
      "run",
      "-d",
      "--name",
      net,
      "--label",
      "dev.bot-bottle.test=bench-supervise",
      "--network",
      net,
      ...hosts.flatMap((h) => ["--network-alias", h]),
      "local/busybox",
      "sh",
      "-c",
      "mkdir -p /www && echo ok > /www/index.html && httpd -f -p 80 -h /www",
    ]);
    const manifest = nodePath.join(dir, "bottle.yaml");
    writeFileSync(manifest, `version: 1\nagents:\n  bench:\n    image: node:24-bookworm-slim\n    supervise: true\n    network: { allow: [allowed.test], allow_cidrs: [${subnet}] }\n`);
    await startBottle({ profile: "bench", manifest, slug, env });
    await docker(["network", "connect", net, `bottle-firewall-${slug}`]);

    // The poller: for each host in turn, GET every 20 ms until a 200; print host + time.
    const poller = `const http=require('http');const u=new URL(process.env.HTTP_PROXY);const hosts=${JSON.stringify(hosts)};
const get=h=>new Promise(r=>{const q=http.get({host:u.hostname,port:u.port,path:'http://'+h+'/',agent:false},s=>{s.resume();s.on('end',()=>r(s.statusCode))});q.on('error',()=>r(0))});
(async()=>{for(const h of hosts){for(;;){if(await get(h)===200){console.log(h+' '+Date.now());break}await new Promise(r=>setTimeout(r,20))}}})()`;
    const polling = execInBottle(slug, ["node", "-e", poller], { env: env, timeoutMs: 600_000 });
    await new Promise((r) => setTimeout(r, 1000));
    const t0: Record<string, number> = {};
    for (const h of hosts) {
      const p = await writeProposal(layoutOf(env.BOTTLE_STATE_DIR!, slug).queueDir, { kind: "domain", target: h, reason: "bench" });
      t0[h] = Date.now();
      await decide({ slug, id: p.id, verdict: "approved", env });
      await new Promise((r) => setTimeout(r, 300)); // let the poller see it before the next one
    }
    const out = await polling;
    const deltas = out.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const [h, ts] = l.split(" ");
        return Number(ts) - t0[h!]!;
      });
    if (deltas.length !== N) throw new Error(`poller saw ${deltas.length}/${N} grants: ${out.stderr}`);
    printTable(`Supervise: approve -> first request through the firewall (${N} approvals, 20 ms poll)`, [
      {
        what: "decide (apply + SIGHUP + reload confirmed) -> first 200",
        n: N,
        "median ms": median(deltas),
        "p95 ms": percentile(deltas, 95),
        "max ms": Math.max(...deltas),
        target: "< 500 ms median",
        ok: median(deltas) < 500 ? "yes" : "NO",
      },
    ]);
  } finally {
    await stopBottle(slug, { env, purge: true }).catch(() => {});
    await docker(["rm", "-f", net], { reject: false });
    await removeNetwork(net).catch(() => {});
  }
}

/**
 * The inbox under a flooding agent (issue 10): 2,000 pending proposals with
 * 2,000-character reasons full of escapes. Time and size of one page (the
 * first, and a page of 200), and of walking every page. No Docker.
 */
export async function benchInbox(): Promise<void> {
  const root = mkdtempSync(nodePath.join(tmpdir(), "bb-bench-inbox-"));
  const env = { BOTTLE_STATE_DIR: root };
  const q = await fakeBottle(root, "flood");
  const reason = "\u001b[2J\u009b".repeat(400);
  for (let i = 0; i < 2000; i++) await writeProposal(q, { kind: "other", target: `t${i}`, reason });
  const timed = async (limit: number) => {
    const ms: number[] = [];
    let bytes = 0;
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      const page = await inbox({ env, limit });
      bytes = safeJson(page).length + formatInbox(page, false).length;
      ms.push(performance.now() - t);
    }
    return { ms, bytes };
  };
  const d = await timed(50);
  const m = await timed(200);
  const t0 = performance.now();
  let pages = 0;
  let cursor: string | undefined;
  do {
    const page = await inbox({ env, limit: 200, ...(cursor ? { cursor } : {}) });
    cursor = page.nextCursor;
    pages++;
  } while (cursor);
  const walk = performance.now() - t0;
  printTable("Supervise inbox: 2,000 pending proposals, 2,000-char reasons (10 runs each)", [
    {
      what: "first page, default limit 50",
      "median ms": Math.round(median(d.ms)),
      "p95 ms": Math.round(percentile(d.ms, 95)),
      "page KiB (json + text)": Math.round(d.bytes / 1024),
      target: "< 10 MiB (stdio client limit)",
    },
    {
      what: "first page, limit 200 (stops at ~1 MiB)",
      "median ms": Math.round(median(m.ms)),
      "p95 ms": Math.round(percentile(m.ms, 95)),
      "page KiB (json + text)": Math.round(m.bytes / 1024),
      target: "< 10 MiB",
    },
    { what: `walk all ${pages} pages of 200 (one run, total)`, "median ms": Math.round(walk), "p95 ms": "", "page KiB (json + text)": "", target: "" },
  ]);
}
