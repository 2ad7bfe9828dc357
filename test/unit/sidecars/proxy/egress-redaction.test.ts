// Egress never hands the agent the credential it injected, whatever the
// upstream echoes it in: the reason phrase, a header's name, or the body in
// any reversible spelling (escaped character by character in any mix of
// percent, backslash and HTML escapes, base64 at each alignment, hex), or
// inside compressed data with or without a Content-Encoding. Unit level
// (BodyMasker, redactText) and end to end through egress and the firewall
// in-process on loopback.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { brotliCompressSync, crc32, deflateRawSync, deflateSync, gzipSync, zstdCompressSync } from "node:zlib";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BodyMasker, credentialNeedles, MAX_HELD_COMPRESSED, maskInPlace, redactText } from "../../../../src/sidecars/proxy/redact.js";
import type { ProxyServer } from "../../../../src/sidecars/proxy/proxy-server.js";
import { rawConnect, send } from "../../../fixtures/proxy/client.js";
import { createTestCa, writePem } from "../../../helpers/proxy/ca.js";
import { startEgress, startFirewall } from "../../../helpers/proxy/in-process.js";

// Credentials with "/", "+" or "=" are common (AWS secret keys, base64 tokens).
const CRED = "sk/AbC+dEf=gHi/JkL+mNo=pQr/StU+vWx=";
const needles = credentialNeedles([`Bearer ${CRED}`, CRED]);

/** Everything a masker gives out for `body` pushed in the given pieces, and the masker. */
function through(body: Buffer, cuts: number[] = []): { out: Buffer; masker: BodyMasker } {
  const masker = new BodyMasker(needles);
  const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    out.push(masker.push(body.subarray(from, p)));
    from = p;
  }
  out.push(masker.end(body.subarray(from)));
  return { out: Buffer.concat(out), masker };
}

/** A zip archive (local headers, central directory, end record) of these files, stored or deflated. */
function zipOf(files: Array<{ name: string; data: Buffer; deflate?: boolean; descriptor?: boolean }>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const body = f.deflate ? deflateRawSync(f.data) : f.data;
    const name = Buffer.from(f.name);
    const crc = crc32(f.data);
    const head = Buffer.alloc(30);
    head.writeUInt32LE(0x04034b50, 0);
    head.writeUInt16LE(20, 4);
    head.writeUInt16LE(f.descriptor ? 8 : 0, 6);
    head.writeUInt16LE(f.deflate ? 8 : 0, 8);
    if (!f.descriptor) {
      head.writeUInt32LE(crc, 14);
      head.writeUInt32LE(body.length, 18);
      head.writeUInt32LE(f.data.length, 22);
    }
    head.writeUInt16LE(name.length, 26);
    const descriptor = Buffer.alloc(f.descriptor ? 16 : 0);
    if (f.descriptor) {
      descriptor.writeUInt32LE(0x08074b50, 0);
      descriptor.writeUInt32LE(crc, 4);
      descriptor.writeUInt32LE(body.length, 8);
      descriptor.writeUInt32LE(f.data.length, 12);
    }
    locals.push(head, name, body, descriptor);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(f.descriptor ? 8 : 0, 8);
    central.writeUInt16LE(f.deflate ? 8 : 0, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(f.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += head.length + name.length + body.length + descriptor.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

const escapeEach = (s: string, f: (c: string) => string) => [...s].map((c) => (/[A-Za-z0-9]/.test(c) ? c : f(c))).join("");
const hex2 = (c: string) => c.charCodeAt(0).toString(16).padStart(2, "0");

/** The credential as upstreams spell it back: every one of these must be masked. */
const SPELLINGS: Record<string, string> = {
  "as sent": `Bearer ${CRED}`,
  "percent-encoded, upper case": encodeURIComponent(CRED),
  "percent-encoded, lower case": encodeURIComponent(CRED).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
  "percent-encoded, mixed case": escapeEach(CRED, (c) => (c === "/" ? "%2f" : `%${hex2(c).toUpperCase()}`)),
  "percent-encoded twice": encodeURIComponent(encodeURIComponent(CRED)),
  "JSON-quoted": JSON.stringify(CRED).slice(1, -1),
  "JSON with escaped slashes (PHP json_encode)": JSON.stringify({ authorization: `Bearer ${CRED}` }).replace(/\//g, "\\/"),
  "JSON \\u escapes, lower case": escapeEach(CRED, (c) => `\\u00${hex2(c)}`),
  "JSON \\u escapes, upper case": escapeEach(CRED, (c) => `\\u00${hex2(c).toUpperCase()}`),
  "JSON in JSON": JSON.stringify(JSON.stringify({ a: CRED.replace(/\//g, "\\/") })),
  "JSON in JSON in JSON": JSON.stringify(JSON.stringify(JSON.stringify({ a: CRED.replace(/\//g, "\\/") }))),
  "\\x escapes": escapeEach(CRED, (c) => `\\x${hex2(c)}`),
  "HTML entities, mixed (an error page)": CRED.replace(/\+/g, "&#43;").replace(/=/g, "&#x3D;").replace(/\//g, "&#x2F;"),
  "HTML named entities": CRED.replace(/\+/g, "&plus;").replace(/=/g, "&equals;").replace(/\//g, "&sol;"),
  "HTML entities with leading zeros and no semicolon": escapeEach(CRED, (c) => `&#00${c.charCodeAt(0)}`),
  "HTML entities of an already escaped value": escapeEach(CRED, (c) => `&amp;#${c.charCodeAt(0)};`),
  hex: Buffer.from(CRED).toString("hex"),
  "hex, upper case": Buffer.from(CRED).toString("hex").toUpperCase(),
  "UTF-16LE": Buffer.from(`Bearer ${CRED}`, "utf16le").toString("latin1"),
  "UTF-16BE": Buffer.from(`Bearer ${CRED}`, "utf16le").swap16().toString("latin1"),
};
for (const a of [0, 1, 2]) {
  const prefix = "x".repeat(a);
  SPELLINGS[`base64 at alignment ${a}`] = Buffer.from(`${prefix}${CRED} and more`).toString("base64");
  SPELLINGS[`url-safe base64 at alignment ${a}`] = Buffer.from(`${prefix}Authorization: Bearer ${CRED}`).toString("base64url");
}

describe("BodyMasker: every reversible spelling of the credential", () => {
  for (const [how, spelled] of Object.entries(SPELLINGS)) {
    it(how, () => {
      const body = Buffer.from(`{"echo": "${spelled}", "after": "ordinary text"}`, "latin1");
      const { out, masker } = through(body);
      expect(masker.masked, how).toBeGreaterThan(0);
      expect(out.length).toBe(body.length);
      // What is left is no longer any spelling, and the text around it is untouched.
      expect(maskInPlace(Buffer.from(out), needles)).toBe(0);
      expect(out.toString("latin1")).toMatch(/^\{"echo": ".*", "after": "ordinary text"\}$/);
      // Nothing left decodes back to the credential.
      const left = out.toString("latin1");
      for (const decoded of [left, decodeURIComponent(left.replace(/%(?![0-9a-fA-F]{2})/g, "%25")), Buffer.from(left.replace(/[^A-Za-z0-9+/_-]/g, ""), "base64").toString("latin1")]) {
        expect(decoded).not.toContain(CRED.slice(3, 20));
      }
    });
  }

  it("masks a spelling however the body is cut into chunks, and changes nothing else", () => {
    const spellings = Object.values(SPELLINGS);
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.constantFrom(...spellings), fc.string({ maxLength: 40 }), fc.array(fc.nat(400), { maxLength: 8 }), (before, spelled, after, cuts) => {
        const body = Buffer.from(`${before}${spelled}${after}`, "latin1");
        const expected = Buffer.from(body);
        const n = maskInPlace(expected, needles);
        expect(n).toBeGreaterThan(0);
        const { out, masker } = through(body, cuts);
        expect(out.equals(expected)).toBe(true);
        expect(masker.masked).toBe(n);
      }),
      { numRuns: 500 },
    );
  });

  it("masks every spelling however the body is cut when it also holds spellings cut short (what the masker holds back)", () => {
    const spellings = Object.values(SPELLINGS);
    const piece = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.constantFrom(...spellings),
      fc.constantFrom(...spellings).chain((sp) => fc.nat(sp.length).map((k) => sp.slice(0, k))),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 6 }), fc.array(fc.nat(700), { maxLength: 10 }), (pieces, cuts) => {
        const body = Buffer.from(pieces.join(""), "latin1");
        const expected = Buffer.from(body);
        maskInPlace(expected, needles);
        const { out } = through(body, cuts);
        expect(out.equals(expected)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it("passes a chunk on whole unless its end may start a spelling (a stream is not held up)", () => {
    const masker = new BodyMasker(needles);
    const event = Buffer.from('event: content_block_delta\ndata: {"type":"text_delta","text":"Hello, world"}\n\n');
    expect(masker.push(event).equals(event)).toBe(true);
    // Only what may begin the credential (here "sk" and then "sk%2F") waits for the next chunk.
    expect(masker.push(Buffer.from('data: {"text":"ask sk')).toString()).toBe('data: {"text":"ask ');
    expect(masker.push(Buffer.from("%2F")).toString()).toBe("");
    expect(masker.push(Buffer.from('x"}\n\n')).toString()).toBe('sk%2Fx"}\n\n');
  });

  it("leaves a body without the credential byte for byte as it was, near misses included", () => {
    const body = Buffer.from(`sk/AbC+dEf=gHi/JkL+mNo=pQr/StU+vW (one short) ${encodeURIComponent("sk/AbC+dEf")} ${Buffer.from("unrelated").toString("base64")} x^2 + y^2`);
    const { out, masker } = through(body, [7, 30]);
    expect(masker.masked).toBe(0);
    expect(masker.refusal).toBeUndefined();
    expect(out.equals(body)).toBe(true);
  });
});

describe("BodyMasker: compressed data without a Content-Encoding", () => {
  const secret = Buffer.from(`Authorization: Bearer ${CRED}\n`);
  const cases: Record<string, Buffer> = {
    "gzip (a .gz download)": gzipSync(secret),
    "zlib (deflate)": deflateSync(secret),
    zstd: zstdCompressSync(secret),
    "gzip of gzip": gzipSync(gzipSync(secret)),
    "gzip of the base64 spelling": gzipSync(Buffer.from(secret).toString("base64")),
    "truncated gzip (what a streaming decoder still reads)": gzipSync(Buffer.concat([secret, Buffer.alloc(4000, "x")]), { level: 0 }).subarray(0, 200),
    "gzip followed by junk": Buffer.concat([gzipSync(secret), Buffer.from("junk after the member")]),
    "zip, deflated entry after a harmless one": zipOf([
      { name: "readme.txt", data: Buffer.from("hello\n"), deflate: true },
      { name: "debug.txt", data: secret, deflate: true },
    ]),
    "zip, deflated entry with a data descriptor": zipOf([{ name: "debug.txt", data: Buffer.concat([secret, Buffer.alloc(2000, "y")]), deflate: true, descriptor: true }]),
    "zip holding a .gz": zipOf([{ name: "echo.gz", data: gzipSync(secret) }]),
    "zip, file named after the credential": zipOf([{ name: `${CRED}.txt`, data: Buffer.from("x"), deflate: true }]),
  };
  for (const [how, body] of Object.entries(cases)) {
    it(`is refused when the credential is inside: ${how}`, () => {
      const { out, masker } = through(body, [1, 3, 50]);
      expect(masker.refusal).toMatch(/^bot-bottle egress: the response body is (\w+-compressed data|a zip archive) holding the credential egress added/);
      expect(out.length).toBe(0);
    });
  }

  it("is passed on unchanged when the credential is not inside", () => {
    for (const body of [
      gzipSync("nothing secret in here\n".repeat(100)),
      zipOf([
        { name: "a.txt", data: Buffer.from("nothing secret\n".repeat(50)), deflate: true },
        { name: "b.bin", data: Buffer.alloc(300, 3) },
      ]),
    ]) {
      const { out, masker } = through(body, [1, 2, 100]);
      expect(masker.refusal).toBeUndefined();
      expect(out.equals(body)).toBe(true);
    }
  });

  it("ordinary text that merely starts like a zlib header is masked as text, not held or refused", () => {
    // All pass the two-byte zlib header check; "x^" and "HK" also have no preset-dictionary bit.
    for (const start of ["x ", "(r", "HK", "x^2 + y^2 = "]) {
      expect(((start.charCodeAt(0) << 8) | start.charCodeAt(1)) % 31, start).toBe(0);
      const m = new BodyMasker(needles);
      const first = m.push(Buffer.from(`${start}${"text ".repeat(100)}`));
      expect(first.length, start).toBeGreaterThan(0);
      const rest = m.end(Buffer.from(` and the echo: ${CRED}`));
      expect(m.refusal).toBeUndefined();
      expect(Buffer.concat([first, rest]).toString()).toMatch(/and the echo: \*+$/);
    }
  });

  it("a zip entry egress cannot open (encrypted, or another method) is refused", () => {
    const zip = zipOf([{ name: "a.txt", data: Buffer.from("whatever"), deflate: true }]);
    const encrypted = Buffer.from(zip);
    encrypted.writeUInt16LE(1, 6);
    expect(through(encrypted).masker.refusal).toMatch(/zip archive that egress cannot decode to check .*encrypted entry/);
    const bzip2 = Buffer.from(zip);
    bzip2.writeUInt16LE(12, 8);
    expect(through(bzip2).masker.refusal).toMatch(/method 12/);
  });

  it("is refused when it is too large to hold for checking", () => {
    const m = new BodyMasker(needles);
    const first = m.push(gzipSync("x"));
    const big = Buffer.alloc(MAX_HELD_COMPRESSED + 1);
    const second = m.push(big);
    expect(first.length + second.length).toBe(0);
    expect(m.refusal).toMatch(/too large for egress to check/);
    expect(m.end(Buffer.from("more")).length).toBe(0);
  });

  it("is refused when it cannot be decoded to check (zstd that breaks off)", () => {
    const { out, masker } = through(zstdCompressSync(Buffer.concat([secret, Buffer.alloc(3000, 1)])).subarray(0, 40));
    expect(masker.refusal).toMatch(/cannot decode to check/);
    expect(out.length).toBe(0);
  });
});

describe("redactText (reason phrase, header names)", () => {
  it("masks every spelling in a latin1 string and returns the string itself when there is none", () => {
    const text = `Unauthorized: Bearer ${CRED} (${encodeURIComponent(CRED).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())})`;
    const r = redactText(text, needles);
    expect(r.masked).toBe(2);
    expect(r.text.length).toBe(text.length);
    expect(r.text).not.toContain(CRED.slice(3));
    const clean = "Unauthorized";
    expect(redactText(clean, needles)).toEqual({ text: clean, masked: 0 });
  });
});

describe("egress end to end: the injected credential never comes back", () => {
  const TOKEN = `tok-${"7Hq2".repeat(8)}/x+y=`;
  let dir: string;
  let upstream: HttpsServer;
  let upPort = 0;
  let firewall: ProxyServer<unknown>;
  let egress: ProxyServer<unknown>;
  let egressUrl = "";
  let ca: string[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "egress-redaction-"));
    const [fwCa, egCa, upCa] = await Promise.all([createTestCa("fw"), createTestCa("eg"), createTestCa("up")]);
    const fwFiles = await writePem(join(dir, "fw-ca"), fwCa);
    const egFiles = await writePem(join(dir, "eg-ca"), egCa);
    const upFiles = await writePem(join(dir, "up-ca"), upCa);
    ca = [egFiles.cert];
    const leaf = await upCa.issue(["echo.test"]);
    upstream = createHttpsServer({ cert: leaf.cert, key: leaf.key }, (req: IncomingMessage, res: ServerResponse) => {
      const auth = req.headers.authorization ?? "";
      const token = auth.slice("Bearer ".length);
      req.resume();
      req.on("end", () => {
        const echo = Buffer.from(`you sent ${auth}\n`);
        switch (req.url) {
          case "/reason":
            // Error pages reflect the request in the reason phrase; a header may be named after the
            // value (here its hex: "/", "+" and "=" may not be in a header name).
            res.writeHead(401, `Unauthorized: ${auth}`, { "content-type": "text/plain", [`x-seen-${Buffer.from(token).toString("hex")}`]: "1", "x-echo": token }).end("no\n");
            return;
          case "/escaped":
            res.writeHead(200, { "content-type": "text/html" }).end(`<p>${token.replace(/\//g, "&#x2F;").replace(/\+/g, "&plus;").replace(/=/g, "&#61")}</p>`);
            return;
          case "/gz":
            res.writeHead(200, { "content-type": "application/gzip" }).end(gzipSync(echo));
            return;
          case "/gz-clean":
            res.writeHead(200, { "content-type": "application/gzip" }).end(gzipSync("nothing secret\n"));
            return;
          case "/gz-encoded":
            res.writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip" }).end(gzipSync(Buffer.from(`${echo.toString("base64")}\n`)));
            return;
          case "/br-encoded-gz":
            // A .gz file served brotli-encoded: decoded on the way, then still compressed data.
            res.writeHead(200, { "content-type": "application/gzip", "content-encoding": "br" }).end(brotliCompressSync(gzipSync(echo)));
            return;
          case "/corrupt-encoded":
            res.writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip" }).end(Buffer.from("not gzip at all, but it says so"));
            return;
          default:
            res.writeHead(404).end();
        }
      });
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    upPort = (upstream.address() as AddressInfo).port;
    const resolve = async (n: string) => {
      if (n === "echo.test") return ["127.0.0.1"];
      throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
    };
    const fw = await startFirewall(
      join(dir, "firewall.json"),
      {
        version: 1,
        allow: ["echo.test"],
        allow_cidrs: ["127.0.0.0/8"],
        intercept: { enabled: true, ca_cert: fwFiles.cert, ca_key: fwFiles.key, passthrough: ["echo.test"] },
        dlp: { enabled: true, canary_env: ["TOKEN"], canary_exempt: [{ host: "echo.test", header: "Authorization", env: "TOKEN" }] },
        upstream_ca_files: [upFiles.cert],
      },
      { env: { TOKEN }, logs, resolve },
    );
    firewall = fw.proxy;
    const eg = await startEgress(
      join(dir, "egress.json"),
      {
        version: 1,
        upstream_proxy: fw.url,
        ca_cert: egFiles.cert,
        ca_key: egFiles.key,
        upstream_ca_files: [upFiles.cert, fwFiles.cert],
        routes: [{ name: "echo", host: "echo.test", port: upPort, path_prefix: "/", header: "Authorization", value: "Bearer ${TOKEN}" }],
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

  /** The whole raw response (head and body bytes) to GET `path` through egress. */
  async function rawGet(path: string): Promise<{ head: string; body: Buffer }> {
    const answer = await rawConnect(egressUrl, `echo.test:${upPort}`);
    const caPem = await readFile(ca[0]!, "utf8");
    return new Promise((resolve) => {
      const tls = tlsConnect({ socket: answer.socket!, servername: "echo.test", ca: [caPem] });
      const chunks: Buffer[] = [];
      tls.on("secureConnect", () => tls.write(`GET ${path} HTTP/1.1\r\nHost: echo.test:${upPort}\r\nConnection: close\r\n\r\n`));
      tls.on("data", (c: Buffer) => chunks.push(c));
      const done = () => {
        const all = Buffer.concat(chunks);
        const i = all.indexOf("\r\n\r\n");
        resolve({ head: all.subarray(0, i).toString("latin1"), body: all.subarray(i + 4) });
      };
      tls.on("end", done);
      tls.on("error", done);
    });
  }

  const secretPart = TOKEN.slice(4, 30);

  it("masks the credential in the reason phrase and in header names (and values)", async () => {
    const { head } = await rawGet("/reason");
    const [statusLine, ...lines] = head.split("\r\n");
    expect(statusLine).toMatch(/^HTTP\/1\.1 401 Unauthorized: (Bearer )?\*+/);
    expect(head).not.toContain(secretPart);
    expect(head).not.toContain(Buffer.from(secretPart).toString("hex"));
    expect(lines.some((l) => /^x-seen-\*+:/i.test(l))).toBe(true);
    expect(lines.some((l) => /^x-echo: \*+$/i.test(l))).toBe(true);
  });

  it("masks the credential spelled with HTML character references in the body", async () => {
    const { head, body } = await rawGet("/escaped");
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    expect(body.toString("latin1")).toMatch(/^(?:[0-9a-f]+\r\n)?<p>\*+<\/p>/);
    expect(body.toString("latin1")).not.toContain(secretPart);
  });

  it("refuses a gzip file holding the credential with a 502 that says why, and passes one that does not", async () => {
    const r = await send({ proxy: egressUrl, ca, url: `https://echo.test:${upPort}/gz` });
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/gzip-compressed data holding the credential egress added/);
    const clean = await rawGet("/gz-clean");
    expect(clean.head).toMatch(/^HTTP\/1\.1 200/);
    expect(clean.body.includes(gzipSync("nothing secret\n").subarray(10))).toBe(true);
  });

  it("masks the credential in a Content-Encoding: gzip body (decoded on the way), base64 spelling included", async () => {
    const r = await send({ proxy: egressUrl, ca, url: `https://echo.test:${upPort}/gz-encoded` });
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/\*{8}/);
    expect(Buffer.from(r.body.trim().replace(/\*/g, "A"), "base64").toString("latin1")).not.toContain(secretPart);
  });

  it("refuses a compressed file inside a Content-Encoding that holds the credential", async () => {
    const r = await send({ proxy: egressUrl, ca, url: `https://echo.test:${upPort}/br-encoded-gz` });
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/gzip-compressed data holding the credential/);
  });

  it("survives a body that is not the encoding it claims (the decoder's error ends the exchange, not egress)", async () => {
    const r = await send({ proxy: egressUrl, ca, url: `https://echo.test:${upPort}/corrupt-encoded` });
    expect(r.body).not.toContain(secretPart);
    const again = await rawGet("/escaped");
    expect(again.head).toMatch(/^HTTP\/1\.1 200/);
  });
});
