// The git gate's pure parts: ref names by git's rules, policy matching, the
// hook's input, secrets in names, what the server records when the hook
// does not, the git:// protocol pieces, ssh invocation and failure wording,
// the decision-log parser and its text view, and start-failure reasons.
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { logLineReason } from "../../../../src/bottles/failure.js";
import { formatGitDecisions, parseGitDecisions, type GitDecision } from "../../../../src/bottles/git-log.js";
import { escapeAgentText } from "../../../../src/contracts/escape.js";
import { matchStdin, serialize, type WireCommand } from "../../../../src/sidecars/git-gate/commands.js";
import { parseCommandLine, parseRequest, ReportReader, repoCandidates } from "../../../../src/sidecars/git-gate/daemon.js";
import { describePathFindings, displayRef, refNameSecrets, runsEndingAtLast, withholdSecrets } from "../../../../src/sidecars/git-gate/names.js";
import { unpackRefusal, unrecordedOutcome, type PushObservation } from "../../../../src/sidecars/git-gate/outcome.js";
import { encodePkt, FLUSH_PKT, PktReader } from "../../../../src/sidecars/git-gate/pktline.js";
import { checkRef, checkRefName, checkSymrefTarget, parseUpdates, protects, refMatches } from "../../../../src/sidecars/git-gate/policy.js";
import { pushedRefError, refFormatError } from "../../../../src/sidecars/git-gate/refname.js";
import { classifySshFailure, sshCommand, sshTarget } from "../../../../src/sidecars/git-gate/ssh.js";
import { parseSymrefs } from "../../../../src/sidecars/git-gate/symrefs.js";

const Z = "0".repeat(40);
const A = "a".repeat(40);
const B = "b".repeat(40);
const policy = { push_refs: ["refs/heads/agent/*"], protected: ["refs/heads/main"], allow_force: false, allow_delete: false, max_push_bytes: 1000 };
const GH = `ghp_${"Zq7Xk2Wm9Rt4Vb8N".repeat(3).slice(0, 36)}`;

/** The real `git check-ref-format`: 0 valid, 1 invalid. */
function gitSaysValid(name: string, flags: string[] = []): boolean {
  const r = spawnSync("git", ["check-ref-format", ...flags, name], { encoding: "utf8" });
  return r.status === 0;
}

describe("ref names by git's rules (item 9)", () => {
  const TRICKY = [
    "refs/heads/main",
    "refs/heads/agent/x",
    "refs/heads/agent/../main",
    "refs/heads/agent/..x",
    "refs/heads/agent/x..y",
    "refs/heads/agent/.hidden",
    "refs/heads/agent/x.",
    "refs/heads/agent/x.lock",
    "refs/heads/agent/x.lock/y",
    "refs/heads/agent/x.locky",
    "refs/heads/agent//x",
    "refs/heads/agent/x/",
    "/refs/heads/x",
    "refs/heads/agent/sp x",
    "refs/heads/agent/tab\tx",
    "refs/heads/agent/nl\nx",
    "refs/heads/agent/esc\x1b[2K",
    "refs/heads/agent/del\x7f",
    "refs/heads/agent/x~1",
    "refs/heads/agent/x^2",
    "refs/heads/agent/a:b",
    "refs/heads/agent/a?b",
    "refs/heads/agent/a*b",
    "refs/heads/agent/a[b",
    "refs/heads/agent/a\\b",
    "refs/heads/agent/a@{1}",
    "refs/heads/agent/a@b",
    "refs/heads/agent/@",
    "@",
    "refs/heads/agent/{x}",
    "refs/heads/agent/ünïcode",
    "refs/heads/agent/\u202e",
    "refs/heads/agent/x.y.z",
    "refs",
    "refs/x",
    "HEAD",
    "refs/heads/-x",
    "refs/heads/agent/.",
    "refs/heads/agent/..",
  ];

  it("agrees with git check-ref-format on a table of tricky names", () => {
    for (const name of TRICKY) {
      expect(refFormatError(name) === undefined, JSON.stringify(name)).toBe(gitSaysValid(name));
      expect(refFormatError(name, { allowOneLevel: true }) === undefined, `onelevel ${JSON.stringify(name)}`).toBe(gitSaysValid(name, ["--allow-onelevel"]));
      expect(refFormatError(name, { pattern: true }) === undefined, `pattern ${JSON.stringify(name)}`).toBe(gitSaysValid(name, ["--refspec-pattern"]));
    }
  });

  it("agrees with git check-ref-format on generated names", () => {
    const alphabet = ["a", "b", "/", ".", "@", "{", "*", " ", "~", "^", ":", "?", "[", "\\", "\t", "\x1b", "\x7f", "-", "é", "lock"];
    fc.assert(
      // (git's command line reads a leading "-" as an option, so such names cannot be asked about.)
      fc.property(
        fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 12 }).filter((parts) => !parts.join("").startsWith("-")),
        (parts) => {
          const name = parts.join("");
          return (refFormatError(name) === undefined) === gitSaysValid(name);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("says why a pushed name is refused", () => {
    expect(pushedRefError("refs/heads/agent/sp x", false)).toBe("it contains a space");
    expect(pushedRefError("refs/heads/agent/nl\nx", false)).toBe("it contains a newline");
    expect(pushedRefError("refs/heads/agent/../main", false)).toBe('it contains ".."');
    expect(pushedRefError("refs/heads/agent/\x1b[2K", false)).toBe("it contains a control character (0x1b)");
    expect(pushedRefError("heads/main", false)).toBe('it is not under "refs/"');
    // As receive-pack: one level below refs/ only for a deletion.
    expect(pushedRefError("refs/x", false)).toBe("it has only one component");
    expect(pushedRefError("refs/x", true)).toBeUndefined();
    expect(pushedRefError(Buffer.from([...Buffer.from("refs/heads/agent/"), 0xff, 0xfe]), false)).toBe("it is not valid UTF-8");
  });
});

describe("git gate policy", () => {
  it("matches ref patterns one segment at a time: * never spans / (item 9)", () => {
    expect(refMatches("refs/heads/agent/*", "refs/heads/agent/x")).toBe(true);
    expect(refMatches("refs/heads/agent/*", "refs/heads/agent/x/y")).toBe(false);
    expect(refMatches("refs/heads/agent/*", "refs/heads/agent/../main")).toBe(false);
    expect(refMatches("refs/heads/agent/*", "refs/heads/agent/..")).toBe(false);
    expect(refMatches("refs/heads/agent/*", "refs/heads/agent/")).toBe(false);
    expect(refMatches("refs/heads/agent/*", "refs/heads/agentx")).toBe(false);
    expect(refMatches("refs/heads/main", "refs/heads/main2")).toBe(false);
    expect(refMatches("refs/heads/v1.*", "refs/heads/v1x2")).toBe(false);
    expect(refMatches("refs/heads/v1.*", "refs/heads/v1.2")).toBe(true);
    expect(refMatches("refs/tags/agent-*", "refs/tags/agent-1")).toBe(true);
  });

  it("lets ** stand for one or more whole segments", () => {
    expect(refMatches("refs/heads/agent/**", "refs/heads/agent/x")).toBe(true);
    expect(refMatches("refs/heads/agent/**", "refs/heads/agent/x/y/z")).toBe(true);
    expect(refMatches("refs/heads/agent/**", "refs/heads/agent")).toBe(false);
    expect(refMatches("refs/heads/agent/**", "refs/heads/agent/x/../../main")).toBe(false);
    expect(refMatches("refs/**/wip", "refs/heads/a/b/wip")).toBe(true);
  });

  it("protects what a protected pattern matches and everything below it", () => {
    expect(protects("refs/heads/main", "refs/heads/main")).toBe(true);
    expect(protects("refs/heads/main", "refs/heads/main2")).toBe(false);
    expect(protects("refs/heads/release/*", "refs/heads/release/1.x")).toBe(true);
    expect(protects("refs/heads/release/*", "refs/heads/release/1.x/hotfix")).toBe(true);
    expect(protects("refs/heads/release/*", "refs/heads/agent/release")).toBe(false);
  });

  it("names the rule that refuses each kind of update", () => {
    expect(checkRef({ ref: "refs/heads/main", old: A, new: B }, { ...policy, push_refs: ["refs/heads/*"] }, true)?.rule).toBe("protected");
    expect(checkRef({ ref: "refs/heads/feature", old: Z, new: B }, policy, true)?.rule).toBe("push_refs");
    expect(checkRef({ ref: "refs/tags/v1", old: Z, new: B }, policy, true)?.rule).toBe("push_refs");
    expect(checkRef({ ref: "refs/heads/agent/x/y", old: Z, new: B }, policy, true)?.rule).toBe("push_refs");
    expect(checkRef({ ref: "refs/heads/agent/x", old: A, new: Z }, policy, true)?.rule).toBe("allow_delete");
    expect(checkRef({ ref: "refs/heads/agent/x", old: A, new: B }, policy, false)?.rule).toBe("allow_force");
    expect(checkRef({ ref: "refs/heads/agent/x", old: A, new: B }, policy, true)).toBeUndefined();
    expect(checkRef({ ref: "refs/heads/agent/x", old: Z, new: B }, policy, false)).toBeUndefined();
    expect(checkRef({ ref: "refs/heads/agent/x", old: A, new: B }, { ...policy, allow_force: true }, false)).toBeUndefined();
    expect(checkRef({ ref: "refs/heads/agent/x", old: A, new: Z }, { ...policy, allow_delete: true }, true)).toBeUndefined();
    expect(checkRef({ ref: "refs/heads/main", old: A, new: B }, policy, true)?.reason).toMatch(/protected \(policy\.protected: refs\/heads\/main\)/);
  });

  it("refuses names git refuses before any policy (ref_format)", () => {
    expect(checkRefName({ ref: "refs/heads/agent/../main", old: Z, new: B }, "x")?.rule).toBe("ref_format");
    expect(checkRefName({ ref: "refs/heads/agent/ok", old: Z, new: B }, "x")).toBeUndefined();
  });

  it("judges a symbolic ref by its target upstream (item 10)", () => {
    const r = checkSymrefTarget({ ref: "refs/heads/agent/alias", old: A, new: B }, "refs/heads/main", policy, true);
    expect(r).toEqual({
      rule: "protected",
      reason: "refs/heads/agent/alias is a symbolic ref to refs/heads/main on the upstream, so the push would move refs/heads/main: refs/heads/main is protected (policy.protected: refs/heads/main)",
    });
    expect(checkSymrefTarget({ ref: "refs/heads/agent/alias", old: A, new: B }, "refs/heads/agent/real", policy, true)).toBeUndefined();
    expect(parseSymrefs(`ref: refs/heads/main\trefs/heads/agent/alias\n${A}\trefs/heads/agent/alias\nref: refs/heads/main\tHEAD\n`, new Set(["refs/heads/agent/alias"]))).toEqual(
      new Map([["refs/heads/agent/alias", "refs/heads/main"]]),
    );
  });

  it("parses pre-receive input strictly (item 9)", () => {
    expect(parseUpdates(`${Z} ${A} refs/heads/agent/a\n${A} ${B} refs/heads/agent/b\n`).map(({ raw: _raw, ...u }) => u)).toEqual([
      { old: Z, new: A, ref: "refs/heads/agent/a" },
      { old: A, new: B, ref: "refs/heads/agent/b" },
    ]);
    // A space is part of the name (then refused as a name), never a separator.
    expect(parseUpdates(`${Z} ${A} refs/heads/agent/sp x\n`)[0]!.ref).toBe("refs/heads/agent/sp x");
    const s64 = "c".repeat(64);
    expect(parseUpdates(`${"0".repeat(64)} ${s64} refs/heads/agent/a\n`)[0]!.new).toBe(s64);
    for (const bad of [
      "nonsense\n",
      "",
      `${Z} ${A} refs/heads/agent/a`,
      `${Z} ${A.toUpperCase()} refs/heads/x\n`,
      `${Z}  ${A} refs/heads/x\n`,
      `${Z} ${A} \n`,
      `${Z} ${"c".repeat(64)} refs/heads/x\n`,
      `${Z} ${A} refs/a\n${"0".repeat(64)} ${"c".repeat(64)} refs/b\n`,
    ]) {
      expect(() => parseUpdates(bad), JSON.stringify(bad)).toThrow();
    }
  });

  it("takes the updates from the agent's list, which stdin must match (a name with a newline stays one name)", () => {
    const cmds: WireCommand[] = [
      { old: Z, new: A, raw: Buffer.from(`refs/heads/agent/nl\n${Z} ${B} refs/heads/agent/forged`) },
      { old: Z, new: B, raw: Buffer.from("refs/heads/agent/ok") },
    ];
    const stdin = Buffer.concat(cmds.map(serialize));
    expect(matchStdin(stdin, cmds)).toEqual([0, 1]);
    // receive-pack leaves out updates it already failed: a subsequence is fine.
    expect(matchStdin(serialize(cmds[1]!), cmds)).toEqual([1]);
    // A line no command explains is not.
    expect(matchStdin(Buffer.from(`${Z} ${B} refs/heads/agent/forged\n`), cmds)).toBeUndefined();
  });
});

describe("secrets in names (item 7)", () => {
  it("builds every run of components ending at the name, joined with / and with nothing", () => {
    expect(runsEndingAtLast(["a", "b", "c"]).sort()).toEqual(["a/b/c", "abc", "b/c", "bc", "c"].sort());
  });

  it("finds a token in a ref name, whole or split across segments, and withholds the name", () => {
    expect(refNameSecrets(`refs/heads/agent/${GH}`).map((f) => f.rule)).toContain("github-token");
    expect(refNameSecrets(`refs/heads/agent/${GH.slice(0, 10)}/${GH.slice(10)}`).map((f) => f.rule)).toContain("github-token");
    expect(refNameSecrets(`refs/heads/x/${GH.slice(0, 10)}/${GH.slice(10)}/tail`).map((f) => f.rule)).toContain("github-token");
    expect(refNameSecrets("refs/heads/agent/feature")).toEqual([]);
    expect(displayRef(`refs/heads/agent/${GH}`, 2)).toBe("(ref #2 of this push: name withheld, it holds a GitHub token)");
    expect(displayRef("refs/heads/agent/feature", 2)).toBe("refs/heads/agent/feature");
    expect(withholdSecrets(`error: bad name ${GH}`)).toBe("(text withheld: it holds a GitHub token)");
  });

  it("says where a path holds a secret, never the path", () => {
    expect(describePathFindings([{ commit: "abc123def456", rule: "github-token", description: "a GitHub token" }])).toBe("a path in commit abc123def456 holds a GitHub token");
  });
});

describe("what the gate records when its hook does not (item 12)", () => {
  const base: PushObservation = {
    push: "p1",
    upstream: "app",
    commands: [
      { old: Z, new: A, raw: Buffer.from("refs/heads/agent/a") },
      { old: Z, new: B, raw: Buffer.from("refs/heads/agent/b") },
    ],
    recorded: new Set(),
    report: { refs: [] },
    messages: "",
    upstreamStarted: false,
    exit: { code: 0, signal: null },
    maxPushBytes: 1000,
    bytes: 5000,
  };

  it("classifies git's unpack failures: size limit, object checks, anything else", () => {
    expect(unpackRefusal("unpack-objects abnormal exit", "fatal: pack exceeds maximum allowed size\n", 1000).rule).toBe("max_push_bytes");
    const fsck = unpackRefusal("index-pack abnormal exit", "error: object 1234abcd: hasDotgit: contains '.git'\nfatal: fsck error in packed object\n", 1000);
    expect(fsck).toEqual({ rule: "fsck", reason: "git's object checks (receive.fsckObjects) refused the pushed objects: hasDotgit: contains '.git'" });
    expect(unpackRefusal("index-pack abnormal exit", "fatal: early EOF\n", 1000)).toEqual({
      rule: "unpack",
      reason: "git could not take the pushed objects: index-pack abnormal exit; fatal: early EOF",
    });
    expect(unpackRefusal("x", `error: object 12: badTagName: invalid 'tag' name: ${GH}\n`, 1000).reason).not.toContain(GH);
  });

  it("records every update when git refused the pack before the hook ran", () => {
    const out = unrecordedOutcome({ ...base, report: { unpack: "index-pack abnormal exit", refs: [] }, messages: "error: object 12: hasDotgit: contains '.git'\n" });
    expect(out.map((r) => [r.ref, r.index, r.verdict, r.rule, r.upstream_result])).toEqual([
      ["refs/heads/agent/a", 1, "refused", "fsck", "not-attempted"],
      ["refs/heads/agent/b", 2, "refused", "fsck", "not-attempted"],
    ]);
  });

  it("records a hook that died, as unknown upstream when it had begun pushing", () => {
    const report = {
      unpack: "ok",
      refs: [
        { ref: "refs/heads/agent/a", ok: false, reason: "pre-receive hook declined" },
        { ref: "refs/heads/agent/b", ok: false, reason: "pre-receive hook declined" },
      ],
    };
    expect(unrecordedOutcome({ ...base, report }).map((r) => [r.rule, r.upstream_result])).toEqual([
      ["hook_error", "not-attempted"],
      ["hook_error", "not-attempted"],
    ]);
    const started = unrecordedOutcome({ ...base, report, upstreamStarted: true });
    expect(started.map((r) => r.upstream_result)).toEqual(["unknown", "unknown"]);
    expect(started[0]!.reason).toMatch(/the upstream, which may have received it/);
  });

  it("skips what the hook recorded, and records git's own refusals of the rest", () => {
    const report = {
      unpack: "ok",
      refs: [
        { ref: "refs/heads/agent/a", ok: false, reason: "pre-receive hook declined" },
        { ref: "refs/heads/agent/b", ok: false, reason: "missing necessary objects" },
      ],
    };
    const out = unrecordedOutcome({ ...base, report, recorded: new Set([1]) });
    expect(out.map((r) => [r.ref, r.rule, r.reason])).toEqual([["refs/heads/agent/b", "git", "git refused the update: missing necessary objects; nothing was pushed upstream"]]);
  });

  it("records timeouts and malformed pushes, withholding names that hold secrets", () => {
    const cmds = [{ old: Z, new: A, raw: Buffer.from(`refs/heads/agent/${GH}`) }];
    const t = unrecordedOutcome({ ...base, commands: cmds, timedOut: "the gate stopped the push: no data moved for 600 s", exit: { code: null, signal: "SIGTERM" } });
    expect(t).toMatchObject([{ rule: "timeout", verdict: "refused", ref: "(ref #1 of this push: name withheld, it holds a GitHub token)" }]);
    expect(unrecordedOutcome({ ...base, protocolError: "the push was malformed: x" })[0]!.rule).toBe("protocol");
  });
});

describe("git:// protocol pieces", () => {
  it("frames and reads pkt-lines across chunk boundaries", () => {
    const r = new PktReader();
    const wire = Buffer.concat([encodePkt("hello\n"), FLUSH_PKT, encodePkt("x")]);
    r.push(wire.subarray(0, 3));
    expect(r.next()).toBeUndefined();
    r.push(wire.subarray(3, 14));
    expect(r.next()!.packet).toEqual({ kind: "data", payload: Buffer.from("hello\n") });
    expect(r.next()!.packet).toEqual({ kind: "flush" });
    r.push(wire.subarray(14));
    expect(r.next()!.packet).toEqual({ kind: "data", payload: Buffer.from("x") });
    r.push(Buffer.from("zzzz"));
    expect(() => r.next()).toThrow(/bad pkt-line length/);
  });

  it("reads the daemon request and the repository it names", () => {
    expect(parseRequest(Buffer.from("git-receive-pack /app\0host=gate\0\0version=1\0"))).toEqual({ service: "receive-pack", path: "/app", protocol: "version=1" });
    expect(parseRequest(Buffer.from("git-upload-pack /app.git\0host=gate\0"))).toEqual({ service: "upload-pack", path: "/app.git" });
    expect(parseRequest(Buffer.from("git-upload-archive /app\0"))).toHaveProperty("error");
    expect(repoCandidates("/app")).toEqual(["app"]);
    expect(repoCandidates("/app.git/")).toEqual(["app.git", "app"]);
    for (const bad of ["/../app", "/app/../x", "/~user/app", "/a/b", "/"]) expect(repoCandidates(bad), bad).toEqual([]);
  });

  it("reads command lines with their raw names", () => {
    expect(parseCommandLine(Buffer.from(`${Z} ${A} refs/heads/agent/sp x`))).toEqual({ old: Z, new: A, raw: Buffer.from("refs/heads/agent/sp x") });
    expect(parseCommandLine(Buffer.from(`shallow ${A}`))).toBe("shallow");
    expect(parseCommandLine(Buffer.from("push-cert"))).toBeUndefined();
    expect(parseCommandLine(Buffer.from(`${Z} ${A} `))).toBeUndefined();
  });

  it("reads receive-pack's report inside the sideband", () => {
    const rr = new ReportReader(() => true);
    const report = Buffer.concat([encodePkt("unpack index-pack abnormal exit\n"), encodePkt("ng refs/heads/agent/a unpacker error\n"), FLUSH_PKT]);
    rr.feed({ kind: "data", payload: Buffer.concat([Buffer.from([2]), Buffer.from("fatal: pack exceeds maximum allowed size\n")]) });
    rr.feed({ kind: "data", payload: Buffer.concat([Buffer.from([1]), report.subarray(0, 10)]) });
    rr.feed({ kind: "data", payload: Buffer.concat([Buffer.from([1]), report.subarray(10)]) });
    expect(rr.report).toEqual({ unpack: "index-pack abnormal exit", refs: [{ ref: "refs/heads/agent/a", ok: false, reason: "unpacker error" }] });
    expect(rr.messages).toContain("pack exceeds maximum allowed size");
  });
});

describe("agent text in bottle_git_log output (item 12)", () => {
  it("escapes terminal escapes, newlines and bidi controls", () => {
    expect(escapeAgentText("a\x1b[2Kb\nc\u202ed\\e\x9bf")).toBe("a\\x1b[2Kb\\x0ac\\u{202e}d\\\\e\\x9bf");
  });

  it("prints one line per record, agent text escaped and quoted", () => {
    const d: GitDecision = {
      time: "2026-01-01T00:00:00.000Z",
      push: "p",
      upstream: "app",
      ref: "refs/heads/agent/\x1b[1A\x1b[2Kx\nFAKE accepted",
      old: Z,
      new: A,
      change: "create",
      verdict: "refused",
      rule: "ref_format",
      reason: 'name has "quotes" and \x1b[31mred',
      upstreamResult: "not-attempted",
    };
    const text = formatGitDecisions([d]);
    expect(text).not.toMatch(/[\x00-\x1f]/);
    expect(text.split("\n")).toHaveLength(1);
    expect(text).toContain('ref="refs/heads/agent/\\x1b[1A\\x1b[2Kx\\x0aFAKE accepted"');
    expect(text).toContain('reason="name has \\"quotes\\" and \\x1b[31mred"');
  });
});

describe("git gate ssh", () => {
  it("pins known_hosts strictly, uses only the identity, and quotes for sh", () => {
    const cmd = sshCommand({ name: "app", identity_file: "/run/bottle/git/app/identity", known_hosts_file: "/etc/bottle/git-gate/known_hosts/app" }, { nssWrapper: false });
    for (const o of [
      "StrictHostKeyChecking=yes",
      "UserKnownHostsFile=/etc/bottle/git-gate/known_hosts/app",
      "GlobalKnownHostsFile=/dev/null",
      "IdentitiesOnly=yes",
      "IdentityFile=/run/bottle/git/app/identity",
      "BatchMode=yes",
      "ControlMaster=no",
    ])
      expect(cmd).toContain(`'-o' '${o}'`);
    expect(cmd.startsWith("ssh '-F' '/dev/null'")).toBe(true);
    expect(sshCommand({ name: "app", identity_file: "/i", known_hosts_file: "/k" }, { nssWrapper: true })).toMatch(/^LD_PRELOAD='libnss_wrapper.so' NSS_WRAPPER_PASSWD=/);
  });

  it("finds user, host and port in both URL forms", () => {
    expect(sshTarget("git@github.com:acme/app.git")).toEqual({ user: "git", host: "github.com" });
    expect(sshTarget("ssh://git@host.test:2222/srv/app.git")).toEqual({ user: "git", host: "host.test", port: 2222 });
    expect(sshTarget("ssh://host.test/app.git")).toEqual({ host: "host.test" });
  });

  it("tells a host key mismatch from an unreachable upstream", () => {
    expect(classifySshFailure("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.\nfatal: Could not read from remote repository.")).toBe("host-key");
    expect(classifySshFailure("No ED25519 host key is known for upstream.test and you have requested strict checking.\nHost key verification failed.")).toBe("host-key");
    expect(classifySshFailure("ssh: connect to host upstream.test port 22: No route to host")).toBe("unreachable");
    expect(classifySshFailure("ssh: Could not resolve hostname nope.test: Name or service not known")).toBe("unreachable");
    expect(classifySshFailure("git@upstream.test: Permission denied (publickey).")).toBe("auth");
  });
});

describe("git gate decision records", () => {
  it("parses the gate's push lines out of compose logs and skips everything else", () => {
    const line = JSON.stringify({
      ts: "2026-01-01T00:00:00.000Z",
      mode: "git-gate",
      event: "push",
      push: "p1",
      upstream: "app",
      ref: "refs/heads/main",
      old: A,
      new: B,
      change: "update",
      verdict: "refused",
      rule: "protected",
      reason: "refs/heads/main is protected",
      upstream_result: "not-attempted",
      bytes: 10,
      objects: 3,
      ms: { total: 5 },
    });
    const lines = [`bottle-git-gate-x-1234  | 2026-01-01T00:00:00.000000000Z ${line}`, 'bottle-git-gate-x-1234  | 2026-01-01T00:00:00Z {"ts":"t","mode":"git-gate","event":"ready"}', "garbage {"];
    expect(parseGitDecisions(lines)).toEqual([
      {
        time: "2026-01-01T00:00:00.000Z",
        push: "p1",
        upstream: "app",
        ref: "refs/heads/main",
        old: A,
        new: B,
        change: "update",
        verdict: "refused",
        rule: "protected",
        reason: "refs/heads/main is protected",
        upstreamResult: "not-attempted",
        bytes: 10,
        ms: { total: 5 },
      },
    ]);
  });

  it("reduces a failed sidecar's JSON log line to its message", () => {
    expect(logLineReason('bottle-git-gate-x  | {"ts":"t","mode":"git-gate","event":"startup_failed","level":"error","msg":"upstream \\"app\\": host key mismatch"}')).toEqual({
      text: 'upstream "app": host key mismatch',
      error: true,
    });
    expect(logLineReason("bottle-x  | plain text")).toEqual({ text: "plain text", error: false });
  });
});
