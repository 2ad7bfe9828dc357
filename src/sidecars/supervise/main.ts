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
import { accessSchema, type Access } from "../../contracts/access.js";
import { FILES, MOUNTS, PORTS } from "../../contracts/mounts.js";
import { PROPOSAL_ID_RE } from "../../contracts/patterns.js";
import { safeJson } from "../../contracts/escape.js";
import { QUEUE_LIMITS } from "../../contracts/limits.js";
import { assessProposal } from "../../security/access-policy.js";
import { createEventLog } from "../kit/log.js";
import { signalReady } from "../kit/ready.js";
import { settleHeap } from "../kit/settle.js";
import { TokenBucket } from "./rate.js";
import { ACCESS_KINDS, inboxFull, readDecision, readProposal, routeRequestSchema, writeProposal } from "../../contracts/queue.js";

const { values } = parseArgs({
  options: { port: { type: "string", default: String(PORTS.supervise) }, queue: { type: "string", default: MOUNTS.queue }, access: { type: "string", default: MOUNTS.access } },
});
const PORT = Number(values.port);
const QUEUE = values.queue!;
const ACCESS = values.access!;

// Agent-supplied text can reach these lines: safeJson escapes controls, bidi and separators.
const log = createEventLog("supervise", (l) => process.stdout.write(l), safeJson);
const text = (t: string) => ({ content: [{ type: "text" as const, text: t }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const readAccess = async (): Promise<Access> => accessSchema.parse(JSON.parse(await readFile(`${ACCESS}/${FILES.access}`, "utf8")));

/** One agent, one bucket: the sidecar serves one bottle. */
const bucket = new TokenBucket(QUEUE_LIMITS.burst, QUEUE_LIMITS.perMinute);
/** Proposals are admitted one at a time, so the pending count cannot be raced past its cap. */
let admitting: Promise<unknown> = Promise.resolve();
const serially = <T>(f: () => Promise<T>): Promise<T> => {
  const next = admitting.then(f, f);
  admitting = next.catch(() => {});
  return next;
};

function buildServer(): McpServer {
  const server = new McpServer(
    { name: "bottle-supervise", version: "1" },
    { instructions: "Ask the orchestrator for more access: current_access shows what you may reach now; request_access asks for more (say why); await_decision waits for the answer." },
  );

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
      const access = await readAccess();
      return { ...text(JSON.stringify(access, null, 2)), structuredContent: access };
    },
  );

  server.registerTool(
    "request_access",
    {
      title: "Ask for more access",
      description: `Propose a change for the orchestrator to approve: kind "domain" (target: a hostname or "*.suffix"), "egress_route" (target: API host; route: header, a value template naming a credential the bottle already holds, e.g. "Bearer \${GITHUB_TOKEN}", optional path_prefix and port (default 443) — a credential can only be routed to the hosts and path prefixes current_access lists for it), "git_ref" (target: a ref pattern like "refs/heads/agent/*") or "other". Requests that can never be approved (localhost, metadata or private addresses, bare TLDs, a credential for another host) are refused at once with the reason. The reason is at most ${QUEUE_LIMITS.maxReasonChars} characters; at most ${QUEUE_LIMITS.maxPending} requests may wait at once. Returns a proposal id for await_decision.`,
      inputSchema: {
        kind: z.enum(ACCESS_KINDS),
        target: z.string().min(1).max(500),
        // The cap is checked below, so a long reason gets a plain answer rather than a schema error.
        reason: z.string().min(1).max(100_000).describe(`Why you need it (at most ${QUEUE_LIMITS.maxReasonChars} characters); the human reads this.`),
        route: z.object({ path_prefix: z.string().default("/"), port: z.number().int().default(443), header: z.string(), value: z.string() }).optional(),
      },
      outputSchema: { id: z.string(), status: z.literal("pending") },
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: false },
    },
    async ({ kind, target, reason, route }) => {
      const refuse = (why: string) => {
        log("request_refused", { kind, why });
        return { ...text(`Refused: ${why}`), isError: true };
      };
      const rate = bucket.take();
      if (!rate.ok) return refuse(`too many requests; try again in ${rate.retryAfterSeconds} s (at most ${QUEUE_LIMITS.burst} at once, then ${QUEUE_LIMITS.perMinute} a minute)`);
      // UTF-16 units, as the queue schema counts them.
      if (reason.length > QUEUE_LIMITS.maxReasonChars) return refuse(`the reason is ${reason.length} characters; the limit is ${QUEUE_LIMITS.maxReasonChars}. Say it shorter.`);
      if (kind === "egress_route" && !route) return refuse("an egress_route request needs route: {header, value}");
      const shape = route ? routeRequestSchema.safeParse(route) : undefined;
      if (shape && !shape.success) return refuse(`route: ${shape.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
      const access = await readAccess();
      const checkedRoute = shape?.success ? shape.data : undefined;
      const judged = assessProposal({ kind, target, ...(checkedRoute ? { route: checkedRoute } : {}) }, { bindings: access.credentials, allowCidrs: access.cidrs, egress: access.routes.length > 0 });
      if (judged.refuse) return refuse(judged.refuse);
      return serially(async () => {
        const full = await inboxFull(QUEUE);
        if (full) return refuse(full);
        const p = await writeProposal(QUEUE, { kind, target, reason, ...(checkedRoute ? { route: checkedRoute } : {}) });
        log("proposed", { id: p.id, kind, target });
        const broad = judged.flags.length
          ? ` Note for your reason: it is broad (${judged.flags.join("; ")}), so the orchestrator must approve it explicitly; a narrower request is likelier to be approved.`
          : "";
        return { ...text(`Proposal ${p.id} is pending. Call await_decision with this id.${broad}`), structuredContent: { id: p.id, status: "pending" as const } };
      });
    },
  );

  server.registerTool(
    "await_decision",
    {
      title: "Wait for a decision",
      description: "Wait (up to timeout_seconds) for the orchestrator's decision on a proposal. Returns approved, denied or pending (still waiting), with the decider's note.",
      inputSchema: { id: z.string().regex(PROPOSAL_ID_RE), timeout_seconds: z.number().int().min(0).max(900).default(60) },
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
  const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true }); // no session id generator: stateless;
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
http.listen(PORT, "0.0.0.0", () => {
  log("listening", { port: PORT });
  signalReady();
  settleHeap();
});
process.on("SIGTERM", () => process.exit(0));
