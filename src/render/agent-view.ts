// The agent's read-only view of what it may reach now (access/current.json,
// read by the supervise sidecar's current_access tool) and, with supervise,
// the MCP client config pointing at it. Pure, like the other renderers.
import type { Access } from "../contracts/access.js";
import { policyContext, type Plan } from "../plan/index.js";

export interface AgentViewFile {
  path: string;
  content: string;
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** The file `claude --mcp-config <file>` accepts, pointing at supervise. */
export function mcpClientConfig(url: string): Record<string, unknown> {
  return { mcpServers: { "bottle-supervise": { type: "http", url } } };
}

export function renderAccess(plan: Plan, at: string): Access {
  return {
    domains: plan.firewall.allow,
    // Routes by name: never the credential, only which header egress sets.
    routes: (plan.egress?.routes ?? []).map((r) => ({ name: r.name, host: r.host, path_prefix: r.pathPrefix, header: r.header })),
    git_refs: [...new Set(plan.gitGate?.upstreams.flatMap((u) => u.policy.pushRefs) ?? [])],
    grants: plan.grants.map((g) => ({ id: g.id, kind: g.kind, target: g.target, ...(g.expiresAt ? { expiresAt: g.expiresAt } : {}) })),
    cidrs: plan.firewall.allowCidrs,
    credentials: policyContext(plan).bindings,
    updatedAt: at,
  };
}

export function renderAgentView(plan: Plan, at: string): AgentViewFile[] {
  const files = [{ path: plan.paths.accessFile, content: json(renderAccess(plan, at)) }];
  if (plan.supervise) files.push({ path: plan.paths.mcpConfigFile, content: json(mcpClientConfig(plan.supervise.url)) });
  return files;
}
