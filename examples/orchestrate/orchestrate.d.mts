// Types for orchestrate.mjs (plain JavaScript, so `node` runs it as it is):
// for TypeScript code that imports it, and for test/unit/examples/orchestrate.test.ts.
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";

export const SUB_AGENT_SCRIPT: string;

export function defaultServer(): { command: string; args: string[] };

export function connect(o?: { command?: string; args?: string[]; env?: Record<string, string>; stderr?: "inherit" | "pipe" | "ignore" }): Promise<Client>;

/** The sub-agent's last `RESULT key=value ...` line as an object; undefined when there is none. */
export function parseResult(output: string): Record<string, string> | undefined;

/** One record of bottle_git_log (the fields the report uses; the tool returns a few more). */
export interface GitDecision {
  ref: string;
  old: string;
  new: string;
  verdict: "accepted" | "refused";
  rule?: string;
  reason?: string;
  upstreamResult: "ok" | "refused" | "not-attempted" | "unknown";
  [more: string]: unknown;
}

export interface AgentReport {
  slug: string;
  branch: string;
  taskId: string;
  state: "running" | "exited" | "failed" | "cancelled" | "timed_out" | "lost";
  exitCode?: number;
  output: string;
  result?: Record<string, string>;
  decisions: GitDecision[];
}

export interface OrchestrateOptions {
  profile: string;
  slugs: string[];
  manifest?: string;
  /** Seconds each bottle_task call waits for its task to end (default 30). */
  waitS?: number;
  /** The sub-agent's task text for a slug (default "Notes from sub-agent <slug>"). */
  task?: (slug: string) => string;
  log?: (line: string) => void;
  /** Each bottle_start progress message ("up: docker compose up", ...). */
  onProgress?: (slug: string, message: string) => void;
}

/** Only `callTool` is used: any MCP client (or a stand-in) with it will do. */
export function orchestrate(client: Pick<Client, "callTool">, o: OrchestrateOptions): Promise<{ agents: AgentReport[] }>;

export function formatReport(report: { agents: AgentReport[] }): string;
