// Egress never sends a framing or routing header a route names (Host,
// Content-Length, X-Forwarded-Host, ...): the config schema refuses such a
// route, and should one reach egress anyway (a state built past the
// schema), the request is answered 502 without the credential going
// anywhere, never sent with a second Host header.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EgressRouteConfig } from "../../../../src/contracts/egress.js";
import { createEventLog } from "../../../../src/sidecars/kit/log.js";
import { ReloadableState } from "../../../../src/sidecars/proxy/config-file.js";
import { buildEgressState, createEgress } from "../../../../src/sidecars/proxy/egress.js";
import type { ProxyServer } from "../../../../src/sidecars/proxy/proxy-server.js";
import { compileRoutes } from "../../../../src/sidecars/proxy/routes.js";
import { send } from "../../../fixtures/proxy/client.js";
import { createTestCa, writePem } from "../../../helpers/proxy/ca.js";

describe("egress and a route that names a reserved header", () => {
  let dir: string;
  let egress: ProxyServer<unknown>;
  let egressUrl = "";
  let caFile = "";
  let firewall: Server;
  const dialled: number[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "egress-route-headers-"));
    const ca = await writePem(join(dir, "eg-ca"), await createTestCa("eg"));
    caFile = ca.cert;
    // Stands in for the firewall: counts connections, never answers.
    firewall = createServer((s) => {
      dialled.push(1);
      s.destroy();
    });
    await new Promise<void>((r) => firewall.listen(0, "127.0.0.1", r));
    const file = join(dir, "egress.json");
    const good = { name: "ok", host: "api.example.test", port: 443, path_prefix: "/", header: "Authorization", value: "Bearer ${TOKEN}" };
    await writeFile(
      file,
      JSON.stringify({ version: 1, upstream_proxy: `http://127.0.0.1:${(firewall.address() as AddressInfo).port}`, ca_cert: ca.cert, ca_key: ca.key, upstream_ca_files: [], routes: [good] }),
    );
    const env = { TOKEN: "tok-7Hq27Hq27Hq27Hq2" };
    const state = await ReloadableState.create(
      async () => {
        const s = await buildEgressState(file, env);
        // Past the schema: the route's header replaced by Host.
        const routes: EgressRouteConfig[] = [{ ...s.config.routes[0]!, header: "Host" }];
        return { ...s, config: { ...s.config, routes }, routes: compileRoutes(routes) };
      },
      () => {},
    );
    egress = createEgress(
      state,
      createEventLog("egress", (l) => logs.push(l)),
      env,
    ) as ProxyServer<unknown>;
    await egress.listen(0, "127.0.0.1");
    egressUrl = `http://127.0.0.1:${(egress.server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await egress?.close();
    firewall?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("answers 502 with the reason and sends nothing on", async () => {
    const r = await send({ proxy: egressUrl, ca: [caFile], url: "https://api.example.test/x" });
    expect(r.status).toBe(502);
    expect(r.body).toContain('route "ok" cannot add its Host header: a route may not set the Host header');
    expect(r.body).not.toContain("tok-7Hq2");
    expect(dialled).toEqual([]);
  });
});
