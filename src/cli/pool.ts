import { parseArgs } from "node:util";
import { poolBottles } from "../bottles/index.js";
import { BottleError } from "../errors.js";
import { EXIT, one, print, type Verb } from "./output.js";

const usage = "bottle pool <profile> [--size N] [--manifest FILE] [--json]";

export const poolVerb: Verb = {
  name: "pool",
  usage: `${usage}\n                                    fill the profile's warm pool to its \`pool:\` size (or N; 0 drains it)`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { manifest: { type: "string", short: "m" }, size: { type: "string" }, json: { type: "boolean", default: false } },
    });
    const profile = one(positionals, usage);
    let size: number | undefined;
    if (values.size !== undefined) {
      if (!/^\d{1,3}$/.test(values.size)) throw new BottleError("bad-input", `--size expects a whole number, got "${values.size}"`);
      size = Number(values.size);
    }
    const r = await poolBottles({ profile, ...(values.manifest ? { manifest: values.manifest } : {}), ...(size !== undefined ? { size } : {}) });
    const text = [
      `warm pool of ${r.profile}: ${r.waiting} waiting`,
      ...(r.started.length ? [`  started ${r.started.join(", ")}`] : []),
      ...(r.stopped.length ? [`  stopped ${r.stopped.join(", ")}`] : []),
    ].join("\n");
    print(values.json, r, text);
    return EXIT.ok;
  },
};
