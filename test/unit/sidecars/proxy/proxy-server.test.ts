// The shared proxy frame on loopback: CONNECT heads read off the raw socket
// (in pieces, malformed, oversized), every other request still served by the
// http.Server with the bytes read before it took over, and spliced tunnels
// carrying bulk data intact through a slow reader (the reused read buffer).
import { createHash, randomBytes } from "node:crypto";
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dial, ProxyServer } from "../../../../src/sidecars/proxy/proxy-server.js";

const BULK = randomBytes(6 * 1024 * 1024 + 123);
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Send `parts` with a pause between them; resolve with everything read until the server closes (or `until` matches). */
function exchange(port: number, parts: Array<string | Buffer>, until?: (got: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => {
      chunks.push(c);
      if (until?.(Buffer.concat(chunks))) {
        s.destroy();
        resolve(Buffer.concat(chunks));
      }
    });
    s.on("close", () => resolve(Buffer.concat(chunks)));
    s.on("error", reject);
    s.on("connect", async () => {
      for (const p of parts) {
        s.write(p);
        await new Promise((r) => setTimeout(r, 15));
      }
    });
  });
}

describe("ProxyServer frame", () => {
  let proxy: ProxyServer<string>;
  let port: number;
  let echo: Server;
  let bulk: Server;
  let echoPort: number;
  let bulkPort: number;
  const seen: Array<{ url: string; rawHeaders: readonly string[]; head: string }> = [];

  beforeAll(async () => {
    // Echo server: what the tunnel delivers comes back.
    echo = createServer((s) => s.pipe(s));
    // Bulk server: speaks first, sends BULK and closes.
    bulk = createServer((s) => s.end(BULK));
    await Promise.all([new Promise<void>((r) => echo.listen(0, "127.0.0.1", r)), new Promise<void>((r) => bulk.listen(0, "127.0.0.1", r))]);
    echoPort = (echo.address() as AddressInfo).port;
    bulkPort = (bulk.address() as AddressInfo).port;
    proxy = new ProxyServer<string>({
      onHttpRequest: (req, res) => void res.writeHead(200, { "content-type": "text/plain" }).end(`plain ${req.method} ${req.url}`),
      onConnect(req, socket, head, target) {
        seen.push({ url: req.url, rawHeaders: req.rawHeaders, head: head.toString() });
        void dial("127.0.0.1", target.port, 5_000, true).then((up) => proxy.splice(socket, head, up));
      },
      onInterceptedRequest: (_req, res) => void res.destroy(),
      health: () => ({ mode: "test" }),
    });
    await proxy.listen(0, "127.0.0.1");
    port = (proxy.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await proxy?.close();
    echo?.close();
    bulk?.close();
  });

  it("reads a CONNECT head that arrives in pieces, passing headers and early tunnel bytes on", async () => {
    const hello = "ping-through-tunnel";
    const parts = ["CON", "NECT 127.0.0.1:", `${echoPort} HTTP/1.1\r\nHost: x\r`, "\nX-Thing:  spaced value \t\r\n", `\r\n${hello}`];
    const got = await exchange(port, parts, (b) => b.includes(hello));
    expect(got.toString()).toBe(`HTTP/1.1 200 Connection Established\r\n\r\n${hello}`);
    expect(seen.at(-1)).toEqual({ url: `127.0.0.1:${echoPort}`, rawHeaders: ["Host", "x", "X-Thing", "spaced value"], head: hello });
  });

  it.each([
    ["a bare LF line ending", "CONNECT 127.0.0.1:1 HTTP/1.1\nHost: x\r\n\r\n"],
    ["an obs-fold continuation", "CONNECT 127.0.0.1:1 HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n"],
    ["a space before the colon", "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost : x\r\n\r\n"],
    ["a control character in a value", "CONNECT 127.0.0.1:1 HTTP/1.1\r\nX-A: a\u0000b\r\n\r\n"],
    ["an unknown HTTP version", "CONNECT 127.0.0.1:1 HTTP/2.0\r\n\r\n"],
    ["a control character in the target", "CONNECT 127.0.0.1\u0001:1 HTTP/1.1\r\n\r\n"],
  ])("refuses a CONNECT head with %s (400, nothing dialed)", async (_what, head) => {
    const before = seen.length;
    const got = await exchange(port, [head]);
    expect(got.toString()).toMatch(/^HTTP\/1\.1 400 /);
    expect(seen.length).toBe(before);
  });

  it("survives clients that reset mid-head or right after a refusal", async () => {
    for (const data of ["CONNECT 127.0.0.1:1 HTTP/1.1\r\nX", "CONNECT bad HTTP/9\r\n\r\n", "GET http://x/ HT"]) {
      await new Promise<void>((resolve) => {
        const s = connect({ host: "127.0.0.1", port }, () => {
          s.write(data);
          setTimeout(() => {
            s.resetAndDestroy();
            resolve();
          }, 10);
        });
        s.on("error", () => resolve());
      });
    }
    await new Promise((r) => setTimeout(r, 50));
    const health = await exchange(port, ["GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]);
    expect(health.toString()).toMatch(/^HTTP\/1\.1 200 /);
  });

  it("refuses an oversized CONNECT head with 431", async () => {
    const got = await exchange(port, [`CONNECT 127.0.0.1:1 HTTP/1.1\r\nX-Big: ${"a".repeat(17 * 1024)}\r\n\r\n`]);
    expect(got.toString()).toMatch(/^HTTP\/1\.1 431 /);
  });

  it("answers a bad CONNECT target with 400 from the handler-side check", async () => {
    const got = await exchange(port, ["CONNECT no-port HTTP/1.1\r\n\r\n"]);
    expect(got.toString()).toMatch(/^HTTP\/1\.1 400 [\s\S]*host:port/);
  });

  it("hands everything else to the http.Server, including the bytes read before it took over", async () => {
    const got = await exchange(port, ["G", "ET http://example.test/a?b=c HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"]);
    expect(got.toString()).toMatch(/^HTTP\/1\.1 200 [\s\S]*plain GET http:\/\/example\.test\/a\?b=c/);
    const health = await exchange(port, ["GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]);
    expect(health.toString()).toContain('"mode":"test"');
    // A prefix of "CONNECT " that turns out to be something else.
    const other = await exchange(port, ["CON", "FIG / HTTP/1.1\r\nHost: x\r\n\r\n"]);
    expect(other.toString()).toMatch(/^HTTP\/1\.1 400 /);
  });

  it("still takes a CONNECT that follows a request on a kept-alive connection", async () => {
    const hello = "after-keepalive";
    const got = await exchange(port, ["GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n", `CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: x\r\n\r\n`, hello], (b) => b.includes(hello));
    expect(got.toString()).toContain("plain GET http://example.test/");
    expect(got.toString()).toContain(`HTTP/1.1 200 Connection Established\r\n\r\n${hello}`);
  });

  it("carries bulk data from a server that speaks first intact, through a slow reader", async () => {
    const got = await new Promise<Buffer>((resolve, reject) => {
      const s = connect({ host: "127.0.0.1", port });
      const chunks: Buffer[] = [];
      let n = 0;
      s.on("connect", () => s.write(`CONNECT 127.0.0.1:${bulkPort} HTTP/1.1\r\n\r\n`));
      s.on("data", (c: Buffer) => {
        chunks.push(c);
        // Stall now and then so the proxy's writes back up and its reads pause.
        if (++n % 8 === 0) {
          s.pause();
          setTimeout(() => s.resume(), 5);
        }
      });
      s.on("end", () => resolve(Buffer.concat(chunks)));
      s.on("error", reject);
    });
    const prefix = "HTTP/1.1 200 Connection Established\r\n\r\n";
    expect(got.subarray(0, prefix.length).toString()).toBe(prefix);
    const body = got.subarray(prefix.length);
    expect(body.length).toBe(BULK.length);
    expect(sha(body)).toBe(sha(BULK));
  });

  it("carries data both ways at once intact (echo of a large upload)", async () => {
    const up = randomBytes(3 * 1024 * 1024);
    const got = await exchange(port, [`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\n\r\n`, up], (b) => b.length >= up.length + 39);
    expect(sha(got.subarray(39))).toBe(sha(up));
  });
});
