// The git gate on real Docker (issue 5, SPEC §7 git-gate, §10 #4): an SSH git
// host we build ourselves is the upstream; a real bottle's agent clones from
// and pushes to the gate, which enforces the profile's policy and forwards
// what passes with an identity only the gate holds.
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { docker } from "../../src/engine/run.js";
import { execInBottle } from "../../src/bottles/exec.js";
import { parseGitDecisions, readGitDecisions } from "../../src/bottles/git-log.js";
import { bottleLogs } from "../../src/bottles/logs.js";
import { readMetadata } from "../../src/state/metadata.js";
import { startBottle } from "../../src/bottles/start.js";
import { stopBottle } from "../../src/bottles/stop.js";
import { PACKAGE_VERSION } from "../../src/package.js";
import { describeDocker } from "../helpers/docker.js";
import { buildTestImages, connectWhenCreated, GIT_AGENT_IMAGE, lsRemote, SSH_HOST_IMAGE, sshKeygen, startUpstream, TEST_LABEL, type Upstream } from "../helpers/git-upstream.js";
import { cmd as rawCmd, rawPush as rawPushFromHost } from "../helpers/local-gate.js";
import { connectServer } from "../helpers/mcp.js";

const tag = process.pid.toString(16).slice(-4);
const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-gitgate-"));
const env = { ...(process.env as Record<string, string>), BOTTLE_STATE_DIR: nodePath.join(dir, "state"), BOTTLE_SUBNET_POOL: "10.223.0.0/16" };
/** The upstream's own /24, carved from the same pool (the allocator skips it). */
const upstreamSubnet = `10.223.${200 + (process.pid % 50)}.0/24`;
const AWS_KEY = `AKIA${"Q7XJ2M4P".repeat(2)}`;
const GH = `ghp_${"Zq7Xk2Wm9Rt4Vb8N".repeat(3).slice(0, 36)}`;
const ESC = "\x1b";
const ROOT = nodePath.resolve(import.meta.dirname, "../..");
const RAW_PUSH = readFileSync(nodePath.join(ROOT, "test/fixtures/git/raw-push.mjs"), "utf8");
/** What the gate said (git prefixes it "remote:"); git's own summary repeats the agent's refspec. */
const remoteLines = (out: string) =>
  out
    .split("\n")
    .filter((l) => l.startsWith("remote:"))
    .join("\n");
const slug = `gate-${tag}`;
const gate = `bottle-git-gate-${slug}`;

let up: Upstream;
let manifest: string;

function writeManifest(u: Upstream, wrongKeyLine: string): string {
  const file = nodePath.join(dir, "bottle.yaml");
  const upstream = (knownHosts: string) => `
        - name: app
          url: ${u.url}
          identity_file: ${u.clientKey.private}
          known_hosts: "${knownHosts}"
          address: ${u.address}
          policy:
            push_refs: ["refs/heads/agent/*"]
            protected: ["refs/heads/main"]
            max_push_bytes: 5000000`;
  writeFileSync(
    file,
    `version: 1
agents:
  gate:
    image: ${GIT_AGENT_IMAGE}
    git:
      upstreams:${upstream(u.knownHostsLine)}
  badkey:
    image: ${GIT_AGENT_IMAGE}
    git:
      upstreams:${upstream(wrongKeyLine)}
`,
  );
  return file;
}

/** Run a shell script in the agent, in the clone. */
const agent = (script: string, o: { stdin?: string; timeoutMs?: number } = {}) =>
  execInBottle(slug, ["bash", "-c", `set -e; cd /tmp/app 2>/dev/null || true; ${script}`], { env: env, timeoutMs: o.timeoutMs ?? 120_000, ...(o.stdin !== undefined ? { stdin: o.stdin } : {}) });

async function bottleObjects(s: string): Promise<string> {
  const ps = await docker(["ps", "-a", "--filter", `label=dev.bot-bottle.slug=${s}`, "-q"]);
  const nets = await docker(["network", "ls", "--filter", `label=dev.bot-bottle.slug=${s}`, "-q"]);
  return (ps.stdout + nets.stdout).trim();
}

describeDocker("git gate on real Docker", () => {
  beforeAll(async () => {
    await buildTestImages();
    up = await startUpstream(`bb-gitgate-${tag}`, upstreamSubnet, dir);
    const wrong = readFileSync(sshKeygen(nodePath.join(dir, "other"), "host_key").public, "utf8")
      .trim()
      .split(/\s+/)
      .slice(0, 2)
      .join(" ");
    manifest = writeManifest(up, `upstream.test ${wrong}`);
  });

  afterAll(async () => {
    await stopBottle(slug, { env, purge: true }).catch(() => {});
    await up?.remove();
    if (!process.env.BOTTLE_TEST_KEEP_IMAGES) await docker(["rmi", "-f", SSH_HOST_IMAGE, GIT_AGENT_IMAGE], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts with the upstream fetched and the clone URL listed", async () => {
    let connecting: Promise<void> | undefined;
    const started = await startBottle({
      profile: "gate",
      manifest,
      slug,
      env,
      onProgress: (step) => {
        if (step === "up") connecting = connectWhenCreated(gate, up.network);
      },
    });
    await connecting;
    expect(started.metadata.state).toBe("running");
    expect(started.summary.cloneUrls).toEqual([{ name: "app", url: `git://${gate}/app` }]);

    // The identity is mounted read-only into the gate and nowhere else.
    const mounts = (c: string) => docker(["inspect", "--format", "{{range .Mounts}}{{.Source}} {{.Destination}} {{.RW}}\n{{end}}", c]).then((r) => r.stdout);
    expect(await mounts(gate)).toContain(`${up.clientKey.private} /run/bottle/git/app/identity false`);
    expect(await mounts(`bottle-agent-${slug}`)).not.toContain(up.clientKey.private);
  });

  it("clones via the gate, and a push to an allowed ref arrives upstream", async () => {
    const clone = await agent(`cd /tmp && git clone -q git://${gate}/app app && cd app && git config user.name agent && git config user.email agent@test.invalid && git log --format=%s && git tag`);
    expect(clone.exitCode, clone.stderr).toBe(0);
    expect(clone.stdout).toBe("initial commit\nv0.1");

    const push = await agent(
      "git checkout -q -b feature && echo work > work.txt && git add work.txt && git commit -qm 'agent work' && git push origin HEAD:refs/heads/agent/feature 2>&1 && git rev-parse HEAD",
    );
    expect(push.exitCode, push.stdout).toBe(0);
    expect(push.stdout).toMatch(/pushed to upstream "app": refs\/heads\/agent\/feature/);
    const sha = push.stdout.trim().split("\n").pop()!;
    expect(lsRemote(up)["refs/heads/agent/feature"]).toBe(sha);

    // The upstream's real URL is rewritten to the gate inside the agent.
    const viaUrl = await agent(`git ls-remote ${up.url} refs/heads/agent/feature`);
    expect(viaUrl.exitCode, viaUrl.stderr).toBe(0);
    expect(viaUrl.stdout).toContain(sha);
  });

  it("refuses a push to the protected main, naming the rule; upstream unchanged", async () => {
    const before = lsRemote(up);
    const r = await agent("git checkout -q main && echo x >> README.md && git commit -qam 'to main' && git push origin HEAD:main 2>&1");
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/refs\/heads\/main: refused by rule "protected"/);
    expect(lsRemote(up)).toEqual(before);
    const gateRefs = await agent("git ls-remote origin refs/heads/main");
    expect(gateRefs.stdout).toContain(before["refs/heads/main"]);
  });

  it("refuses force pushes and deletions", async () => {
    const before = lsRemote(up);
    const force = await agent(
      "git checkout -q -b rewrite origin/main && echo other > other.txt && git add other.txt && git commit -qm rewrite && git push -f origin HEAD:refs/heads/agent/feature 2>&1",
    );
    expect(force.exitCode).not.toBe(0);
    expect(force.stdout).toMatch(/refs\/heads\/agent\/feature: refused by rule "allow_force"/);
    const del = await agent("git push origin :refs/heads/agent/feature 2>&1");
    expect(del.exitCode).not.toBe(0);
    expect(del.stdout).toMatch(/refs\/heads\/agent\/feature: refused by rule "allow_delete"/);
    expect(lsRemote(up)).toEqual(before);
  });

  it("refuses a commit that adds an AWS-key-shaped string, without echoing it", async () => {
    const before = lsRemote(up);
    // The key reaches the agent on stdin: it is in no argv.
    const r = await agent(
      "git checkout -q -b leak origin/main && mkdir -p config && cat > config/aws.env && git add config && git commit -qm 'add config' && git push origin HEAD:refs/heads/agent/leak 2>&1",
      { stdin: `AWS_ACCESS_KEY_ID=${AWS_KEY}\n` },
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/refused by rule "secret_scan": file "config\/aws.env" \(blob [0-9a-f]{12}\) contains an AWS access key id/);
    expect(r.stdout + r.stderr).not.toContain(AWS_KEY);
    expect(lsRemote(up)).toEqual(before);
    const logs = await bottleLogs({ slug, env, service: "git-gate", tail: 10_000 });
    expect(logs.lines.join("\n")).toContain("secret_scan");
    expect(logs.lines.join("\n")).not.toContain(AWS_KEY);
  });

  it("fails the agent's push with the upstream's message when the upstream refuses; the gate's refs stay", async () => {
    const r = await agent("git checkout -q -b nope origin/main && echo n > n.txt && git add n.txt && git commit -qm nope && git push origin HEAD:refs/heads/agent/upstream-no 2>&1");
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/upstream "app" refused the push/);
    expect(r.stdout).toContain("upstream policy: refs/heads/agent/upstream-no is not accepted here");
    const gateRefs = await agent("git ls-remote origin");
    expect(gateRefs.stdout).not.toContain("agent/upstream-no");
    expect(lsRemote(up)["refs/heads/agent/upstream-no"]).toBeUndefined();
  });

  it("returns every decision as a structured record (bottle_git_log)", async () => {
    const { decisions } = await readGitDecisions({ slug, env });
    const summary = decisions.map((d) => [d.ref, d.verdict, d.rule ?? "", d.upstreamResult]);
    expect(summary).toEqual([
      ["refs/heads/agent/feature", "accepted", "", "ok"],
      ["refs/heads/main", "refused", "protected", "not-attempted"],
      ["refs/heads/agent/feature", "refused", "allow_force", "not-attempted"],
      ["refs/heads/agent/feature", "refused", "allow_delete", "not-attempted"],
      ["refs/heads/agent/leak", "refused", "secret_scan", "not-attempted"],
      ["refs/heads/agent/upstream-no", "refused", "upstream", "refused"],
    ]);
    expect(decisions[0]!.old).toMatch(/^0{40}$/);
    expect(decisions[0]!.new).toMatch(/^[0-9a-f]{40}$/);
    expect(decisions[5]!.upstreamMessage).toContain("not accepted here");

    const server = await connectServer(env);
    try {
      const r = await server.client.callTool({ name: "bottle_git_log", arguments: { slug, tail: 2 } });
      expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
      const s = r.structuredContent as { decisions: Array<{ ref: string; rule?: string }> };
      expect(s.decisions.map((d) => d.rule)).toEqual(["secret_scan", "upstream"]);
      expect(JSON.stringify(r)).not.toContain(AWS_KEY);
    } finally {
      await server.client.close();
    }
  });

  // Issue 10: names, refs, symbolic refs, git's own checks, every refusal recorded.

  /** Push by hand from inside the agent (names git's own client will not send); returns what the gate said. */
  const rawPush = async (...names: Array<string | Buffer>) => {
    const args = names.map((n) => (typeof n === "string" ? Buffer.from(n) : n).toString("base64"));
    const r = await execInBottle(slug, ["node", "-", gate, "app", ...args], { env: env, stdin: RAW_PUSH, timeoutMs: 60_000 });
    return r.stdout;
  };

  it("refuses a token in a branch name or in paths, never echoing it (item 7)", async () => {
    const before = lsRemote(up);
    // The token reaches the agent on stdin (it is in no argv or exec transcript).
    const branch = await agent('read -r T; git checkout -q -B tok origin/main && git push origin "HEAD:refs/heads/agent/$T" 2>&1', { stdin: `${GH}\n` });
    expect(branch.exitCode).not.toBe(0);
    expect(branch.stdout).toMatch(/refused by rule "secret_scan": the name of ref #1 holds a GitHub token/);
    expect(remoteLines(branch.stdout)).not.toContain(GH);
    // Split across two directory names, the file itself harmless.
    const split = await agent(
      'read -r T; d="${T:0:16}/${T:16:14}"; git checkout -q -B split origin/main && mkdir -p "$d" && echo hi > "$d/${T:30}.txt" && git add -A && git commit -qm split && git push origin HEAD:refs/heads/agent/split 2>&1',
      { stdin: `${GH}\n` },
    );
    expect(split.exitCode).not.toBe(0);
    expect(split.stdout).toMatch(/a path in commit [0-9a-f]{12} holds a GitHub token/);
    expect(remoteLines(split.stdout)).not.toContain(GH.slice(16, 30));
    expect(lsRemote(up)).toEqual(before);
    const logs = await bottleLogs({ slug, env, service: "git-gate", tail: 10_000 });
    expect(logs.lines.join("\n")).not.toContain(GH.slice(16, 30));
  });

  it("judges names by git's rules: a space, a newline, '..' and an escape are refused and recorded (item 9)", async () => {
    const before = lsRemote(up);
    const said = await rawPush("refs/heads/agent/sp x");
    expect(said).toMatch(/refs\/heads\/agent\/sp x is not a valid ref name: it contains a space/);
    expect(await rawPush(`refs/heads/agent/nl\n${"0".repeat(40)} ${before["refs/heads/main"]} refs/heads/agent/other`)).toMatch(/it contains a newline/);
    expect(await rawPush("refs/heads/agent/../main")).toMatch(/it contains "\.\."/);
    expect(await rawPush(`refs/heads/agent/${ESC}[1A${ESC}[2Kfake`)).toMatch(/control character \(0x1b\)/);
    expect(lsRemote(up)).toEqual(before);
  });

  it("refuses a push to a name that is a symbolic ref to main upstream (item 10)", async () => {
    const before = lsRemote(up);
    const r = await agent(
      "git fetch -q origin && git checkout -q -B alias origin/agent/alias && echo a > alias.txt && git add alias.txt && git commit -qm alias && git push origin HEAD:refs/heads/agent/alias 2>&1",
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/refs\/heads\/agent\/alias: refused by rule "protected": refs\/heads\/agent\/alias is a symbolic ref to refs\/heads\/main on the upstream/);
    expect(lsRemote(up)["refs/heads/main"]).toBe(before["refs/heads/main"]);
  });

  it("runs git's object checks: a tree with .git/hooks/post-checkout is refused with a clear message (items 11, 12)", async () => {
    const script = [
      "git checkout -q -B dotgit origin/main",
      'b=$(printf "#!/bin/sh\\necho owned\\n" | git hash-object -w --stdin)',
      'h=$(printf "100755 blob $b\\tpost-checkout\\n" | git mktree)',
      'g=$(printf "040000 tree $h\\thooks\\n" | git mktree)',
      'r=$(printf "040000 tree $g\\t.git\\n100644 blob $(git rev-parse HEAD:README.md)\\tREADME.md\\n" | git mktree)',
      "c=$(git commit-tree $r -p HEAD -m hooks)",
      "git push origin $c:refs/heads/agent/dotgit 2>&1",
    ].join(" && ");
    const r = await agent(script);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(
      /bot-bottle git-gate: push to "app" refused: refs\/heads\/agent\/dotgit: refused by rule "fsck": git's object checks \(receive.fsckObjects\) refused the pushed objects: hasDotgit/,
    );
    expect(lsRemote(up)["refs/heads/agent/dotgit"]).toBeUndefined();
  });

  it("stops a push over max_push_bytes while it streams (items 11, 12)", async () => {
    await agent("git checkout -q -B big origin/main && head -c 40000000 /dev/urandom > big.bin && git add big.bin && git commit -qm big", { timeoutMs: 180_000 });
    const t0 = Date.now();
    const r = await agent("git push origin HEAD:refs/heads/agent/big 2>&1", { timeoutMs: 180_000 });
    const ms = Date.now() - t0;
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/refused by rule "max_push_bytes": the pushed pack is over the limit of 5000000 bytes \(policy.max_push_bytes\)/);
    expect(ms).toBeLessThan(15_000);
    expect(lsRemote(up)["refs/heads/agent/big"]).toBeUndefined();
    // Nothing of the 40 MB stayed in the gate.
    const du = await docker(["exec", gate, "du", "-sk", "/srv/git/app.git/objects"]);
    expect(Number(du.stdout.split("\t")[0])).toBeLessThan(5_000);
  });

  it("records every refusal, with agent text escaped in bottle_git_log and bottle git-log (item 12)", async () => {
    const { decisions } = await readGitDecisions({ slug, env });
    const rules = decisions.slice(6).map((d) => d.rule);
    expect(rules).toEqual(["secret_scan", "secret_scan", "ref_format", "ref_format", "ref_format", "ref_format", "protected", "fsck", "max_push_bytes"]);
    expect(decisions[6]!.ref).toBe("(ref #1 of this push: name withheld, it holds a GitHub token)");
    expect(decisions.slice(6).every((d) => d.verdict === "refused" && d.upstreamResult === "not-attempted")).toBe(true);

    const server = await connectServer(env);
    let structured: unknown;
    let text = "";
    try {
      const r = await server.client.callTool({ name: "bottle_git_log", arguments: { slug, tail: 1000 } });
      expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
      structured = r.structuredContent;
      text = (r.content as Array<{ text: string }>)[0]!.text;
    } finally {
      await server.client.close();
    }
    // The escape sequences an agent put in a ref name arrive as text, not as escapes.
    expect(text).toContain("refs/heads/agent/\\x1b[1A\\x1b[2Kfake");
    expect(text).not.toContain(ESC);
    expect(text).not.toContain(GH);
    for (const line of text.split("\n")) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+ app ref="/);

    const cli = (args: string[]) => execFileSync(process.execPath, [nodePath.join(ROOT, "dist", "cli.js"), "git-log", slug, ...args], { env, encoding: "utf8" });
    expect(JSON.parse(cli(["--json", "--tail", "1000"]))).toEqual(structured);
    const human = cli(["--tail", "1000"]);
    expect(human).toContain("\\x1b[1A");
    expect(human).not.toContain(ESC);
  });

  it("keeps the identity out of the agent, which cannot reach the upstream's SSH port", async () => {
    // Distinctive lines of the private key (its base64 body), on stdin only.
    const keyLines = readFileSync(up.clientKey.private, "utf8")
      .split("\n")
      .filter((l) => l && !l.startsWith("-----"));
    expect(keyLines.length).toBeGreaterThan(2);
    const envDump = await execInBottle(slug, ["sh", "-c", "env; tr '\\0' '\\n' < /proc/1/environ"], { env: env });
    for (const l of keyLines) expect(envDump.stdout).not.toContain(l);
    const grep = await execInBottle(slug, ["sh", "-c", "grep -rlF -f /dev/stdin / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; echo done"], {
      env: env,
      stdin: `${keyLines.join("\n")}\n`,
      timeoutMs: 180_000,
    });
    expect(grep.stdout.trim()).toBe("done");
    // The gate does hold it (that is the point).
    const inGate = await docker(["exec", "-i", gate, "grep", "-qF", "-f", "/dev/stdin", "/run/bottle/git/app/identity"], { input: `${keyLines[1]}\n` });
    expect(inGate.exitCode).toBe(0);

    const direct = await execInBottle(slug, ["bash", "-c", `timeout 5 bash -c 'exec 3<>/dev/tcp/${up.address}/22' && echo OPEN || echo CLOSED`], { env: env });
    expect(direct.stdout.trim()).toBe("CLOSED");
    const viaProxy = await execInBottle(
      slug,
      [
        "bash",
        "-c",
        `timeout 10 node -e "const u=new URL(process.env.HTTP_PROXY);require('http').request({agent:false,host:u.hostname,port:u.port,method:'CONNECT',path:'${up.address}:22'}).on('connect',(r)=>{console.log(r.statusCode);process.exit(0)}).on('error',e=>{console.log('ERR');process.exit(0)}).end()"`,
      ],
      { env: env },
    );
    expect(viaProxy.stdout.trim()).not.toBe("200");
  });

  it("runs as a uid the image does not know (the host user's), reading a 0600 key it owns", async () => {
    // Bottles run the gate as the host uid:gid; this machine runs tests as
    // root, so exercise an unknown uid directly: ssh needs nss_wrapper's entry.
    const uid = 4242;
    const cfg = nodePath.join(dir, "uid-config");
    mkdirSync(nodePath.join(cfg, "known_hosts"), { recursive: true, mode: 0o700 });
    const identity = nodePath.join(dir, "uid-identity");
    copyFileSync(up.clientKey.private, identity);
    writeFileSync(nodePath.join(cfg, "known_hosts", "app"), `${up.knownHostsLine}\n`, { mode: 0o600 });
    const policy = { push_refs: ["refs/heads/agent/*"], protected: [], allow_force: false, allow_delete: false, max_push_bytes: 1_000_000 };
    writeFileSync(
      nodePath.join(cfg, "config.json"),
      JSON.stringify({
        version: 1,
        port: 9418,
        upstreams: [{ name: "app", url: up.url, identity_file: "/run/bottle/git/app/identity", known_hosts_file: "/etc/bottle/git-gate/known_hosts/app", policy }],
      }),
      { mode: 0o600 },
    );
    for (const p of [cfg, nodePath.join(cfg, "known_hosts"), nodePath.join(cfg, "known_hosts", "app"), nodePath.join(cfg, "config.json"), identity]) chownSync(p, uid, uid);
    chmodSync(identity, 0o600);
    const name = `bb-gitgate-${tag}-uid`;
    await docker([
      "run",
      "-d",
      "--name",
      name,
      "--label",
      TEST_LABEL,
      "--user",
      `${uid}:${uid}`,
      "--cap-drop",
      "ALL",
      "--security-opt",
      "no-new-privileges:true",
      "--network",
      up.network,
      "--add-host",
      `upstream.test:${up.address}`,
      "-v",
      `${cfg}:/etc/bottle/git-gate:ro`,
      "-v",
      `${identity}:/run/bottle/git/app/identity:ro`,
      `bot-bottle/git-gate:${PACKAGE_VERSION}`,
    ]);
    try {
      let logs = "";
      for (let i = 0; i < 150 && !logs.includes('"event":"ready"') && !logs.includes("startup_failed"); i++) {
        await new Promise((r) => setTimeout(r, 200));
        logs = (await docker(["logs", name], { reject: false })).stdout;
      }
      expect(logs).toContain('"event":"passwd_entry"');
      expect(logs).toContain('"event":"ready"');
      const refs = await docker(["exec", name, "git", "ls-remote", "git://127.0.0.1/app"]);
      expect(refs.stdout).toMatch(/\trefs\/heads\/main\n/);
      expect((await docker(["exec", name, "/usr/local/bin/git-gate-health"], { reject: false })).exitCode).toBe(0);

      // A hook that dies without deciding still leaves a record, and the
      // client hears why (issue 10, item 12).
      await docker(["exec", "-u", "root", name, "sh", "-c", "printf '#!/bin/sh\\nkill -9 $$\\n' > /app/hooks/pre-receive"]);
      const ip = (await docker(["inspect", "--format", `{{(index .NetworkSettings.Networks "${up.network}").IPAddress}}`, name])).stdout.trim();
      const main = lsRemote(up)["refs/heads/main"]!;
      const said = await rawPushFromHost(9418, () => [rawCmd("0".repeat(40), main, "refs/heads/agent/crash")], { host: ip });
      expect(said.text).toMatch(/refused by rule "hook_error": the gate's pre-receive check ended without a decision/);
      const after = (await docker(["logs", name])).stdout;
      expect(parseGitDecisions(after.split("\n"))).toMatchObject([{ ref: "refs/heads/agent/crash", verdict: "refused", rule: "hook_error", upstreamResult: "not-attempted" }]);
    } finally {
      await docker(["rm", "-f", name], { reject: false });
    }
  });

  it("stops and leaves nothing behind", async () => {
    await stopBottle(slug, { env });
    expect(await bottleObjects(slug)).toBe("");
  });

  it("refuses an upstream whose host key does not match the pin: start fails clearly, nothing left", async () => {
    const s = `badkey-${tag}`;
    let connecting: Promise<void> | undefined;
    const t0 = Date.now();
    const err = await startBottle({
      profile: "badkey",
      manifest,
      slug: s,
      env,
      onProgress: (step) => {
        if (step === "up") connecting = connectWhenCreated(`bottle-git-gate-${s}`, up.network).catch(() => {});
      },
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    await connecting;
    expect(err, "start should fail").toBeDefined();
    expect(err!.message).toMatch(/bottle-git-gate-badkey-\w+ exited \(1\)/);
    expect(err!.message).toMatch(/upstream "app" \(ssh:\/\/git@upstream\.test\/srv\/git\/app\.git\): the server's host key does not match the pinned known_hosts/);
    expect(Date.now() - t0).toBeLessThan(120_000);
    expect(await bottleObjects(s)).toBe("");
    expect(readMetadata({ metadataFile: nodePath.join(env.BOTTLE_STATE_DIR, s, "metadata.json") })?.state).toBe("failed");
    await stopBottle(s, { env, purge: true }).catch(() => {});
  });
});
