// The passthrough SNI check reads real ClientHellos (captured from node's
// TLS client here), in one record or split across several, and never throws
// on anything else.
import { createServer, type AddressInfo } from "node:net";
import { connect as tlsConnect } from "node:tls";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_CLIENT_HELLO_BYTES, parseClientHello } from "../../../../src/sidecars/proxy/client-hello.js";

/** The first bytes node's TLS client sends for these options. */
async function captureHello(opts: { servername?: string; host?: string }): Promise<Buffer> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const got = new Promise<Buffer>((resolve) =>
    server.once("connection", (s) => {
      const chunks: Buffer[] = [];
      s.on("data", (c: Buffer) => {
        chunks.push(c);
        const b = Buffer.concat(chunks);
        if (b.length >= 5 && b.length >= 5 + b.readUInt16BE(3)) {
          s.destroy();
          resolve(b);
        }
      });
    }),
  );
  const tls = tlsConnect({ port, host: "127.0.0.1", ...opts, rejectUnauthorized: false });
  tls.on("error", () => {});
  const hello = await got;
  tls.destroy();
  server.close();
  return hello;
}

/** The same handshake bytes re-framed into records of at most `size` bytes. */
function refragment(hello: Buffer, size: number): Buffer {
  const body = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const out: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const part = body.subarray(i, i + size);
    const head = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
    head.writeUInt16BE(part.length, 3);
    out.push(head, part);
  }
  return Buffer.concat(out);
}

/** A one-record ClientHello with one more extension appended (all lengths fixed up). */
function withExtension(record: Buffer, type: number, data: Buffer): Buffer {
  const msg = record.subarray(9, 5 + record.readUInt16BE(3));
  let p = 2 + 32;
  p += 1 + msg[p]!;
  p += 2 + msg.readUInt16BE(p);
  p += 1 + msg[p]!;
  const extLen = msg.readUInt16BE(p);
  const ext = Buffer.alloc(4 + data.length);
  ext.writeUInt16BE(type, 0);
  ext.writeUInt16BE(data.length, 2);
  data.copy(ext, 4);
  const body = Buffer.concat([msg.subarray(0, p), Buffer.from([(extLen + ext.length) >> 8, (extLen + ext.length) & 0xff]), msg.subarray(p + 2), ext]);
  const hs = Buffer.concat([Buffer.from([0x01, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x01, hs.length >> 8, hs.length & 0xff]), hs]);
}

describe("parseClientHello", () => {
  it("reads the SNI of a real ClientHello", async () => {
    const hello = await captureHello({ servername: "api.Example.test" });
    expect(parseClientHello(hello)).toEqual({ kind: "hello", serverNames: ["api.Example.test"] });
  });

  it("sees no SNI when the client sends none", async () => {
    const hello = await captureHello({ servername: "" });
    expect(parseClientHello(hello)).toEqual({ kind: "hello", serverNames: [] });
  });

  it("waits for the rest of a ClientHello that arrives in pieces or in several records", async () => {
    const hello = await captureHello({ servername: "split.test" });
    for (let cut = 1; cut < hello.length; cut += 37) expect(parseClientHello(hello.subarray(0, cut)).kind).toBe("incomplete");
    for (const size of [1, 7, 100]) {
      const framed = refragment(hello, size);
      expect(parseClientHello(framed)).toEqual({ kind: "hello", serverNames: ["split.test"] });
      expect(parseClientHello(framed.subarray(0, framed.length - 1)).kind).toBe("incomplete");
    }
  });

  it("refuses what is not a TLS ClientHello", () => {
    expect(parseClientHello(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))).toMatchObject({ kind: "invalid", reason: "the tunnel does not start with a TLS handshake" });
    expect(parseClientHello(Buffer.from("SSH-2.0-OpenSSH_9.2\r\n"))).toMatchObject({ kind: "invalid" });
    // SSLv2-style hello
    expect(parseClientHello(Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01]))).toMatchObject({ kind: "invalid" });
    // A handshake record holding a ServerHello
    expect(parseClientHello(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]))).toMatchObject({ kind: "invalid", reason: "the first handshake message is not a ClientHello" });
  });

  it("refuses an oversized ClientHello instead of buffering it", () => {
    const head = Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x02, 0x00, 0x00]); // claims a 128 KiB hello
    expect(parseClientHello(Buffer.concat([head, Buffer.alloc(100)]))).toMatchObject({ kind: "invalid", reason: "the ClientHello is too large" });
    const endless = Buffer.alloc(MAX_CLIENT_HELLO_BYTES + 100, 0x16);
    expect(parseClientHello(endless).kind).toBe("invalid");
  });

  it("refuses a ClientHello that carries Encrypted Client Hello or encrypted SNI: its cleartext SNI is not where it connects", async () => {
    const hello = await captureHello({ servername: "routed.test" });
    // The helper itself keeps a hello valid: an unknown extension is skipped.
    expect(parseClientHello(withExtension(hello, 0x7a7a, Buffer.alloc(200, 7)))).toEqual({ kind: "hello", serverNames: ["routed.test"] });
    for (const type of [0xfe0d, 0xfe0a, 0xffce]) {
      const r = parseClientHello(withExtension(hello, type, Buffer.alloc(200, 7)));
      expect(r.kind, type.toString(16)).toBe("invalid");
      if (r.kind === "invalid") expect(r.reason).toMatch(/encrypted_(client_hello|server_name)/);
    }
    // Also when the hello arrives split over several records.
    expect(parseClientHello(refragment(withExtension(hello, 0xfe0d, Buffer.alloc(200, 7)), 100)).kind).toBe("invalid");
  });

  it("never throws on random bytes or on a real ClientHello with bytes flipped", async () => {
    const hello = await captureHello({ servername: "fuzz.test" });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        const r = parseClientHello(Buffer.from(bytes));
        expect(["incomplete", "invalid", "hello"]).toContain(r.kind);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(hello.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (flips) => {
        const b = Buffer.from(hello);
        for (const [i, v] of flips) b[i] = v;
        const r = parseClientHello(b);
        expect(["incomplete", "invalid", "hello"]).toContain(r.kind);
        if (r.kind === "hello") for (const n of r.serverNames) expect(typeof n).toBe("string");
      }),
      { numRuns: 2000 },
    );
  });
});
