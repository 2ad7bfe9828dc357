// `bottle <verb>`: the human face of the same core functions the MCP tools use.
import { parseArgs } from "node:util";
import nodePath from "node:path";
import { reviewManifest, runDoctor } from "../bottles/doctor.js";
import { runDemo } from "../demo/run.js";
import { decide, expireGrants, inbox } from "../bottles/decide.js";
import { safeJson } from "../contracts/escape.js";
import { decisionJson, formatDecision, formatInbox, inboxJson } from "../bottles/present.js";
import { packageRoot, stateRoot } from "../state/root.js";
import { requireBottle } from "../state/lookup.js";
import { cleanup } from "../bottles/cleanup.js";
import { execInBottle } from "../bottles/exec.js";
import { listBottles } from "../bottles/list.js";
import { followLogs, readLogs } from "../bottles/logs.js";
import { formatGitDecisions, readGitDecisions } from "../bottles/git-log.js";
import { startBottle } from "../bottles/start.js";
import { stopBottle } from "../bottles/stop.js";
import { renderProfile, type RenderOutcome } from "../bottles/render.js";
import { warningText } from "../plan/credential-warnings.js";
import { BottleError, toBottleError } from "../errors.js";
import { runStdioServer } from "../mcp/server.js";
import { PACKAGE_VERSION } from "../package.js";

/** Exit codes: scripts can tell "no such thing" from "it failed". */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3 } as const;

const USAGE = `bottle ${PACKAGE_VERSION} — sandboxed AI sub-agents in Docker

Usage:
  bottle [mcp]                      run the MCP server on stdio (default)
  bottle render <profile> [--manifest FILE] [--slug SLUG] [--json]
                                    show the compose file and sidecar configs a bottle would run
  bottle start <profile> [--manifest FILE] [--slug SLUG] [--json]
                                    start a bottle (progress on stderr)
  bottle stop <slug> [--purge] [--json]
  bottle list [--json]
  bottle logs <slug> [--service S] [--tail N] [--since T] [--grep TEXT] [-f] [--json]
  bottle git-log <slug> [--upstream NAME] [--tail N] [--json]
                                    the git gate's push decisions: verdict, rule, reason
  bottle exec <slug> [--timeout SECONDS] [--stdin] [--json] -- <command> [args...]
                                    exits with the command's exit code (--stdin feeds ours to it)
  bottle cleanup [--purge] [--json] remove orphaned containers, networks and locks
  bottle demo [--json]              start the demo bottle, show an allowed, a refused and an
                                    injected request from inside it, print logs, stop it
  bottle doctor [--manifest FILE] [--json]
                                    check Node, Docker, Compose v2, the state dir and the manifest
                                    (if one is named or ./bottle.yaml exists)
  bottle --version | --help

Environment: BOTTLE_MANIFEST (default ./bottle.yaml), BOTTLE_STATE_DIR,
BOTTLE_SUBNET_POOL (default 10.213.0.0/16), BOTTLE_LOG_LEVEL.
Exit codes: 0 ok, 1 failed, 2 bad input or manifest, 3 no such profile or bottle.
  bottle proposals [<slug>] [--all] [--limit N] [--cursor C] [--json]
                                    agents' access requests, oldest first, 50 a page (pending;
                                    --all adds decided ones; --cursor pages on)
  bottle decide <slug> <id> approve|deny [--note TEXT] [--ttl SECONDS] [--force] [--json]
                                    decide one; approval applies it without restarting anything;
                                    --force approves a broad request (*.com, an IP address)`;

const SWEEP_VERBS = new Set(["start", "stop", "list", "ls", "logs", "exec", "cleanup", "proposals", "decide", "git-log"]);

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  // Supervise grants with a TTL expire even when no MCP server runs: every
  // verb that touches bottles withdraws due grants first.
  if (verb !== undefined && SWEEP_VERBS.has(verb)) await expireGrants();
  switch (verb) {
    case undefined:
    case "mcp":
      await runStdioServer();
      return -1; // keep running
    case "render":
      return renderVerb(rest);
    case "demo":
      return demoVerb(rest);
    case "doctor":
      return doctorVerb(rest);
    case "start":
      return startVerb(rest);
    case "stop":
      return stopVerb(rest);
    case "list":
    case "ls":
      return listVerb(rest);
    case "logs":
      return logsVerb(rest);
    case "exec":
      return execVerb(rest);
    case "git-log":
      return gitLogVerb(rest);
    case "cleanup":
      return cleanupVerb(rest);
    case "proposals":
      return proposalsVerb(rest);
    case "decide":
      return decideVerb(rest);
    case "--version":
    case "-v":
      process.stdout.write(`${PACKAGE_VERSION}\n`);
      return EXIT.ok;
    case "--help":
    case "-h":
    case "help":
      process.stdout.write(`${USAGE}\n`);
      return EXIT.ok;
    default:
      process.stderr.write(`bottle: unknown command "${verb}"\n\n${USAGE}\n`);
      return EXIT.usage;
  }
}

function renderVerb(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { manifest: { type: "string", short: "m" }, slug: { type: "string" }, json: { type: "boolean", default: false } },
  });
  if (positionals.length !== 1) throw new BottleError("bad-input", "usage: bottle render <profile> [--manifest FILE] [--slug SLUG] [--json]");
  const r = renderProfile({ profile: positionals[0]!, ...(values.manifest ? { manifest: values.manifest } : {}), ...(values.slug !== undefined ? { slug: values.slug } : {}) });
  process.stdout.write(values.json ? `${JSON.stringify({ summary: r.summary, compose: r.composeYaml, files: r.files, warnings: r.warnings }, null, 2)}\n` : humanRender(r));
  return EXIT.ok;
}

function humanRender(r: RenderOutcome): string {
  const s = r.summary;
  const lines = [
    `bottle ${s.slug}  (profile ${s.profile}, project ${s.project}, firewall ${s.firewall})`,
    `  manifest   ${s.manifest}`,
    `  state dir  ${s.stateDir}`,
    `  services   ${s.services.map((x) => x.service).join(", ")}`,
    `  networks   ${s.networks.map((n) => `${n.name} ${n.subnet}${n.internal ? " (internal)" : ""}`).join(", ")}${s.subnetsArePreview ? "  [preview: allocated at start]" : ""}`,
    `  proxy      ${s.agentProxy}`,
    `  allow      ${s.allow.join(", ") || "(nothing)"}`,
    ...s.routes.map((x) => `  route      ${x.host}${x.pathPrefix} sets ${x.header} from ${x.env.map((e) => `$${e}`).join(", ")}`),
    ...s.cloneUrls.map((c) => `  git        ${c.name}: ${c.url}`),
    ...r.warnings.map((w) => `  warning    ${indent(warningText(w), 13)}`),
    "",
    "--- docker-compose.yml",
    r.composeYaml.trimEnd(),
    ...r.files.flatMap((f) => ["", `--- ${f.path} (${f.sidecar})`, f.content.trimEnd()]),
    "",
  ];
  return lines.join("\n");
}

/** Continuation lines of a multi-line value, aligned under its first line. */
const indent = (text: string, by: number) => text.split("\n").join(`\n${" ".repeat(by)}`);

async function demoVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: "boolean", default: false } } });
  const r = await runDemo({ say: (line) => process.stderr.write(`demo: ${line}\n`), onProgress: (step, message) => process.stderr.write(`[${step}] ${message}\n`) });
  print(values.json, r, ["", "--- inside the agent", r.agentOutput, "", "--- firewall and egress decisions (last lines)", ...r.logs, "", `bottle ${r.slug} stopped in ${r.stopMs} ms`].join("\n"));
  return EXIT.ok;
}

async function doctorVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { manifest: { type: "string", short: "m" }, json: { type: "boolean", default: false } } });
  const checks = await runDoctor();
  const manifest = reviewManifest(values.manifest ? { manifest: values.manifest } : {});
  const ok = checks.every((c) => c.ok) && (manifest?.ok ?? true);
  if (values.json) process.stdout.write(`${JSON.stringify({ ok, checks, ...(manifest ? { manifest } : {}) }, null, 2)}\n`);
  else {
    for (const c of manifest ? [...checks, { name: "manifest", ok: manifest.ok, detail: manifest.detail, ...(manifest.fix ? { fix: manifest.fix } : {}) }] : checks) {
      process.stdout.write(`${c.ok ? "ok     " : "problem"}  ${c.name.padEnd(8)} ${c.detail}\n`);
      if (!c.ok && c.fix) process.stdout.write(`         ${"".padEnd(8)} fix: ${c.fix}\n`);
    }
    for (const w of manifest?.warnings ?? []) process.stdout.write(`warning  ${"manifest".padEnd(8)} ${indent(`profile "${w.profile}": ${warningText(w)}`, 18)}\n`);
  }
  return ok ? EXIT.ok : EXIT.failed;
}

const print = (json: boolean, data: unknown, human: string) => process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : human.endsWith("\n") ? human : `${human}\n`);

function one(positionals: string[], usage: string): string {
  if (positionals.length !== 1) throw new BottleError("bad-input", `usage: ${usage}`);
  return positionals[0]!;
}

async function startVerb(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { manifest: { type: "string", short: "m" }, slug: { type: "string" }, json: { type: "boolean", default: false } } });
  const profile = one(positionals, "bottle start <profile> [--manifest FILE] [--slug SLUG] [--json]");
  const ac = new AbortController();
  process.once("SIGINT", () => ac.abort());
  const r = await startBottle({
    profile,
    ...(values.manifest ? { manifest: values.manifest } : {}),
    ...(values.slug !== undefined ? { slug: values.slug } : {}),
    signal: ac.signal,
    onProgress: (step, message) => process.stderr.write(`[${step}] ${message}\n`),
  });
  const s = r.summary;
  print(values.json, { summary: s, metadata: r.metadata }, [`bottle ${s.slug} is running (${s.services.map((x) => x.service).join(", ")})`, `  exec:  bottle exec ${s.slug} -- <command>`, `  logs:  bottle logs ${s.slug}`, `  stop:  bottle stop ${s.slug}`, ...s.cloneUrls.map((c) => `  git:   ${c.url}`)].join("\n"));
  return EXIT.ok;
}

async function stopVerb(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { purge: { type: "boolean", default: false }, json: { type: "boolean", default: false } } });
  const r = await stopBottle(one(positionals, "bottle stop <slug> [--purge] [--json]"), { purge: values.purge });
  print(values.json, r, `bottle ${r.slug} ${r.state} (was ${r.wasState}) in ${r.ms} ms`);
  return EXIT.ok;
}

async function listVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: "boolean", default: false } } });
  const bottles = await listBottles();
  const rows = bottles.map((b) => `${b.slug.padEnd(28)} ${b.state.padEnd(9)} ${b.profile.padEnd(16)} ${b.detail ?? b.containers.map((c) => c.service).join(",")}`);
  print(values.json, { bottles }, bottles.length ? [`${"SLUG".padEnd(28)} ${"STATE".padEnd(9)} ${"PROFILE".padEnd(16)} DETAIL`, ...rows].join("\n") : "no bottles");
  return EXIT.ok;
}

async function logsVerb(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { service: { type: "string" }, tail: { type: "string" }, since: { type: "string" }, grep: { type: "string" }, follow: { type: "boolean", short: "f", default: false }, json: { type: "boolean", default: false } },
  });
  const slug = one(positionals, "bottle logs <slug> [--service S] [--tail N] [--since T] [--grep TEXT] [-f] [--json]");
  const tail = values.tail === undefined ? undefined : Number(values.tail);
  if (tail !== undefined && (!Number.isInteger(tail) || tail < 1)) throw new BottleError("bad-input", `--tail must be a positive whole number, got "${values.tail}"`);
  const q = { ...(values.service ? { service: values.service } : {}), ...(tail ? { tail } : {}), ...(values.since ? { since: values.since } : {}), ...(values.grep ? { grep: values.grep } : {}) };
  const root = stateRoot();
  const meta = requireBottle(root, slug);
  if (values.follow && meta.state === "running") {
    const ac = new AbortController();
    process.once("SIGINT", () => ac.abort());
    await followLogs(meta, q, (line) => process.stdout.write(`${line}\n`), ac.signal);
    return EXIT.ok;
  }
  const r = await readLogs(meta, nodePath.join(root, meta.slug), q);
  print(values.json, r, r.lines.join("\n"));
  return EXIT.ok;
}

// Same records as bottle_git_log: --json prints its structuredContent; the
// text view escapes agent-supplied names and reasons.
async function gitLogVerb(args: string[]): Promise<number> {
  const usage = "bottle git-log <slug> [--upstream NAME] [--tail N] [--json]";
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { upstream: { type: "string" }, tail: { type: "string" }, json: { type: "boolean", default: false } } });
  const slug = one(positionals, usage);
  const tail = values.tail === undefined ? 100 : Number(values.tail);
  if (!Number.isInteger(tail) || tail < 1 || tail > 1000) throw new BottleError("bad-input", `--tail must be a whole number from 1 to 1000, got "${values.tail}"`);
  const root = stateRoot();
  const meta = requireBottle(root, slug);
  const r = await readGitDecisions(meta, nodePath.join(root, meta.slug), { ...(values.upstream ? { upstream: values.upstream } : {}), tail });
  process.stdout.write(`${values.json ? safeJson(r, 2) : formatGitDecisions(r.decisions)}\n`);
  return EXIT.ok;
}

async function execVerb(args: string[]): Promise<number> {
  const dash = args.indexOf("--");
  if (dash < 0) throw new BottleError("bad-input", "usage: bottle exec <slug> [--timeout SECONDS] [--stdin] [--json] -- <command> [args...]");
  const { values, positionals } = parseArgs({ args: args.slice(0, dash), allowPositionals: true, options: { timeout: { type: "string" }, stdin: { type: "boolean", default: false }, json: { type: "boolean", default: false } } });
  const slug = one(positionals, "bottle exec <slug> [--timeout SECONDS] [--stdin] [--json] -- <command> [args...]");
  const seconds = values.timeout === undefined ? 600 : Number(values.timeout);
  if (!(seconds > 0)) throw new BottleError("bad-input", `--timeout must be a positive number of seconds, got "${values.timeout}"`);
  const ac = new AbortController();
  process.once("SIGINT", () => ac.abort());
  const stdin = values.stdin ? await readStdin() : undefined;
  const r = await execInBottle(slug, args.slice(dash + 1), { timeoutMs: Math.round(seconds * 1000), signal: ac.signal, ...(stdin ? { stdin } : {}) });
  if (values.json) print(true, r, "");
  else {
    if (r.stdout) process.stdout.write(r.stdout.endsWith("\n") ? r.stdout : `${r.stdout}\n`);
    if (r.stderr) process.stderr.write(r.stderr.endsWith("\n") ? r.stderr : `${r.stderr}\n`);
    if (r.timedOut) process.stderr.write(`bottle: timed out after ${seconds}s\n`);
  }
  return r.exitCode;
}

async function readStdin(): Promise<string> {
  let s = "";
  for await (const chunk of process.stdin) s += chunk;
  return s;
}

async function cleanupVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { purge: { type: "boolean", default: false }, json: { type: "boolean", default: false } } });
  const r = await cleanup({ purge: values.purge });
  const lines = [...r.removed.map((x) => `removed ${x.slug}: ${x.containers.length} containers, ${x.networks.length} networks (${x.reason})`), ...r.staleLocks.map((l) => `removed stale lock ${l}`), ...r.staleRules.map((b) => `removed host firewall rule for gone bridge ${b}`)];
  print(values.json, r, lines.length ? lines.join("\n") : "nothing to clean up");
  return EXIT.ok;
}

// Agent-supplied text is escaped in both views (safeJson also escapes C1 and bidi controls).
async function proposalsVerb(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { all: { type: "boolean", default: false }, limit: { type: "string" }, cursor: { type: "string" }, json: { type: "boolean", default: false } } });
  if (positionals.length > 1) throw new BottleError("bad-input", "usage: bottle proposals [<slug>] [--all] [--limit N] [--cursor C] [--json]");
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  const page = await inbox({ ...(positionals[0] ? { slug: positionals[0] } : {}), includeDecided: values.all, ...(limit !== undefined ? { limit } : {}), ...(values.cursor !== undefined ? { cursor: values.cursor } : {}) });
  process.stdout.write(`${values.json ? safeJson(inboxJson(page), 2) : formatInbox(page, values.all)}\n`);
  return EXIT.ok;
}

async function decideVerb(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { note: { type: "string" }, ttl: { type: "string" }, force: { type: "boolean", default: false }, json: { type: "boolean", default: false } } });
  const [slug, id, verdict] = positionals;
  if (positionals.length !== 3 || (verdict !== "approve" && verdict !== "deny")) throw new BottleError("bad-input", "usage: bottle decide <slug> <id> approve|deny [--note TEXT] [--ttl SECONDS] [--force] [--json]");
  const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl > 0)) throw new BottleError("bad-input", `--ttl must be a positive whole number of seconds, got "${values.ttl}"`);
  const r = await decide({ slug: slug!, id: id!, verdict: verdict === "approve" ? "approved" : "denied", force: values.force, ...(values.note !== undefined ? { note: values.note } : {}), ...(ttl !== undefined ? { ttlSeconds: ttl } : {}) });
  process.stdout.write(`${values.json ? safeJson(decisionJson(r), 2) : formatDecision(r)}\n`);
  return EXIT.ok;
}

function exitCodeFor(err: BottleError): number {
  switch (err.code) {
    case "unknown-profile":
    case "unknown-slug":
      return EXIT.notFound;
    case "bad-input":
    case "manifest":
      return EXIT.usage;
    default:
      return EXIT.failed;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    const e = err instanceof TypeError && (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? new BottleError("bad-input", err.message) : toBottleError(err);
    process.stderr.write(`bottle: ${e.display}\n`);
    process.exitCode = exitCodeFor(e);
  },
);
