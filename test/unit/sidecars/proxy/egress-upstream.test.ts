// Egress's routed leg (undici over CONNECT tunnels through the firewall),
// end to end in-process on loopback: what reaches the upstream (the body
// whole, with its own length, whatever framing the agent used; no Expect),
// what reaches the agent (status, reason, repeated and latin1 headers, a
// large body intact), failures (upstream silent → 504, cut mid-body → the
// agent's response is cut too, never completed), an agent that hangs up
// ends the upstream request, and tunnels are pooled across requests.
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxyServer } from "../../../../src/sidecars/proxy/proxy-server.js";
import { rawConnect } from "../../../fixtures/proxy/client.js";
import { createTestCa, writePem } from "../../../helpers/proxy/ca.js";
import { startEgress, startFirewall } from "../../../helpers/proxy/in-process.js";

const TOKEN = `tok-${"Zq7w".repeat(8)}`;
const resolver = async (name: string) => {
  if (name === "routed.test") return ["127.0.0.1"];
  throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
};
const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const BIG = Buffer.alloc(8 * 1024 * 1024);
for (let i = 0; i < BIG.length; i += 4) BIG.writeUInt32LE((i * 2654435761) >>> 0, i);

const SSE_FIRST = 'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"Hello"}}\n\n';
const SSE_SECOND = "event: message_stop\ndata: {}\n\n";

interface Seen {
  method: string;
  rawHeaders: string[];
  body: Buffer;
}

describe("egress's routed leg (undici through the firewall)", () => {
  let dir: string;
  let upstream: Server;
  let upPort: number;
  let firewall: ProxyServer<unknown>;
  let egress: ProxyServer<unknown>;
  let egressUrl: string;
  let egCaPem: string;
  const logs: string[] = [];
  const seen: Seen[] = [];
  /** Lets /sse send its second event. */
  let sseRelease: (() => void) | undefined;
  /** Resolved when the upstream sees the response to /stream closed under it. */
  let streamClosed: (() => void) | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "egress-upstream-"));
    const [fwCa, egCa, upCa] = await Promise.all([createTestCa("fw"), createTestCa("eg"), createTestCa("up")]);
    const fwFiles = await writePem(join(dir, "fw-ca"), fwCa);
    const egFiles = await writePem(join(dir, "eg-ca"), egCa);
    const upFiles = await writePem(join(dir, "up-ca"), upCa);
    egCaPem = await readFile(egFiles.cert, "utf8");
    const leaf = await upCa.issue(["routed.test"]);
    upstream = createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        seen.push({ method: req.method ?? "", rawHeaders: req.rawHeaders, body });
        switch (req.url) {
          case "/echo":
            res.writeHead(201, "Made It", { "content-type": "application/json" }).end(JSON.stringify({ length: body.length, sha: sha(body) }));
            return;
          case "/headers":
            res.setHeader("set-cookie", ["a=1; Path=/", "b=2; Path=/"]);
            res.setHeader("x-latin1", Buffer.from("caf\xe9", "latin1").toString("latin1"));
            res.writeHead(200).end("ok");
            return;
          case "/big":
            res.writeHead(200, { "content-length": BIG.length });
            res.end(BIG);
            return;
          case "/big-chunked":
            res.writeHead(200);
            for (let i = 0; i < BIG.length; i += 65536) res.write(BIG.subarray(i, i + 65536));
            res.end();
            return;
          case "/hints":
            res.writeProcessing();
            // An interim head egress would refuse as a final one (an encoding it cannot check for an echoed credential).
            res.writeEarlyHints({ link: "</style.css>; rel=preload; as=style", "content-encoding": "x-unknown" }, () => res.writeHead(200, { "content-type": "text/plain" }).end("after the hints"));
            return;
          case "/sse": {
            // One event, then the next only once the agent has the first (or after 3 s).
            res.writeHead(200, { "content-type": "text/event-stream" });
            res.write(SSE_FIRST);
            const next = setTimeout(() => res.end(SSE_SECOND), 3_000);
            sseRelease = () => {
              clearTimeout(next);
              res.end(SSE_SECOND);
            };
            return;
          }
          case "/stall":
            res.writeHead(200, { "content-type": "text/plain" });
            res.write("the first part, then nothing");
            return;
          case "/stall-held":
            // All it sends may begin the credential: egress holds it back, and then the upstream stalls.
            res.writeHead(200, { "content-type": "text/plain" });
            res.write(TOKEN.slice(0, 8));
            return;
          case "/silent":
            return; // never answers
          case "/cut":
            res.writeHead(200, { "content-length": 100_000 });
            res.write(Buffer.alloc(1000, "c"), () => setTimeout(() => res.socket?.destroy(), 50));
            return;
          case "/stream": {
            res.writeHead(200);
            const timer = setInterval(() => res.write("tick\n"), 20);
            res.on("close", () => {
              clearInterval(timer);
              streamClosed?.();
            });
            return;
          }
          default:
            res.writeHead(404).end();
        }
      });
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    upPort = (upstream.address() as AddressInfo).port;
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
        routes: [{ name: "api", host: "routed.test", port: upPort, path_prefix: "/", header: "Authorization", value: "Bearer ${TOKEN}" }],
        limits: { idle_timeout_s: 1 },
      },
      { env: { TOKEN }, logs },
    );
    egress = eg.proxy;
    egressUrl = eg.url;
  });

  afterAll(async () => {
    await Promise.all([egress?.close(), firewall?.close()]);
    upstream?.close();
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

  interface Answer {
    status: number;
    message: string;
    rawHeaders: string[];
    body: Buffer;
    error?: string;
  }

  /** One request over a fresh tunnel with node's client; `abortAfterFirstChunk` hangs up once the body begins. */
  async function ask(o: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer | Buffer[]; abortAfterFirstChunk?: boolean }): Promise<Answer> {
    const tls = await tunnel();
    return new Promise((resolve) => {
      const req = httpsRequest({ host: "routed.test", port: upPort, method: o.method ?? "GET", path: o.path, headers: o.headers ?? {}, createConnection: () => tls }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => {
          chunks.push(c);
          if (o.abortAfterFirstChunk) {
            res.destroy();
            resolve({ status: res.statusCode!, message: res.statusMessage ?? "", rawHeaders: res.rawHeaders, body: Buffer.concat(chunks), error: "aborted by the test" });
          }
        });
        res.on("end", () => resolve({ status: res.statusCode!, message: res.statusMessage ?? "", rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
        res.on("error", (err) => resolve({ status: res.statusCode!, message: res.statusMessage ?? "", rawHeaders: res.rawHeaders, body: Buffer.concat(chunks), error: err.message }));
        res.on("aborted", () => resolve({ status: res.statusCode!, message: "", rawHeaders: res.rawHeaders, body: Buffer.concat(chunks), error: "aborted" }));
      });
      req.on("error", (err) => resolve({ status: 0, message: "", rawHeaders: [], body: Buffer.alloc(0), error: err.message }));
      const parts = o.body === undefined ? [] : Array.isArray(o.body) ? o.body : [o.body];
      for (const p of parts) req.write(p);
      req.end();
    });
  }

  const headerNames = (raw: string[]) => raw.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase());

  it("sends a body whole with its own length, without the agent's Expect or framing, and relays status and reason", async () => {
    const body = Buffer.from("x".repeat(70_000));
    const r = await ask({ method: "POST", path: "/echo", headers: { expect: "100-continue", "content-length": String(body.length) }, body });
    expect(r.status).toBe(201);
    expect(r.message).toBe("Made It");
    expect(JSON.parse(r.body.toString())).toEqual({ length: body.length, sha: sha(body) });
    const up = seen.findLast((s) => s.method === "POST")!;
    expect(headerNames(up.rawHeaders)).not.toContain("expect");
    expect(up.rawHeaders[up.rawHeaders.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === "content-length") + 1]).toBe(String(body.length));
    // The credential went in, once.
    expect(headerNames(up.rawHeaders).filter((h) => h === "authorization")).toHaveLength(1);
  });

  it("answers HEAD with the head only, its Content-Length kept", async () => {
    const tls = await tunnel();
    const once = (method: string) =>
      new Promise<{ status: number; length: string | undefined; body: number }>((resolve, reject) => {
        const req = httpsRequest({ host: "routed.test", port: upPort, method, path: "/big", createConnection: () => tls, headers: { connection: "keep-alive" } }, (res) => {
          let n = 0;
          res.on("data", (c: Buffer) => (n += c.length));
          res.on("end", () => resolve({ status: res.statusCode!, length: res.headers["content-length"], body: n }));
        });
        req.on("error", reject);
        req.end();
      });
    expect(await once("HEAD")).toEqual({ status: 200, length: String(BIG.length), body: 0 });
    tls.destroy();
  });

  it("turns a chunked upload into one with a Content-Length", async () => {
    const parts = [Buffer.from("first part, "), Buffer.from("second part, "), Buffer.from("third")];
    const r = await ask({ method: "PUT", path: "/echo", headers: { "transfer-encoding": "chunked" }, body: parts });
    const whole = Buffer.concat(parts);
    expect(JSON.parse(r.body.toString())).toEqual({ length: whole.length, sha: sha(whole) });
    const up = seen.findLast((s) => s.method === "PUT")!;
    expect(headerNames(up.rawHeaders)).not.toContain("transfer-encoding");
    expect(headerNames(up.rawHeaders)).toContain("content-length");
  });

  it("relays repeated headers one by one and latin1 header bytes unchanged", async () => {
    const r = await ask({ path: "/headers" });
    expect(r.status).toBe(200);
    const cookies = r.rawHeaders.filter((_, i) => i > 0 && r.rawHeaders[i - 1]!.toLowerCase() === "set-cookie" && (i - 1) % 2 === 0);
    expect(cookies).toEqual(["a=1; Path=/", "b=2; Path=/"]);
    const latin = r.rawHeaders[r.rawHeaders.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === "x-latin1") + 1];
    expect(Buffer.from(latin!, "latin1")).toEqual(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
  });

  it("passes on the final response after interim ones (102, 103), not the interim ones", async () => {
    const r = await ask({ path: "/hints" });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe("after the hints");
  });

  for (const path of ["/big", "/big-chunked"]) {
    it(`relays an 8 MiB body intact (${path})`, async () => {
      const r = await ask({ path });
      expect(r.error).toBeUndefined();
      expect(r.body.length).toBe(BIG.length);
      expect(sha(r.body)).toBe(sha(BIG));
    });
  }

  it("streams server-sent events as they come: an event reaches the agent before the next is sent", async () => {
    const tls = await tunnel();
    const got = await new Promise<{ firstAlone: boolean; text: string }>((resolve, reject) => {
      let text = "";
      let firstAlone = false;
      httpsRequest({ host: "routed.test", port: upPort, path: "/sse", createConnection: () => tls }, (res) => {
        res.setEncoding("latin1");
        res.on("data", (c: string) => {
          text += c;
          if (text === SSE_FIRST) {
            firstAlone = true;
            sseRelease?.();
          }
        });
        res.on("end", () => resolve({ firstAlone, text }));
      })
        .on("error", reject)
        .end();
    });
    expect(got.text).toBe(SSE_FIRST + SSE_SECOND);
    expect(got.firstAlone).toBe(true);
  });

  it("answers 504 when the upstream sends nothing for the idle timeout", async () => {
    const started = Date.now();
    const r = await ask({ path: "/silent" });
    expect(r.status).toBe(504);
    expect(r.body.toString()).toContain("routed.test");
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it("cuts the agent's response when the upstream stalls mid-body for the idle timeout", async () => {
    const started = Date.now();
    const r = await ask({ path: "/stall" });
    expect(r.error).toBeDefined();
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it("ends the exchange when the upstream stalls with all it sent held back", async () => {
    const started = Date.now();
    const r = await ask({ path: "/stall-held" });
    expect(r.error).toBeDefined();
    expect(r.body.toString()).not.toContain(TOKEN.slice(0, 8));
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it("cuts the agent's response when the upstream's is cut, never ending it as complete", async () => {
    const r = await ask({ path: "/cut" });
    expect(r.status).toBe(200);
    expect(r.error).toBeDefined();
    expect(r.body.length).toBeLessThan(100_000);
  });

  it("ends the upstream request when the agent hangs up mid-response", async () => {
    const closed = new Promise<void>((r) => (streamClosed = r));
    const r = await ask({ path: "/stream", abortAfterFirstChunk: true });
    expect(r.status).toBe(200);
    await expect(Promise.race([closed.then(() => "closed"), new Promise((r) => setTimeout(() => r("still open"), 3_000))])).resolves.toBe("closed");
  });

  it("pools tunnels to the firewall: requests one after another, each on its own agent connection, share one", async () => {
    const connects = () => logs.filter((l) => l.includes('"mode":"firewall"') && l.includes('"event":"connect"')).length;
    const before = connects();
    for (let i = 0; i < 10; i++) expect((await ask({ path: "/echo" })).status).toBe(201);
    expect(connects() - before).toBeLessThanOrEqual(1);
  });
});
