import { parseArgs } from "node:util";
import { bottleLogs, followBottleLogs } from "../bottles/index.js";
import { BottleError } from "../errors.js";
import { EXIT, interruptSignal, one, print, type Verb } from "./output.js";

const usage = "bottle logs <slug> [--service S] [--tail N] [--since T] [--grep TEXT] [--task ID] [-f] [--json]";

export const logsVerb: Verb = {
  name: "logs",
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        service: { type: "string" },
        tail: { type: "string" },
        since: { type: "string" },
        grep: { type: "string" },
        task: { type: "string" },
        follow: { type: "boolean", short: "f", default: false },
        json: { type: "boolean", default: false },
      },
    });
    const slug = one(positionals, usage);
    const tail = values.tail === undefined ? undefined : Number(values.tail);
    if (tail !== undefined && (!Number.isInteger(tail) || tail < 1)) throw new BottleError("bad-input", `--tail must be a positive whole number, got "${values.tail}"`);
    const q = {
      slug,
      ...(values.service ? { service: values.service } : {}),
      ...(tail ? { tail } : {}),
      ...(values.since ? { since: values.since } : {}),
      ...(values.grep ? { grep: values.grep } : {}),
      ...(values.task !== undefined ? { taskId: values.task } : {}),
    };
    if (values.follow && values.task !== undefined) throw new BottleError("bad-input", "--task reads a task's timeline once; it does not follow (-f)");
    if (values.follow) {
      // Follows a running bottle until it stops or Ctrl-C; a stopped one prints its saved log.
      const saved = await followBottleLogs(q, (line) => process.stdout.write(`${line}\n`), interruptSignal());
      if (!saved) return EXIT.ok;
      print(values.json, saved, saved.lines.join("\n"));
      return EXIT.ok;
    }
    const r = await bottleLogs(q);
    print(values.json, r, r.lines.join("\n"));
    return EXIT.ok;
  },
};
