// How the gate talks to an upstream: ssh with the mounted identity and only
// the pinned known_hosts, strict host key checking, no agent, no user config.
import { existsSync } from "node:fs";
import type { GitGateUpstream } from "../../contracts/git-gate.js";

export const RUN_DIR = "/tmp/git-gate";
/** nss_wrapper files for a uid that /etc/passwd does not know (see serve.ts). */
export const NSS_PASSWD = `${RUN_DIR}/passwd`;
export const NSS_GROUP = `${RUN_DIR}/group`;

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The control socket of the upstream's persistent connection (see serve.ts). */
export const controlPath = (name: string) => `${RUN_DIR}/ssh-${name}`;

/**
 * GIT_SSH_COMMAND for one upstream (git runs it through sh). Connections
 * reuse the gate's persistent master connection to the upstream when it is
 * up (saving the key exchange on every push) and connect on their own when
 * it is not; `master: true` is the command that holds that connection.
 */
export function sshCommand(u: Pick<GitGateUpstream, "name" | "identity_file" | "known_hosts_file">, o: { master?: boolean; nssWrapper?: boolean } = {}): string {
  const { env, args } = sshInvocation(u, o);
  return [...Object.entries(env).map(([k, v]) => `${k}=${quote(v)}`), "ssh", ...args.map(quote)].join(" ");
}

/** The same, as an env and argv for spawning ssh directly. */
export function sshInvocation(
  u: Pick<GitGateUpstream, "name" | "identity_file" | "known_hosts_file">,
  o: { master?: boolean; nssWrapper?: boolean } = {},
): { env: Record<string, string>; args: string[] } {
  const withNssWrapper = o.nssWrapper ?? existsSync(NSS_PASSWD);
  const options = [
    o.master ? "ControlMaster=yes" : "ControlMaster=no",
    `ControlPath=${controlPath(u.name)}`,
    "BatchMode=yes",
    "StrictHostKeyChecking=yes",
    `UserKnownHostsFile=${u.known_hosts_file}`,
    "GlobalKnownHostsFile=/dev/null",
    // The pin is the name in known_hosts; extra_hosts decides the address.
    "CheckHostIP=no",
    "UpdateHostKeys=no",
    "IdentitiesOnly=yes",
    "IdentityAgent=none",
    `IdentityFile=${u.identity_file}`,
    // git asks for protocol v2 through this variable (symbolic refs other
    // than HEAD are only listed in v2). Over the shared connection it is the
    // master's SendEnv that counts, so every invocation carries it.
    "SendEnv=GIT_PROTOCOL",
    "ConnectTimeout=10",
    "ServerAliveInterval=15",
    "LogLevel=ERROR",
  ];
  // ssh refuses to run for a uid without a passwd entry; nss_wrapper gives it one.
  const env: Record<string, string> = withNssWrapper ? { LD_PRELOAD: "libnss_wrapper.so", NSS_WRAPPER_PASSWD: NSS_PASSWD, NSS_WRAPPER_GROUP: NSS_GROUP } : {};
  return { env, args: ["-F", "/dev/null", ...options.flatMap((opt) => ["-o", opt])] };
}

/** user, host and port of an SSH git URL (`ssh://[user@]host[:port]/path` or `user@host:path`). */
export function sshTarget(url: string): { user?: string; host: string; port?: number } {
  const m = /^ssh:\/\/(?:([^@/]+)@)?([^:/]+)(?::(\d+))?\//.exec(url);
  if (m) return { ...(m[1] ? { user: m[1] } : {}), host: m[2]!, ...(m[3] ? { port: Number(m[3]) } : {}) };
  const scp = /^(?:([^@]+)@)?([^:]+):/.exec(url);
  if (!scp) throw new Error(`not an SSH git URL: ${url}`);
  return { ...(scp[1] ? { user: scp[1] } : {}), host: scp[2]! };
}

export type SshFailure = "host-key" | "auth" | "not-found" | "unreachable" | "other";

/** What went wrong talking to an upstream, from git/ssh's stderr. */
export function classifySshFailure(stderr: string): SshFailure {
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known for/i.test(stderr)) return "host-key";
  if (/Permission denied \(|Load key .*: |no such identity|invalid format/i.test(stderr)) return "auth";
  if (
    /Could not resolve hostname|Connection refused|Connection timed out|No route to host|Network is unreachable|Connection closed by|Connection reset|kex_exchange_identification|timed out/i.test(
      stderr,
    )
  )
    return "unreachable";
  if (/does not appear to be a git repository|Repository not found|not found|No such file or directory/i.test(stderr)) return "not-found";
  return "other";
}

export const FAILURE_HELP: Record<SshFailure, string> = {
  "host-key": "the server's host key does not match the pinned known_hosts; refusing to talk to it (check git.upstreams[].known_hosts in the profile)",
  auth: "the upstream refused the identity file (check git.upstreams[].identity_file and the key's access to the repository)",
  "not-found": "the upstream has no such repository (check git.upstreams[].url)",
  unreachable: "the upstream is unreachable (check the URL, address and that the gate's network can reach it)",
  other: "fetching from the upstream failed",
};
