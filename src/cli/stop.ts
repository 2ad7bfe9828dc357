import { parseArgs } from "node:util";
import { stopBottle } from "../bottles/index.js";
import { EXIT, one, print, type Verb } from "./output.js";

const usage = "bottle stop <slug> [--purge] [--json]";

export const stopVerb: Verb = {
  name: "stop",
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { purge: { type: "boolean", default: false }, json: { type: "boolean", default: false } } });
    const r = await stopBottle(one(positionals, usage), { purge: values.purge });
    print(values.json, r, `bottle ${r.slug} ${r.state} (was ${r.wasState}) in ${r.ms} ms`);
    return EXIT.ok;
  },
};
