// The README's first command: `bottle demo` on this machine's Docker.
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { docker } from "../../src/engine/run.js";
import { stateRootId } from "../../src/plan/index.js";
import { describeDocker } from "../helpers/docker.js";
import { CLI } from "../helpers/mcp.js";

describeDocker("bottle demo", () => {
  it("shows an allowed, a refused and an injected request, then leaves nothing running", async () => {
    const state = mkdtempSync(nodePath.join(tmpdir(), "bb-demo-"));
    const r = await promisify(execFile)(process.execPath, [CLI, "demo", "--json"], { env: { ...process.env, BOTTLE_STATE_DIR: state, BOTTLE_SUBNET_POOL: "10.221.0.0/16" }, timeout: 300_000 });
    const out = JSON.parse(r.stdout) as { slug: string; agentOutput: string; logs: string[]; stopMs: number };
    expect(out.agentOutput).toMatch(/1\. allowed host[^\n]*\n\s+-> 200 \{[^\n]*"host":"allowed\.demo\.test"/);
    expect(out.agentOutput).toMatch(/2\. host not on the allowlist[^\n]*\n\s+-> 403 bot-bottle firewall: blocked by allowlist: host "blocked\.demo\.test"/);
    expect(out.agentOutput).toContain('"authorization":"the demo token (injected by egress)"');
    expect(out.agentOutput).toContain("the agent's environment holds 0 demo-token variables");
    expect(out.logs.join("\n")).toMatch(/"decision":"blocked"/);
    expect(out.logs.join("\n")).toMatch(/"route":"demo-api"/);
    expect(r.stderr).toContain("[up] creating and starting containers");
    expect(r.stderr).toContain("[health] every sidecar is ready");
    const left = await docker(["ps", "-aq", "--filter", `label=dev.bot-bottle.state-root=${stateRootId(state)}`]);
    const nets = await docker(["network", "ls", "-q", "--filter", `label=dev.bot-bottle.state-root=${stateRootId(state)}`]);
    expect(left.stdout + nets.stdout).toBe("");
  });
});
