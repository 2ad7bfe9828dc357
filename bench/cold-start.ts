// Server cold start: spawn -> tools/list answered, ours vs a minimal SDK
// server with one tool, interleaved in the same run. Target ratio <= 1.5.
import nodePath from "node:path";
import { performance } from "node:perf_hooks";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { median, printTable } from "./table.js";

const ROOT = nodePath.resolve(import.meta.dirname, "..");
const RUNS = 15;

async function coldStart(args: string[]): Promise<number> {
  const t0 = performance.now();
  const transport = new StdioClientTransport({ command: process.execPath, args, cwd: ROOT, stderr: "ignore", env: { ...(process.env as Record<string, string>), BOTTLE_LOG_LEVEL: "warn" } });
  const client = new Client({ name: "bench", version: "0" });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const ms = performance.now() - t0;
  if (!tools.length) throw new Error("no tools listed");
  await client.close();
  return ms;
}

export async function benchColdStart(): Promise<void> {
  const ours: number[] = [];
  const base: number[] = [];
  const oursArgs = [nodePath.join(ROOT, "dist/cli.js"), "mcp"];
  const baseArgs = [nodePath.join(ROOT, "bench/fixtures/minimal-server.mjs")];
  await coldStart(oursArgs); // warm the page cache for both
  await coldStart(baseArgs);
  for (let i = 0; i < RUNS; i++) {
    ours.push(await coldStart(oursArgs));
    base.push(await coldStart(baseArgs));
  }
  const ratio = median(ours) / median(base);
  printTable(`MCP server cold start (spawn -> tools/list answered), median of ${RUNS}`, [
    { server: "minimal SDK server (1 tool)", "median ms": median(base), ratio: 1, target: "", ok: "" },
    { server: "bot-bottle (dist/cli.js mcp)", "median ms": median(ours), ratio, target: "<= 1.5", ok: ratio <= 1.5 ? "yes" : "NO" },
  ]);
}
