// Spawn the built server (dist/cli.js) over stdio with the real SDK client.
import nodePath from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

export const CLI = nodePath.resolve(import.meta.dirname, "../../dist/cli.js");

export async function connectServer(env: Record<string, string> = {}, cwd?: string): Promise<{ client: Client; transport: StdioClientTransport; stderr: () => string }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, "mcp"],
    env: { ...(process.env as Record<string, string>), BOTTLE_LOG_LEVEL: "info", ...env },
    ...(cwd ? { cwd } : {}),
    stderr: "pipe",
  });
  let err = "";
  transport.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const client = new Client({ name: "bot-bottle-test", version: "0.0.0" });
  await client.connect(transport);
  return { client, transport, stderr: () => err };
}
