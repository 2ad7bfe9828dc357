// The git gate's server and hook end to end on this machine (real git, no
// Docker): every way a push can be refused leaves a decision record, names
// are judged by git's rules and scanned for secrets, an upstream symbolic
// ref is judged by its target, and git's own checks stop bad objects and
// oversize packs while they stream. (Issue 10, items 7 and 9-12.)
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PUSH_ID_ENV, writeCommands } from "../../../../src/sidecars/git-gate/commands.js";
import { CONFIG_ENV, runPreReceive } from "../../../../src/sidecars/git-gate/pre-receive.js";
import { cmd, gitIn, gitRemote, rawPush, startLocalGate, ZERO, type LocalGate } from "../../../helpers/local-gate.js";

const GH = `ghp_${"Zq7Xk2Wm9Rt4Vb8N".repeat(3).slice(0, 36)}`;
const ESC = "\x1b";

/** `git push` from `work`: exit code and all output (the agent's view). */
const push = (work: string, args: string[]) => gitRemote(work, ["push", ...args]);

/** What the gate said (git prefixes it "remote:"), without the client's own lines. */
const remoteLines = (out: string) =>
  out
    .split("\n")
    .filter((l) => l.startsWith("remote:"))
    .join("\n");

const processState = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "")[0]!;
  } catch {
    return "gone";
  }
};

const commit = (work: string, msg: string) => gitIn(work, ["-c", "user.name=a", "-c", "user.email=a@test.invalid", "commit", "-qm", msg]);
const head = (work: string) => gitIn(work, ["rev-parse", "HEAD"]).trim();

describe("git gate server and hook (local git)", () => {
  let dir: string;
  let gate: LocalGate;
  let work: string;

  beforeAll(async () => {
    dir = mkdtempSync(nodePath.join(tmpdir(), "bb-gate-local-"));
    gate = await startLocalGate(dir, { policy: { max_push_bytes: 300_000 } });
    work = nodePath.join(dir, "work");
    const c = await gitRemote(dir, ["clone", "-q", gate.url, work]);
    expect(c.code, c.out).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await gate?.close();
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  });

  const lastDecisions = (n: number) => gate.decisions().slice(-n);

  it("forwards an allowed push and records it, over our own git:// server", async () => {
    gitIn(work, ["checkout", "-q", "-b", "feature", "origin/main"]);
    writeFileSync(nodePath.join(work, "work.txt"), "work\n");
    gitIn(work, ["add", "work.txt"]);
    commit(work, "work");
    const r = await push(work, ["origin", "HEAD:refs/heads/agent/feature"]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/pushed to upstream "app": refs\/heads\/agent\/feature/);
    expect(gate.upstreamRefs()["refs/heads/agent/feature"]).toBe(head(work));
    expect(lastDecisions(1)).toMatchObject([{ ref: "refs/heads/agent/feature", index: 1, verdict: "accepted", upstreamResult: "ok" }]);
  });

  it("refuses a GitHub token in a branch name, never echoing it (item 7)", async () => {
    const before = gate.upstreamRefs();
    const r = await push(work, ["origin", `HEAD:refs/heads/agent/${GH}`]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/refused by rule "secret_scan": the name of ref #1 holds a GitHub token/);
    // (git's own summary line repeats the refspec the agent typed; the gate's lines never hold it.)
    expect(remoteLines(r.out)).not.toContain(GH);
    expect(gate.upstreamRefs()).toEqual(before);
    const [d] = lastDecisions(1);
    expect(d).toMatchObject({ verdict: "refused", rule: "secret_scan", upstreamResult: "not-attempted" });
    expect(d!.ref).toMatch(/^\(ref #1 of this push: name withheld, it holds a GitHub token\)$/);
    expect(gate.logLines().join("")).not.toContain(GH);
  });

  it("refuses a token split across ref segments", async () => {
    const r = await push(work, ["origin", `HEAD:refs/heads/agent/${GH.slice(0, 20)}/${GH.slice(20)}`]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/the name of ref #1 holds a GitHub token/);
    expect(remoteLines(r.out)).not.toContain(GH.slice(20));
    expect(gate.logLines().join("")).not.toContain(GH.slice(20));
  });

  it("refuses a token in a file name, a directory name, or split across directories (item 7)", async () => {
    const tries: Array<[string, string]> = [
      ["file", `${GH}.txt`],
      ["dir", `${GH}/keep.txt`],
      ["split", `${GH.slice(0, 12)}/${GH.slice(12, 30)}/${GH.slice(30)}.md`],
    ];
    for (const [label, path] of tries) {
      gitIn(work, ["checkout", "-q", "-B", `n-${label}`, "origin/main"]);
      mkdirSync(nodePath.dirname(nodePath.join(work, path)), { recursive: true });
      writeFileSync(nodePath.join(work, path), "harmless\n");
      gitIn(work, ["add", "-A"]);
      commit(work, `add ${label}`);
      const c = head(work).slice(0, 12);
      const r = await push(work, ["origin", `HEAD:refs/heads/agent/n-${label}`]);
      expect(r.code, label).not.toBe(0);
      expect(r.out, label).toContain(`a path in commit ${c} holds a GitHub token`);
      expect(remoteLines(r.out), label).not.toContain(GH.slice(12, 30));
      expect(gate.upstreamRefs()[`refs/heads/agent/n-${label}`], label).toBeUndefined();
    }
    expect(gate.logLines().join("")).not.toContain(GH.slice(12, 30));
  });

  it("refuses an existing file renamed to a token (no new blob, only a new name)", async () => {
    gitIn(work, ["checkout", "-q", "-B", "rename", "origin/main"]);
    gitIn(work, ["mv", "README.md", `${GH}.md`]);
    commit(work, "rename");
    const r = await push(work, ["origin", "HEAD:refs/heads/agent/rename"]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/a path in commit [0-9a-f]{12} holds a GitHub token/);
  });

  it("judges names by git's rules and records the refusal: a space, a newline, '..' (item 9)", async () => {
    const before = gate.upstreamRefs();
    const main = before["refs/heads/main"]!;
    const cases: Array<[string, Buffer, RegExp]> = [
      ["space", Buffer.from("refs/heads/agent/sp x"), /it contains a space/],
      ["newline", Buffer.from(`refs/heads/agent/nl\n${ZERO} ${main} refs/heads/agent/other`), /it contains a newline/],
      ["dotdot", Buffer.from("refs/heads/agent/../main"), /it contains "\.\."/],
      ["escape", Buffer.from(`refs/heads/agent/${ESC}[2Kx`), /control character \(0x1b\)/],
    ];
    for (const [label, ref, why] of cases) {
      const r = await rawPush(gate.port, () => [cmd(ZERO, main, ref)]);
      expect(r.text, label).toMatch(/refused by rule "ref_format"/);
      expect(r.text, label).toMatch(why);
      expect(r.text, label).toMatch(/pre-receive hook declined/);
      const [d] = lastDecisions(1);
      expect(d, label).toMatchObject({ ref: ref.toString("utf8"), verdict: "refused", rule: "ref_format", upstreamResult: "not-attempted" });
    }
    expect(gate.upstreamRefs()).toEqual(before);
  });

  it("refuses a hook input that does not match what the agent sent (a forged line)", async () => {
    // Only the server's list is trusted: a second, valid-looking update
    // smuggled inside a name is judged as part of that one name.
    const main = gate.upstreamRefs()["refs/heads/main"]!;
    const r = await rawPush(gate.port, () => [cmd(ZERO, main, `refs/heads/agent/a\n${ZERO} ${main} refs/heads/agent/b`)]);
    expect(r.text).toMatch(/ref_format/);
    expect(gate.upstreamRefs()["refs/heads/agent/a"]).toBeUndefined();
    expect(gate.upstreamRefs()["refs/heads/agent/b"]).toBeUndefined();
  });

  it("refuses everything, on a record per update, when the hook's input holds a line the agent never sent", async () => {
    const main = gate.upstreamRefs()["refs/heads/main"]!;
    const id = "forged-1";
    writeCommands(id, [{ old: ZERO, new: main, raw: Buffer.from("refs/heads/agent/one") }], gate.pushesDir);
    const stdin = Buffer.from(`${ZERO} ${main} refs/heads/agent/one\n${ZERO} ${main} refs/heads/main\n`);
    const code = await runPreReceive(stdin, { ...gate.hookEnv, [PUSH_ID_ENV]: id }, gate.gateDir);
    expect(code).toBe(1);
    expect(gate.decisions().filter((d) => d.push === id)).toMatchObject([
      { ref: "refs/heads/agent/one", index: 1, verdict: "refused", rule: "protocol", reason: "the hook's input does not match the ref updates the gate received" },
    ]);
  });

  it("records a check that fails (here: an unreadable config) as hook_error, for every update", async () => {
    const main = gate.upstreamRefs()["refs/heads/main"]!;
    const id = "broken-1";
    writeCommands(
      id,
      [
        { old: ZERO, new: main, raw: Buffer.from("refs/heads/agent/x") },
        { old: ZERO, new: main, raw: Buffer.from("refs/heads/agent/y") },
      ],
      gate.pushesDir,
    );
    const stdin = Buffer.from(`${ZERO} ${main} refs/heads/agent/x\n${ZERO} ${main} refs/heads/agent/y\n`);
    const code = await runPreReceive(stdin, { ...gate.hookEnv, [PUSH_ID_ENV]: id, [CONFIG_ENV]: nodePath.join(dir, "missing.json") }, gate.gateDir);
    expect(code).toBe(1);
    expect(
      gate
        .decisions()
        .filter((d) => d.push === id)
        .map((d) => [d.index, d.rule, d.upstreamResult]),
    ).toEqual([
      [1, "hook_error", "not-attempted"],
      [2, "hook_error", "not-attempted"],
    ]);
  });

  it("refuses a push to a name that is a symbolic ref to a protected branch upstream (item 10)", async () => {
    const before = gate.upstreamRefs();
    await gitRemote(work, ["fetch", "-q", "origin"]);
    gitIn(work, ["checkout", "-q", "-B", "alias", "origin/agent/alias"]);
    writeFileSync(nodePath.join(work, "alias.txt"), "x\n");
    gitIn(work, ["add", "alias.txt"]);
    commit(work, "via alias");
    const r = await push(work, ["origin", "HEAD:refs/heads/agent/alias"]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/refused by rule "protected": refs\/heads\/agent\/alias is a symbolic ref to refs\/heads\/main on the upstream/);
    expect(gate.upstreamRefs()["refs/heads/main"]).toBe(before["refs/heads/main"]);
    expect(lastDecisions(1)).toMatchObject([{ ref: "refs/heads/agent/alias", rule: "protected", verdict: "refused" }]);
  });

  it("runs git's object checks: a tree holding .git (or .GIT) is refused, recorded, and explained (items 11, 12)", async () => {
    for (const name of [".git", ".GIT"]) {
      gitIn(work, ["checkout", "-q", "-B", "dotgit", "origin/main"]);
      const b = execFileSync("git", ["hash-object", "-w", "--stdin"], { cwd: work, input: "#!/bin/sh\necho owned\n" }).toString().trim();
      const hooks = execFileSync("git", ["mktree"], { cwd: work, input: `100755 blob ${b}\tpost-checkout\n` })
        .toString()
        .trim();
      const dotgit = execFileSync("git", ["mktree"], { cwd: work, input: `040000 tree ${hooks}\thooks\n` })
        .toString()
        .trim();
      const readme = gitIn(work, ["rev-parse", "HEAD:README.md"]).trim();
      const root = execFileSync("git", ["mktree"], { cwd: work, input: `040000 tree ${dotgit}\t${name}\n100644 blob ${readme}\tREADME.md\n` })
        .toString()
        .trim();
      const c = execFileSync("git", ["-c", "user.name=a", "-c", "user.email=a@test.invalid", "commit-tree", root, "-p", "HEAD", "-m", "hooks"], { cwd: work }).toString().trim();
      const r = await push(work, ["origin", `${c}:refs/heads/agent/dotgit`]);
      expect(r.code, name).not.toBe(0);
      expect(r.out, name).toMatch(
        /bot-bottle git-gate: push to "app" refused: refs\/heads\/agent\/dotgit: refused by rule "fsck": git's object checks \(receive.fsckObjects\) refused the pushed objects: hasDotgit/,
      );
      expect(gate.upstreamRefs()["refs/heads/agent/dotgit"], name).toBeUndefined();
      expect(lastDecisions(1), name).toMatchObject([{ ref: "refs/heads/agent/dotgit", verdict: "refused", rule: "fsck", upstreamResult: "not-attempted" }]);
    }
  });

  it("stops an oversize push while it streams, with a clear message and a record (items 11, 12)", async () => {
    gitIn(work, ["checkout", "-q", "-B", "big", "origin/main"]);
    // Incompressible: 3 MB over a 300 kB limit.
    writeFileSync(nodePath.join(work, "big.bin"), randomBytes(3_000_000));
    gitIn(work, ["add", "big.bin"]);
    commit(work, "big");
    const t0 = Date.now();
    const r = await push(work, ["origin", "HEAD:refs/heads/agent/big"]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/refused by rule "max_push_bytes": the pushed pack is over the limit of 300000 bytes \(policy.max_push_bytes\)/);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(gate.upstreamRefs()["refs/heads/agent/big"]).toBeUndefined();
    expect(lastDecisions(1)).toMatchObject([{ ref: "refs/heads/agent/big", verdict: "refused", rule: "max_push_bytes" }]);
    // Nothing of it stays in the gate's repository.
    const size = execFileSync("du", ["-sk", nodePath.join(gate.gateDir, "objects")]).toString();
    expect(Number(size.split("\t")[0])).toBeLessThan(1000);
  });

  it("records a hook that dies without deciding, and tells the agent (item 12)", async () => {
    const hook = nodePath.join(gate.hooksDir, "pre-receive");
    const original = execFileSync("cat", [hook]).toString();
    try {
      gate.setHook("#!/bin/sh\nkill -9 $$\n");
      gitIn(work, ["checkout", "-q", "-B", "crash", "origin/main"]);
      writeFileSync(nodePath.join(work, "c.txt"), "c\n");
      gitIn(work, ["add", "c.txt"]);
      commit(work, "crash");
      const r = await push(work, ["origin", "HEAD:refs/heads/agent/crash"]);
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/refused by rule "hook_error": the gate's pre-receive check ended without a decision/);
      expect(lastDecisions(1)).toMatchObject([{ ref: "refs/heads/agent/crash", verdict: "refused", rule: "hook_error", upstreamResult: "not-attempted" }]);
    } finally {
      gate.setHook(original);
    }
  });

  it("answers unknown or escaping repository paths with an error, serving nothing", async () => {
    for (const p of ["/attacker", "/../app", "/app/../../etc", "/~root/app"]) {
      const r = await gitRemote(dir, ["ls-remote", `git://127.0.0.1:${gate.port}${p}`], 20_000);
      expect(r.code, p).not.toBe(0);
      expect(r.stderr, p).toMatch(/no such repository|unable to|does not appear/);
    }
  });
});

describe("git gate timeouts (local git)", () => {
  let dir: string;
  let gate: LocalGate;

  beforeAll(async () => {
    dir = mkdtempSync(nodePath.join(tmpdir(), "bb-gate-timeout-"));
    gate = await startLocalGate(dir, { idleTimeoutMs: 1500 });
  }, 60_000);

  afterAll(async () => {
    await gate?.close();
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  });

  it("stops a push whose check hangs, ends the hook, and records the timeout (item 12)", async () => {
    const pidFile = nodePath.join(dir, "hook.pid");
    gate.setHook(`#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 60\n`);
    const main = gate.upstreamRefs()["refs/heads/main"]!;
    const t0 = Date.now();
    const r = await rawPush(gate.port, () => [cmd(ZERO, main, "refs/heads/agent/slow")]);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.text).toMatch(/stopped: no data moved for 2 s \(recorded as rule "timeout"\)/);
    expect(gate.decisions().slice(-1)).toMatchObject([{ ref: "refs/heads/agent/slow", verdict: "refused", rule: "timeout", upstreamResult: "not-attempted" }]);
    // The hook (its process group) is gone: no process, or only a zombie
    // waiting for this machine's init to reap it.
    const pid = Number(readFileSync(pidFile, "utf8"));
    await new Promise((res) => setTimeout(res, 300));
    expect(processState(pid)).toMatch(/^(gone|Z)$/);
  });

  it("stops a client that stalls before sending its pack, and records it", async () => {
    const main = gate.upstreamRefs()["refs/heads/main"]!;
    const r = await rawPush(gate.port, () => [cmd(ZERO, main, "refs/heads/agent/stall")], { stallAfterCommands: true });
    void r;
    expect(gate.decisions().slice(-1)).toMatchObject([{ ref: "refs/heads/agent/stall", rule: "timeout" }]);
  });
});
