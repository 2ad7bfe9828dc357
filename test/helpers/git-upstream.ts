// A real SSH git host for git-gate tests and benchmarks: a container built
// from test/fixtures/git on a network we create, with a host key and a client
// key pair generated here. Traffic stays on this machine (our own containers).
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import nodePath from "node:path";
import { docker } from "../../src/engine/run.js";

const FIXTURES = nodePath.resolve(import.meta.dirname, "../fixtures/git");
export const TEST_LABEL = "dev.bot-bottle.test=git-gate";
export const SSH_HOST_IMAGE = "bot-bottle-test/ssh-git-host:latest";
export const GIT_AGENT_IMAGE = "bot-bottle-test/git-agent:latest";

export interface KeyPair {
  private: string;
  public: string;
}

export function sshKeygen(dir: string, name: string): KeyPair {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = nodePath.join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `bot-bottle-test-${name}`, "-f", file]);
  return { private: file, public: `${file}.pub` };
}

export async function buildTestImages(): Promise<void> {
  await Promise.all([
    docker(["build", "--pull=false", "-q", "-t", SSH_HOST_IMAGE, "-f", nodePath.join(FIXTURES, "Dockerfile.ssh-host"), FIXTURES], { timeout: 600_000 }),
    docker(["build", "--pull=false", "-q", "-t", GIT_AGENT_IMAGE, "-f", nodePath.join(FIXTURES, "Dockerfile.agent"), FIXTURES], { timeout: 600_000 }),
  ]);
}

export interface Upstream {
  network: string;
  container: string;
  address: string;
  hostKey: KeyPair;
  clientKey: KeyPair;
  /** "upstream.test ssh-ed25519 AAAA…": the pin for the manifest. */
  knownHostsLine: string;
  /** ssh://git@upstream.test/srv/git/app.git */
  url: string;
  /** Env for running git on this machine against the upstream (by address). */
  hostGitEnv: NodeJS.ProcessEnv;
  /** The same repo addressed by IP, for git run on this machine. */
  directUrl: string;
  remove(): Promise<void>;
}

/** Start the SSH git host on its own network with a fixed address, and wait until git answers over SSH. */
export async function startUpstream(name: string, subnet24: string, dir: string): Promise<Upstream> {
  const keysDir = nodePath.join(dir, "keys");
  const hostKey = sshKeygen(keysDir, "host_key");
  const clientKey = sshKeygen(nodePath.join(dir, "client"), "id_ed25519");
  execFileSync("cp", [clientKey.public, nodePath.join(keysDir, "client.pub")]);
  const prefix = subnet24.replace(/\.0\/24$/, "");
  const address = `${prefix}.10`;
  const network = `${name}-net`;
  const container = `${name}-ssh`;
  await docker(["network", "create", "--subnet", subnet24, "--label", TEST_LABEL, network]);
  await docker(["run", "-d", "--name", container, "--label", TEST_LABEL, "--network", network, "--ip", address, "-v", `${keysDir}:/keys:ro`, SSH_HOST_IMAGE]);
  const knownHostsFile = nodePath.join(dir, "known_hosts_direct");
  const pub = readFileSync(hostKey.public, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  execFileSync("sh", ["-c", `echo "${address} ${pub}" > ${knownHostsFile}`]);
  const hostGitEnv: NodeJS.ProcessEnv = {
    ...process.env,
    GIT_SSH_COMMAND: `ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${knownHostsFile} -o IdentitiesOnly=yes -o IdentityFile=${clientKey.private}`,
    GIT_TERMINAL_PROMPT: "0",
  };
  const up: Upstream = {
    network,
    container,
    address,
    hostKey,
    clientKey,
    knownHostsLine: `upstream.test ${pub}`,
    url: "ssh://git@upstream.test/srv/git/app.git",
    hostGitEnv,
    directUrl: `ssh://git@${address}/srv/git/app.git`,
    remove: async () => {
      await docker(["rm", "-f", container], { reject: false });
      await docker(["network", "rm", network], { reject: false });
    },
  };
  for (let i = 0; ; i++) {
    try {
      lsRemote(up);
      return up;
    } catch (err) {
      if (i > 100) {
        await up.remove();
        throw err;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The upstream's refs, read directly over SSH from this machine: { "refs/heads/main": sha, … }. */
export function lsRemote(up: Upstream): Record<string, string> {
  const out = execFileSync("git", ["ls-remote", up.directUrl], { env: up.hostGitEnv, stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 }).toString();
  return Object.fromEntries(
    out
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("\t").reverse() as [string, string]),
  );
}

/**
 * Attach a container to the upstream's network as soon as compose creates it
 * (the gate retries its first fetch while the upstream is unreachable).
 */
export async function connectWhenCreated(container: string, network: string, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await docker(["network", "connect", network, container], { reject: false, timeout: 30_000 });
    if (r.exitCode === 0 || /already exists/.test(r.stderr)) return;
    if (Date.now() > until) throw new Error(`could not connect ${container} to ${network}: ${r.stderr}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
