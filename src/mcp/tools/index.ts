// Every MCP tool, one module each: adding a tool touches a new file and one line here.
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { registerCancelTool } from "./cancel.js";
import { registerCleanupTool } from "./cleanup.js";
import { registerDecideTool } from "./decide.js";
import { registerExecTool } from "./exec.js";
import { registerGitLogTool } from "./git-log.js";
import { registerListTool } from "./list.js";
import { registerLogsTool } from "./logs.js";
import { registerProposalsTool } from "./proposals.js";
import { registerRenderTool } from "./render.js";
import { registerRunTool } from "./run.js";
import { registerStartTool } from "./start.js";
import { registerStopTool } from "./stop.js";
import { registerTaskTool } from "./task.js";

export function registerTools(server: McpServer): void {
  registerRenderTool(server);
  registerStartTool(server);
  registerStopTool(server);
  registerListTool(server);
  registerLogsTool(server);
  registerExecTool(server);
  registerRunTool(server);
  registerTaskTool(server);
  registerCancelTool(server);
  registerCleanupTool(server);
  registerGitLogTool(server);
  registerProposalsTool(server);
  registerDecideTool(server);
}
