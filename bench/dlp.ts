// DLP scan throughput: scanRequest on a 10 MB JSON body holding base64
// content (an upload), MB/s on one core and peak RSS. Measured the way the
// sidecar runs it: the scanner is bundled with esbuild (as npm run build
// bundles the proxy) and each case runs in its own plain `node` child, no
// TypeScript loader (tsx alone adds 30-40 MiB), reading its body from a file
// so that generating the body does not count towards the scan's RSS
// (run: npm run bench -- dlp; also a row of npm run bench:proxy).
// Targets (issue 9): ≥ 100 MB/s, < 128 MiB.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { buildSync } from "esbuild";
import { printTable } from "./table.js";

const ROOT = resolve(import.meta.dirname, "..");
// json-utf8-text: prose with an accented letter and a dash every ~120
// characters, as most agents' text has (normalised a region at a time).
const CASES = ["json-base64-binary", "json-base64-text", "json-text", "json-utf8-text"] as const;
type Case = (typeof CASES)[number];
const MB = 10 * 1024 * 1024;
const RUNS = 5;

function body(kind: Case): Buffer {
  const prose = "Lorem ipsum dolor sit amet, consectetur adipiscing elit; the quick brown fox jumps over the lazy dog. ";
  const content =
    kind === "json-base64-binary"
      ? randomBytes(Math.floor(MB * 0.74)).toString("base64")
      : kind === "json-base64-text"
        ? Buffer.from(prose.repeat(Math.ceil((MB * 0.74) / prose.length))).toString("base64")
        : kind === "json-text"
          ? prose.repeat(Math.ceil(MB / prose.length))
          : `${prose.slice(0, -2)} \u2014 café au lait. `.repeat(Math.ceil(MB / prose.length));
  return Buffer.from(JSON.stringify({ name: "upload.bin", encoding: "base64", content: content.slice(0, MB - 64) }));
}

/** Child side (argv: bundle URL, body file, runs): scan the body, report the best run, peak RSS and a small request's cost. */
const CHILD = `
import { readFileSync } from "node:fs";
const [bundle, file, runs] = process.argv.slice(1);
const { buildDlpPolicy, scanRequest } = await import(bundle);
const body = readFileSync(file);
const { policy } = buildDlpPolicy({ enabled: true, canary_env: ["BENCH_CANARY"], canary_exempt: [] }, { BENCH_CANARY: "bench-canary-0123456789abcdef" });
const req = { host: "upload.test", url: "/v1/files?name=upload.bin", headers: [["content-type", "application/json"], ["user-agent", "bench"]], body };
let best = Infinity;
for (let i = 0; i < Number(runs); i++) {
  const t0 = performance.now();
  const f = scanRequest(policy, req);
  best = Math.min(best, performance.now() - t0);
  if (f) throw new Error("unexpected finding: " + f.rule);
}
// Peak RSS of this process's own memory (VmHWM). Not resourceUsage().maxRSS:
// Linux carries a spawning parent's peak over into the child's, so under
// npm run bench:proxy it would report the load generator's RSS.
let rssMiB = process.resourceUsage().maxRSS / 1024;
try {
  const hwm = /^VmHWM:\\s*(\\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
  if (hwm) rssMiB = Number(hwm[1]) / 1024;
} catch {}
const small = { host: "api.test", url: "/v1/items?page=2&sort=desc", headers: [["accept", "application/json"], ["user-agent", "bench"]], body: Buffer.from('{"query":"hello world","limit":10}') };
let smallUs = Infinity;
for (let round = 0; round < 5; round++) {
  for (let i = 0; i < 2000; i++) scanRequest(policy, small);
  const t1 = performance.now();
  for (let i = 0; i < 20000; i++) scanRequest(policy, small);
  smallUs = Math.min(smallUs, ((performance.now() - t1) / 20000) * 1000);
}
process.stdout.write(JSON.stringify({ bytes: body.length, ms: best, rssMiB, smallUs }));
`;

export interface DlpRow {
  scenario: string;
  "MB/s": number;
  "ms / 10 MB": number;
  "peak RSS MiB": number;
  "small request µs": number;
}

export function measureDlp(): DlpRow[] {
  const dir = mkdtempSync(join(tmpdir(), "bench-dlp-"));
  try {
    const bundle = join(dir, "dlp.mjs");
    buildSync({ entryPoints: [resolve(ROOT, "src/sidecars/proxy/dlp.ts")], bundle: true, platform: "node", format: "esm", target: "node22", outfile: bundle, logLevel: "warning" });
    return CASES.map((kind) => {
      const file = join(dir, `${kind}.json`);
      writeFileSync(file, body(kind));
      // A plain node (no loader from this process's flags or environment).
      const env = { ...process.env };
      delete env.NODE_OPTIONS;
      const out = spawnSync(process.execPath, ["--input-type=module", "-e", CHILD, pathToFileURL(bundle).href, file, String(RUNS)], { cwd: dir, env, encoding: "utf8", timeout: 300_000 });
      if (out.status !== 0) throw new Error(`dlp bench (${kind}) failed: ${out.stderr}`);
      const r = JSON.parse(out.stdout) as { bytes: number; ms: number; rssMiB: number; smallUs: number };
      return {
        scenario: `DLP scanRequest, 10 MB ${kind}`,
        "MB/s": Math.round(r.bytes / 1e6 / (r.ms / 1000)),
        "ms / 10 MB": Math.round(r.ms),
        "peak RSS MiB": Math.round(r.rssMiB),
        "small request µs": Number(r.smallUs.toFixed(1)),
      };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function benchDlp(): void {
  printTable(`DLP scan (best of ${RUNS}, one core; targets ≥ 100 MB/s and < 128 MiB on the base64 body)`, measureDlp() as unknown as Array<Record<string, string | number>>);
}

if (import.meta.url === `file://${process.argv[1]}`) benchDlp();
