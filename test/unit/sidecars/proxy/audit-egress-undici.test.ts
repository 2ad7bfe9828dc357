// Red-team probes of egress's routed leg (undici through the firewall) and
// its response path, in-process on loopback: a hostile upstream that
// writes raw bytes (framing games, control characters node will not write,
// echoes of the credential in names, trailers, folded lines, 1-byte chunks,
// compressed streams, planted extra responses on a pooled connection,
// unsolicited 1xx, redirects) and a hostile agent that writes raw bytes
// into the intercepted tunnel (duplicate credential headers, smuggling
// spellings, pipelining, Upgrade, oversized heads). Each case is checked
// on both sides: what the upstream received and what the agent got. No
// log line and no reply may carry the credential.
import { gzipSync, constants as zlibConstants, createGzip } from "node:zlib";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxyServer } from "../../../../src/sidecars/proxy/proxy-server.js";
import { rawConnect } from "../../../fixtures/proxy/client.js";
import { createTestCa, writePem } from "../../../helpers/proxy/ca.js";
import { startEgress, startFirewall } from "../../../helpers/proxy/in-process.js";

const TOKEN = `tok-${"Zq7w".repeat(8)}`;
const INJECTED = `Bearer ${TOKEN}`;
/** A second route's credential on the same host, sent as X-Api-Key under /key/. */
const KEY = `key-${"Pb4x".repeat(6)}`;
const resolver = async (name: string) => {
  if (name === "routed.test") return ["127.0.0.1"];
  throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
};

/** What the upstream received: one entry per request it parsed. */
interface UpRequest {
  conn: number;
  head: string;
  body: Buffer;
}

/** How the raw upstream answers a path: bytes to write, or a function that drives the socket. */
type Script = (sock: TLSSocket, req: UpRequest) => void;

const crlf = (lines: string[], body = "") => `${lines.join("\r\n")}\r\n\r\n${body}`;

describe("audit: egress's routed leg and response path (undici)", () => {
  let dir: string;
  let upstream: TlsServer;
  let upPort = 0;
  /** A plain-HTTP upstream (reached through egress's and the firewall's node clients): /ctl answers with a control character in its reason phrase. */
  let plain: NetServer;
  let plainPort = 0;
  let firewall: ProxyServer<unknown>;
  let egress: ProxyServer<unknown>;
  let egressUrl: string;
  let egCaPem: string;
  const logs: string[] = [];
  const seen: UpRequest[] = [];
  const scripts = new Map<string, Script>();
  let connCount = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "audit-egress-undici-"));
    const [fwCa, egCa, upCa] = await Promise.all([createTestCa("fw"), createTestCa("eg"), createTestCa("up")]);
    const fwFiles = await writePem(join(dir, "fw-ca"), fwCa);
    const egFiles = await writePem(join(dir, "eg-ca"), egCa);
    const upFiles = await writePem(join(dir, "up-ca"), upCa);
    egCaPem = await readFile(egFiles.cert, "utf8");
    const leaf = await upCa.issue(["routed.test"]);
    // A raw HTTP/1.1 server: parses request heads (Content-Length bodies only) and lets each path's script write whatever bytes it likes.
    upstream = createTlsServer({ cert: leaf.cert, key: leaf.key }, (sock) => {
      const conn = ++connCount;
      let buf = Buffer.alloc(0);
      sock.on("error", () => {});
      sock.on("data", (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        for (;;) {
          const end = buf.indexOf("\r\n\r\n");
          if (end < 0) return;
          const head = buf.toString("latin1", 0, end);
          const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
          if (head.startsWith("POST /api/early ")) {
            // Answers on the head alone, before (and without) reading the body, and closes.
            seen.push({ conn, head, body: Buffer.alloc(0) });
            sock.end(crlf(["HTTP/1.1 413 Content Too Large", "Content-Length: 8", "Connection: close"], "too big!"));
            buf = Buffer.alloc(0);
            return;
          }
          if (buf.length < end + 4 + length) return;
          const body = buf.subarray(end + 4, end + 4 + length);
          buf = buf.subarray(end + 4 + length);
          const req = { conn, head, body };
          seen.push(req);
          const path = head.split(" ")[1] ?? "";
          const script = scripts.get(path.split("?")[0]!);
          if (script) script(sock, req);
          else sock.write(crlf(["HTTP/1.1 404 Not Found", "Content-Length: 0"]));
        }
      });
    });
    // Plain answers several cases ask for.
    scripts.set("/api/seen", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 4"], "seen")));
    scripts.set("/public/next", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 4"], "next")));
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    upPort = (upstream.address() as AddressInfo).port;
    plain = createNetServer((sock) => {
      sock.on("error", () => {});
      sock.on("data", (c: Buffer) => {
        const path = c.toString("latin1").split(" ")[1];
        sock.write(path === "/ctl" ? crlf(["HTTP/1.1 200 O\x01K", "Content-Length: 2"], "hi") : crlf(["HTTP/1.1 200 OK", "Content-Length: 2"], "ok"));
      });
    });
    await new Promise<void>((r) => plain.listen(0, "127.0.0.1", r));
    plainPort = (plain.address() as AddressInfo).port;
    const fw = await startFirewall(
      join(dir, "firewall.json"),
      {
        version: 1,
        allow: ["routed.test"],
        allow_cidrs: ["127.0.0.0/8"],
        intercept: { enabled: true, ca_cert: fwFiles.cert, ca_key: fwFiles.key, passthrough: [{ host: "routed.test", port: upPort }] },
        dlp: { enabled: true, canary_env: ["TOKEN"], canary_exempt: [{ host: "routed.test", header: "Authorization", env: "TOKEN" }] },
        upstream_ca_files: [upFiles.cert],
      },
      { env: { TOKEN }, logs, resolve: resolver },
    );
    firewall = fw.proxy;
    const eg = await startEgress(
      join(dir, "egress.json"),
      {
        version: 1,
        upstream_proxy: fw.url,
        ca_cert: egFiles.cert,
        ca_key: egFiles.key,
        upstream_ca_files: [upFiles.cert],
        // The credential is for /api/ only: the rest of the host is reached without it.
        routes: [
          { name: "api", host: "routed.test", port: upPort, path_prefix: "/api/", header: "Authorization", value: "Bearer ${TOKEN}" },
          { name: "key", host: "routed.test", port: upPort, path_prefix: "/key/", header: "X-Api-Key", value: "${KEY}" },
        ],
        limits: { idle_timeout_s: 1 },
      },
      { env: { TOKEN, KEY }, logs },
    );
    egress = eg.proxy;
    egressUrl = eg.url;
  });

  afterAll(async () => {
    await Promise.all([egress?.close(), firewall?.close()]);
    upstream?.close();
    plain?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A TLS connection to routed.test through egress (the agent's side of an intercepted tunnel). */
  async function tunnel(): Promise<TLSSocket> {
    const answer = await rawConnect(egressUrl, `routed.test:${upPort}`);
    expect(answer.status).toBe(200);
    return new Promise((resolve, reject) => {
      const tls = tlsConnect({ socket: answer.socket!, servername: "routed.test", ca: [egCaPem] }, () => resolve(tls));
      tls.once("error", reject);
    });
  }

  /** Raw bytes into a fresh tunnel; everything the agent reads until egress closes or `quietMs` pass without a byte. */
  async function exchange(raw: string | Buffer | Array<string | Buffer>, quietMs = 1_500, tls?: TLSSocket): Promise<string> {
    const sock = tls ?? (await tunnel());
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let timer = setTimeout(done, quietMs);
      function done() {
        clearTimeout(timer);
        sock.destroy();
        resolve(Buffer.concat(chunks).toString("latin1"));
      }
      sock.on("data", (c: Buffer) => {
        chunks.push(c);
        clearTimeout(timer);
        timer = setTimeout(done, quietMs);
      });
      sock.on("error", done);
      sock.on("close", done);
      for (const r of [raw].flat()) sock.write(r);
    });
  }

  /** A plain-HTTP proxy request to egress; what comes back until egress closes or 800 ms pass without a byte. */
  function plainExchange(raw: string): Promise<string> {
    const { port } = new URL(egressUrl);
    return new Promise((resolve) => {
      const sock = netConnect({ host: "127.0.0.1", port: Number(port) });
      const chunks: Buffer[] = [];
      let timer = setTimeout(done, 800);
      function done() {
        clearTimeout(timer);
        sock.destroy();
        resolve(Buffer.concat(chunks).toString("latin1"));
      }
      sock.on("data", (c: Buffer) => {
        chunks.push(c);
        clearTimeout(timer);
        timer = setTimeout(done, 800);
      });
      sock.on("error", done);
      sock.on("close", done);
      sock.write(raw);
    });
  }

  const get = (path: string, extra: string[] = []) => crlf([`GET ${path} HTTP/1.1`, "Host: routed.test", ...extra]);
  const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
  const upstreamSaw = (path: string) => seen.filter((s) => s.head.startsWith(`GET ${path} `) || s.head.split(" ")[1] === path);
  const spellings = [TOKEN, KEY, Buffer.from(TOKEN).toString("base64"), Buffer.from(INJECTED).toString("base64"), Buffer.from(KEY).toString("base64")];
  const noCredential = (text: string) => {
    for (const s of spellings) expect(text).not.toContain(s);
    expect(text).not.toContain(TOKEN.slice(4, 20));
  };

  /** Egress still serves after a probe: a plain request on a new tunnel gets its answer. */
  async function stillServes(): Promise<void> {
    scripts.set("/api/ok", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 2"], "ok")));
    const answer = await exchange(get("/api/ok"), 500);
    expect(statusOf(answer)).toBe(200);
    expect(answer.endsWith("\r\n\r\nok")).toBe(true);
  }

  /** The upstream requests (heads) for a path since `from`. */
  const sawSince = (from: number, path: string) => seen.slice(from).filter((r) => r.head.split(" ")[1] === path);
  const headerLines = (head: string, name: string) => head.split("\r\n").filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));

  describe("a hostile upstream's response head", () => {
    it("a reason phrase with a control character gets the agent a 502 that says why, and egress keeps serving", async () => {
      scripts.set("/api/ctl-reason", (sock) => sock.write(crlf(["HTTP/1.1 200 O\x01K", "Content-Length: 2"], "hi")));
      const answer = await exchange(get("/api/ctl-reason"), 800);
      expect(statusOf(answer)).toBe(502);
      expect(answer).toContain("reason phrase that cannot be relayed");
      await stillServes();
    });

    it("the same on plain HTTP (egress's and the firewall's node client): a 502, and neither sidecar goes down", async () => {
      const answer = await plainExchange(crlf([`GET http://routed.test:${plainPort}/ctl HTTP/1.1`, `Host: routed.test:${plainPort}`]));
      expect(statusOf(answer)).toBe(502);
      expect(answer).toContain("reason phrase that cannot be relayed");
      const again = await plainExchange(crlf([`GET http://routed.test:${plainPort}/ok HTTP/1.1`, `Host: routed.test:${plainPort}`]));
      expect(statusOf(again)).toBe(200);
      await stillServes();
    });

    it("a header value with DEL, a folded line, CL with TE, duplicate or listed Content-Length: a 502 and no body", async () => {
      scripts.set("/api/ctl-header", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "X-A: a\x7fb", "Content-Length: 2"], "hi")));
      scripts.set("/api/fold", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "X-Echo: Bearer", ` ${TOKEN}`, "Content-Length: 2"], "hi")));
      scripts.set("/api/clte", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 3", "Transfer-Encoding: chunked"], `2\r\nhi\r\n0\r\n\r\n`)));
      scripts.set("/api/dupcl", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 2", "Content-Length: 5"], "hello")));
      scripts.set("/api/samecl", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 2", "Content-Length: 2"], "hi")));
      scripts.set("/api/clist", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 2, 2"], "hi")));
      for (const p of ["/api/ctl-header", "/api/fold", "/api/clte", "/api/dupcl", "/api/samecl", "/api/clist"]) {
        const answer = await exchange(get(p), 800);
        expect(statusOf(answer), p).toBe(502);
        expect(answer, p).not.toMatch(/\r\n\r\n(hi|hello)$/);
        noCredential(answer);
      }
      await stillServes();
    });

    it("unsolicited 100 or 101, a status below 100, an oversized head: a 502, nothing of it relayed", async () => {
      scripts.set("/api/100", (sock) => sock.write(`HTTP/1.1 100 Continue\r\n\r\n${crlf(["HTTP/1.1 200 OK", "Content-Length: 2"], "hi")}`));
      scripts.set("/api/101", (sock) => sock.write(crlf(["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"], INJECTED)));
      scripts.set("/api/099", (sock) => sock.write(crlf(["HTTP/1.1 099 Odd", "Content-Length: 2"], "hi")));
      scripts.set("/api/big-head", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", `X-Big: ${"b".repeat(70_000)}`, "Content-Length: 2"], "hi")));
      for (const p of ["/api/100", "/api/101", "/api/099", "/api/big-head"]) {
        const answer = await exchange(get(p), 800);
        expect(statusOf(answer), p).toBe(502);
        noCredential(answer);
      }
      await stillServes();
    });

    it("masks the credential in a header name, drops trailers, never follows a redirect", async () => {
      scripts.set("/api/name", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", `X-${TOKEN}: 1`, "Content-Length: 2"], "hi")));
      scripts.set("/api/trailer", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Trailer: X-Echo"], `2\r\nhi\r\n0\r\nX-Echo: ${INJECTED}\r\n\r\n`)));
      scripts.set("/api/redirect", (sock) => sock.write(crlf(["HTTP/1.1 302 Found", `Location: https://evil.test/steal?t=${encodeURIComponent(INJECTED)}`, "Content-Length: 0"])));
      const name = await exchange(get("/api/name"), 800);
      expect(statusOf(name)).toBe(200);
      expect(name).toMatch(/\r\nX-\*{10,}: 1\r\n/);
      const trailer = await exchange(get("/api/trailer"), 800);
      expect(trailer).toMatch(/\r\n\r\n2\r\nhi\r\n0\r\n\r\n$/);
      const before = seen.length;
      const redirect = await exchange(get("/api/redirect"), 800);
      expect(statusOf(redirect)).toBe(302);
      expect(redirect).toContain("Location: https://evil.test/steal?t=");
      expect(seen.length - before).toBe(1);
      for (const a of [name, trailer, redirect]) noCredential(a);
    });
  });

  describe("a hostile upstream's framing on the pooled connection", () => {
    it("a body after 204, or bytes after a complete response, never reach the next request on the pool", async () => {
      const planted = crlf(["HTTP/1.1 200 OK", `Content-Length: ${INJECTED.length}`], INJECTED);
      scripts.set("/api/204", (sock) => sock.write(crlf(["HTTP/1.1 204 No Content", "Content-Length: 40"], planted)));
      scripts.set("/api/extra", (sock) => {
        sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 2"], "hi"));
        setTimeout(() => sock.write(planted), 100);
      });
      scripts.set("/public/next", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 4"], "next")));
      for (const p of ["/api/204", "/api/extra"]) {
        const a = await exchange(get(p), 500);
        const b = await exchange(get("/public/next"), 500);
        expect(statusOf(a), p).toBe(p === "/api/204" ? 204 : 200);
        // A 204 has no content: the upstream's Content-Length on it is not relayed (a client that believed it would take the next response for its body).
        if (p === "/api/204") expect(a).not.toMatch(/content-length/i);
        expect(b.endsWith("\r\n\r\nnext"), p).toBe(true);
        noCredential(a + b);
      }
    });
  });

  describe("echoes of the credential", () => {
    it("masks it in a response to a request egress added nothing to (a path outside the route's prefix)", async () => {
      scripts.set("/public/last-auth", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", `Content-Length: ${INJECTED.length}`], INJECTED)));
      scripts.set("/public/last-auth-gz", (sock) => {
        const gz = gzipSync(`{"last":"${INJECTED}"}`);
        sock.write(Buffer.concat([Buffer.from(crlf(["HTTP/1.1 200 OK", "Content-Encoding: gzip", `Content-Length: ${gz.length}`])), gz]));
      });
      const plain = await exchange(get("/public/last-auth"), 800);
      expect(statusOf(plain)).toBe(200);
      expect(plain).toMatch(/\r\n\r\nBearer \*{36}$/);
      const gz = await exchange(get("/public/last-auth-gz"), 800);
      expect(statusOf(gz)).toBe(200);
      expect(gz).toContain(`{"last":"Bearer ${"*".repeat(36)}"}`);
      for (const a of [plain, gz]) noCredential(a);
      // The request itself carried no credential.
      expect(headerLines(upstreamSaw("/public/last-auth")[0]!.head, "authorization")).toEqual([]);
    });

    it("masks another route's credential too (every credential egress holds, in every response from a routed host)", async () => {
      scripts.set("/api/other-key", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", `X-Seen: ${KEY}`, `Content-Length: ${KEY.length + 2}`], `[${KEY}]`)));
      const answer = await exchange(get("/api/other-key"), 800);
      expect(statusOf(answer)).toBe(200);
      expect(answer).toContain(`X-Seen: ${"*".repeat(KEY.length)}\r\n`);
      expect(answer.endsWith(`[${"*".repeat(KEY.length)}]`)).toBe(true);
      noCredential(answer);
    });

    it("masks it sent a byte per chunk, and inside a gzip event stream flushed in pieces", async () => {
      scripts.set("/api/bytes", (sock) => {
        sock.write(crlf(["HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Type: text/plain"]));
        const text = `x ${INJECTED} y`;
        let i = 0;
        const next = () => {
          if (i >= text.length) return void sock.write("0\r\n\r\n");
          sock.write(`1\r\n${text[i++]}\r\n`, () => setImmediate(next));
        };
        next();
      });
      scripts.set("/api/gzsse", (sock) => {
        sock.write(crlf(["HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Type: text/event-stream", "Content-Encoding: gzip"]));
        const gz = createGzip();
        gz.on("data", (c: Buffer) => sock.write(Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from("\r\n")])));
        gz.on("end", () => sock.write("0\r\n\r\n"));
        const parts = ["data: a", INJECTED.slice(0, 9), INJECTED.slice(9, 20), INJECTED.slice(20), "\n\n"];
        let i = 0;
        const next = () => {
          if (i >= parts.length) return void gz.end();
          gz.write(parts[i++]!);
          gz.flush(zlibConstants.Z_SYNC_FLUSH, () => setTimeout(next, 20));
        };
        next();
      });
      const bytes = await exchange(get("/api/bytes"), 1000);
      expect(statusOf(bytes)).toBe(200);
      const sse = await exchange(get("/api/gzsse"), 1000);
      expect(statusOf(sse)).toBe(200);
      expect(sse).not.toMatch(/content-encoding/i);
      const dechunk = (a: string) => a.slice(a.indexOf("\r\n\r\n") + 4).replace(/[0-9a-f]+\r\n([\s\S]*?)\r\n/g, "$1");
      expect(dechunk(bytes)).toBe(`x Bearer ${"*".repeat(36)} y`);
      expect(dechunk(sse)).toBe(`data: aBearer ${"*".repeat(36)}\n\n`);
      for (const a of [bytes, sse]) noCredential(a);
    });

    it("masks what a TRACE echoes back (the request as the upstream got it, credential included)", async () => {
      scripts.set("/api/trace", (sock, req) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Type: message/http", `Content-Length: ${req.head.length}`], req.head)));
      const answer = await exchange(crlf(["TRACE /api/trace HTTP/1.1", "Host: routed.test"]), 800);
      expect(statusOf(answer)).toBe(200);
      expect(answer).toMatch(/Authorization: Bearer \*{36}/);
      noCredential(answer);
    });
  });

  describe("responses without a body keep their encoding", () => {
    it("HEAD and 304 of a gzip resource keep Content-Encoding (and HEAD its length); an empty gzip body is an empty body", async () => {
      const body = gzipSync("hello");
      scripts.set("/api/gz", (sock, req) => {
        if (req.head.startsWith("HEAD")) sock.write(crlf(["HTTP/1.1 200 OK", "Content-Encoding: gzip", `Content-Length: ${body.length}`]));
        else sock.write(crlf(["HTTP/1.1 304 Not Modified", "Content-Encoding: gzip", "ETag: x"]));
      });
      scripts.set("/api/gz-empty", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Encoding: gzip", "Content-Length: 0"])));
      scripts.set("/api/gz-empty-chunked", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Encoding: gzip", "Transfer-Encoding: chunked"], "0\r\n\r\n")));
      const head = await exchange(crlf(["HEAD /api/gz HTTP/1.1", "Host: routed.test"]), 600);
      expect(statusOf(head)).toBe(200);
      expect(head).toMatch(/\r\nContent-Encoding: gzip\r\n/);
      expect(head).toContain(`\r\nContent-Length: ${body.length}\r\n`);
      expect(head.endsWith("\r\n\r\n")).toBe(true);
      const notModified = await exchange(get("/api/gz", ["If-None-Match: x"]), 600);
      expect(statusOf(notModified)).toBe(304);
      expect(notModified).toMatch(/\r\nContent-Encoding: gzip\r\n/);
      for (const p of ["/api/gz-empty", "/api/gz-empty-chunked"]) {
        const empty = await exchange(get(p), 600);
        expect(statusOf(empty), p).toBe(200);
        expect(empty, p).toMatch(/\r\n\r\n(0\r\n\r\n)?$/);
        expect(empty, p).toMatch(/\r\n(Content-Length: 0|Transfer-Encoding: chunked)\r\n/);
      }
      const aborted = logs.filter((l) => l.includes('"mode":"egress"') && l.includes('"response aborted"'));
      expect(aborted).toEqual([]);
    });
  });

  describe("a hostile agent inside the tunnel", () => {
    it("its own Authorization headers (any case, repeated) are replaced by the one credential", async () => {
      scripts.set("/api/seen", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 4"], "seen")));
      const from = seen.length;
      const a = await exchange(get("/api/seen", ["Authorization: Bearer agent-one", "authorization: Bearer agent-two", "AUTHORIZATION: x"]), 500);
      expect(statusOf(a)).toBe(200);
      const [up] = sawSince(from, "/api/seen");
      expect(headerLines(up!.head, "authorization")).toEqual([`Authorization: ${INJECTED}`]);
    });

    it("an Authorization trailer on its chunked body goes nowhere: the upstream gets the body with its length and the one credential", async () => {
      scripts.set("/api/seen", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 4"], "seen")));
      const from = seen.length;
      const a = await exchange(
        crlf(["POST /api/seen HTTP/1.1", "Host: routed.test", "Transfer-Encoding: chunked", "Trailer: Authorization"], "4\r\nbody\r\n0\r\nAuthorization: Bearer agent-trailer\r\n\r\n"),
        500,
      );
      expect(statusOf(a)).toBe(200);
      const [up] = seen.slice(from);
      expect(up!.body.toString()).toBe("body");
      expect(headerLines(up!.head, "authorization")).toEqual([`Authorization: ${INJECTED}`]);
      expect(headerLines(up!.head, "trailer")).toEqual([]);
      expect(up!.head).not.toContain("agent-trailer");
    });

    it("cannot stand in for the route's header with underscores (X_Api_Key reads as X-Api-Key to CGI-style servers)", async () => {
      scripts.set("/key/seen", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 4"], "seen")));
      const from = seen.length;
      const a = await exchange(crlf(["GET /key/seen HTTP/1.1", "Host: routed.test", "X_Api_Key: agent-one", "x_api-key: agent-two", "X-Api_Key: agent-three", "X-Api-Key: agent-four"]), 500);
      expect(statusOf(a)).toBe(200);
      const [up] = sawSince(from, "/key/seen");
      const keyLines = up!.head.split("\r\n").filter((l) => /^x[-_]api[-_]key:/i.test(l));
      expect(keyLines).toEqual([`X-Api-Key: ${KEY}`]);
    });

    it("cannot pick the Host or another authority, nor leave the prefix by dot segments or encoded separators", async () => {
      scripts.set("/admin", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 5"], "admin")));
      let from = seen.length;
      await exchange(get("/api/seen", ["Host: evil.test"]).replace("Host: routed.test\r\n", ""), 500);
      expect(headerLines(sawSince(from, "/api/seen")[0]!.head, "host")).toEqual([`host: routed.test:${upPort}`]);
      from = seen.length;
      const foreign = await exchange(crlf([`GET https://evil.test:${upPort}/api/seen HTTP/1.1`, "Host: evil.test"]), 500);
      expect(statusOf(foreign)).toBe(400);
      expect(seen.length - from).toBe(0);
      for (const path of ["/api/..%2fadmin", "/api/%2e%2e%2fadmin", "/api/%252e%252e/admin"]) {
        from = seen.length;
        const answer = await exchange(get(path), 500);
        expect(statusOf(answer), path).toBe(400);
        expect(seen.length - from, path).toBe(0);
      }
      for (const path of ["/api/../admin", "/api/%2e%2e/admin", "/api\\..\\admin"]) {
        from = seen.length;
        const answer = await exchange(get(path), 500);
        expect(statusOf(answer), path).toBe(200);
        const sent = seen.slice(from);
        expect(
          sent.map((r) => r.head.split(" ")[1]),
          path,
        ).toEqual(["/admin"]);
        expect(headerLines(sent[0]!.head, "authorization"), path).toEqual([]);
      }
    });

    it("pipelined requests are sent one by one, the credential only on the one under the prefix", async () => {
      scripts.set("/public/next", (sock) => sock.write(crlf(["HTTP/1.1 200 OK", "Content-Length: 4"], "next")));
      const from = seen.length;
      const b = await exchange(get("/api/seen") + get("/public/next", ["Authorization: Bearer agent-own"]), 800);
      expect(b).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nseenHTTP\/1\.1 200 OK[\s\S]*\r\n\r\nnext$/);
      expect(headerLines(sawSince(from, "/api/seen")[0]!.head, "authorization")).toEqual([`Authorization: ${INJECTED}`]);
      expect(headerLines(sawSince(from, "/public/next")[0]!.head, "authorization")).toEqual(["Authorization: Bearer agent-own"]);
    });

    it("smuggling spellings (CL with TE, a space before the colon, obs-fold), an oversized head and CONNECT are refused with nothing sent upstream", async () => {
      const cases = [
        crlf(["POST /api/seen HTTP/1.1", "Host: routed.test", "Content-Length: 4", "Transfer-Encoding: chunked"], "0\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: routed.test\r\n\r\n"),
        crlf(["GET /api/seen HTTP/1.1", "Host: routed.test", "Authorization : Bearer spaced"]),
        crlf(["GET /api/seen HTTP/1.1", "Host: routed.test", "X-Fold: a", " Authorization: folded"]),
        crlf(["GET /api/seen HTTP/1.1", "Host: routed.test", `X-Big: ${"a".repeat(20_000)}`]),
        crlf(["CONNECT other.test:443 HTTP/1.1", "Host: other.test:443"]),
      ];
      for (const raw of cases) {
        const from = seen.length;
        const answer = await exchange(raw, 500);
        expect([0, 400, 431], raw.slice(0, 60)).toContain(statusOf(answer));
        expect(seen.length - from, raw.slice(0, 60)).toBe(0);
      }
      await stillServes();
    });

    it("an Upgrade request reaches the upstream as a plain request (no Upgrade, no Connection: upgrade)", async () => {
      const from = seen.length;
      const d = await exchange(get("/api/seen", ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]), 600);
      expect(statusOf(d)).toBe(200);
      const [up] = sawSince(from, "/api/seen");
      expect(headerLines(up!.head, "upgrade")).toEqual([]);
      expect(headerLines(up!.head, "connection")).toEqual(["connection: keep-alive"]);
    });

    it("a body in a transfer-coding egress does not undo (gzip, chunked) is still scanned: a secret inside never leaves", async () => {
      const secret = gzipSync(`{"token":"ghp_${"Zz9".repeat(12)}"}`);
      const from = seen.length;
      const answer = await exchange([crlf(["POST /api/seen HTTP/1.1", "Host: routed.test", "Transfer-Encoding: gzip, chunked"]), `${secret.length.toString(16)}\r\n`, secret, "\r\n0\r\n\r\n"], 600);
      expect([400, 403]).toContain(statusOf(answer));
      expect(seen.length - from).toBe(0);
    });

    it("an upstream that answers before reading the body: the agent gets that answer, and the pool goes on", async () => {
      const body = Buffer.alloc(4 * 1024 * 1024, "u");
      const answer = await exchange([crlf(["POST /api/early HTTP/1.1", "Host: routed.test", `Content-Length: ${body.length}`]), body], 1_000);
      expect(statusOf(answer)).toBe(413);
      expect(answer.endsWith("\r\n\r\ntoo big!")).toBe(true);
      await stillServes();
    });

    it("many requests at once to one origin are each answered with their own response", async () => {
      scripts.set("/api/slow", (sock, req) => {
        const n = /[?&]n=(\d+)/.exec(req.head)?.[1] ?? "";
        setTimeout(() => sock.write(crlf(["HTTP/1.1 200 OK", `Content-Length: ${n.length}`], n)), 150);
      });
      const answers = await Promise.all([...Array(24).keys()].map((i) => exchange(get(`/api/slow?n=${i}`), 400)));
      answers.forEach((a, i) => {
        expect(statusOf(a), String(i)).toBe(200);
        expect(a.endsWith(`\r\n\r\n${i}`), String(i)).toBe(true);
      });
    });

    it("one upstream that stalls holds up no other request to the same origin", async () => {
      scripts.set("/api/stall", () => {});
      const stalled = exchange(get("/api/stall"), 2_500);
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      const other = await exchange(get("/api/seen"), 300);
      expect(statusOf(other)).toBe(200);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(statusOf(await stalled)).toBe(504);
    });
  });

  it("no log line carries the credential", () => {
    expect(logs.length).toBeGreaterThan(20);
    noCredential(logs.join("\n"));
  });
});
