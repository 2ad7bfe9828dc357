// The git gate's pure parts: policy, ssh invocation and failure wording, the
// decision-log parser, and start-failure reasons.
import { describe, expect, it } from "vitest";
import { logLineReason } from "../../src/lifecycle/failure.js";
import { parseGitDecisions } from "../../src/lifecycle/git-decisions.js";
import { checkRef, parseUpdates, refMatches } from "../../src/sidecars/git-gate/policy.js";
import { classifySshFailure, sshCommand, sshTarget } from "../../src/sidecars/git-gate/ssh.js";

const Z = "0".repeat(40);
const A = "a".repeat(40);
const B = "b".repeat(40);
const policy = { push_refs: ["refs/heads/agent/*"], protected: ["refs/heads/main"], allow_force: false, allow_delete: false, max_push_bytes: 1000 };

describe("git gate policy", () => {
  it("matches ref patterns like refspecs (* spans /)", () => {
    expect(refMatches("refs/heads/agent/*", "refs/heads/agent/x/y")).toBe(true);
    expect(refMatches("refs/heads/agent/*", "refs/heads/agentx")).toBe(false);
    expect(refMatches("refs/heads/main", "refs/heads/main2")).toBe(false);
    expect(refMatches("refs/heads/v1.*", "refs/heads/v1x2")).toBe(false);
  });

  it("names the rule that refuses each kind of update", () => {
    expect(checkRef({ ref: "refs/heads/main", old: A, new: B }, { ...policy, push_refs: ["refs/heads/*"] }, true)?.rule).toBe("protected");
    expect(checkRef({ ref: "refs/heads/feature", old: Z, new: B }, policy, true)?.rule).toBe("push_refs");
    expect(checkRef({ ref: "refs/tags/v1", old: Z, new: B }, policy, true)?.rule).toBe("push_refs");
    expect(checkRef({ ref: "refs/heads/agent/x", old: A, new: Z }, policy, true)?.rule).toBe("allow_delete");
    expect(checkRef({ ref: "refs/heads/agent/x", old: A, new: B }, policy, false)?.rule).toBe("allow_force");
    expect(checkRef({ ref: "refs/heads/agent/x", old: A, new: B }, policy, true)).toBeUndefined();
    expect(checkRef({ ref: "refs/heads/agent/x", old: Z, new: B }, policy, false)).toBeUndefined();
    expect(checkRef({ ref: "refs/heads/agent/x", old: A, new: B }, { ...policy, allow_force: true }, false)).toBeUndefined();
    expect(checkRef({ ref: "refs/heads/agent/x", old: A, new: Z }, { ...policy, allow_delete: true }, true)).toBeUndefined();
    expect(checkRef({ ref: "refs/heads/main", old: A, new: B }, policy, true)?.reason).toMatch(/protected \(policy\.protected: refs\/heads\/main\)/);
  });

  it("parses pre-receive input and rejects garbage", () => {
    expect(parseUpdates(`${Z} ${A} refs/heads/agent/a\n${A} ${B} refs/heads/agent/b\n`)).toEqual([
      { old: Z, new: A, ref: "refs/heads/agent/a" },
      { old: A, new: B, ref: "refs/heads/agent/b" },
    ]);
    expect(() => parseUpdates("nonsense\n")).toThrow(/unexpected pre-receive input/);
  });
});

describe("git gate ssh", () => {
  it("pins known_hosts strictly, uses only the identity, and quotes for sh", () => {
    const cmd = sshCommand({ name: "app", identity_file: "/run/bottle/git/app/identity", known_hosts_file: "/etc/bottle/git-gate/known_hosts/app" }, { nssWrapper: false });
    for (const o of ["StrictHostKeyChecking=yes", "UserKnownHostsFile=/etc/bottle/git-gate/known_hosts/app", "GlobalKnownHostsFile=/dev/null", "IdentitiesOnly=yes", "IdentityFile=/run/bottle/git/app/identity", "BatchMode=yes", "ControlMaster=no"]) expect(cmd).toContain(`'-o' '${o}'`);
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
    const line = JSON.stringify({ ts: "2026-01-01T00:00:00.000Z", mode: "git-gate", event: "push", push: "p1", upstream: "app", ref: "refs/heads/main", old: A, new: B, change: "update", verdict: "refused", rule: "protected", reason: "refs/heads/main is protected", upstream_result: "not-attempted", bytes: 10, objects: 3, ms: { total: 5 } });
    const lines = [`bottle-git-gate-x-1234  | 2026-01-01T00:00:00.000000000Z ${line}`, "bottle-git-gate-x-1234  | 2026-01-01T00:00:00Z {\"ts\":\"t\",\"mode\":\"git-gate\",\"event\":\"ready\"}", "garbage {"];
    expect(parseGitDecisions(lines)).toEqual([{ time: "2026-01-01T00:00:00.000Z", push: "p1", upstream: "app", ref: "refs/heads/main", old: A, new: B, change: "update", verdict: "refused", rule: "protected", reason: "refs/heads/main is protected", upstreamResult: "not-attempted", bytes: 10, ms: { total: 5 } }]);
  });

  it("reduces a failed sidecar's JSON log line to its message", () => {
    expect(logLineReason('bottle-git-gate-x  | {"ts":"t","mode":"git-gate","event":"startup_failed","level":"error","msg":"upstream \\"app\\": host key mismatch"}')).toEqual({ text: 'upstream "app": host key mismatch', error: true });
    expect(logLineReason("bottle-x  | plain text")).toEqual({ text: "plain text", error: false });
  });
});
