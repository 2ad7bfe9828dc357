// Red-team probes of HTTP framing through the firewall, in-process on
// loopback: request smuggling spellings (CL+TE, duplicate or listed
// Content-Length, obs-fold, bare LF, NUL, odd Transfer-Encoding),
// chunk-extension and trailer payloads, pipelining, a CONNECT after a
// request on a kept-alive connection, Upgrade, userinfo and backslash
// authorities, and a DNS answer that mixes a blocked and an allowed
// address. Each case is sent both as a plain forward-proxy request and
// inside an intercepted TLS tunnel, and checked on the upstream's side:
// what it received, not only what the client was told.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { connect as netConnect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxyServer } from "../../../../src/sidecars/proxy/proxy-server.js";
import { rawConnect } from "../../../fixtures/proxy/client.js";
import { createTestCa, writePem } from "../../../helpers/proxy/ca.js";
import { startFirewall } from "../../../helpers/proxy/in-process.js";

const GHP = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5";

interface Seen {
  method: string;
  url: string;
  headers: string[];
  body: string;
  trailers: string[];
}

describe("HTTP framing through the firewall (plain and inside intercepted TLS)", () => {
  let dir: string;
  let plainUp: HttpServer;
  let tlsUp: HttpsServer;
  let plainPort = 0;
  let tlsPort = 0;
  let firewall: ProxyServer<unknown>;
  let fwPort = 0;
  let fwCaPem = "";
  const seen: Seen[] = [];
  const lookups: string[] = [];
  const logs: string[] = [];

  const record = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.rawHeaders, body: Buffer.concat(chunks).toString("latin1"), trailers: req.rawTrailers });
      res.end("ok");
    });
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "audit-framing-"));
    const [fwCa, upCa] = await Promise.all([createTestCa("fw"), createTestCa("up")]);
    const fwFiles = await writePem(join(dir, "fw-ca"), fwCa);
    const upFiles = await writePem(join(dir, "up-ca"), upCa);
    fwCaPem = fwCa.cert;
    const leaf = await upCa.issue(["allowed.test"]);
    plainUp = createHttpServer(record);
    tlsUp = createHttpsServer({ cert: leaf.cert, key: leaf.key }, record);
    await Promise.all([new Promise<void>((r) => plainUp.listen(0, "127.0.0.1", r)), new Promise<void>((r) => tlsUp.listen(0, "127.0.0.1", r))]);
    plainPort = (plainUp.address() as AddressInfo).port;
    tlsPort = (tlsUp.address() as AddressInfo).port;
    const fw = await startFirewall(
      join(dir, "firewall.json"),
      {
        version: 1,
        allow: ["allowed.test", "mixed.test"],
        allow_cidrs: ["127.0.0.1/32"],
        intercept: { enabled: true, ca_cert: fwFiles.cert, ca_key: fwFiles.key, passthrough: [] },
        dlp: { enabled: true, canary_env: [], canary_exempt: [] },
        upstream_ca_files: [upFiles.cert],
        limits: { max_connections: 100, head_timeout_s: 5, handshake_timeout_s: 5, idle_timeout_s: 10, max_buffered_body_mb: 16 },
      },
      {
        env: {},
        logs,
        resolve: async (name) => {
          lookups.push(name);
          if (name === "allowed.test") return ["127.0.0.1"];
          // A blocked answer first: the firewall must dial the one it let through, not the first.
          if (name === "mixed.test") return ["127.0.0.2", "::1", "127.0.0.1"];
          throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
        },
      },
    );
    firewall = fw.proxy;
    fwPort = Number(new URL(fw.url).port);
  });

  afterAll(async () => {
    await firewall?.close();
    plainUp?.close();
    tlsUp?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Bytes on a fresh connection to the firewall; everything it answers until it closes (or `ms`). */
  function plain(data: string, ms = 1_500): Promise<string> {
    return new Promise((resolve) => {
      const s = netConnect({ host: "127.0.0.1", port: fwPort });
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => s.destroy(), ms);
      s.on("data", (c: Buffer) => chunks.push(c));
      s.on("error", () => {});
      s.on("close", () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString("latin1"));
      });
      s.write(data);
    });
  }

  /** CONNECT allowed.test, TLS with the firewall's CA, then `data`; everything answered inside until it closes (or `ms`). */
  async function tunnelled(data: string, ms = 1_500): Promise<string> {
    const answer = await rawConnect(`http://127.0.0.1:${fwPort}`, `allowed.test:${tlsPort}`);
    return new Promise((resolve) => {
      const tls = tlsConnect({ socket: answer.socket!, servername: "allowed.test", ca: [fwCaPem] });
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => tls.destroy(), ms);
      tls.on("secureConnect", () => tls.write(data));
      tls.on("data", (c: Buffer) => chunks.push(c));
      tls.on("error", () => {});
      tls.on("close", () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString("latin1"));
      });
    });
  }

  type Transport = { name: string; send: (d: string, ms?: number) => Promise<string>; target: (path: string) => string; host: () => string };
  const transports: Transport[] = [
    { name: "plain", send: plain, target: (p) => `http://allowed.test:${plainPort}${p}`, host: () => `allowed.test:${plainPort}` },
    { name: "tunnel", send: tunnelled, target: (p) => p, host: () => `allowed.test:${tlsPort}` },
  ];
  const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

  for (const t of transports) {
    describe(t.name, () => {
      const malformed: Array<[string, (target: string, host: string) => string]> = [
        [
          "Content-Length with Transfer-Encoding",
          (u, h) => `POST ${u} HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: ${h}\r\n\r\n`,
        ],
        ["two different Content-Lengths", (u, h) => `POST ${u} HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde`],
        ["two equal Content-Lengths", (u, h) => `POST ${u} HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd`],
        ["a Content-Length list", (u, h) => `POST ${u} HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 4, 4\r\n\r\nabcd`],
        ["an obs-folded header", (u, h) => `GET ${u} HTTP/1.1\r\nHost: ${h}\r\nX-A: a\r\n ${GHP}\r\n\r\n`],
        ["bare LF line ends", (u, h) => `GET ${u} HTTP/1.1\nHost: ${h}\nX-A: a\n\n`],
        ["a NUL in a header value", (u, h) => `GET ${u} HTTP/1.1\r\nHost: ${h}\r\nX-A: a\0b\r\n\r\n`],
        ["whitespace before a header's colon", (u, h) => `POST ${u} HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
        ["Transfer-Encoding that does not end in chunked", (u, h) => `POST ${u} HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`],
        ["an unknown Transfer-Encoding", (u, h) => `POST ${u} HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`],
        ["a lower-case method", (u, h) => `get ${u} HTTP/1.1\r\nHost: ${h}\r\n\r\n`],
      ];
      for (const [what, build] of malformed) {
        it(`refuses ${what} with 400, and nothing reaches the upstream`, async () => {
          seen.length = 0;
          const text = await t.send(build(t.target("/a"), t.host()));
          expect(statuses(text)[0], text).toBe(400);
          expect(seen).toEqual([]);
        });
      }

      it("a secret in a chunk extension or a trailer is never forwarded (the body is re-framed)", async () => {
        seen.length = 0;
        const text = await t.send(`POST ${t.target("/ext")} HTTP/1.1\r\nHost: ${t.host()}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;x=${GHP}\r\nabc\r\n0\r\nX-Tok: ${GHP}\r\n\r\n`);
        expect(statuses(text)).toEqual([200]);
        expect(seen).toHaveLength(1);
        expect(JSON.stringify(seen)).not.toContain(GHP);
        expect(seen[0]!.body).toBe("abc");
        expect(seen[0]!.trailers).toEqual([]);
      });

      it("a secret split over two chunks is refused", async () => {
        seen.length = 0;
        const [a, b] = [GHP.slice(0, 17), GHP.slice(17)];
        const text = await t.send(
          `POST ${t.target("/chunks")} HTTP/1.1\r\nHost: ${t.host()}\r\nTransfer-Encoding: chunked\r\n\r\n${a.length.toString(16)}\r\n${a}\r\n${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`,
        );
        expect(statuses(text)[0]).toBe(403);
        expect(seen).toEqual([]);
      });

      it("each pipelined request is judged on its own: a clean one passes, the next one's secret is refused", async () => {
        seen.length = 0;
        const text = await t.send(`GET ${t.target("/one")} HTTP/1.1\r\nHost: ${t.host()}\r\n\r\nGET ${t.target(`/two?k=${GHP}`)} HTTP/1.1\r\nHost: ${t.host()}\r\n\r\n`);
        expect(statuses(text)).toEqual([200, 403]);
        expect(seen.map((s) => s.url)).toEqual(["/one"]);
      });

      it("Upgrade and Connection are not passed on: no WebSocket or h2c tunnel past the scanner", async () => {
        seen.length = 0;
        const text = await t.send(
          `GET ${t.target("/ws")} HTTP/1.1\r\nHost: ${t.host()}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: websocket, h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
        expect(statuses(text)).toEqual([200]);
        expect(seen).toHaveLength(1);
        const names = seen[0]!.headers.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
        expect(names).not.toContain("upgrade");
        expect(names).not.toContain("http2-settings");
        expect(seen[0]!.headers.join(" ")).not.toMatch(/upgrade/i);
      });

      it("Expect: 100-continue is answered and the body is still scanned before anything is forwarded", async () => {
        seen.length = 0;
        const body = `{"k":"${GHP}"}`;
        const text = await t.send(`POST ${t.target("/expect")} HTTP/1.1\r\nHost: ${t.host()}\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        expect(statuses(text)).toEqual([100, 403]);
        expect(seen).toEqual([]);
      });

      it("HTTP/1.0 is served and closed", async () => {
        seen.length = 0;
        const text = await t.send(`GET ${t.target("/old")} HTTP/1.0\r\nHost: ${t.host()}\r\n\r\n`, 5_000);
        expect(statuses(text)).toEqual([200]);
        expect(seen.map((s) => s.url)).toEqual(["/old"]);
      });

      it("a second Host header carrying a secret is refused", async () => {
        seen.length = 0;
        const text = await t.send(`GET ${t.target("/h")} HTTP/1.1\r\nHost: ${t.host()}\r\nHost: ${GHP}.allowed.test\r\n\r\n`);
        expect(statuses(text)[0]).toBe(403);
        expect(seen).toEqual([]);
      });
    });
  }

  describe("plain forward-proxy authorities", () => {
    it("userinfo never selects the host: http://allowed.test@evil.test/ is judged as evil.test", async () => {
      seen.length = 0;
      lookups.length = 0;
      const text = await plain(`GET http://allowed.test@evil.test:${plainPort}/a HTTP/1.1\r\nHost: allowed.test\r\n\r\n`);
      expect(statuses(text)[0]).toBe(403);
      expect(text).toContain('"evil.test" is not in the allowlist');
      expect(lookups).toEqual([]);
      expect(seen).toEqual([]);
    });

    it("a backslash or a percent-encoded host is refused before any lookup", async () => {
      for (const target of [`http://evil.test\\@allowed.test:${plainPort}/a`, `http://%61llowed.test:${plainPort}/a`, `http://allowed.test%2f@evil.test:${plainPort}/a`]) {
        seen.length = 0;
        lookups.length = 0;
        const text = await plain(`GET ${target} HTTP/1.1\r\nHost: allowed.test\r\n\r\n`);
        expect([400, 403], `${target}: ${text}`).toContain(statuses(text)[0]);
        expect(lookups, target).toEqual([]);
        expect(seen, target).toEqual([]);
      }
    });

    it("a CONNECT after a request on a kept-alive connection is checked like any CONNECT", async () => {
      seen.length = 0;
      const text = await plain(`GET http://allowed.test:${plainPort}/first HTTP/1.1\r\nHost: allowed.test\r\n\r\nCONNECT evil.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n`);
      // (The first response may be cut short by the CONNECT's refusal closing the connection.)
      expect(statuses(text).at(-1)).toBe(403);
      expect(text).toContain('"evil.test" is not in the allowlist');
      expect(seen.map((s) => s.url)).toEqual(["/first"]);
    });

    it("a name whose answers mix blocked and allowed addresses is dialed at the allowed one, resolved once", async () => {
      seen.length = 0;
      lookups.length = 0;
      const text = await plain(`GET http://mixed.test:${plainPort}/mixed HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n`, 5_000);
      expect(statuses(text)).toEqual([200]);
      expect(lookups).toEqual(["mixed.test"]);
      expect(seen.map((s) => [s.url, s.headers[s.headers.findIndex((h) => h.toLowerCase() === "host") + 1]])).toEqual([["/mixed", `mixed.test:${plainPort}`]]);
    });
  });
});
