// Supervise end to end: the agent's MCP client asks, the orchestrator's MCP
// client is notified and decides, the firewall changes without a restart.
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createNetwork, pickFreeSubnets, removeNetwork, usedSubnets } from "../../src/docker/networks.js";
import { docker } from "../../src/docker/run.js";
import { execInBottle } from "../../src/lifecycle/exec.js";
import { stopBottle } from "../../src/lifecycle/stop.js";
import { bridgeName } from "../../src/plan/index.js";
import { readAudit } from "../../src/supervise/queue.js";
import { describeDocker } from "../helpers/docker.js";
import { connectServer } from "../helpers/mcp.js";
import { agentClientBundle } from "../helpers/supervise.js";

const POOL = "10.224.0.0/16";
const tag = process.pid.toString(16).slice(-4);
const slug = `sup-${tag}`;
const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-sup-"));
const state = nodePath.join(dir, "state");
const upstream = { net: `bb-sup-up-${tag}`, container: `bb-sup-up-${tag}` };
const env = { ...(process.env as Record<string, string>), BOTTLE_STATE_DIR: state, BOTTLE_SUBNET_POOL: POOL, SUP_TOKEN: "sup-token-value-not-secret-shaped" };
const queue = nodePath.join(state, slug, "queue");

describeDocker("supervise: the agent asks, the orchestrator decides", () => {
  let orch: Client;
  let updates: string[] = [];
  let bundle: string;

  /** Run a supervise tool from inside the agent; returns the parsed result. */
  const agentTool = async (tool: string, args: Record<string, unknown>) => {
    const r = await execInBottle(slug, ["node", "--input-type=module", "-", tool, JSON.stringify(args)], { stdin: bundle, hostEnv: env, timeoutMs: 120_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { isError?: boolean; structuredContent: Record<string, unknown>; content: Array<{ text: string }> };
  };
  /** GET a plain-HTTP URL through the agent's proxy: "<status> <body>". */
  const agentGet = async (url: string) =>
    (
      await execInBottle(
        slug,
        ["node", "-e", `const u=new URL(process.env.HTTP_PROXY);require('http').get({host:u.hostname,port:u.port,path:${JSON.stringify(url)}},r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>console.log(r.statusCode,b.trim()))}).on('error',e=>console.log('ERR',e.message))`],
        { hostEnv: env },
      )
    ).stdout;

  beforeAll(async () => {
    bundle = await agentClientBundle();
    // A stand-in for the outside world: busybox httpd answering two names.
    const [subnet] = pickFreeSubnets(POOL, await usedSubnets(), 1, 100);
    await createNetwork({ name: upstream.net, subnet: subnet!, internal: true, bridge: bridgeName(upstream.net), labels: { "dev.bot-bottle.test": "supervise" } });
    await docker(["run", "-d", "--name", upstream.container, "--label", "dev.bot-bottle.test=supervise", "--network", upstream.net, "--network-alias", "extra.example.test", "--network-alias", "extra2.example.test", "local/busybox", "sh", "-c", "mkdir -p /www && echo hello-from-extra > /www/index.html && httpd -f -p 80 -h /www"]);
    const manifest = nodePath.join(dir, "bottle.yaml");
    writeFileSync(
      manifest,
      `version: 1
agents:
  sup:
    image: node:24-bookworm-slim
    supervise: true
    network: { allow: [allowed.test], allow_cidrs: [${subnet}] }
    egress:
      routes:
        - { host: api.sup.test, header: Authorization, value: "Bearer \${SUP_TOKEN}" }
`,
    );
    const c = await connectServer({ ...env, BOTTLE_MANIFEST: manifest });
    orch = c.client;
    orch.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    const started = await orch.callTool({ name: "bottle_start", arguments: { profile: "sup", slug } }, undefined, { timeout: 300_000 });
    expect(started.isError, JSON.stringify(started.content)).toBeFalsy();
    await docker(["network", "connect", upstream.net, `bottle-firewall-${slug}`]);
    await orch.subscribeResource({ uri: `bottle://${slug}/proposals` });
  });

  afterAll(async () => {
    await stopBottle(slug, { env, purge: true }).catch(() => {});
    await docker(["rm", "-f", upstream.container], { reject: false });
    await removeNetwork(upstream.net).catch(() => {});
    await orch?.close();
  });

  it("approves a domain without restarting anything, after a notification", async () => {
    const startedAt = (await docker(["inspect", "--format", "{{.State.StartedAt}}", `bottle-firewall-${slug}`])).stdout;
    expect(await agentGet("http://extra.example.test/")).toMatch(/^403 .*extra\.example\.test/);

    const access = await agentTool("current_access", {});
    expect(access.structuredContent.domains).toEqual(["allowed.test", "api.sup.test"]);
    expect(JSON.stringify(access)).not.toContain(env.SUP_TOKEN);

    updates = [];
    const asked = await agentTool("request_access", { kind: "domain", target: "extra.example.test", reason: "needs the extra API for the task" });
    const id = asked.structuredContent.id as string;
    for (let i = 0; i < 50 && !updates.length; i++) await new Promise((r) => setTimeout(r, 100));
    expect(updates).toContain(`bottle://${slug}/proposals`);

    const inbox = await orch.callTool({ name: "bottle_proposals", arguments: {} });
    expect((inbox.structuredContent as { proposals: Array<{ proposal: { id: string } }> }).proposals.map((p) => p.proposal.id)).toContain(id);

    const waiting = agentTool("await_decision", { id, timeout_seconds: 60 });
    await new Promise((r) => setTimeout(r, 500));
    const decided = await orch.callTool({ name: "bottle_decide", arguments: { slug, id, verdict: "approve", note: "ok for this task" } });
    expect(decided.structuredContent).toMatchObject({ verdict: "approved", applied: true });
    expect((await waiting).structuredContent).toMatchObject({ id, status: "approved", note: "ok for this task" });
    expect(await agentGet("http://extra.example.test/")).toBe("200 hello-from-extra");
    expect((await agentTool("current_access", {})).structuredContent.domains).toContain("extra.example.test");
    expect((await docker(["inspect", "--format", "{{.State.StartedAt}}", `bottle-firewall-${slug}`])).stdout).toBe(startedAt);

    const events = (await readAudit(queue)).filter((e) => e.id === id).map((e) => e.event);
    expect(events).toEqual(["proposed", "applied", "decided"]);
  });

  it("denies with a note, and withdraws an approval when its time is up", async () => {
    const denied = await agentTool("request_access", { kind: "domain", target: "nope.example.test", reason: "curious" });
    const did = denied.structuredContent.id as string;
    await orch.callTool({ name: "bottle_decide", arguments: { slug, id: did, verdict: "deny", note: "not needed" } });
    expect((await agentTool("await_decision", { id: did, timeout_seconds: 5 })).structuredContent).toMatchObject({ status: "denied", note: "not needed" });

    const timed = await agentTool("request_access", { kind: "domain", target: "extra2.example.test", reason: "one quick fetch" });
    const tid = timed.structuredContent.id as string;
    await orch.callTool({ name: "bottle_decide", arguments: { slug, id: tid, verdict: "approve", ttl_seconds: 2 } });
    expect(await agentGet("http://extra2.example.test/")).toBe("200 hello-from-extra");
    let after = "";
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 250));
      after = await agentGet("http://extra2.example.test/");
      if (after.startsWith("403")) break;
    }
    expect(after).toMatch(/^403 /);
    expect((await readAudit(queue)).filter((e) => e.id === tid).map((e) => e.event)).toEqual(["proposed", "applied", "decided", "expired"]);
  });

  it("refuses to approve a route whose credential the profile does not give egress", async () => {
    const asked = await agentTool("request_access", { kind: "egress_route", target: "api.other.test", reason: "push results", route: { header: "Authorization", value: "Bearer ${HOST_ONLY_SECRET}" } });
    const id = asked.structuredContent.id as string;
    const r = await orch.callTool({ name: "bottle_decide", arguments: { slug, id, verdict: "approve" } });
    expect(r.isError).toBe(true);
    expect((r.content as Array<{ text: string }>)[0]!.text).toContain("$HOST_ONLY_SECRET, which the profile does not forward to egress (it forwards: SUP_TOKEN)");
    expect((await readAudit(queue)).filter((e) => e.id === id).map((e) => e.event)).toEqual(["proposed", "approval_refused"]);
  });

  it("survives torn writes, and the agent cannot write the queue or its access dir", async () => {
    // A writer killed mid-way leaves a temp file or a torn audit line; readers skip both.
    writeFileSync(nodePath.join(queue, "proposals", ".tmp-p-0123456789ab.json-dead"), '{"id":"p-0123456789ab","kind":"dom');
    writeFileSync(nodePath.join(queue, "proposals", "p-00000000dead.json"), '{"id":"p-00000000dead","kind":"domain","tar');
    appendFileSync(nodePath.join(queue, "audit.jsonl"), '{"at":"2026-01-01T00:00:00Z","event":"propo');
    const inbox = await orch.callTool({ name: "bottle_proposals", arguments: { slug, include_decided: true } });
    expect(inbox.isError).toBeFalsy();
    const ids = (inbox.structuredContent as { proposals: Array<{ proposal: { id: string } }> }).proposals.map((p) => p.proposal.id);
    expect(ids).not.toContain("p-0123456789ab");
    expect(ids).not.toContain("p-00000000dead");
    expect(ids.length).toBeGreaterThanOrEqual(4);
    const audit = await readAudit(queue);
    expect(audit.length).toBe(readFileSync(nodePath.join(queue, "audit.jsonl"), "utf8").trim().split("\n").length - 1);
    // New events still land after the torn line.
    const next = await agentTool("request_access", { kind: "other", target: "a human review", reason: "please look" });
    expect((await readAudit(queue)).at(-1)).toMatchObject({ event: "proposed", id: next.structuredContent.id });

    const write = await execInBottle(slug, ["sh", "-c", "touch /etc/bottle/access/x 2>&1; test -e /var/lib/bottle/queue && echo has-queue || echo no-queue"], { hostEnv: env });
    expect(write.stdout).toMatch(/Read-only file system/);
    expect(write.stdout).toContain("no-queue");
  });
});
