import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { registerCleanupTool, registerExecTool, registerListTool, registerLogsTool, registerStartTool, registerStopTool } from "./lifecycle.js";
import { registerRenderTool } from "./render.js";

export function registerTools(server: McpServer): void {
  registerRenderTool(server);
  registerStartTool(server);
  registerStopTool(server);
  registerListTool(server);
  registerLogsTool(server);
  registerExecTool(server);
  registerCleanupTool(server);
}
