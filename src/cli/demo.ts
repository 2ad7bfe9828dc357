import { parseArgs } from "node:util";
import { runDemo } from "../demo/run.js";
import { EXIT, print, type Verb } from "./output.js";

export const demoVerb: Verb = {
  name: "demo",
  usage: "bottle demo [--json]              start the demo bottle, show an allowed, a refused and an\n                                    injected request from inside it, print logs, stop it",
  async run(args) {
    const { values } = parseArgs({ args, options: { json: { type: "boolean", default: false } } });
    const r = await runDemo({ say: (line) => process.stderr.write(`demo: ${line}\n`), onProgress: (step, message) => process.stderr.write(`[${step}] ${message}\n`) });
    print(values.json, r, ["", "--- inside the agent", r.agentOutput, "", "--- firewall and egress decisions (last lines)", ...r.logs, "", `bottle ${r.slug} stopped in ${r.stopMs} ms`].join("\n"));
    return EXIT.ok;
  },
};
