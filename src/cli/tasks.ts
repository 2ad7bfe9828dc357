// `bottle run | task | cancel`: tasks, the same core calls and JSON as
// bottle_run, bottle_task and bottle_cancel.
import { parseArgs } from "node:util";
import { cancelTask, runTask, taskDiskText, taskStatus, taskText } from "../bottles/index.js";
import { BottleError } from "../errors.js";
import { EXIT, interruptSignal, one, print, readStdin, type Verb } from "./output.js";

const runUsage = "bottle run <slug> [--env NAME[=VALUE]]... [--cwd DIR] [--timeout SECONDS] [--stdin] [--json] -- <command> [args...]";
const taskUsage = "bottle task <slug> [<task-id> [--wait SECONDS] [--from BYTES] [--max-bytes N]] [--json]";
const cancelUsage = "bottle cancel <slug> <task-id> [--grace SECONDS] [--json]";

function number(flag: string, raw: string | undefined, whole: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n < 0 || (whole && !Number.isInteger(n))) throw new BottleError("bad-input", `--${flag} must be a ${whole ? "whole " : ""}number >= 0, got "${raw}"`);
  return n;
}

/** NAME=VALUE, or a bare NAME taken from our environment (so a secret need not be typed on the command line). */
function envVars(specs: string[]): Record<string, string> | undefined {
  if (!specs.length) return undefined;
  const vars: Record<string, string> = {};
  for (const spec of specs) {
    const eq = spec.indexOf("=");
    const name = eq < 0 ? spec : spec.slice(0, eq);
    const value = eq < 0 ? process.env[name] : spec.slice(eq + 1);
    if (value === undefined) throw new BottleError("bad-input", `--env ${name}: not set in this environment`);
    vars[name] = value;
  }
  return vars;
}

export const runVerb: Verb = {
  name: "run",
  usage: `${runUsage}\n                                    start a detached task, print its id`,
  async run(args) {
    const dash = args.indexOf("--");
    if (dash < 0) throw new BottleError("bad-input", `usage: ${runUsage}`);
    const { values, positionals } = parseArgs({
      args: args.slice(0, dash),
      allowPositionals: true,
      options: {
        env: { type: "string", multiple: true, default: [] },
        cwd: { type: "string" },
        timeout: { type: "string" },
        stdin: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
      },
    });
    const slug = one(positionals, runUsage);
    const timeoutS = number("timeout", values.timeout, true);
    const vars = envVars(values.env);
    const stdin = values.stdin ? await readStdin() : undefined;
    const r = await runTask(slug, args.slice(dash + 1), {
      ...(vars ? { vars } : {}),
      ...(values.cwd !== undefined ? { cwd: values.cwd } : {}),
      ...(timeoutS !== undefined ? { timeoutS } : {}),
      ...(stdin !== undefined ? { stdin } : {}),
    });
    print(values.json, r, r.taskId);
    return EXIT.ok;
  },
};

export const taskVerb: Verb = {
  name: "task",
  aliases: ["tasks"],
  usage: `${taskUsage}\n                                    a task's state and output (by byte cursor), or every task`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { wait: { type: "string" }, from: { type: "string" }, "max-bytes": { type: "string" }, json: { type: "boolean", default: false } },
    });
    if (positionals.length < 1 || positionals.length > 2) throw new BottleError("bad-input", `usage: ${taskUsage}`);
    const [slug, taskId] = positionals as [string, string | undefined];
    const waitS = number("wait", values.wait, false);
    const from = number("from", values.from, true);
    const maxBytes = number("max-bytes", values["max-bytes"], true);
    const r = await taskStatus(slug, {
      ...(taskId !== undefined ? { taskId } : {}),
      ...(waitS !== undefined ? { waitS, signal: interruptSignal() } : {}),
      ...(from !== undefined ? { from } : {}),
      ...(maxBytes !== undefined ? { maxBytes } : {}),
    });
    if (values.json) print(true, r, "");
    else {
      process.stderr.write(`${r.tasks.length ? r.tasks.map(taskText).join("\n") : "No tasks."}\n${r.disk ? `${taskDiskText(r.disk)}\n` : ""}`);
      if (r.output) {
        process.stdout.write(r.output.text);
        process.stderr.write(`(next: --from ${r.output.next}${r.output.skipped ? `; ${r.output.skipped} bytes were cut before` : ""})\n`);
      }
    }
    return EXIT.ok;
  },
};

export const cancelVerb: Verb = {
  name: "cancel",
  usage: cancelUsage,
  async run(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { grace: { type: "string" }, json: { type: "boolean", default: false } } });
    if (positionals.length !== 2) throw new BottleError("bad-input", `usage: ${cancelUsage}`);
    const graceS = number("grace", values.grace, false);
    const r = await cancelTask(positionals[0]!, positionals[1]!, graceS !== undefined ? { graceS } : {});
    print(values.json, r, `${r.signalled ? (r.killed ? "killed after the grace period" : "terminated") : "not running"}: ${taskText(r.task)}`);
    return EXIT.ok;
  },
};
