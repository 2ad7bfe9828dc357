// examples/claude-code on the real Docker engine, against a fake model API.
// The example's profile runs an agent CLI whose model key egress injects: the
// stand-in CLI (examples/claude-code/stand-in-cli.mjs) calls POST /v1/messages
// the way Claude Code does, the upstream sees the real key, and the agent
// never holds it. The same request with the real key forwarded through
// forward_env instead is refused by the firewall's DLP, and render, doctor
// and the MCP tool warn about that profile before it starts.
//
// The upstream is a container this test starts on a network of its own, with
// a certificate from a throwaway CA (network.trust). The test runs the
// shipped manifest with only what must differ on this machine changed: the
// model host becomes a .test name (so a mistake can never reach the real
// API), and the CA, the upstream's subnet and the build context's absolute
// path are filled in.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { renderProfile } from "../../src/bottles/render.js";
import { pickFreeSubnets } from "../../src/plan/subnets.js";
import { createNetwork, removeNetwork, usedSubnets } from "../../src/engine/networks.js";
import { docker } from "../../src/engine/run.js";
import { execInBottle } from "../../src/bottles/exec.js";
import { startBottle } from "../../src/bottles/start.js";
import { stopBottle } from "../../src/bottles/stop.js";
import { bridgeName, stateRootId } from "../../src/plan/index.js";
import { createCertificateAuthority, issueServerCertificate } from "../../src/security/ca.js";
import { describeDocker } from "../helpers/docker.js";
import { CLI, connectServer } from "../helpers/mcp.js";

const EXAMPLE = nodePath.resolve(import.meta.dirname, "../../examples/claude-code");
const MODEL_HOST = "api.model-upstream.test";
/** Shaped like an Anthropic key (so DLP knows it), random per run. */
const KEY = `sk-ant-api03-${randomBytes(60).toString("base64url")}AA`;
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/**
 * Just enough of the Messages API. It is given the key's hash, not the key,
 * compares hashes, and never echoes what it received: each request is logged
 * as a JSON line saying whether the key matched.
 */
const UPSTREAM = `
import { createServer } from "node:https";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
const expected = process.env.EXPECTED_KEY_SHA256;
const sha = (s) => createHash("sha256").update(s).digest("hex");
const server = createServer({ cert: readFileSync("/model/server.pem"), key: readFileSync("/model/server.key") }, (req, res) => {
  let body = "";
  req.on("data", (d) => (body += d));
  req.on("end", () => {
    const key = req.headers["x-api-key"];
    const keyMatched = typeof key === "string" && sha(key) === expected;
    console.log(JSON.stringify({ method: req.method, path: req.url, keyPresent: key !== undefined, keyMatched, version: req.headers["anthropic-version"] ?? null }));
    const send = (status, obj) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(obj));
    const error = (status, type, message) => send(status, { type: "error", error: { type, message } });
    if (req.method !== "POST" || req.url !== "/v1/messages") return error(404, "not_found_error", "only POST /v1/messages here");
    if (!keyMatched) return error(401, "authentication_error", "invalid x-api-key");
    if (!req.headers["anthropic-version"]) return error(400, "invalid_request_error", "anthropic-version header is required");
    let msg;
    try { msg = JSON.parse(body); } catch { return error(400, "invalid_request_error", "body is not JSON"); }
    const prompt = msg.messages?.at(-1)?.content;
    send(200, {
      id: "msg_" + randomBytes(12).toString("hex"), type: "message", role: "assistant", model: msg.model,
      content: [{ type: "text", text: "pong: " + (typeof prompt === "string" ? prompt : "?") }],
      stop_reason: "end_turn", stop_sequence: null, usage: { input_tokens: 3, output_tokens: 2 },
    });
  });
});
server.listen(443, () => console.log(JSON.stringify({ ready: true })));
`;

interface UpstreamRecord {
  method: string;
  path: string;
  keyPresent: boolean;
  keyMatched: boolean;
  version: string | null;
}

const run = Math.random().toString(16).slice(2, 6);
const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-claude-code-"));
const state = nodePath.join(dir, "state");
const env: Record<string, string> = { ...(process.env as Record<string, string>), BOTTLE_STATE_DIR: state, BOTTLE_SUBNET_POOL: "10.227.0.0/16", ANTHROPIC_API_KEY: KEY };
const manifestFile = nodePath.join(dir, "bottle.yaml");
const upstreamNet = `bb-cc-model-${run}`;
const upstreamName = `bb-cc-model-${run}`;
const labels = { "dev.bot-bottle.state-root": stateRootId(state), "dev.bot-bottle.test": "claude-code-example" };
const slugs = { injected: `cc-${run}`, forwarded: `ccf-${run}` };

async function upstreamRecords(): Promise<UpstreamRecord[]> {
  const r = await docker(["logs", upstreamName], { timeout: 30_000 });
  return r.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as UpstreamRecord & { ready?: boolean })
    .filter((x) => !x.ready);
}

/** Start a profile of the derived manifest and let its firewall (only it) reach the upstream. */
async function startProfile(profile: string, slug: string): Promise<void> {
  await startBottle({ profile, manifest: manifestFile, slug, env });
  await docker(["network", "connect", upstreamNet, `bottle-firewall-${slug}`], { timeout: 30_000 });
}

const cli = async (args: string[]) => {
  try {
    const r = await promisify(execFile)(process.execPath, [CLI, ...args], { env, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

describeDocker("examples/claude-code: the model key is injected by egress", () => {
  beforeAll(async () => {
    const ca = await createCertificateAuthority("bot-bottle claude-code test CA", 1);
    const cert = await issueServerCertificate(ca, [MODEL_HOST], 1);
    writeFileSync(nodePath.join(dir, "ca.pem"), ca.certPem);
    writeFileSync(nodePath.join(dir, "server.pem"), cert.certPem);
    writeFileSync(nodePath.join(dir, "server.key"), cert.keyPem, { mode: 0o644 }); // a throwaway key the upstream container reads
    writeFileSync(nodePath.join(dir, "upstream.mjs"), UPSTREAM);

    const [subnet] = pickFreeSubnets("10.228.0.0/16", await usedSubnets(), 1);
    await createNetwork({ name: upstreamNet, subnet: subnet!, internal: true, bridge: bridgeName(upstreamNet), labels });
    await docker(
      [
        "run",
        "-d",
        "--name",
        upstreamName,
        "--network",
        upstreamNet,
        "--network-alias",
        MODEL_HOST,
        ...Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
        "-e",
        "EXPECTED_KEY_SHA256",
        "-v",
        `${dir}:/model:ro`,
        "node:24-bookworm-slim",
        "node",
        "/model/upstream.mjs",
      ],
      { env: { EXPECTED_KEY_SHA256: sha256(KEY) }, timeout: 60_000 },
    );

    // The shipped profile, pointed at this machine's fake model API.
    const shipped = parse(readFileSync(nodePath.join(EXAMPLE, "bottle.yaml"), "utf8"));
    const p = shipped.agents["claude-code"];
    expect(p.egress.routes).toEqual([{ name: "anthropic", host: "api.anthropic.com", header: "x-api-key", value: "${ANTHROPIC_API_KEY}" }]);
    expect(p.network.allow).toEqual(["api.anthropic.com"]);
    p.build.context = EXAMPLE;
    p.env.ANTHROPIC_BASE_URL = `https://${MODEL_HOST}`;
    p.network = { allow: [MODEL_HOST], allow_cidrs: [subnet], trust: [nodePath.join(dir, "ca.pem")] };
    p.egress.routes[0].host = MODEL_HOST;
    // The way that does not work: the real key forwarded to the agent.
    const forwarded = structuredClone(p);
    delete forwarded.egress;
    delete forwarded.env.ANTHROPIC_API_KEY;
    forwarded.forward_env = ["ANTHROPIC_API_KEY"];
    shipped.agents = { "claude-code": p, "claude-code-fwd": forwarded };
    writeFileSync(manifestFile, stringify(shipped));
  });

  afterAll(async () => {
    for (const slug of Object.values(slugs)) await stopBottle(slug, { env, purge: true }).catch(() => {});
    await docker(["rm", "-f", upstreamName], { timeout: 60_000, reject: false });
    await removeNetwork(upstreamNet).catch(() => {});
    await docker(["rmi", "bottle-agent-claude-code-fwd:local"], { timeout: 60_000, reject: false }); // a second tag of the same layers
    const left = await docker(["ps", "-aq", "--filter", `label=dev.bot-bottle.state-root=${stateRootId(state)}`]);
    const nets = await docker(["network", "ls", "-q", "--filter", `label=dev.bot-bottle.state-root=${stateRootId(state)}`]);
    rmSync(dir, { recursive: true, force: true });
    expect(left.stdout + nets.stdout).toBe("");
  });

  it("renders the shipped example without warnings", () => {
    const r = renderProfile({ profile: "claude-code", manifest: nodePath.join(EXAMPLE, "bottle.yaml"), slug: "cc-render", env });
    expect(r.warnings).toEqual([]);
    expect(r.summary.routes).toEqual([{ name: "anthropic", host: "api.anthropic.com", pathPrefix: "/", header: "x-api-key", env: ["ANTHROPIC_API_KEY"] }]);
    expect(r.summary.forwardedEnv).toEqual([]);
  });

  it("the agent CLI reaches the model API with the real key, which the agent never holds", { timeout: 900_000 }, async () => {
    const slug = slugs.injected;
    await startProfile("claude-code", slug);
    try {
      const r = await execInBottle(slug, ["claude-stand-in", "-p", "ping", "--output-format", "json"], { env: env, timeoutMs: 60_000 });
      expect(r.exitCode, r.stderr).toBe(0);
      const reply = JSON.parse(r.stdout) as { type: string; role: string; content: Array<{ type: string; text: string }> };
      expect(reply).toMatchObject({ type: "message", role: "assistant", content: [{ type: "text", text: "pong: ping" }] });
      expect(await upstreamRecords()).toEqual([{ method: "POST", path: "/v1/messages", keyPresent: true, keyMatched: true, version: "2023-06-01" }]);
      expect(r.stdout + r.stderr).not.toContain(KEY);

      // The agent holds the placeholder, in its env and its processes' env ...
      const agentEnv = await execInBottle(slug, ["sh", "-c", "env; tr '\\0' '\\n' < /proc/1/environ"], { env: env });
      expect(agentEnv.exitCode).toBe(0);
      expect(agentEnv.stdout).toContain("ANTHROPIC_API_KEY=placeholder-injected-by-egress");
      expect(agentEnv.stdout).not.toContain(KEY);
      // ... and no file anywhere in it holds the real key.
      const grep = await execInBottle(slug, ["sh", "-c", "grep -rlF -f /dev/stdin / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; echo done"], {
        env: env,
        stdin: KEY,
        timeoutMs: 180_000,
      });
      expect(grep.stdout.trim()).toBe("done");
      // Nor does anything we wrote for the bottle.
      for (const f of filesUnder(nodePath.join(state, slug))) expect(readFileSync(f, "utf8"), f).not.toContain(KEY);
    } finally {
      await stopBottle(slug, { env });
    }
  });

  it("warns in render, doctor and bottle_render when the real key is forwarded instead", async () => {
    const core = renderProfile({ profile: "claude-code-fwd", manifest: manifestFile, slug: "ccf-render", env });
    expect(core.warnings).toHaveLength(1);
    expect(core.warnings[0]).toMatchObject({
      kind: "forwarded",
      variable: "ANTHROPIC_API_KEY",
      hosts: [MODEL_HOST],
      route: { host: "api.anthropic.com", header: "x-api-key", value: "${ANTHROPIC_API_KEY}" },
    });

    const human = await cli(["render", "claude-code-fwd", "--manifest", manifestFile, "--slug", "ccf-render"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/ {2}warning {4}forward_env ANTHROPIC_API_KEY looks like a credential, and this profile allows api\.model-upstream\.test/);
    expect(human.stdout).toContain('      value: "${ANTHROPIC_API_KEY}"');
    const json = JSON.parse((await cli(["render", "claude-code-fwd", "--manifest", manifestFile, "--json"])).stdout);
    expect(json.warnings).toEqual(core.warnings);
    expect((await cli(["render", "claude-code", "--manifest", manifestFile, "--json"])).stdout).toContain('"warnings": []');

    const doctor = await cli(["doctor", "--json", "--manifest", manifestFile]);
    const report = JSON.parse(doctor.stdout) as { manifest: { ok: boolean; warnings: Array<{ profile: string; variable: string }> } };
    expect(report.manifest.ok).toBe(true);
    expect(report.manifest.warnings.map((w) => [w.profile, w.variable])).toEqual([["claude-code-fwd", "ANTHROPIC_API_KEY"]]);
    const doctorHuman = await cli(["doctor", "--manifest", manifestFile]);
    expect(doctorHuman.stdout).toContain('warning  manifest profile "claude-code-fwd": forward_env ANTHROPIC_API_KEY');

    const server = await connectServer({ BOTTLE_STATE_DIR: state });
    try {
      const r = await server.client.callTool({ name: "bottle_render", arguments: { profile: "claude-code-fwd", manifest: manifestFile } });
      expect(r.isError).toBeFalsy();
      expect((r.structuredContent as { warnings: unknown[] }).warnings).toEqual(core.warnings);
      expect((r.content as Array<{ text: string }>)[0]!.text).toContain("Warning: forward_env ANTHROPIC_API_KEY looks like a credential");
    } finally {
      await server.client.close();
    }
    // None of it shows the value.
    for (const out of [human.stdout, JSON.stringify(json), doctor.stdout, doctorHuman.stdout]) expect(out).not.toContain(KEY);
  });

  it("the same request with the real key forwarded is refused by the firewall's DLP", { timeout: 600_000 }, async () => {
    const slug = slugs.forwarded;
    const before = (await upstreamRecords()).length;
    await startProfile("claude-code-fwd", slug);
    try {
      const agentEnv = await execInBottle(slug, ["sh", "-c", "env"], { env: env });
      expect(agentEnv.stdout).toContain(`ANTHROPIC_API_KEY=${KEY}`); // this profile does hand the agent the key
      const r = await execInBottle(slug, ["claude-stand-in", "-p", "ping"], { env: env, timeoutMs: 60_000 });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/claude-stand-in: HTTP 403: bot-bottle firewall: blocked by dlp: /);
      expect(r.stderr).not.toContain(KEY);
      expect(await upstreamRecords()).toHaveLength(before); // it never left the bottle
      const fw = await docker(["logs", `bottle-firewall-${slug}`], { timeout: 30_000 });
      const refusals = fw.stdout.split("\n").filter((l) => l.includes('"decision":"blocked"') && l.includes('"rule":"dlp"'));
      expect(refusals, fw.stdout).toHaveLength(1);
      expect(fw.stdout + fw.stderr).not.toContain(KEY);
    } finally {
      await stopBottle(slug, { env });
    }
  });
});

function filesUnder(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) => {
    const p = nodePath.join(d, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}
