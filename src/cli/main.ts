// `bottle <verb>`: the human face of the same core functions the MCP tools
// use. One module per verb; this file is the table and the error boundary.
import { BottleError, toBottleError } from "../errors.js";
import { runStdioServer } from "../mcp/server.js";
import { PACKAGE_VERSION } from "../package.js";
import { cleanupVerb } from "./cleanup.js";
import { decideVerb } from "./decide.js";
import { demoVerb } from "./demo.js";
import { doctorVerb } from "./doctor.js";
import { execVerb } from "./exec.js";
import { gitLogVerb } from "./git-log.js";
import { listVerb } from "./list.js";
import { logsVerb } from "./logs.js";
import { EXIT, exitCodeFor, type Verb } from "./output.js";
import { poolVerb } from "./pool.js";
import { proposalsVerb } from "./proposals.js";
import { renderVerb } from "./render.js";
import { startVerb } from "./start.js";
import { stopVerb } from "./stop.js";
import { cancelVerb, runVerb, taskVerb } from "./tasks.js";

const mcpVerb: Verb = {
  name: "mcp",
  usage: "bottle [mcp]                      run the MCP server on stdio (default)",
  async run() {
    await runStdioServer();
    return -1; // keep running
  },
};

const VERBS: Verb[] = [
  mcpVerb,
  renderVerb,
  startVerb,
  stopVerb,
  listVerb,
  logsVerb,
  gitLogVerb,
  execVerb,
  runVerb,
  taskVerb,
  cancelVerb,
  poolVerb,
  cleanupVerb,
  demoVerb,
  doctorVerb,
  proposalsVerb,
  decideVerb,
];

const USAGE = `bottle ${PACKAGE_VERSION} — sandboxed AI sub-agents in Docker

Usage:
${VERBS.map((v) => `  ${v.usage}`).join("\n")}
  bottle --version | --help

Environment: BOTTLE_MANIFEST (default ./bottle.yaml), BOTTLE_STATE_DIR,
BOTTLE_SUBNET_POOL (default 10.213.0.0/16), BOTTLE_LOG_LEVEL.
Exit codes: 0 ok, 1 failed, 2 bad input or manifest, 3 no such profile or bottle.`;

async function main(argv: string[]): Promise<number> {
  const [name = "mcp", ...rest] = argv;
  switch (name) {
    case "--version":
    case "-v":
      process.stdout.write(`${PACKAGE_VERSION}\n`);
      return EXIT.ok;
    case "--help":
    case "-h":
    case "help":
      process.stdout.write(`${USAGE}\n`);
      return EXIT.ok;
  }
  const verb = VERBS.find((v) => v.name === name || v.aliases?.includes(name));
  if (!verb) {
    process.stderr.write(`bottle: unknown command "${name}"\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  return verb.run(rest);
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
