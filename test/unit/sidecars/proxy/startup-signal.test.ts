// A SIGHUP that arrives while the proxy is still starting (the host reloads
// right after start when an approval lands early) must not kill it: node's
// default action for SIGHUP is to exit. The config file is a FIFO, so the
// proxy is provably mid-start (blocked reading it) when the signal lands.
import { spawn, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createTestCa, writePem } from "../../../helpers/proxy/ca.js";

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Whether the process has a handler installed for SIGHUP (bit 0 of SigCgt). */
function catchesHangup(pid: number): boolean {
  try {
    const line = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return line !== undefined && (BigInt(`0x${line}`) & 1n) === 1n;
  } catch {
    return false;
  }
}

describe("proxy start-up", () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("survives a SIGHUP that arrives before its config is loaded, then reloads", async () => {
    dir = await mkdtemp(join(tmpdir(), "proxy-hup-"));
    const ca = await writePem(join(dir, "ca"), await createTestCa("hup"));
    const fifo = join(dir, "config.json");
    execFileSync("mkfifo", [fifo]);
    const config = JSON.stringify({
      version: 1,
      allow: [],
      allow_cidrs: [],
      intercept: { enabled: true, ca_cert: ca.cert, ca_key: ca.key, passthrough: [] },
      dlp: { enabled: true, canary_env: [], canary_exempt: [] },
    });
    const port = await freePort();
    const child = spawn(process.execPath, ["--import", "tsx", "src/sidecars/proxy/main.ts", "firewall", "--config", fifo, "--port", String(port)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | string>((r) => child.once("exit", (code, signal) => r(signal ?? code ?? -1)));
    try {
      // Wait until it is running our code (it may block on the FIFO before or after taking the signal over).
      const t0 = Date.now();
      while (!catchesHangup(child.pid!) && Date.now() - t0 < 5_000) await new Promise((r) => setTimeout(r, 25));
      await new Promise((r) => setTimeout(r, 200));
      child.kill("SIGHUP");
      const died = await Promise.race([exited, new Promise((r) => setTimeout(() => r("alive"), 500))]);
      expect(died, out).toBe("alive");
      // Feed the first read; once it listens, the pending reload reads the FIFO again.
      await writeFile(fifo, config);
      await expect.poll(() => out, { timeout: 10_000 }).toContain('"event":"listening"');
      await writeFile(fifo, config);
      const health = await (async () => {
        for (let i = 0; i < 100; i++) {
          try {
            return await fetch(`http://127.0.0.1:${port}/health`);
          } catch {
            await new Promise((r) => setTimeout(r, 50));
          }
        }
        throw new Error(`proxy never listened: ${out}`);
      })();
      expect(health.status).toBe(200);
      await expect.poll(() => out, { timeout: 5_000 }).toContain('"event":"config_reloaded"');
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
  });
});
