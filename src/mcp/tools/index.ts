import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { registerCleanupTool, registerExecTool, registerListTool, registerLogsTool, registerStartTool, registerStopTool } from "./lifecycle.js";
import { registerGitLogTool } from "./git-gate.js";
import { registerRenderTool } from "./render.js";
import { registerDecideTool, registerProposalsTool } from "./supervise.js";

export function registerTools(server: McpServer): void {
  registerRenderTool(server);
  registerStartTool(server);
  registerStopTool(server);
  registerListTool(server);
  registerLogsTool(server);
  registerExecTool(server);
  registerCleanupTool(server);
  registerGitLogTool(server);
  registerProposalsTool(server);
  registerDecideTool(server);
}
