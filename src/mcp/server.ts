import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { stopRefills } from "../bottles/index.js";
import { logger } from "../log.js";
import { PACKAGE_VERSION } from "../package.js";
import { settleToolCalls } from "./define-tool.js";
import { registerResources } from "./resources.js";
import { registerTools } from "./tools/index.js";
import { watchProposals } from "./watch.js";

/** How long a closing server waits for aborted tool calls to finish undoing. */
const CLOSE_GRACE_MS = 20_000;

export function createServer(): McpServer {
  const server = new McpServer(
    { name: "bot-bottle", title: "bot-bottle", version: PACKAGE_VERSION },
    {
      instructions:
        "bot-bottle runs sandboxed sub-agents ('bottles') in Docker. Each bottle is an agent container that reaches the network only through a firewall (allowlist, SSRF and secret-leak checks) and an egress proxy that injects credentials the agent never sees. Use bottle_render to preview a profile, bottle_start to start one, bottle_exec to run work in it, bottle_logs to read what happened and bottle_stop when done. bottle_list shows every bottle; bottle_cleanup removes orphans.",
      capabilities: { logging: {}, resources: { subscribe: true, listChanged: false } },
    },
  );
  registerTools(server);
  registerResources(server);
  return server;
}

/** Serve over stdio until stdin ends (the SDK's transport alone would not notice). */
export async function runStdioServer(): Promise<void> {
  const server = createServer();
  watchProposals(server);
  const transport = new StdioServerTransport();
  let closing = false;
  const close = async (why: string) => {
    if (closing) return;
    closing = true;
    logger.info({ why }, "closing MCP server");
    // Closing aborts every call under way, and warm-pool refills; wait for
    // them to undo what they started (a start's rollback, an exec's
    // command), or a client that hangs up mid-start leaves a bottle behind.
    // MCP clients wait a few seconds before they kill a server that stays.
    await server.close().catch(() => {});
    const [left, refills] = await Promise.all([settleToolCalls(CLOSE_GRACE_MS), stopRefills(CLOSE_GRACE_MS)]);
    if (left || refills) logger.warn({ left, refills }, "exiting with work still running; `bottle cleanup` removes what it leaves");
    process.exit(0);
  };
  process.stdin.on("end", () => void close("stdin ended"));
  process.stdin.on("close", () => void close("stdin closed"));
  process.on("SIGTERM", () => void close("SIGTERM"));
  process.on("SIGINT", () => void close("SIGINT"));
  await server.connect(transport);
  logger.info({ version: PACKAGE_VERSION }, "bot-bottle MCP server ready on stdio");
}
