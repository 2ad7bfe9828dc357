// SPEC §10 #3 and #5: an egress credential never shows up in the agent (env,
// files), the compose file, the state dir, any process's argv, or our logs;
// CA keys are 0600 and state dirs 0700.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { expect, it } from "vitest";
import { execInBottle } from "../../src/bottles/exec.js";
import { describeDocker } from "../helpers/docker.js";
import { connectServer } from "../helpers/mcp.js";

const TOKEN = `ghp_${"SeCrEtInVaRiAnT".repeat(3)}${process.pid}`;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = nodePath.join(dir, d.name);
    return d.isDirectory() ? filesUnder(p) : d.isFile() ? [p] : [];
  });
}

describeDocker("secrets stay out of the agent, files, argv and logs", () => {
  it("holds for a bottle with an egress credential, through start, use and stop", async () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-secret-"));
    const manifest = nodePath.join(dir, "bottle.yaml");
    writeFileSync(
      manifest,
      'version: 1\nagents:\n  sec:\n    image: node:24-bookworm-slim\n    network: { allow: [allowed.test] }\n    egress:\n      routes:\n        - { host: api.secret.test, header: Authorization, value: "Bearer ${SEC_TOKEN}" }\n',
    );
    const state = nodePath.join(dir, "state");
    const env = { ...(process.env as Record<string, string>), BOTTLE_MANIFEST: manifest, BOTTLE_STATE_DIR: state, BOTTLE_SUBNET_POOL: "10.222.0.0/16", SEC_TOKEN: TOKEN, BOTTLE_LOG_LEVEL: "debug" };
    const slug = `sec-${process.pid.toString(16).slice(-4)}`;
    const server = await connectServer(env);

    // Watch every process's argv while the bottle starts.
    const argvHits: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const line of execFileSync("ps", ["-eo", "args"]).toString().split("\n")) if (line.includes(TOKEN)) argvHits.push(line);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      const started = await server.client.callTool({ name: "bottle_start", arguments: { profile: "sec", slug } }, undefined, { timeout: 300_000 });
      watching = false;
      await watcher;
      expect(started.isError, JSON.stringify(started.content)).toBeFalsy();
      expect(argvHits).toEqual([]);

      // The egress sidecar does hold it (that is the point), by inheritance.
      const egressEnv = execFileSync("docker", ["inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", `bottle-egress-${slug}`]).toString();
      expect(egressEnv).toContain(`SEC_TOKEN=${TOKEN}`);

      // The agent's one way out is egress: the firewall is not on its network, so it cannot
      // CONNECT to a routed host there and get a tunnel that egress never scanned.
      const reach = await execInBottle(
        slug,
        [
          "node",
          "-e",
          `for (const [h,p] of [['bottle-firewall-${slug}',3128],['egress',3129]]) { const s=require('net').connect({host:h,port:p,timeout:3000},()=>{console.log(h,'connected');s.destroy()}); s.on('error',e=>console.log(h,e.code)); s.on('timeout',()=>{console.log(h,'timeout');s.destroy()}) }`,
        ],
        { env: env },
      );
      expect(reach.stdout).toMatch(new RegExp(`^bottle-firewall-${slug} (ENOTFOUND|EAI_AGAIN|timeout|EHOSTUNREACH)$`, "m"));
      expect(reach.stdout).toMatch(/^egress connected$/m);

      // The agent does not: not in its env, not anywhere in its filesystem.
      const agentEnv = await execInBottle(slug, ["sh", "-c", "env; tr '\\0' '\\n' < /proc/1/environ"], { env: env });
      expect(agentEnv.exitCode).toBe(0);
      expect(agentEnv.stdout).not.toContain(TOKEN);
      const grep = await execInBottle(slug, ["sh", "-c", "grep -rlF -f /dev/stdin / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; echo done"], {
        env: env,
        stdin: TOKEN,
        timeoutMs: 120_000,
      });
      expect(grep.stdout.trim()).toBe("done");

      // Nothing we wrote holds it, and state is private.
      const stateDir = nodePath.join(state, slug);
      for (const f of filesUnder(stateDir)) expect(readFileSync(f, "utf8"), f).not.toContain(TOKEN);
      expect(readFileSync(nodePath.join(stateDir, "docker-compose.yml"), "utf8")).toMatch(/- SEC_TOKEN\n/);
      expect(statSync(state).mode & 0o777).toBe(0o700);
      expect(statSync(stateDir).mode & 0o777).toBe(0o700);
      for (const key of ["firewall-ca/ca.key", "egress-ca/ca.key"]) expect(statSync(nodePath.join(stateDir, key)).mode & 0o777, key).toBe(0o600);

      const logs = await server.client.callTool({ name: "bottle_logs", arguments: { slug, tail: 1000 } });
      expect(JSON.stringify(logs)).not.toContain(TOKEN);
      await server.client.callTool({ name: "bottle_stop", arguments: { slug } });
      for (const f of filesUnder(stateDir)) expect(readFileSync(f, "utf8"), f).not.toContain(TOKEN);
      expect(server.stderr()).toContain("bot-bottle MCP server ready");
      expect(server.stderr()).not.toContain(TOKEN);
    } finally {
      watching = false;
      await server.client.callTool({ name: "bottle_stop", arguments: { slug, purge: true } }).catch(() => {});
      await server.client.close();
    }
  });
});
