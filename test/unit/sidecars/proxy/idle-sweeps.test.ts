// An idle proxy arms no timeout sweep (they were nearly all of an idle
// bottle's CPU); the first connection arms them again, and head timeouts are
// enforced as before, both ours (a CONNECT head) and node's (any other head;
// the decrypted one is covered in tunnel-rules.test.ts).
import { connect, type AddressInfo, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_LIMITS, ProxyServer } from "../../../../src/sidecars/proxy/proxy-server.js";

const until = async (what: () => boolean, ms = 2_000) => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** Send `head`, then read until the server closes; with the time that took. */
function partialHead(port: number, head: string): Promise<{ answer: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const s: Socket = connect({ host: "127.0.0.1", port }, () => s.write(head));
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("close", () => resolve({ answer: Buffer.concat(chunks).toString(), ms: Date.now() - t0 }));
    s.on("error", reject);
  });
}

describe("ProxyServer timeout sweeps", () => {
  let proxy: ProxyServer<string>;
  let port: number;

  beforeAll(async () => {
    proxy = new ProxyServer<string>(
      {
        onHttpRequest: (_req, res) => void res.end("ok"),
        onConnect: (_req, socket) => void socket.destroy(),
        onInterceptedRequest: (_req, res) => void res.destroy(),
        health: () => ({ mode: "test" }),
      },
      { ...DEFAULT_LIMITS, headTimeoutMs: 1_000 },
    );
    await proxy.listen(0, "127.0.0.1");
    port = (proxy.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it("arms none while no connection is open, and all while one is", async () => {
    expect(proxy.sweeping).toBe(false);
    const s = connect({ host: "127.0.0.1", port });
    await until(() => proxy.connections === 1);
    expect(proxy.sweeping).toBe(true);
    s.destroy();
    await until(() => proxy.connections === 0);
    expect(proxy.sweeping).toBe(false);
  });

  it("still answers 408 to a CONNECT head that never completes, after idling", async () => {
    const { answer, ms } = await partialHead(port, "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x");
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(4_000);
    await until(() => !proxy.sweeping);
  });

  it("still ends any other head that never completes (node's own sweep), after idling", async () => {
    // Node reports the timeout as a client error, which the outer server answers 400.
    const { answer, ms } = await partialHead(port, "GET http://x.test/ HTTP/1.1\r\nHost: x.te");
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(4_000);
    await until(() => !proxy.sweeping);
  });
});
