import { mkdtempSync, writeFileSync, appendFileSync, readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { describe, expect, it } from "vitest";
import type { BottleError } from "../../../src/errors.js";
import { policyContext, type Plan } from "../../../src/plan/index.js";
import { renderAccess } from "../../../src/render/agent-view.js";
import type { FirewallConfig } from "../../../src/contracts/firewall.js";
import { renderBottle } from "../../../src/render/index.js";
import { accessSchema } from "../../../src/contracts/access.js";
import { decide, inbox } from "../../../src/bottles/decide.js";
import { quote, safeJson } from "../../../src/contracts/escape.js";
import { liveGrants, type Grant } from "../../../src/state/grants.js";
import { QUEUE_LIMITS } from "../../../src/contracts/limits.js";
import { TokenBucket } from "../../../src/sidecars/supervise/rate.js";
import { assessProposal, judgeHost, parseValueTemplate } from "../../../src/security/access-policy.js";
import { formatInbox } from "../../../src/bottles/present.js";
import { audit, ensureQueue, inboxFull, listProposals, proposalSchema, readAudit, validateTarget, writeDecision, writeProposal, type Proposal } from "../../../src/contracts/queue.js";
import { planInputOf, planOf } from "../../fixtures/shapes.js";
import { fakeBottle } from "../../helpers/supervise.js";

const baseOf = (shape: "egress" | "everything"): Plan => planOf(shape, shape === "egress" ? {} : { defaultFirewall: "builtin" });
/** Why a proposal cannot be granted as asked (undefined: it can). */
const grantProblem = (p: Proposal, plan: Plan) => assessProposal(p, policyContext(plan)).refuse;
/** The configs a bottle renders with these grants (expired ones dropped, as the core does), parsed, and the agent's view. */
function withGrants(shape: "egress" | "minimal", defaultFirewall: "builtin" | "pipelock", grants: Grant[], now: Date) {
  const plan = planOf(shape, { defaultFirewall, grants: liveGrants(grants, now) });
  const files = renderBottle(plan).files;
  const read = (sidecar: string) => files.find((f) => f.sidecar === sidecar)?.content;
  const fw = read("firewall")!;
  return {
    plan,
    firewall: (defaultFirewall === "builtin" ? JSON.parse(fw) : parseYaml(fw)) as FirewallConfig & { api_allowlist: string[] },
    egress: read("egress") ? JSON.parse(read("egress")!) : undefined,
    access: renderAccess(plan, now.toISOString()),
  };
}
const proposal = (p: Partial<Proposal>): Proposal => ({ id: "p-000000000001", kind: "domain", target: "x.test", reason: "r", createdAt: "2026-01-01T00:00:00Z", ...p });
const grant = (g: Partial<Grant>): Grant => ({ id: "p-000000000001", kind: "domain", target: "x.test", grantedAt: "2026-01-01T00:00:00Z", ...g });

describe("supervise grants", () => {
  it("adds granted domains and routes on top of the profile's", () => {
    const eff = withGrants(
      "egress",
      "builtin",
      [
        grant({ target: "extra.test" }),
        grant({ id: "p-000000000002", kind: "egress_route", target: "api.new.test", route: { path_prefix: "/v2/", port: 443, header: "Authorization", value: "Bearer ${GITHUB_TOKEN}" } }),
      ],
      new Date(0),
    );
    const fw = eff.firewall;
    expect(fw.allow).toEqual(["api.anthropic.com", "*.npmjs.org", "api.github.com", "extra.test", "api.new.test"]);
    expect(fw.intercept.passthrough).toEqual([
      { host: "api.github.com", port: 443 },
      { host: "api.new.test", port: 443 },
    ]);
    expect(fw.dlp.canary_exempt).toContainEqual({ host: "api.new.test", header: "Authorization", env: "GITHUB_TOKEN" });
    expect(fw.dlp.canary_env).toEqual(["GITHUB_TOKEN"]);
    expect(eff.egress!.routes.at(-1)).toEqual({ name: "grant-p-000000000002", host: "api.new.test", port: 443, path_prefix: "/v2/", header: "Authorization", value: "Bearer ${GITHUB_TOKEN}" });
    expect(eff.access.routes.map((r) => r.name)).toEqual(["api.github.com/repos/acme/", "grant-p-000000000002"]);
    expect(JSON.stringify(eff.access)).not.toContain("${GITHUB_TOKEN}");
  });

  it("withdrawing a grant gives back exactly what the bottle started with", () => {
    const started = renderBottle(planOf("egress")).files;
    const withdrawn = renderBottle(planOf("egress", { grants: liveGrants([grant({ target: "gone.test", expiresAt: "2026-01-01T00:00:01Z" })], new Date("2026-01-01T00:00:02Z")) })).files;
    expect(withdrawn).toEqual(started);
  });

  it("extends pipelock's allowlist and passthrough too", () => {
    expect(withGrants("minimal", "pipelock", [grant({ target: "extra.test" })], new Date(0)).firewall.api_allowlist).toEqual(["api.anthropic.com", "extra.test"]);
  });

  it("a git_ref grant adds the ref to every upstream's push_refs", () => {
    const gate = renderBottle(planOf("git", { grants: [grant({ kind: "git_ref", target: "refs/heads/feature/*" })] })).files.find((f) => f.sidecar === "git-gate")!;
    expect(JSON.parse(gate.content).upstreams[0].policy.push_refs).toEqual(["refs/heads/agent/*", "refs/heads/feature/*"]);
  });

  it("pipelock: the agent's view lists no placeholder domain, and private ranges are the profile's only", () => {
    const view = renderAccess(
      planOf("minimal", { defaultFirewall: "pipelock", profile: { ...planInputOf("minimal").profile, network: { ...planInputOf("minimal").profile.network, allow: [] } } }),
      "2026-01-01T00:00:00Z",
    );
    expect(view.domains).toEqual([]);
    expect(view.cidrs).toEqual([]);
  });

  it("refuses routes whose credential egress does not hold, and routes without egress", () => {
    const route = { path_prefix: "/repos/acme/", port: 443, header: "Authorization", value: "Bearer ${OTHER}" };
    expect(grantProblem(proposal({ kind: "egress_route", target: "a.test", route }), baseOf("egress"))).toContain("$OTHER, which the profile does not forward to egress (it forwards: GITHUB_TOKEN)");
    expect(grantProblem(proposal({ kind: "egress_route", target: "api.github.com", route: { ...route, value: "Bearer ${GITHUB_TOKEN}" } }), baseOf("egress"))).toBeUndefined();
    expect(grantProblem(proposal({ kind: "egress_route", target: "api.github.com", route: { ...route, value: "literal" } }), baseOf("egress"))).toContain("must reference a credential env var");
    const noEgress = planOf("minimal");
    expect(grantProblem(proposal({ kind: "egress_route", target: "a.test", route }), noEgress)).toContain("no egress sidecar");
  });

  it("checks targets per kind", () => {
    expect(validateTarget("domain", "*.ok.test")).toBeUndefined();
    expect(validateTarget("domain", "http://x")).toContain("hostname");
    expect(validateTarget("git_ref", "refs/heads/agent/*")).toBeUndefined();
    expect(validateTarget("git_ref", "main")).toContain("ref pattern");
    expect(validateTarget("egress_route", "*.x.test")).toContain("hostname");
  });
});

describe("supervise queue", () => {
  it("skips torn proposals, temp files and torn audit lines, and keeps appending after them", async () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-queue-"));
    await ensureQueue(dir);
    const p = await writeProposal(dir, { kind: "domain", target: "a.test", reason: "why" });
    writeFileSync(nodePath.join(dir, "proposals", "p-00000000beef.json"), '{"id":"p-00000000beef","ki');
    writeFileSync(nodePath.join(dir, "proposals", `.tmp-p-00000000cafe.json-1234`), "{");
    appendFileSync(nodePath.join(dir, "audit.jsonl"), '{"event":"torn');
    await audit(dir, "after", { id: p.id });
    expect((await listProposals(dir)).map((x) => x.id)).toEqual([p.id]);
    expect((await readAudit(dir)).map((e) => e.event)).toEqual(["proposed", "after"]);
  });
});

// ---- issue 10: supervise items 1-6 ----

const routeTo = (target: string, value = "Bearer ${GITHUB_TOKEN}", path_prefix = "/repos/acme/", port = 443) =>
  proposal({ kind: "egress_route", target, route: { path_prefix, port, header: "Authorization", value } });

describe("a credential is bound to its hosts (item 1)", () => {
  const base = baseOf("egress"); // GITHUB_TOKEN goes to api.github.com/repos/acme/

  it("refuses a route that sends the profile's credential to another host", () => {
    expect(grantProblem(routeTo("attacker.test", "Bearer ${GITHUB_TOKEN}", "/"), base)).toBe(
      "the route would send $GITHUB_TOKEN to attacker.test/, but the profile sends $GITHUB_TOKEN only to api.github.com/repos/acme/; a grant may not send a credential anywhere else (to allow more hosts, list them in the manifest under egress.credentials.GITHUB_TOKEN.hosts)",
    );
    expect(grantProblem(routeTo("API.GitHub.com.attacker.test"), base)).toContain("a grant may not send a credential anywhere else");
  });

  it("allows the same host with the same or a narrower path prefix only", () => {
    expect(grantProblem(routeTo("api.github.com", "token ${GITHUB_TOKEN}", "/repos/acme/"), base)).toBeUndefined();
    expect(grantProblem(routeTo("API.GITHUB.COM", "Bearer ${GITHUB_TOKEN}", "/repos/acme/app/"), base)).toBeUndefined();
    expect(grantProblem(routeTo("api.github.com", "Bearer ${GITHUB_TOKEN}", "/repos/"), base)).toContain("sends $GITHUB_TOKEN only to api.github.com/repos/acme/");
    expect(grantProblem(routeTo("api.github.com", "Bearer ${GITHUB_TOKEN}", "/"), base)).toContain("a grant may not send a credential anywhere else");
    // Same host, another port: possibly another service.
    expect(grantProblem(routeTo("api.github.com", "Bearer ${GITHUB_TOKEN}", "/repos/acme/", 8443), base)).toContain("would send $GITHUB_TOKEN to api.github.com:8443/repos/acme/");
    // Dot segments never match a normalised request path: refused rather than guessed at.
    expect(grantProblem(routeTo("api.github.com", "Bearer ${GITHUB_TOKEN}", "/repos/acme/../../admin/"), base)).toContain("is not a normalised path");
    expect(grantProblem(routeTo("api.github.com", "Bearer ${GITHUB_TOKEN}", "/repos/acme/%2e%2e/"), base)).toContain("is not a normalised path");
  });

  it("narrows on egress's segment rule: /repos/acme covers /repos/acme/x, never /repos/acme-evil", () => {
    const noSlash: Plan = { ...base, egress: { ...base.egress!, routes: base.egress!.routes.map((r) => ({ ...r, pathPrefix: "/repos/acme" })) } };
    expect(grantProblem(routeTo("api.github.com", "Bearer ${GITHUB_TOKEN}", "/repos/acme/x/"), noSlash)).toBeUndefined();
    expect(grantProblem(routeTo("api.github.com", "Bearer ${GITHUB_TOKEN}", "/repos/acme"), noSlash)).toBeUndefined();
    expect(grantProblem(routeTo("api.github.com", "Bearer ${GITHUB_TOKEN}", "/repos/acme-evil/"), noSlash)).toContain("a grant may not send a credential anywhere else");
  });

  it("allows hosts the manifest lists for that credential, and only for it", () => {
    const listed: Plan = { ...base, egress: { ...base.egress!, credentialHosts: { GITHUB_TOKEN: ["uploads.github.com", "*.githubusercontent.com"] } } };
    expect(grantProblem(routeTo("uploads.github.com", "Bearer ${GITHUB_TOKEN}", "/"), listed)).toBeUndefined();
    expect(grantProblem(routeTo("raw.githubusercontent.com", "Bearer ${GITHUB_TOKEN}", "/any/"), listed)).toBeUndefined();
    expect(grantProblem(routeTo("githubusercontent.com", "Bearer ${GITHUB_TOKEN}", "/"), listed)).toContain("only to api.github.com/repos/acme/, uploads.github.com, *.githubusercontent.com");
    expect(grantProblem(routeTo("attacker.test", "Bearer ${GITHUB_TOKEN}", "/"), listed)).toContain("a grant may not send a credential anywhere else");
  });

  it("checks every credential a value names", () => {
    const everything = baseOf("everything"); // GITHUB_TOKEN -> api.github.com/repos/acme/, OPENAI_KEY -> api.openai.com/
    expect(grantProblem(routeTo("api.openai.com", "${OPENAI_KEY}", "/v1/"), everything)).toBeUndefined();
    expect(grantProblem(routeTo("api.openai.com", "${OPENAI_KEY} ${GITHUB_TOKEN}", "/v1/"), everything)).toContain("would send $GITHUB_TOKEN to api.openai.com/v1/");
  });

  it("reads the value template with egress's one rule and refuses anything else that looks like an expansion", () => {
    expect(parseValueTemplate("Bearer ${GITHUB_TOKEN}")).toEqual({ ok: true, names: ["GITHUB_TOKEN"] });
    expect(parseValueTemplate("${A}:${B}:${A}")).toEqual({ ok: true, names: ["A", "B"] });
    for (const odd of [
      "Bearer $GITHUB_TOKEN",
      "Bearer ${ GITHUB_TOKEN }",
      "Bearer ${${GITHUB_TOKEN}}",
      "Bearer $${GITHUB_TOKEN}",
      "Bearer $(cat /run/secrets/x)",
      "${GITHUB_TOKEN:-x}",
      "${GITHUB-TOKEN}",
      "Bearer ${GITHUB_TOKEN",
    ]) {
      const r = parseValueTemplate(odd);
      expect(r.ok, odd).toBe(false);
    }
    expect(parseValueTemplate("Bearer $GITHUB_TOKEN")).toMatchObject({ reason: expect.stringContaining("not a ${NAME} reference") });
    expect(parseValueTemplate("Bearer ${GITHUB_TOKEN}\r\nX-Evil: 1")).toMatchObject({ reason: expect.stringContaining("printable ASCII") });
    expect(grantProblem(routeTo("api.github.com", "Bearer $GITHUB_TOKEN ${GITHUB_TOKEN}"), base)).toContain("not a ${NAME} reference");
  });

  it("shows the agent where each credential may go, by name only", () => {
    const access = renderAccess({ ...base, egress: { ...base.egress!, credentialHosts: { GITHUB_TOKEN: ["uploads.github.com"] } } }, new Date(0).toISOString());
    expect(access.credentials).toEqual([{ env: "GITHUB_TOKEN", routes: [{ host: "api.github.com", port: 443, path_prefix: "/repos/acme/" }], hosts: ["uploads.github.com"] }]);
    expect(accessSchema.parse(JSON.parse(JSON.stringify(access)))).toEqual(access);
  });
});

describe("what an approval means (item 3)", () => {
  const ctx = { allowCidrs: ["10.224.5.0/24"] };
  const judge = (t: string) => judgeHost(t, ctx);

  it("refuses what can never work", () => {
    const cases: Array<[string, string]> = [
      ["*", 'a bare "*" would allow every host'],
      ["*.", 'a bare "*" would allow every host'],
      ["localhost", "always this machine"],
      ["api.localhost", "always this machine"],
      ["*.localhost", "always this machine"],
      ["127.0.0.1", "loopback address"],
      ["0.0.0.0", "unspecified address"],
      ["169.254.169.254", "cloud metadata address"],
      ["metadata.google.internal", "cloud metadata service"],
      ["10.1.2.3", "private address outside the profile's network.allow_cidrs"],
      ["192.168.1.1", "private address outside"],
      ["169.254.10.1", "link-local address outside"],
      ["127.1", "spelled another way"],
      ["0x7f.0.0.1", "spelled another way"],
      ["*.1.2.3.4", "wildcard over an IP address"],
      ["com", "single-label name"],
      ["internal", "single-label name"],
      ["co.uk", "public suffix"],
    ];
    for (const [t, why] of cases) expect(judge(t).refuse, t).toContain(why);
  });

  it("flags broad ones: public-suffix wildcards and IP addresses", () => {
    for (const t of ["*.com", "*.co.uk", "*.github.io", "*.test", "*.s3.amazonaws.com"]) expect(judge(t), t).toEqual({ flags: [expect.stringContaining("public suffix")] });
    expect(judge("93.184.216.34").flags).toEqual([expect.stringContaining("IP address")]);
    expect(judge("10.224.5.9")).toEqual({ flags: [expect.stringContaining("IP address")] }); // inside allow_cidrs
  });

  it("lets ordinary names and suffixes through unflagged", () => {
    for (const t of ["api.example.com", "*.example.com", "*.npmjs.org", "example.co.uk", "user.github.io", "extra.example.test"]) expect(judge(t), t).toEqual({ flags: [] });
  });

  it("judges egress_route targets the same way, and other kinds not at all", () => {
    const c = { bindings: [], allowCidrs: [] };
    expect(assessProposal({ kind: "egress_route", target: "localhost", route: { path_prefix: "/", port: 443, header: "A", value: "${X}" } }, c).refuse).toContain("always this machine");
    expect(assessProposal({ kind: "domain", target: "*.com" }, c).flags).toHaveLength(1);
    expect(assessProposal({ kind: "other", target: "please \u001b[2J review" }, c)).toEqual({ flags: [] });
  });
});

describe("agent text is data (item 2)", () => {
  const evil = 'ok\u001b[1A\u001b[2K\r\n[approved] domain pypi.org\u009b2J \u202egnp.\u2028x\\"\ud800';

  it("quotes and escapes control characters, terminal escapes and bidi overrides visibly", () => {
    const q = quote(evil);
    expect(q).toBe('"ok\\x1b[1A\\x1b[2K\\r\\n[approved] domain pypi.org\\x9b2J \\u{202e}gnp.\\u{2028}x\\\\\\"\\u{d800}"');
    expect(q).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u202e]/);
  });

  it("safeJson round-trips and prints no raw control, C1 or bidi characters", () => {
    const v = { reason: evil, nested: ["\u0085", "\u200b"] };
    const j = safeJson(v);
    expect(JSON.parse(j)).toEqual(v);
    expect(j).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u200b\u2028\u202e]/);
  });

  it("the inbox shows the request first, every agent field quoted, and no line the agent started", () => {
    const p = proposal({ kind: "egress_route", target: "api.github.com", reason: evil, route: { path_prefix: "/repos/acme/", port: 443, header: "Authorization", value: "Bearer ${GITHUB_TOKEN}" } });
    const page = { entries: [{ slug: "s-1", proposal: p, status: "pending" as const, flags: ["x"] }], total: 1, offset: 0 };
    const text = formatInbox(page, false);
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202e]/);
    const lines = text.split("\n");
    for (const l of lines)
      expect(l, l).toMatch(
        /^(Supervise inbox: |$|p-[0-9a-f]{12} {2}bottle | {2}(request|broad \(approve only with --force \/ force: true\)|cannot be approved|decision|reason \(from the agent; data, not instructions\)): )/,
      );
    const request = lines.findIndex((l) => l.startsWith("  request: "));
    const reason = lines.findIndex((l) => l.startsWith("  reason "));
    expect(request).toBeGreaterThan(0);
    expect(reason).toBeGreaterThan(request);
    expect(lines[request]).toBe(
      '  request: kind=egress_route target="api.github.com" port=443 path_prefix="/repos/acme/" header="Authorization" credential=$GITHUB_TOKEN value="Bearer ${GITHUB_TOKEN}" ttl=(chosen when approving; none = until the bottle stops)',
    );
    expect(lines[reason]).toContain('"ok\\x1b[1A\\x1b[2K\\r\\n[approved] domain pypi.org');
  });

  it("the audit log escapes agent text too", async () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-queue-"));
    await ensureQueue(dir);
    await writeProposal(dir, { kind: "other", target: "t\u001b[2J", reason: evil.slice(0, -1) });
    const raw = readFileSync(nodePath.join(dir, "audit.jsonl"), "utf8");
    expect(raw).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u202e]/);
    expect((await readAudit(dir))[0]).toMatchObject({ event: "proposed", target: "t\u001b[2J", reason: evil.slice(0, -1) });
  });
});

describe("bounded (item 4)", () => {
  it("caps reasons at 2,000 characters in the queue schema", () => {
    const ok = { id: "p-000000000001", kind: "other", target: "t", reason: "r".repeat(2000), createdAt: "x" };
    expect(proposalSchema.safeParse(ok).success).toBe(true);
    expect(proposalSchema.safeParse({ ...ok, reason: "r".repeat(2001) }).success).toBe(false);
  });

  it("refuses new proposals once 100 are pending, and takes them again after decisions", async () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-queue-"));
    await ensureQueue(dir);
    const ids: string[] = [];
    for (let i = 0; i < QUEUE_LIMITS.maxPending; i++) ids.push((await writeProposal(dir, { kind: "other", target: `t${i}`, reason: "r" })).id);
    expect(await inboxFull(dir)).toContain("already holds 100 pending requests (the limit is 100)");
    await writeDecision(dir, { id: ids[0]!, verdict: "denied", note: "", decidedAt: "x" });
    expect(await inboxFull(dir)).toBeUndefined();
  });

  it("rate-limits with a token bucket", () => {
    let t = 0;
    const b = new TokenBucket(3, 30, () => t);
    expect([b.take(), b.take(), b.take()].every((r) => r.ok)).toBe(true);
    expect(b.take()).toEqual({ ok: false, retryAfterSeconds: 2 });
    t += 2000;
    expect(b.take()).toEqual({ ok: true });
    expect(b.take().ok).toBe(false);
  });

  it("pages the inbox by cursor with a total, stable while entries are decided between pages", async () => {
    const root = mkdtempSync(nodePath.join(tmpdir(), "bb-inbox-"));
    const env = { BOTTLE_STATE_DIR: root };
    const qa = await fakeBottle(root, "page-a");
    const qb = await fakeBottle(root, "page-b");
    const written: string[] = [];
    for (let i = 0; i < 120; i++) written.push((await writeProposal(i % 2 ? qa : qb, { kind: "other", target: `t${i}`, reason: "r" })).id);
    const first = await inbox({ env });
    expect(first.total).toBe(120);
    expect(first.entries).toHaveLength(50);
    expect(first.offset).toBe(0);
    // Decide everything on the first page: the next page must not skip anything.
    for (const e of first.entries) await decide({ env, slug: e.slug, id: e.proposal.id, verdict: "denied" });
    const second = await inbox({ env, cursor: first.nextCursor! });
    const third = await inbox({ env, cursor: second.nextCursor! });
    expect(second.total).toBe(70);
    expect(third.nextCursor).toBeUndefined();
    const seen = [...first.entries, ...second.entries, ...third.entries].map((e) => e.proposal.id);
    expect(new Set(seen).size).toBe(120);
    expect(seen.sort()).toEqual([...written].sort());
    const all = await inbox({ env, includeDecided: true, limit: 200 });
    expect(all.total).toBe(120);
    expect(all.entries.filter((e) => e.status === "denied")).toHaveLength(50);
    await expect(inbox({ env, cursor: "not-a-cursor" })).rejects.toThrow("cursor is not one this inbox returned");
    await expect(inbox({ env, limit: 201 })).rejects.toThrow("limit must be a whole number from 1 to 200");
  });

  it("keeps a page under its size budget whatever the reasons hold", async () => {
    const root = mkdtempSync(nodePath.join(tmpdir(), "bb-inbox-"));
    const q = await fakeBottle(root, "big");
    for (let i = 0; i < 200; i++) await writeProposal(q, { kind: "other", target: "t", reason: "\u0085\u001b".repeat(1000) });
    const page = await inbox({ env: { BOTTLE_STATE_DIR: root }, limit: 200 });
    expect(page.total).toBe(200);
    expect(page.entries.length).toBeLessThan(200);
    expect(page.nextCursor).toBeDefined();
    expect(safeJson(page).length + formatInbox(page, false).length).toBeLessThan(1.1 * 1024 * 1024);
  });
});

describe("decisions are atomic (item 5)", () => {
  it("of two concurrent decisions exactly one wins, and the other is told which", async () => {
    const root = mkdtempSync(nodePath.join(tmpdir(), "bb-race-"));
    const env = { BOTTLE_STATE_DIR: root };
    const q = await fakeBottle(root, "race");
    for (let round = 0; round < 10; round++) {
      const p = await writeProposal(q, { kind: "other", target: "t", reason: "r" });
      const results = await Promise.allSettled([decide({ env, slug: "race", id: p.id, verdict: "denied", note: "first" }), decide({ env, slug: "race", id: p.id, verdict: "denied", note: "second" })]);
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toMatchObject({
        code: "conflict",
        message: expect.stringMatching(new RegExp(`^proposal ${p.id} was already denied at .* \\(note "(first|second)"\\); this denial changed nothing$`)),
      });
      expect((await readAudit(q)).filter((e) => e.id === p.id && e.event === "decided")).toHaveLength(1);
    }
  });
});

describe("approve-time checks on a running bottle (items 1, 3)", () => {
  const running = async (shape: "egress") => {
    const root = mkdtempSync(nodePath.join(tmpdir(), "bb-approve-"));
    const q = await fakeBottle(root, "run", { state: "running", input: planInputOf(shape) });
    return { env: { BOTTLE_STATE_DIR: root }, q };
  };

  it("refuses a credential for another host with a reason, and records it", async () => {
    const { env, q } = await running("egress");
    const p = await writeProposal(q, { kind: "egress_route", target: "attacker.test", reason: "r", route: { path_prefix: "/", header: "Authorization", value: "Bearer ${GITHUB_TOKEN}" } });
    await expect(decide({ env, slug: "run", id: p.id, verdict: "approved" })).rejects.toThrow(`cannot approve ${p.id}: the route would send $GITHUB_TOKEN to attacker.test/`);
    expect((await readAudit(q)).map((e) => e.event)).toEqual(["proposed", "approval_refused"]);
    expect((await inbox({ env })).entries[0]).toMatchObject({ status: "pending", refusal: expect.stringContaining("would send $GITHUB_TOKEN to attacker.test/") });
  });

  it("refuses a broad proposal without force, and says how to approve it", async () => {
    const { env, q } = await running("egress");
    const p = await writeProposal(q, { kind: "domain", target: "*.com", reason: "r" });
    expect((await inbox({ env })).entries[0]!.flags).toEqual([expect.stringContaining('"*.com" matches every host under the public suffix "com"')]);
    const err = await decide({ env, slug: "run", id: p.id, verdict: "approved" }).catch((e: BottleError) => e);
    expect(err).toMatchObject({ code: "bad-input", message: expect.stringContaining(`${p.id} is broad`), hint: expect.stringContaining("--force / force: true") });
    expect((await readAudit(q)).at(-1)).toMatchObject({ event: "approval_needs_force", id: p.id });
  });

  it("refuses targets that can never work even with force", async () => {
    const { env, q } = await running("egress");
    const p = await writeProposal(q, { kind: "domain", target: "localhost", reason: "r" });
    await expect(decide({ env, slug: "run", id: p.id, verdict: "approved", force: true })).rejects.toThrow("always this machine");
  });
});

describe("expired grants are never rendered (item 6)", () => {
  it("drops a grant past its expiry from every config and the agent's view", () => {
    const eff = withGrants(
      "egress",
      "builtin",
      [grant({ target: "gone.test", expiresAt: "2026-01-01T00:00:01Z" }), grant({ id: "p-000000000002", target: "kept.test", expiresAt: "2026-01-01T00:00:03Z" })],
      new Date("2026-01-01T00:00:02Z"),
    );
    expect(eff.firewall.allow).not.toContain("gone.test");
    expect(eff.firewall.allow).toContain("kept.test");
    expect(eff.access.grants.map((g) => g.target)).toEqual(["kept.test"]);
  });
});
