import { describe, expect, it } from "vitest";
import { authorityOf, endToEndHeaders, parseAbsoluteTarget, parseConnectHead, parseConnectTarget } from "../../../../src/sidecars/proxy/http-message.js";

describe("request targets", () => {
  it("parses absolute-form http targets keeping the host as written", () => {
    expect(parseAbsoluteTarget("http://0x7f.1:8080/a?b=c")).toEqual({ host: "0x7f.1", port: 8080, path: "/a?b=c" });
    expect(parseAbsoluteTarget("http://[::ffff:127.0.0.1]/")).toEqual({ host: "[::ffff:127.0.0.1]", port: 80, path: "/" });
    expect(parseAbsoluteTarget("http://user:pw@example.com")).toEqual({ host: "example.com", port: 80, path: "/" });
    expect(parseAbsoluteTarget("http://example.com?x=1")).toEqual({ host: "example.com", port: 80, path: "/?x=1" });
    expect(parseAbsoluteTarget("/relative")).toBeUndefined();
    expect(parseAbsoluteTarget("https://example.com/")).toBeUndefined();
    expect(parseAbsoluteTarget("http://example.com:99999/")).toBeUndefined();
  });
  it("parses CONNECT authorities", () => {
    expect(parseConnectTarget("example.com:443")).toEqual({ host: "example.com", port: 443 });
    expect(parseConnectTarget("[fe80::1%25eth0]:443")).toEqual({ host: "[fe80::1%25eth0]", port: 443 });
    expect(parseConnectTarget("example.com")).toBeUndefined();
    expect(parseConnectTarget("example.com:0")).toBeUndefined();
    expect(parseConnectTarget("a/b:443")).toBeUndefined();
  });
  it("formats Host authorities", () => {
    expect(authorityOf("example.com", 443, 443)).toBe("example.com");
    expect(authorityOf("example.com", 8443, 443)).toBe("example.com:8443");
    expect(authorityOf("::1", 80, 80)).toBe("[::1]");
  });
});

describe("endToEndHeaders", () => {
  it("drops hop-by-hop, Connection-listed, Host and the named headers, keeping duplicates", () => {
    const raw = [
      "Host",
      "lie.test",
      "Connection",
      "keep-alive, X-Hop",
      "X-Hop",
      "1",
      "Proxy-Authorization",
      "Basic x",
      "authorization",
      "Bearer client",
      "AUTHORIZATION",
      "Bearer again",
      "Accept",
      "a",
      "Set-Cookie",
      "1",
      "Set-Cookie",
      "2",
      "Transfer-Encoding",
      "chunked",
    ];
    expect(endToEndHeaders(raw, new Set(["authorization"]))).toEqual(["Accept", "a", "Set-Cookie", "1", "Set-Cookie", "2"]);
  });
});

describe("parseConnectHead", () => {
  const head = (s: string) => parseConnectHead(Buffer.from(s, "latin1"));
  it("parses the request line and header lines, trimming only SP and HTAB", () => {
    expect(head("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-A:\t v \u00a0\r\n\r\nrest")).toEqual({
      kind: "connect",
      url: "example.com:443",
      rawHeaders: ["Host", "example.com:443", "X-A", "v \u00a0"],
      end: 70,
    });
    expect(head("CONNECT [::1]:443 HTTP/1.0\r\n\r\n")).toEqual({ kind: "connect", url: "[::1]:443", rawHeaders: [], end: 30 });
  });
  it("waits for the end of the head, within the size bound", () => {
    expect(head("CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n")).toEqual({ kind: "incomplete" });
    expect(head(`CONNECT a:1 HTTP/1.1\r\nX: ${"a".repeat(17_000)}`)).toMatchObject({ kind: "invalid", status: 431 });
    expect(head(`CONNECT a:1 HTTP/1.1\r\nX: ${"a".repeat(17_000)}\r\n\r\n`)).toMatchObject({ kind: "invalid", status: 431 });
  });
  it("finds a terminator split across chunks when resuming", () => {
    const buf = Buffer.from("CONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n");
    expect(parseConnectHead(buf, buf.length - 2)).toMatchObject({ kind: "connect", url: "a:1" });
  });
  it.each([
    "CONNECT a:1 HTTP/1.1\nHost: a\r\n\r\n",
    "CONNECT a:1 HTTP/1.1\r\nHost: a\n\r\n\r\n",
    "CONNECT a:1 HTTP/1.1\r\n folded\r\n\r\n",
    "CONNECT a:1 HTTP/1.1\r\nHost : a\r\n\r\n",
    "CONNECT a:1 HTTP/1.1\r\n: a\r\n\r\n",
    "CONNECT a:1 HTTP/1.1\r\nno colon\r\n\r\n",
    "CONNECT a:1 HTTP/1.1\r\nX: a\rb\r\n\r\n",
    "CONNECT a:1 HTTP/1.1\r\nX: a\u0000b\r\n\r\n",
    "CONNECT  a:1 HTTP/1.1\r\n\r\n",
    "CONNECT a:1 HTTP/1.1 \r\n\r\n",
    "CONNECT a:1 HTTP/1.2\r\n\r\n",
    "connect a:1 HTTP/1.1\r\n\r\n",
    "CONNECT a\u0001:1 HTTP/1.1\r\n\r\n",
  ])("refuses %j", (s) => {
    expect(head(s)).toMatchObject({ kind: "invalid", status: 400 });
  });
  it("stays linear on hostile whitespace", () => {
    const t = performance.now();
    head(`CONNECT a:1 HTTP/1.1\r\nX: ${" ".repeat(16_000)}x\r\n\r\n`);
    expect(performance.now() - t).toBeLessThan(200);
  });
});
