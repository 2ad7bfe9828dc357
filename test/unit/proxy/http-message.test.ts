import { describe, expect, it } from "vitest";
import { authorityOf, endToEndHeaders, parseAbsoluteTarget, parseConnectTarget } from "../../../src/sidecars/proxy/http-message.js";

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
    const raw = ["Host", "lie.test", "Connection", "keep-alive, X-Hop", "X-Hop", "1", "Proxy-Authorization", "Basic x", "authorization", "Bearer client", "AUTHORIZATION", "Bearer again", "Accept", "a", "Set-Cookie", "1", "Set-Cookie", "2", "Transfer-Encoding", "chunked"];
    expect(endToEndHeaders(raw, new Set(["authorization"]))).toEqual(["Accept", "a", "Set-Cookie", "1", "Set-Cookie", "2"]);
  });
});
