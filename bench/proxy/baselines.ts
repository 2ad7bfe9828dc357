// mitmproxy and squid as side-by-side baselines. The bench installs nothing:
// both come from Debian (`apt-get install -y mitmproxy squid`); a missing one
// is skipped with a message.
import { execFileSync } from "node:child_process";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { start, waitForPort, type Started } from "./processes.js";

export function which(cmd: string): string | undefined {
  for (const dir of ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]) {
    try {
      execFileSync("test", ["-x", join(dir, cmd)]);
      return join(dir, cmd);
    } catch {
      // not here
    }
  }
  return undefined;
}

// The same job as our egress route: set Authorization for the routed host.
const MITM_ADDON = `import os
TOKEN = os.environ["BENCH_TOKEN"]

class Inject:
    def request(self, flow):
        if flow.request.pretty_host == "localhost":
            flow.request.headers["Authorization"] = "Bearer " + TOKEN

addons = [Inject()]
`;

export async function startMitmproxy(bin: string, dir: string, port: number, upstreamCa: string, token: string): Promise<{ proc: Started; caPem: string }> {
  await writeFile(join(dir, "inject.py"), MITM_ADDON);
  const proc = start(
    "mitmdump",
    bin,
    ["-q", "--listen-host", "127.0.0.1", "-p", String(port), "--set", `confdir=${dir}`, "--set", `ssl_verify_upstream_trusted_ca=${upstreamCa}`, "-s", join(dir, "inject.py")],
    { BENCH_TOKEN: token },
    join(dir, "mitmdump.out"),
  );
  await waitForPort(port, proc, 60_000);
  return { proc, caPem: await readFile(join(dir, "mitmproxy-ca-cert.pem"), "utf8") };
}

export async function startSquid(bin: string, dir: string, port: number, allow: string[]): Promise<Started> {
  // Squid drops root privileges to its own user, which must write its logs.
  await chmod(dir, 0o777);
  await writeFile(join(dir, "hosts"), "127.0.0.1 localhost\n");
  const conf = [
    `http_port 127.0.0.1:${port}`,
    `acl allowed dstdomain ${allow.join(" ")}`,
    "http_access allow CONNECT allowed",
    "http_access allow allowed",
    "http_access deny all",
    "cache deny all",
    "cache_mem 8 MB",
    `hosts_file ${join(dir, "hosts")}`,
    // One line per request, written as it happens (buffered_logs is off by
    // default): the same duty as our JSON decision lines, also to a file.
    `access_log stdio:${join(dir, "access.log")}`,
    `cache_log ${join(dir, "cache.log")}`,
    `pid_filename ${join(dir, "squid.pid")}`,
    `coredump_dir ${dir}`,
    "shutdown_lifetime 0 seconds",
  ].join("\n");
  await writeFile(join(dir, "squid.conf"), `${conf}\n`);
  const proc = start("squid", bin, ["-N", "-f", join(dir, "squid.conf")], {}, join(dir, "squid.out"));
  await waitForPort(port, proc, 30_000);
  return proc;
}
