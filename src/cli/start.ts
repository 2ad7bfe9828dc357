import { parseArgs } from "node:util";
import { startBottle, startOutput } from "../bottles/index.js";
import { EXIT, interruptSignal, one, print, type Verb } from "./output.js";

const usage = "bottle start <profile> [--manifest FILE] [--slug SLUG] [--json]";

export const startVerb: Verb = {
  name: "start",
  usage: `${usage}\n                                    start a bottle (progress on stderr)`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { manifest: { type: "string", short: "m" }, slug: { type: "string" }, json: { type: "boolean", default: false } },
    });
    const profile = one(positionals, usage);
    const r = await startBottle({
      profile,
      ...(values.manifest ? { manifest: values.manifest } : {}),
      ...(values.slug !== undefined ? { slug: values.slug } : {}),
      signal: interruptSignal(),
      onProgress: (step, message) => process.stderr.write(`[${step}] ${message}\n`),
    });
    const out = startOutput(r);
    print(
      values.json,
      out,
      [
        `bottle ${out.slug} is running (${out.services.join(", ")})`,
        `  exec:  bottle exec ${out.slug} -- <command>`,
        `  logs:  bottle logs ${out.slug}`,
        `  stop:  bottle stop ${out.slug}`,
        ...out.cloneUrls.map((c) => `  git:   ${c.url}`),
      ].join("\n"),
    );
    return EXIT.ok;
  },
};
