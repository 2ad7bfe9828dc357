// Spliced tunnels move bytes by hand and leave their timeouts to the proxy's
// sweep: idleness is "no byte either way for the whole period" (a tunnel
// that keeps moving bytes stays open), the ClientHello has its deadline, an
// upstream that goes away before the ClientHello ends the tunnel at once,
// and byte counts are what crossed.
import { createHash, randomBytes } from "node:crypto";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_LIMITS, dial, ProxyServer, type PassthroughOutcome } from "../../../../src/sidecars/proxy/proxy-server.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const CONNECTED = "HTTP/1.1 200 Connection Established\r\n\r\n";

/** Open a tunnel through the proxy; resolves once the 200 is read. */
function tunnel(port: number, target: string): Promise<{ s: Socket; after: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port }, () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    let buf = Buffer.alloc(0);
    const after: Buffer[] = [];
    let open = false;
    s.on("data", (c: Buffer) => {
      if (open) return void after.push(c);
      buf = Buffer.concat([buf, c]);
      if (buf.length < CONNECTED.length) return;
      if (buf.subarray(0, CONNECTED.length).toString() !== CONNECTED) return reject(new Error(buf.toString()));
      open = true;
      if (buf.length > CONNECTED.length) after.push(buf.subarray(CONNECTED.length));
      resolve({ s, after });
    });
    s.on("error", () => {});
  });
}

const closed = (s: Socket) =>
  new Promise<number>((r) => {
    const t0 = Date.now();
    if (s.destroyed) return r(0);
    s.once("close", () => r(Date.now() - t0));
  });

describe("spliced tunnels", () => {
  let proxy: ProxyServer<string>;
  let port: number;
  let echo: Server;
  let slam: Server;
  let echoPort: number;
  let slamPort: number;
  const limits: string[] = [];
  const outcomes: Array<PassthroughOutcome | { up: number; down: number }> = [];

  beforeAll(async () => {
    echo = createServer((s) => s.pipe(s));
    // Accepts and closes at once: an upstream that goes away.
    slam = createServer((s) => s.destroy());
    await Promise.all([new Promise<void>((r) => echo.listen(0, "127.0.0.1", r)), new Promise<void>((r) => slam.listen(0, "127.0.0.1", r))]);
    echoPort = (echo.address() as AddressInfo).port;
    slamPort = (slam.address() as AddressInfo).port;
    proxy = new ProxyServer<string>(
      {
        onHttpRequest: (_req, res) => void res.end(),
        onConnect(_req, socket, head, target) {
          // "sni.test:<port>": passthrough held to sni.test; "plain:<port>": a plain splice without the reused read buffer.
          if (target.host === "sni.test") void dial("127.0.0.1", target.port, 5_000, true).then((up) => proxy.passthrough(socket, head, up, "sni.test", false).then((o) => outcomes.push(o)));
          else void dial("127.0.0.1", target.port, 5_000, target.host !== "plain").then((up) => proxy.splice(socket, head, up).then((o) => outcomes.push(o)));
        },
        onInterceptedRequest: (_req, res) => void res.destroy(),
        health: () => ({ mode: "test" }),
        onLimit: (limit) => void limits.push(limit),
      },
      { ...DEFAULT_LIMITS, handshakeTimeoutMs: 3_000, idleTimeoutMs: 1_000 },
    );
    await proxy.listen(0, "127.0.0.1");
    port = (proxy.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await proxy?.close();
    echo?.close();
    slam?.close();
  });

  it("keeps a tunnel that moves a byte now and then open past the idle timeout, and closes it once it falls silent", async () => {
    limits.length = 0;
    const { s, after } = await tunnel(port, `127.0.0.1:${echoPort}`);
    let lastByte = 0;
    for (let i = 0; i < 8; i++) {
      s.write("x");
      lastByte = Date.now();
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(s.destroyed).toBe(false);
    expect(Buffer.concat(after).toString()).toBe("xxxxxxxx");
    expect(limits).toEqual([]);
    await closed(s);
    // Never before a whole idle period without a byte; at most a couple of sweep periods after.
    const ms = Date.now() - lastByte;
    expect(ms).toBeGreaterThanOrEqual(1_000);
    expect(ms).toBeLessThan(3_000);
    expect(limits).toEqual(["idle_timeout"]);
  });

  it("carries both directions intact through an upstream read the ordinary way, and counts the bytes", async () => {
    outcomes.length = 0;
    const up = randomBytes(2 * 1024 * 1024 + 7);
    const { s, after } = await tunnel(port, `plain:${echoPort}`);
    s.write(up);
    await new Promise<void>((r) => {
      const check = () => (Buffer.concat(after).length >= up.length ? r() : setTimeout(check, 10));
      check();
    });
    expect(sha(Buffer.concat(after))).toBe(sha(up));
    s.end();
    await closed(s);
    await new Promise((r) => setTimeout(r, 50));
    expect(outcomes).toEqual([{ ok: true, sni: undefined, up: up.length, down: up.length }]);
  });

  it("ends a passthrough tunnel at once when the upstream goes away before the ClientHello", async () => {
    outcomes.length = 0;
    const { s } = await tunnel(port, `sni.test:${slamPort}`);
    const ms = await closed(s);
    expect(ms).toBeLessThan(1_500);
    await new Promise((r) => setTimeout(r, 50));
    expect(outcomes).toEqual([{ ok: false, reason: "the upstream closed the connection before the client's ClientHello" }]);
  });

  it("refuses a passthrough tunnel whose ClientHello never comes, by the handshake deadline", async () => {
    limits.length = 0;
    outcomes.length = 0;
    const { s } = await tunnel(port, `sni.test:${echoPort}`);
    const ms = await closed(s);
    expect(ms).toBeGreaterThanOrEqual(2_500);
    expect(limits).toEqual(["handshake_timeout"]);
    expect(outcomes).toEqual([{ ok: false, reason: "no TLS ClientHello in time" }]);
  });
});
