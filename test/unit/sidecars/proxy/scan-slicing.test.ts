// A request body that takes long to scan must not hold up every other
// connection: the proxies scan bodies in slices (scanRequestAsync) and the
// one thread serving every connection, /health included, keeps answering.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestCa, writePem } from "../../../helpers/proxy/ca.js";
import { type RunningProxy, startFirewall } from "../../../helpers/proxy/in-process.js";
import type { FirewallState } from "../../../../src/sidecars/proxy/firewall.js";

describe("a slow-to-scan body does not stall the firewall", () => {
  let dir: string;
  let up: Server;
  let upPort = 0;
  let fw: RunningProxy<FirewallState>;
  const logs: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "scan-slicing-"));
    up = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.end("ok"));
    });
    await new Promise<void>((r) => up.listen(0, "127.0.0.1", r));
    upPort = (up.address() as AddressInfo).port;
    const ca = await writePem(join(dir, "fw-ca"), await createTestCa("fw"));
    fw = await startFirewall(
      join(dir, "firewall.json"),
      {
        version: 1,
        allow: ["allowed.test"],
        allow_cidrs: ["127.0.0.0/8"],
        intercept: { enabled: true, ca_cert: ca.cert, ca_key: ca.key, passthrough: [] },
        dlp: { enabled: true, canary_env: [], canary_exempt: [] },
        upstream_ca_files: [],
        limits: { max_connections: 100, head_timeout_s: 30, handshake_timeout_s: 5, idle_timeout_s: 60, max_buffered_body_mb: 96 },
      },
      { env: {}, logs, resolve: async (n) => (n === "allowed.test" ? ["127.0.0.1"] : []) },
    );
  });

  afterAll(async () => {
    await fw?.proxy.close();
    up?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("keeps serving other connections while it scans a 24 MiB body of one key prefix over and over", async () => {
    // The scanner's worst case per byte: every position starts a candidate.
    const body = Buffer.from("sk-".repeat(8 * 1024 * 1024));
    const port = Number(new URL(fw.url).port);
    // The client shares the proxy's thread here: the longest gap between
    // ticks of a 10 ms timer while the upload is scanned is the stall every
    // other connection would see.
    let scanning = false;
    let last = Date.now();
    let maxGap = 0;
    const tick = setInterval(() => {
      const now = Date.now();
      if (scanning) maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 10);
    const t0 = Date.now();
    const status = await new Promise<number>((done) => {
      const req = httpRequest(
        { host: "127.0.0.1", port, method: "POST", path: `http://allowed.test:${upPort}/upload`, headers: { "content-type": "text/plain", "content-length": body.length } },
        (res) => {
          scanning = false;
          res.resume();
          res.on("end", () => done(res.statusCode ?? 0));
        },
      );
      req.on("error", () => done(0));
      req.end(body, () => {
        scanning = true;
        last = Date.now();
      });
    });
    clearInterval(tick);
    const total = Date.now() - t0;
    expect([200, 403]).toContain(status);
    // It took long enough that a synchronous scan would have stalled everything.
    expect(total).toBeGreaterThan(300);
    // Scanned whole in one turn this stalled everything for ~4 s; in slices the
    // longest gap is a step that is not sliced yet (the embedded-run search, ~0.2 s).
    expect(maxGap).toBeLessThan(500);
  }, 60_000);
});
