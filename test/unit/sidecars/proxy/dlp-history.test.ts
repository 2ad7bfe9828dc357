// A secret sent a piece per request: each request alone is clean, the
// latest requests' URL pieces joined with the new one's are not (pipelock
// reassembles fragments per session; RequestHistory keeps a short,
// bounded window per destination host).
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDlpPolicy, RequestHistory, scanRequest } from "../../../../src/sidecars/proxy/dlp.js";
import type { FirewallState } from "../../../../src/sidecars/proxy/firewall.js";
import { send } from "../../../fixtures/proxy/client.js";
import { createTestCa, writePem } from "../../../helpers/proxy/ca.js";
import { type RunningProxy, startFirewall } from "../../../helpers/proxy/in-process.js";

const GHP = `ghp_${"aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"}`;
const { policy } = buildDlpPolicy({ enabled: true, canary_env: [], canary_exempt: [] }, {});
const halves = [GHP.slice(0, 20), GHP.slice(20)];

describe("RequestHistory", () => {
  it("finds a key sent half per request to the same host, and only there", () => {
    const h = new RequestHistory();
    expect(scanRequest(policy, { host: "x.test", url: `/c?d=${halves[0]}`, headers: [], recent: h.recent("x.test") })).toBeUndefined();
    h.add("x.test", `/c?d=${halves[0]}`);
    expect(scanRequest(policy, { host: "x.test", url: `/c?d=${halves[1]}`, headers: [] })).toBeUndefined();
    expect(scanRequest(policy, { host: "x.test", url: `/c?d=${halves[1]}`, headers: [], recent: h.recent("x.test") })).toMatchObject({ location: "earlier requests and this one (joined)" });
    // Another host's history is its own.
    expect(h.recent("y.test")).toEqual([]);
    expect(h.recent("X.TEST")).toEqual(["c", halves[0]]);
  });

  it("forgets after a minute, keeps the newest 16 pieces of at most 512 hosts, and no piece over 512 characters", () => {
    const h = new RequestHistory();
    h.add("x.test", "/a?q=1", 0);
    expect(h.recent("x.test", 59_000)).toEqual(["a", "1"]);
    expect(h.recent("x.test", 61_000)).toEqual([]);
    for (let i = 0; i < 20; i++) h.add("x.test", `/p${i}`, 100_000);
    expect(h.recent("x.test", 100_000)).toEqual(Array.from({ length: 16 }, (_, i) => `p${i + 4}`));
    h.add("x.test", `/${"z".repeat(513)}?q=ok`, 100_000);
    expect(h.recent("x.test", 100_000).at(-1)).toBe("ok");
    // The same URL again and again keeps one copy of each piece, newest last.
    const p = new RequestHistory();
    for (let i = 0; i < 50; i++) p.add("x.test", "/api/v1/poll?since=0", 100_000);
    p.add("x.test", "/api/v2", 100_000);
    expect(p.recent("x.test", 100_000)).toEqual(["v1", "poll", "0", "api", "v2"]);
    for (let i = 0; i < 600; i++) h.add(`h${i}.test`, "/a", 100_000);
    expect(h.recent("h0.test", 100_000)).toEqual([]);
    expect(h.recent("h599.test", 100_000)).toEqual(["a"]);
  });
});

describe("the firewall joins a host's latest requests", () => {
  let dir: string;
  let up: Server;
  let upPort = 0;
  let fw: RunningProxy<FirewallState>;
  const upstreamSaw: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "dlp-history-"));
    up = createServer((req, res) => {
      upstreamSaw.push(req.url ?? "");
      res.end("ok");
    });
    await new Promise<void>((r) => up.listen(0, "127.0.0.1", r));
    upPort = (up.address() as AddressInfo).port;
    const ca = await writePem(join(dir, "fw-ca"), await createTestCa("fw"));
    fw = await startFirewall(
      join(dir, "firewall.json"),
      {
        version: 1,
        allow: ["a.test", "b.test"],
        allow_cidrs: ["127.0.0.0/8"],
        intercept: { enabled: true, ca_cert: ca.cert, ca_key: ca.key, passthrough: [] },
        dlp: { enabled: true, canary_env: [], canary_exempt: [] },
        upstream_ca_files: [],
        limits: { max_connections: 100, head_timeout_s: 5, handshake_timeout_s: 5, idle_timeout_s: 30, max_buffered_body_mb: 96 },
      },
      { env: {}, logs: [], resolve: async () => ["127.0.0.1"] },
    );
  });

  afterAll(async () => {
    await fw?.proxy.close();
    up?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses the request that completes a key sent a piece per request; another host's pieces never join", async () => {
    const get = (host: string, half: string) => send({ proxy: fw.url, url: `http://${host}:${upPort}/collect?d=${half}`, method: "GET" });
    expect((await get("a.test", halves[0]!)).status).toBe(200);
    expect((await get("b.test", halves[1]!)).status).toBe(200);
    const second = await get("a.test", halves[1]!);
    expect(second.status).toBe(403);
    expect(second.body).toMatch(/earlier requests and this one \(joined\)/);
    expect(upstreamSaw).toEqual([`/collect?d=${halves[0]}`, `/collect?d=${halves[1]}`]);
  });
});
