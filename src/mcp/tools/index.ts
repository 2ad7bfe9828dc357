import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { registerRenderTool } from "./render.js";

export function registerTools(server: McpServer): void {
  registerRenderTool(server);
}
