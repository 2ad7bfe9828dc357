// `bottle <verb>`: the human face of the same core functions the MCP tools use.
import { parseArgs } from "node:util";
import nodePath from "node:path";
import { runDoctor } from "../core/doctor.js";
import { packageRoot } from "../core/paths.js";
import { renderProfile, type RenderOutcome } from "../core/render.js";
import { BottleError, toBottleError } from "../errors.js";
import { runStdioServer } from "../mcp/server.js";
import { PACKAGE_VERSION } from "../version.js";

/** Exit codes: scripts can tell "no such thing" from "it failed". */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3 } as const;

const USAGE = `bottle ${PACKAGE_VERSION} — sandboxed AI sub-agents in Docker

Usage:
  bottle [mcp]                      run the MCP server on stdio (default)
  bottle render <profile> [--manifest FILE] [--slug SLUG] [--json]
                                    show the compose file and sidecar configs a bottle would run
  bottle demo [--json]              render the built-in demo profile
  bottle doctor [--json]            check Node, Docker, Compose v2 and the state dir
  bottle --version | --help

Environment: BOTTLE_MANIFEST (default ./bottle.yaml), BOTTLE_STATE_DIR, BOTTLE_LOG_LEVEL.
Planned (not built yet): start, stop, logs, list, exec, cleanup, proposals, decide.`;

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  switch (verb) {
    case undefined:
    case "mcp":
      await runStdioServer();
      return -1; // keep running
    case "render":
      return renderVerb(rest);
    case "demo":
      return renderVerb(["demo", "--manifest", nodePath.join(packageRoot(), "examples", "bottle.yaml"), ...rest]);
    case "doctor":
      return doctorVerb(rest);
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
  process.stdout.write(values.json ? `${JSON.stringify({ summary: r.summary, compose: r.composeYaml, files: r.files }, null, 2)}\n` : humanRender(r));
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
    "",
    "--- docker-compose.yml",
    r.composeYaml.trimEnd(),
    ...r.files.flatMap((f) => ["", `--- ${f.path} (${f.sidecar})`, f.content.trimEnd()]),
    "",
  ];
  return lines.join("\n");
}

async function doctorVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: "boolean", default: false } } });
  const checks = await runDoctor();
  if (values.json) process.stdout.write(`${JSON.stringify({ ok: checks.every((c) => c.ok), checks }, null, 2)}\n`);
  else {
    for (const c of checks) {
      process.stdout.write(`${c.ok ? "ok     " : "problem"}  ${c.name.padEnd(8)} ${c.detail}\n`);
      if (!c.ok && c.fix) process.stdout.write(`         ${"".padEnd(8)} fix: ${c.fix}\n`);
    }
  }
  return checks.every((c) => c.ok) ? EXIT.ok : EXIT.failed;
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
