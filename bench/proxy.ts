// Proxy benchmark, all on loopback (run: node --import tsx bench/proxy.ts).
//  A. HTTPS credential injection, 1 KB responses, 16 concurrent keep-alive
//     clients: our egress → firewall chain vs mitmproxy (addon setting the
//     same header), against direct requests. req/s, p50/p99 added latency,
//     peak RSS of the proxy processes.
//  B. CONNECT tunnelling: firewall mode vs squid with the same allowlist,
//     fresh tunnel per request (set-up rate) and long tunnels (bulk MB/s).
// In both, the engines take turns in interleaved windows (takeTurns).
// Proxies log to files in the temp dir (squid its access.log, ours their
// stdout), not through pipes into this process, which is the load generator.
// "proxy CPU ms/req" is the proxy processes' user+system time over the
// measured window per request: less sensitive to a busy machine than req/s.
// Needs `node scripts/build.mjs` (run here if dist/ is missing) and, for the
// baselines, Debian's mitmproxy and squid (`apt-get install -y mitmproxy
// squid`); this script installs nothing and skips a missing baseline.
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createTestCa, writePem } from "../test/helpers/proxy/ca.js";
import { startMitmproxy, startSquid, which } from "./proxy/baselines.js";
import { freshConnectionClient, keepAliveClient, type Target } from "./proxy/clients.js";
import { mergeLoads, runLoad, type LoadResult } from "./proxy/load.js";
import { cpuMs, peakRssMiB, start, stop, waitForPort, type Started } from "./proxy/processes.js";
import { measureDlp } from "./dlp.js";

const ROOT = resolve(import.meta.dirname, "..");
/** BENCH_PROXY_BUNDLE: another build of the proxy (an older commit's, to compare on the same machine). */
const BUNDLE = process.env.BENCH_PROXY_BUNDLE ?? join(ROOT, "dist/sidecars/proxy.cjs");
/**
 * BENCH_PROXY_COMPARE: a second build of the proxy, run as one more engine in
 * the CONNECT scenarios (same windows, same squid): an A/B of two builds that
 * a busy machine cannot skew the way two separate runs can.
 */
const COMPARE = process.env.BENCH_PROXY_COMPARE;
/** BENCH_PROXY_SCENARIOS: which parts to run, comma-separated (inject, tunnel, bulk, dlp); all by default. */
const SCENARIOS = new Set((process.env.BENCH_PROXY_SCENARIOS ?? "inject,tunnel,bulk,dlp").split(",").map((s) => s.trim()));
const CONCURRENCY = 16;
// Each engine's warm-up before the measured windows. Our proxies are still
// being optimised by V8 for their first ~13-19k requests (counted with
// --trace-opt: optimised functions per second of load), i.e. 3-4 s at the
// injection rate; a shorter warm-up put that start-up cost into the first
// measured window (its ratio to mitmproxy was the lowest of the four).
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 4000);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 8000);
/** Each engine's DURATION_MS is split into this many interleaved windows. */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 4));
const BULK_BYTES = 1024 * 1024;
const TOKEN = `bench_${randomBytes(16).toString("hex")}`;

interface Row {
  scenario: string;
  engine: string;
  r: LoadResult;
  rssMiB?: number;
  base?: LoadResult;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
    s.on("error", rej);
  });
}

interface Engine {
  engine: string;
  client: { once: () => Promise<number>; close?: () => void };
  /** The engine's processes (CPU per request is theirs over the measured windows). */
  procs?: Started[];
}

/**
 * Engines take turns in short windows (order rotated each round) rather
 * than one long run each, so a slow spell on a shared machine lands on all
 * of them alike; each is warmed up first with the same load. Returns each
 * engine's windows, in round order; clients are closed.
 */
async function takeTurns(label: string, engines: Engine[]): Promise<LoadResult[][]> {
  process.stderr.write(`${label}: ${engines.map((e) => e.engine).join(", ")} × ${ROUNDS} rounds…\n`);
  for (const e of engines) await runLoad({ concurrency: CONCURRENCY, warmupMs: 0, durationMs: WARMUP_MS, once: e.client.once });
  const parts: LoadResult[][] = engines.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < engines.length; k++) {
      const i = (k + round) % engines.length;
      const procs = engines[i]!.procs;
      const probe = procs ? () => procs.reduce((n, p) => n + cpuMs(p.child.pid!), 0) : undefined;
      parts[i]!.push(await runLoad({ concurrency: CONCURRENCY, warmupMs: 0, durationMs: DURATION_MS / ROUNDS, once: engines[i]!.client.once, ...(probe ? { probe } : {}) }));
    }
  }
  for (const e of engines) e.client.close?.();
  return parts;
}

async function main(): Promise<void> {
  if (!existsSync(BUNDLE)) execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: ROOT, stdio: "inherit" });
  const dir = await mkdtemp(join(tmpdir(), "bench-proxy-"));
  // Squid runs as its own user and must reach its config and log directory.
  await chmod(dir, 0o755);
  const running: Started[] = [];
  // Ctrl-C must not leave proxies or squid running: stop what this script started.
  process.once("SIGINT", () => {
    void Promise.all(running.map(stop)).finally(() => process.exit(130));
  });
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    const [fwCa, egCa, upCa] = await Promise.all([createTestCa("bench firewall CA"), createTestCa("bench egress CA"), createTestCa("bench upstream CA")]);
    const fw = await writePem(join(dir, "fw-ca"), fwCa);
    const eg = await writePem(join(dir, "eg-ca"), egCa);
    const up = await writePem(join(dir, "up-ca"), upCa);
    const leaf = await writePem(join(dir, "upstream"), await upCa.issue(["localhost", "127.0.0.1"]));
    const [upPort, fwPort, egPort, tunnelFwPort, mitmPort, squidPort] = await Promise.all(Array.from({ length: 6 }, freePort));

    // A plain node process (no tsx loader in the measured path); Node ≥ 22.18 strips the types itself.
    const stripTypes = (process.features as { typescript?: string | false }).typescript ? [] : ["--experimental-strip-types"];
    const upstream = start("upstream", process.execPath, [...stripTypes, join(ROOT, "bench/proxy/upstream.ts"), String(upPort), leaf.cert, leaf.key]);
    running.push(upstream);
    await waitForPort(upPort!, upstream);

    // Our chain, configured as a bottle would be: the routed host is passthrough at the firewall.
    const firewallConfig = {
      version: 1,
      allow: ["localhost"],
      allow_cidrs: ["127.0.0.0/8"],
      intercept: { enabled: true, ca_cert: fw.cert, ca_key: fw.key, passthrough: ["localhost"] },
      dlp: { enabled: true, canary_env: ["BENCH_TOKEN"], canary_exempt: [{ host: "localhost", header: "Authorization", env: "BENCH_TOKEN" }] },
      upstream_ca_files: [up.cert],
    };
    await writeFile(join(dir, "firewall.json"), JSON.stringify(firewallConfig));
    await writeFile(
      join(dir, "egress.json"),
      JSON.stringify({
        version: 1,
        upstream_proxy: `http://127.0.0.1:${fwPort}`,
        ca_cert: eg.cert,
        ca_key: eg.key,
        upstream_ca_files: [fw.cert, up.cert],
        routes: [{ name: "bench", host: "localhost", port: upPort, path_prefix: "/", header: "Authorization", value: "Bearer ${BENCH_TOKEN}" }],
      }),
    );
    const target = (ca: string, extra: Partial<Target> = {}): Target => ({ host: "localhost", port: upPort!, path: "/", ca, ...extra });
    if (SCENARIOS.has("inject")) {
      const env = { BENCH_TOKEN: TOKEN };
      const firewall = start("firewall", process.execPath, [BUNDLE, "firewall", "--config", join(dir, "firewall.json"), "--port", String(fwPort)], env, join(dir, "firewall.log"));
      const egress = start("egress", process.execPath, [BUNDLE, "egress", "--config", join(dir, "egress.json"), "--port", String(egPort)], env, join(dir, "egress.log"));
      running.push(firewall, egress);
      await Promise.all([waitForPort(fwPort!, firewall), waitForPort(egPort!, egress)]);

      // A. credential injection: direct, our chain and mitmproxy take turns
      // (see takeTurns), so a busy spell on a shared machine does not land on
      // one engine only; the ratio is read from the same windows.
      const mitmBin = which("mitmdump");
      let mitm: { proc: Started; caPem: string } | undefined;
      if (!mitmBin) notes.push("mitmproxy not installed (apt-get install -y mitmproxy): baseline skipped");
      else {
        const mitmDir = join(dir, "mitm");
        await mkdir(mitmDir);
        mitm = await startMitmproxy(mitmBin, mitmDir, mitmPort!, up.cert, TOKEN);
        running.push(mitm.proc);
      }
      const inject = "HTTPS inject, 1 KB, c=16";
      const injectEngines: Engine[] = [
        { engine: "direct (no proxy)", client: keepAliveClient(target(upCa.cert), CONCURRENCY) },
        {
          engine: "bot-bottle egress→firewall",
          client: keepAliveClient(target(egCa.cert, { expectInjected: true }), CONCURRENCY, { host: "127.0.0.1", port: egPort! }),
          procs: [egress, firewall],
        },
        ...(mitm
          ? [{ engine: "mitmproxy (addon)", client: keepAliveClient(target(mitm.caPem, { expectInjected: true }), CONCURRENCY, { host: "127.0.0.1", port: mitmPort! }), procs: [mitm.proc] }]
          : []),
      ];
      const injectParts = await takeTurns(`A. ${inject}`, injectEngines);
      injectEngines.forEach(({ engine, procs }, i) => {
        const rssMiB = procs?.reduce((n, p) => n + peakRssMiB(p.child.pid!), 0);
        rows.push({ scenario: inject, engine, r: mergeLoads(injectParts[i]!), ...(procs ? { base: mergeLoads(injectParts[0]!) } : {}), ...(rssMiB !== undefined ? { rssMiB } : {}) });
      });
      if (mitm) notes.push(`${inject}: bot-bottle/mitmproxy per round ${injectParts[1]!.map((r, k) => (r.rps / injectParts[2]![k]!.rps).toFixed(2)).join(", ")}`);
      if (mitm) await stop(mitm.proc);
      await Promise.all([stop(egress), stop(firewall)]);
    }

    // B. CONNECT tunnelling: a fresh firewall (its own RSS), same allowlist as squid.
    const scenarios: Array<{ scenario: string; client: (proxy?: { host: string; port: number }) => Engine["client"] }> = [
      ...(SCENARIOS.has("tunnel") ? [{ scenario: "CONNECT, new tunnel+TLS per req", client: (proxy?: { host: string; port: number }) => freshConnectionClient(target(upCa.cert), proxy) }] : []),
      ...(SCENARIOS.has("bulk")
        ? [
            {
              scenario: "CONNECT, 1 MiB over kept tunnels",
              client: (proxy?: { host: string; port: number }) => keepAliveClient(target(upCa.cert, { path: `/bytes/${BULK_BYTES}` }), CONCURRENCY, proxy),
            },
          ]
        : []),
    ];
    if (scenarios.length) {
      await writeFile(join(dir, "tunnel-firewall.json"), JSON.stringify({ ...firewallConfig, dlp: { enabled: true, canary_env: [], canary_exempt: [] } }));
      const startTunnelFirewall = async (name: string, bundle: string, port: number) => {
        const p = start(name, process.execPath, [bundle, "firewall", "--config", join(dir, "tunnel-firewall.json"), "--port", String(port)], {}, join(dir, `${name.replace(/\W+/g, "-")}.log`));
        running.push(p);
        await waitForPort(port, p);
        return p;
      };
      const tunnelFw = await startTunnelFirewall("firewall (tunnel)", BUNDLE, tunnelFwPort!);
      const comparePort = COMPARE ? await freePort() : 0;
      const compareFw = COMPARE ? await startTunnelFirewall("firewall (compare)", COMPARE, comparePort) : undefined;

      const squidBin = which("squid");
      let squid: Started | undefined;
      if (!squidBin) notes.push("squid not installed (apt-get install -y squid): baseline skipped");
      else {
        const squidDir = join(dir, "squid");
        await mkdir(squidDir);
        squid = await startSquid(squidBin, squidDir, squidPort!, ["localhost"]);
        running.push(squid);
      }

      const tunnelEngines: Array<{ engine: string; proxy?: { host: string; port: number }; proc?: Started }> = [
        { engine: "direct (no proxy)" },
        { engine: "bot-bottle firewall", proxy: { host: "127.0.0.1", port: tunnelFwPort! }, proc: tunnelFw },
        ...(squid ? [{ engine: "squid", proxy: { host: "127.0.0.1", port: squidPort! }, proc: squid }] : []),
        ...(compareFw ? [{ engine: "compare firewall (BENCH_PROXY_COMPARE)", proxy: { host: "127.0.0.1", port: comparePort }, proc: compareFw }] : []),
      ];
      for (const { scenario, client } of scenarios) {
        const parts = await takeTurns(
          `B. ${scenario}`,
          tunnelEngines.map(({ engine, proxy, proc }) => ({ engine, client: client(proxy), ...(proc ? { procs: [proc] } : {}) })),
        );
        const merged = parts.map(mergeLoads);
        tunnelEngines.forEach(({ engine, proxy, proc }, i) => {
          rows.push({ scenario, engine, r: merged[i]!, ...(proxy ? { base: merged[0]! } : {}), ...(proc && scenario.includes("MiB") ? { rssMiB: peakRssMiB(proc.child.pid!) } : {}) });
        });
        const fwIdx = tunnelEngines.findIndex((e) => e.engine.startsWith("bot-bottle"));
        const sqIdx = tunnelEngines.findIndex((e) => e.engine === "squid");
        if (sqIdx >= 0) {
          const rate = (r: LoadResult) => (scenario.includes("MiB") ? r.bytesPerSec : r.rps);
          const perRound = parts[fwIdx]!.map((r, k) => (rate(r) / rate(parts[sqIdx]![k]!)).toFixed(2));
          notes.push(`${scenario}: firewall/squid per round ${perRound.join(", ")}`);
          const cmpIdx = tunnelEngines.findIndex((e) => e.engine.startsWith("compare"));
          if (cmpIdx >= 0) {
            const cmpRound = parts[cmpIdx]!.map((r, k) => (rate(r) / rate(parts[sqIdx]![k]!)).toFixed(2));
            notes.push(
              `${scenario}: compare/squid per round ${cmpRound.join(", ")}; overall firewall ${(rate(merged[fwIdx]!) / rate(merged[sqIdx]!)).toFixed(2)}, compare ${(rate(merged[cmpIdx]!) / rate(merged[sqIdx]!)).toFixed(2)}`,
            );
          }
        }
      }
    }

    printTable(rows, notes);
    if (SCENARIOS.has("dlp")) printDlpRows();
  } finally {
    for (const p of running.reverse()) await stop(p);
    await rm(dir, { recursive: true, force: true });
  }
}

function printTable(rows: Row[], notes: string[]): void {
  const f = (n: number | undefined, d = 1) => (n === undefined || Number.isNaN(n) ? "-" : n.toFixed(d));
  const head = ["scenario", "engine", "req/s", "MiB/s", "p50 ms", "p99 ms", "+p50 ms", "+p99 ms", "proxy CPU ms/req", "peak RSS MiB", "errors"];
  const lines = rows.map((row) => [
    row.scenario,
    row.engine,
    f(row.r.rps, 0),
    f(row.r.bytesPerSec / 1048576, 1),
    f(row.r.p50, 2),
    f(row.r.p99, 2),
    row.base ? f(row.r.p50 - row.base.p50, 2) : "-",
    row.base ? f(row.r.p99 - row.base.p99, 2) : "-",
    row.r.probed !== undefined ? f(row.r.probed / row.r.requests, 2) : "-",
    f(row.rssMiB, 0),
    `${row.r.errors}${row.r.firstError ? ` (${row.r.firstError})` : ""}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(fmt(head));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const l of lines) console.log(fmt(l));

  const find = (s: string, e: string) => rows.find((r) => r.scenario.startsWith(s) && r.engine.startsWith(e))?.r;
  const ours = find("HTTPS", "bot-bottle");
  const mitm = find("HTTPS", "mitmproxy");
  if (ours && mitm)
    console.log(`\ninjection: bot-bottle/mitmproxy throughput ${(ours.rps / mitm.rps).toFixed(2)}× (target ≥ 7×); p99 ${ours.p99.toFixed(1)} ms vs ${mitm.p99.toFixed(1)} ms (target: lower)`);
  for (const s of ["CONNECT, new", "CONNECT, 1 MiB"]) {
    const fw = find(s, "bot-bottle");
    const sq = find(s, "squid");
    if (!fw || !sq) continue;
    // CPU per request as well: on a busy shared machine it moves far less than the rates do.
    const cpu = fw.probed !== undefined && sq.probed !== undefined ? `; CPU per request ${(fw.probed / fw.requests / (sq.probed / sq.requests)).toFixed(2)}×` : "";
    console.log(`${s}: firewall/squid ${s.includes("MiB") ? "MiB/s" : "req/s"} ${(s.includes("MiB") ? fw.bytesPerSec / sq.bytesPerSec : fw.rps / sq.rps).toFixed(2)}× (target ≥ 0.9×)${cpu}`);
  }
  for (const n of notes) console.log(`note: ${n}`);
}

/** The DLP row (issue 9): scan throughput and peak RSS, measured in its own process; needs no baseline. */
function printDlpRows(): void {
  process.stderr.write("DLP scan…\n");
  console.log("");
  for (const r of measureDlp())
    console.log(`| ${r.scenario} | ${r["MB/s"]} MB/s per core | peak RSS ${r["peak RSS MiB"]} MiB | small request ${r["small request µs"]} µs | (targets ≥ 100 MB/s, < 128 MiB) |`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
