// The supervise sidecar: an MCP server over Streamable HTTP on the bottle's
// internal network. The agent asks for more access here; the host decides.
// Stateless: each HTTP request gets a fresh server and transport, so a
// restarted sidecar or a reconnecting client needs no session.
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { parseArgs } from "node:util";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";
import { ACCESS_FILE, accessSchema } from "../../supervise/access.js";
import { ACCESS_KINDS, readDecision, readProposal, validateTarget, writeProposal } from "../../supervise/queue.js";

const { values } = parseArgs({ options: { port: { type: "string", default: "8750" }, queue: { type: "string", default: "/var/lib/bottle/queue" }, access: { type: "string", default: "/etc/bottle/access" } } });
const PORT = Number(values.port);
const QUEUE = values.queue!;
const ACCESS = values.access!;

const log = (event: string, data: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), mode: "supervise", event, ...data })}\n`);
const text = (t: string) => ({ content: [{ type: "text" as const, text: t }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function buildServer(): McpServer {
  const server = new McpServer({ name: "bottle-supervise", version: "1" }, { instructions: "Ask the orchestrator for more access: current_access shows what you may reach now; request_access asks for more (say why); await_decision waits for the answer." });

  server.registerTool(
    "current_access",
    {
      title: "What I may reach now",
      description: "Domains the firewall allows, credential-injected routes (by name; credentials are never shown), git refs you may push, and grants with their expiry.",
      inputSchema: {},
      outputSchema: accessSchema.shape,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async () => {
      const access = accessSchema.parse(JSON.parse(await readFile(`${ACCESS}/${ACCESS_FILE}`, "utf8")));
      return { ...text(JSON.stringify(access, null, 2)), structuredContent: access };
    },
  );

  server.registerTool(
    "request_access",
    {
      title: "Ask for more access",
      description: 'Propose a change for the orchestrator to approve: kind "domain" (target: a hostname or "*.suffix"), "egress_route" (target: API host; route: header and a value template naming a credential the bottle already holds, e.g. "Bearer ${GITHUB_TOKEN}"), "git_ref" (target: a ref pattern like "refs/heads/agent/*") or "other". Returns a proposal id for await_decision.',
      inputSchema: {
        kind: z.enum(ACCESS_KINDS),
        target: z.string().min(1).max(500),
        reason: z.string().min(1).max(4000).describe("Why you need it; the human reads this."),
        route: z.object({ path_prefix: z.string().default("/"), header: z.string(), value: z.string() }).optional(),
      },
      outputSchema: { id: z.string(), status: z.literal("pending") },
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: false },
    },
    async ({ kind, target, reason, route }) => {
      const problem = validateTarget(kind, target) ?? (kind === "egress_route" && !route ? "an egress_route request needs route: {header, value}" : undefined);
      if (problem) return { ...text(problem), isError: true };
      const p = await writeProposal(QUEUE, { kind, target, reason, ...(route ? { route: { path_prefix: route.path_prefix, header: route.header, value: route.value } } : {}) });
      log("proposed", { id: p.id, kind, target });
      return { ...text(`Proposal ${p.id} is pending. Call await_decision with this id.`), structuredContent: { id: p.id, status: "pending" as const } };
    },
  );

  server.registerTool(
    "await_decision",
    {
      title: "Wait for a decision",
      description: "Wait (up to timeout_seconds) for the orchestrator's decision on a proposal. Returns approved, denied or pending (still waiting), with the decider's note.",
      inputSchema: { id: z.string().regex(/^p-[0-9a-f]{12}$/), timeout_seconds: z.number().int().min(0).max(900).default(60) },
      outputSchema: { id: z.string(), status: z.enum(["approved", "denied", "pending"]), note: z.string(), expiresAt: z.string().optional() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ id, timeout_seconds }, extra) => {
      if (!(await readProposal(QUEUE, id))) return { ...text(`no proposal ${id}`), isError: true };
      const deadline = Date.now() + timeout_seconds * 1000;
      for (;;) {
        const d = await readDecision(QUEUE, id);
        if (d) {
          const out = { id, status: d.verdict, note: d.note, ...(d.expiresAt ? { expiresAt: d.expiresAt } : {}) };
          return { ...text(`${d.verdict}${d.note ? `: ${d.note}` : ""}${d.expiresAt ? ` (until ${d.expiresAt})` : ""}`), structuredContent: out };
        }
        if (Date.now() >= deadline || extra.signal.aborted) return { ...text("still pending"), structuredContent: { id, status: "pending" as const, note: "" } };
        await sleep(100);
      }
    },
  );
  return server;
}

async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const server = buildServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on("close", () => {
    void transport.close();
    void server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res);
}

const http = createServer((req, res) => {
  const path = (req.url ?? "/").split("?")[0];
  if (path === "/health" && req.method === "GET") {
    res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}\n');
    return;
  }
  if (path === "/mcp") {
    handleMcp(req, res).catch((err: Error) => {
      log("error", { message: err.message });
      if (!res.headersSent) res.writeHead(500).end();
    });
    return;
  }
  res.writeHead(404).end();
});
// await_decision long-polls for up to 15 minutes: no server-side timeouts.
http.requestTimeout = 0;
http.setTimeout(0);
http.listen(PORT, "0.0.0.0", () => log("listening", { port: PORT }));
process.on("SIGTERM", () => process.exit(0));
