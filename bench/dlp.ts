// DLP scan throughput: scanRequest on a 10 MB JSON body holding base64
// content (an upload), MB/s on one core and peak RSS. Each case runs in its
// own child process so the RSS is the scan's own (run: npm run bench -- dlp;
// also a row of npm run bench:proxy). Targets (issue 9): ≥ 100 MB/s, < 128 MiB.
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { printTable } from "./table.js";

const ROOT = resolve(import.meta.dirname, "..");
const CASES = ["json-base64-binary", "json-base64-text", "json-text"] as const;

/** Child side: build the body, scan it a few times, report the best run and peak RSS. */
const CHILD = `
import { randomBytes } from "node:crypto";
const { buildDlpPolicy, scanRequest } = await import(${JSON.stringify(resolve(ROOT, "src/sidecars/proxy/dlp.ts"))});
const kind = process.argv[1];
const MB = 10 * 1024 * 1024;
const prose = "Lorem ipsum dolor sit amet, consectetur adipiscing elit; the quick brown fox jumps over the lazy dog. ";
const content =
  kind === "json-base64-binary" ? randomBytes(Math.floor(MB * 0.74)).toString("base64")
  : kind === "json-base64-text" ? Buffer.from(prose.repeat(Math.ceil((MB * 0.74) / prose.length))).toString("base64")
  : prose.repeat(Math.ceil(MB / prose.length));
const body = Buffer.from(JSON.stringify({ name: "upload.bin", encoding: "base64", content: content.slice(0, MB - 64) }));
const { policy } = buildDlpPolicy({ enabled: true, canary_env: ["BENCH_CANARY"], canary_exempt: [] }, { BENCH_CANARY: "bench-canary-" + randomBytes(8).toString("hex") });
const req = { host: "upload.test", url: "/v1/files?name=upload.bin", headers: [["content-type", "application/json"], ["user-agent", "bench"]], body };
let best = Infinity;
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  const f = scanRequest(policy, req);
  best = Math.min(best, performance.now() - t0);
  if (f) throw new Error("unexpected finding: " + f.rule);
}
const small = { host: "api.test", url: "/v1/items?page=2&sort=desc", headers: [["accept", "application/json"], ["user-agent", "bench"]], body: Buffer.from('{"query":"hello world","limit":10}') };
for (let i = 0; i < 2000; i++) scanRequest(policy, small);
const t1 = performance.now();
for (let i = 0; i < 20000; i++) scanRequest(policy, small);
const smallUs = ((performance.now() - t1) / 20000) * 1000;
process.stdout.write(JSON.stringify({ bytes: body.length, ms: best, rssMiB: process.resourceUsage().maxRSS / 1024, smallUs }));
`;

export interface DlpRow {
  scenario: string;
  "MB/s": number;
  "ms / 10 MB": number;
  "peak RSS MiB": number;
  "small request µs": number;
}

export function measureDlp(): DlpRow[] {
  return CASES.map((kind) => {
    const out = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", CHILD, kind], { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
    if (out.status !== 0) throw new Error(`dlp bench (${kind}) failed: ${out.stderr}`);
    const r = JSON.parse(out.stdout) as { bytes: number; ms: number; rssMiB: number; smallUs: number };
    return { scenario: `DLP scanRequest, 10 MB ${kind}`, "MB/s": Math.round(r.bytes / 1e6 / (r.ms / 1000)), "ms / 10 MB": Math.round(r.ms), "peak RSS MiB": Math.round(r.rssMiB), "small request µs": Number(r.smallUs.toFixed(1)) };
  });
}

export function benchDlp(): void {
  printTable("DLP scan (one core; targets ≥ 100 MB/s and < 128 MiB on the base64 body)", measureDlp() as unknown as Array<Record<string, string | number>>);
}

if (import.meta.url === `file://${process.argv[1]}`) benchDlp();
