import { parseArgs } from "node:util";
import { execInBottle } from "../bottles/index.js";
import { BottleError } from "../errors.js";
import { interruptSignal, one, print, readStdin, type Verb } from "./output.js";

const usage = "bottle exec <slug> [--timeout SECONDS] [--stdin] [--json] -- <command> [args...]";

export const execVerb: Verb = {
  name: "exec",
  usage: `${usage}\n                                    exits with the command's exit code (--stdin feeds ours to it)`,
  async run(args) {
    const dash = args.indexOf("--");
    if (dash < 0) throw new BottleError("bad-input", `usage: ${usage}`);
    const { values, positionals } = parseArgs({
      args: args.slice(0, dash),
      allowPositionals: true,
      options: { timeout: { type: "string" }, stdin: { type: "boolean", default: false }, json: { type: "boolean", default: false } },
    });
    const slug = one(positionals, usage);
    const seconds = values.timeout === undefined ? 600 : Number(values.timeout);
    if (!(seconds > 0)) throw new BottleError("bad-input", `--timeout must be a positive number of seconds, got "${values.timeout}"`);
    const signal = interruptSignal();
    const stdin = values.stdin ? await readStdin() : undefined;
    const r = await execInBottle(slug, args.slice(dash + 1), { timeoutMs: Math.round(seconds * 1000), signal, ...(stdin ? { stdin } : {}) });
    if (values.json) print(true, r, "");
    else {
      if (r.stdout) process.stdout.write(r.stdout.endsWith("\n") ? r.stdout : `${r.stdout}\n`);
      if (r.stderr) process.stderr.write(r.stderr.endsWith("\n") ? r.stderr : `${r.stderr}\n`);
      if (r.timedOut) process.stderr.write(`bottle: timed out after ${seconds}s\n`);
    }
    return r.exitCode;
  },
};
