import { parseArgs } from "node:util";
import { cleanup, cleanupText } from "../bottles/index.js";
import { EXIT, print, type Verb } from "./output.js";

export const cleanupVerb: Verb = {
  name: "cleanup",
  usage: "bottle cleanup [--purge] [--json] remove orphaned containers, networks and locks",
  async run(args) {
    const { values } = parseArgs({ args, options: { purge: { type: "boolean", default: false }, json: { type: "boolean", default: false } } });
    const r = await cleanup({ purge: values.purge });
    print(values.json, r, cleanupText(r) ?? "nothing to clean up");
    return EXIT.ok;
  },
};
