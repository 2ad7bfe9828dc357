import { parseArgs } from "node:util";
import { decide, decisionJson, formatDecision, safeJson } from "../bottles/index.js";
import { BottleError } from "../errors.js";
import { EXIT, type Verb } from "./output.js";

const usage = "bottle decide <slug> <id> approve|deny [--note TEXT] [--ttl SECONDS] [--force] [--json]";

export const decideVerb: Verb = {
  name: "decide",
  usage: `${usage}\n                                    decide one; approval applies it without restarting anything;\n                                    --force approves a broad request (*.com, an IP address)`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { note: { type: "string" }, ttl: { type: "string" }, force: { type: "boolean", default: false }, json: { type: "boolean", default: false } },
    });
    const [slug, id, verdict] = positionals;
    if (positionals.length !== 3 || (verdict !== "approve" && verdict !== "deny")) throw new BottleError("bad-input", `usage: ${usage}`);
    const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
    if (ttl !== undefined && !(Number.isInteger(ttl) && ttl > 0)) throw new BottleError("bad-input", `--ttl must be a positive whole number of seconds, got "${values.ttl}"`);
    const r = await decide({
      slug: slug!,
      id: id!,
      verdict: verdict === "approve" ? "approved" : "denied",
      force: values.force,
      ...(values.note !== undefined ? { note: values.note } : {}),
      ...(ttl !== undefined ? { ttlSeconds: ttl } : {}),
    });
    process.stdout.write(`${values.json ? safeJson(decisionJson(r), 2) : formatDecision(r)}\n`);
    return EXIT.ok;
  },
};
