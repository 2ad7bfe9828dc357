import { parseArgs } from "node:util";
import { formatGitDecisions, readGitDecisions, safeJson } from "../bottles/index.js";
import { BottleError } from "../errors.js";
import { EXIT, one, type Verb } from "./output.js";

const usage = "bottle git-log <slug> [--upstream NAME] [--tail N] [--json]";

// Same records as bottle_git_log: --json prints its structuredContent; the
// text view escapes agent-supplied names and reasons.
export const gitLogVerb: Verb = {
  name: "git-log",
  usage: `${usage}\n                                    the git gate's push decisions: verdict, rule, reason`,
  async run(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { upstream: { type: "string" }, tail: { type: "string" }, json: { type: "boolean", default: false } } });
    const slug = one(positionals, usage);
    const tail = values.tail === undefined ? 100 : Number(values.tail);
    if (!Number.isInteger(tail) || tail < 1 || tail > 1000) throw new BottleError("bad-input", `--tail must be a whole number from 1 to 1000, got "${values.tail}"`);
    const r = await readGitDecisions({ slug, ...(values.upstream ? { upstream: values.upstream } : {}), tail });
    process.stdout.write(`${values.json ? safeJson(r, 2) : formatGitDecisions(r.decisions)}\n`);
    return EXIT.ok;
  },
};
