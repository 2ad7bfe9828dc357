// Symbolic refs on the upstream. The gate mirrors an upstream symref (say
// refs/heads/agent/alias -> refs/heads/main) as a plain ref, but a push to
// its name makes the upstream move the target. Before forwarding, the hook
// asks the upstream which of the pushed names are symbolic and where they
// point, so the policy can judge the ref that really moves.
//
// Only protocol v2 reports symbolic refs other than HEAD; the gate asks for
// v2 (and the serve process warns at start when an upstream does not speak it).
import type { GitGateUpstream } from "../../contracts/git-gate.js";
import { lastLines } from "../kit/text.js";
import { git } from "./git.js";
import { sshCommand } from "./ssh.js";

/** Env for git talking to an upstream over the gate's ssh (persistent connection when up). */
export function upstreamGitEnv(u: GitGateUpstream, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  // GIT_SSH_VARIANT: the command may start with env assignments (nss_wrapper),
  // which hides "ssh" from git's guess; saying so skips its `ssh -G` probe and
  // keeps GIT_PROTOCOL (protocol v2) being sent.
  // GIT_QUARANTINE_PATH only marks the hook's own repository as read-only;
  // a local upstream's receive-pack would inherit it and refuse every update.
  const { GIT_QUARANTINE_PATH: _quarantine, ...rest } = env;
  return { ...rest, GIT_SSH_COMMAND: sshCommand(u), GIT_SSH_VARIANT: "ssh", GIT_TERMINAL_PROMPT: "0" };
}

/** Parse `git ls-remote --symref` output: name -> final target, for the names asked about. */
export function parseSymrefs(stdout: string, names: ReadonlySet<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const m = /^ref: (\S+)\t(.+)$/.exec(line);
    if (m && names.has(m[2]!)) out.set(m[2]!, m[1]!);
  }
  return out;
}

/** Above this many names, list all refs rather than passing each as an argument. */
const MAX_PATTERN_ARGS = 200;

/** Which of `refs` are symbolic refs on the upstream, and their targets. Throws when the upstream cannot be asked. */
export async function upstreamSymrefs(u: GitGateUpstream, refs: readonly string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Map<string, string>> {
  if (!refs.length) return new Map();
  const patterns = refs.length <= MAX_PATTERN_ARGS ? refs : [];
  const r = await git(["-c", "protocol.version=2", "ls-remote", "--symref", u.url, ...patterns], { cwd, env: upstreamGitEnv(u, env), timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`could not list the upstream's refs: ${lastLines(r.stderr.replace(/\r/g, ""), 3).replace(/\n/g, " | ")}`);
  return parseSymrefs(r.stdout, new Set(refs));
}
