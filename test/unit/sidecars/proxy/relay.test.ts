// relayDispatch (undici, egress's routed leg) with a per-chunk rewrite
// (egress masking an echoed credential): the body arrives masked whatever its framing and however the
// upstream cuts it, and a response with a declared length goes out with its
// last chunk in the same write as its end (no tail held back for a second
// write). hasNoBody: which requests need no wait for a body.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BodyMasker, credentialNeedles } from "../../../../src/sidecars/proxy/redact.js";
import { hasNoBody, NO_BODY, relayDispatch, type RelayOutcome } from "../../../../src/sidecars/proxy/relay.js";

const TOKEN = "tok-7Hq27Hq27Hq2-relay";
const needles = credentialNeedles([TOKEN]);
const port = (s: Server) => (s.address() as AddressInfo).port;
const listen = (s: Server) => new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
const tick = () => new Promise((r) => setTimeout(r, 20));

/** The upstream: each path answers with the body in the pieces it names, with or without Content-Length. */
const RESPONSES: Record<string, { parts: string[]; length: boolean }> = {
  "/whole": { parts: [`one chunk carrying ${TOKEN} and more text after it`], length: true },
  // The credential straddles the boundary to the last chunk: the held-back tail must meet it.
  "/split": { parts: ["head ", `then ${TOKEN.slice(0, 9)}`, `${TOKEN.slice(9)} tail`], length: true },
  "/chunked": { parts: [`a ${TOKEN.slice(0, 5)}`, `${TOKEN.slice(5)} b`, " c"], length: false },
  "/empty": { parts: [], length: true },
};

describe("relayDispatch with a chunk map", () => {
  let upstream: Server;
  let proxy: Server;
  const dispatcher = new Agent();
  const seen: Array<{ path: string; writes: number; ends: number; outcome?: RelayOutcome }> = [];

  beforeAll(async () => {
    upstream = createServer(async (req, res) => {
      const r = RESPONSES[req.url ?? ""]!;
      const body = r.parts.join("");
      res.writeHead(200, { "content-type": "text/plain", ...(r.length ? { "content-length": Buffer.byteLength(body) } : {}) });
      res.flushHeaders();
      for (const p of r.parts) {
        await tick();
        res.write(p);
      }
      res.end();
    });
    proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
      const entry: (typeof seen)[number] = { path: req.url ?? "", writes: 0, ends: 0 };
      seen.push(entry);
      const write = res.write.bind(res) as (...a: unknown[]) => boolean;
      const end = res.end.bind(res) as (...a: unknown[]) => ServerResponse;
      res.write = ((...a: unknown[]) => {
        entry.writes++;
        return write(...a);
      }) as typeof res.write;
      res.end = ((...a: unknown[]) => {
        entry.ends++;
        return end(...a);
      }) as typeof res.end;
      const origin = `http://127.0.0.1:${port(upstream)}`;
      relayDispatch(res, dispatcher, { origin, method: "GET", path: req.url ?? "/", headers: [], body: NO_BODY }, (o) => (entry.outcome = o), {
        transform: (_head, headers) => ({ headers, chunks: new BodyMasker(needles) }),
      });
    });
    await Promise.all([listen(upstream), listen(proxy)]);
  });
  afterAll(async () => {
    upstream?.close();
    proxy?.close();
    await dispatcher.close();
  });

  const get = (path: string) =>
    new Promise<string>((resolve, reject) => {
      request({ host: "127.0.0.1", port: port(proxy), path, agent: false }, (res) => {
        let text = "";
        res.setEncoding("latin1");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve(text));
      })
        .on("error", reject)
        .end();
    });

  for (const [path, r] of Object.entries(RESPONSES)) {
    it(`masks the credential and keeps everything else (${path})`, async () => {
      const body = r.parts.join("");
      const got = await get(path);
      expect(got).toBe(body.split(TOKEN).join("*".repeat(TOKEN.length)));
      const entry = seen.find((e) => e.path === path)!;
      expect(entry.outcome).toEqual({ status: 200, bytes: Buffer.byteLength(body) });
    });
  }

  it("sends a declared-length body's last chunk with the end of the response, not in a write of its own", async () => {
    await get("/whole");
    const whole = seen.findLast((e) => e.path === "/whole")!;
    expect(whole).toMatchObject({ writes: 0, ends: 1 });
    // Cut into pieces: what came before the last piece goes out as it comes (less the held-back tail), the rest with end().
    await get("/split");
    const split = seen.findLast((e) => e.path === "/split")!;
    expect(split.ends).toBe(1);
    expect(split.writes).toBeLessThanOrEqual(2);
  });
});

describe("hasNoBody", () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
  it("is true only without Content-Length and Transfer-Encoding", () => {
    expect(hasNoBody(req({ host: "x" }))).toBe(true);
    expect(hasNoBody(req({ "content-length": "0" }))).toBe(false);
    expect(hasNoBody(req({ "content-length": "5" }))).toBe(false);
    expect(hasNoBody(req({ "transfer-encoding": "chunked" }))).toBe(false);
  });
});
