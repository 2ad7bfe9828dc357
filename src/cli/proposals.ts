import { parseArgs } from "node:util";
import { formatInbox, inbox, inboxJson, safeJson } from "../bottles/index.js";
import { BottleError } from "../errors.js";
import { EXIT, type Verb } from "./output.js";

const usage = "bottle proposals [<slug>] [--all] [--limit N] [--cursor C] [--json]";

// Agent-supplied text is escaped in both views (safeJson also escapes C1 and bidi controls).
export const proposalsVerb: Verb = {
  name: "proposals",
  usage: `${usage}\n                                    agents' access requests, oldest first, 50 a page (pending;\n                                    --all adds decided ones; --cursor pages on)`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { all: { type: "boolean", default: false }, limit: { type: "string" }, cursor: { type: "string" }, json: { type: "boolean", default: false } },
    });
    if (positionals.length > 1) throw new BottleError("bad-input", `usage: ${usage}`);
    const limit = values.limit === undefined ? undefined : Number(values.limit);
    const page = await inbox({
      ...(positionals[0] ? { slug: positionals[0] } : {}),
      includeDecided: values.all,
      ...(limit !== undefined ? { limit } : {}),
      ...(values.cursor !== undefined ? { cursor: values.cursor } : {}),
    });
    process.stdout.write(`${values.json ? safeJson(inboxJson(page), 2) : formatInbox(page, values.all)}\n`);
    return EXIT.ok;
  },
};
