// The proxy image (Dockerfile.egress) in real containers, wired the way a
// bottle is: client (internal network only) → egress → firewall → upstream
// (egress network). Everything the tests talk to is a container they started.
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, readdir, rename, rm, writeFile, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { docker } from "../../src/engine/run.js";
import { allocateNetworks } from "../../src/bottles/networks.js";
import { engineFor } from "../../src/engine/index.js";
import { removeNetwork } from "../../src/engine/networks.js";
import { hostAddress, SUBNET_PREFIX, type NetworkPlan } from "../../src/plan/index.js";
import type { RequestSpec, Result, TcpSpec } from "../fixtures/proxy/client.js";
import { describeDocker } from "../helpers/docker.js";
import { createTestCa, writePem } from "../helpers/proxy/ca.js";
import { TestContainers } from "../helpers/proxy/containers.js";
import { SECRET_SAMPLES } from "../helpers/proxy/secret-samples.js";

const ROOT = resolve(import.meta.dirname, "../..");
const IMAGE = "bot-bottle/egress:test";
const BASE = "node:24-bookworm-slim";
const PORT = 3128;
const TOKEN = `tok_${randomBytes(18).toString("hex")}`;
const sha = (s: string) => createHash("sha256").update(s).digest("hex");
/** A uid:gid that is not root, as compose runs sidecars with the host user's. */
const UID = process.getuid?.() === 0 ? 10001 : (process.getuid?.() ?? 10001);
const GID = process.getgid?.() === 0 ? 10001 : (process.getgid?.() ?? 10001);

/** A proxy answers GET /health with 200 (bash's /dev/tcp: no client needed in the image). */
const serving = (port: number) => ["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${port} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '`];

describeDocker("proxy sidecar image (firewall + egress) in real containers", () => {
  const runId = randomBytes(3).toString("hex");
  const c = new TestContainers(runId);
  const name = (role: string) => `bbtest-proxy-${runId}-${role}`;
  const networks: NetworkPlan[] = [];
  let dir = "";
  let internalNet: NetworkPlan;
  let egressNet: NetworkPlan;
  let upstreamIp = "";
  let firewallConfig: Record<string, unknown>;
  let egressConfig: Record<string, unknown>;
  const fw = name("firewall");
  const eg = name("egress");
  const client = name("client");
  const upstream = name("upstream");

  const writeConfig = async (subdir: string, config: unknown) => {
    // Write-temp-then-rename inside the mounted directory, as the host does.
    const tmp = join(dir, subdir, `.config.json.${randomBytes(3).toString("hex")}`);
    await writeFile(tmp, typeof config === "string" ? config : JSON.stringify(config, null, 2), { mode: 0o644 });
    await rename(tmp, join(dir, subdir, "config.json"));
  };

  /** Run specs from the client container (one docker exec per batch). */
  const fromClient = async <S extends RequestSpec | TcpSpec>(specs: S[]): Promise<Result[]> => {
    const r = await c.exec(client, ["node", "/fixtures/client.ts"], { input: JSON.stringify(specs), timeout: 180_000 });
    if (r.exitCode !== 0) throw new Error(`client failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as Result[];
  };
  const viaEgress = (spec: Omit<RequestSpec, "proxy">): RequestSpec => ({ proxy: "http://egress:3128", ca: ["/trust/egress-ca.pem", "/trust/firewall-ca.pem"], ...spec });
  const upstreamRecords = async () => {
    const r = await c.exec(upstream, ["cat", "/tmp/requests.jsonl"]);
    return r.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: number; url: string; headers: string[]; body: string });
  };

  beforeAll(async () => {
    execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: ROOT, stdio: "pipe" });
    await docker(["build", "--pull=false", "-q", "-t", IMAGE, "-f", "Dockerfile.egress", "."], { cwd: ROOT, timeout: 300_000 });

    // Networks as the lifecycle makes them: pre-created, explicit subnets, labelled
    // (allocateNetworks retries when a parallel run takes the same subnet).
    const labels = { "dev.bot-bottle.test": "proxy", "dev.bot-bottle.test-run": runId };
    const nets = await allocateNetworks(
      engineFor(),
      (s) => ({
        internal: { name: name("internal"), subnet: s.internal, internal: true, bridge: `bbp${runId}i`, labels },
        egress: { name: name("egress"), subnet: s.egress, internal: false, bridge: `bbp${runId}e`, labels },
      }),
      "10.214.0.0/16",
    );
    internalNet = nets.internal;
    egressNet = nets.egress;
    networks.push(internalNet, egressNet);
    const egressSubnet = egressNet.subnet;
    // The test's DNS server takes the subnet's last host address (Docker hands out the lowest first).
    const dnsIp = hostAddress(egressSubnet, 2 ** (32 - SUBNET_PREFIX) - 2);

    // Host-side files: CAs (keys 0600, owned by the container user), configs in directory mounts.
    dir = await mkdtemp(join(tmpdir(), "bbtest-proxy-"));
    await chmod(dir, 0o755);
    for (const d of ["fw-config", "fw-ca", "eg-config", "eg-ca", "trust", "fixtures", "up-certs"]) await mkdir(join(dir, d), { mode: 0o755 });
    const [fwCa, egCa, upCa] = await Promise.all([createTestCa("bottle firewall CA (test)"), createTestCa("bottle egress CA (test)"), createTestCa("upstream test CA")]);
    await writePem(join(dir, "fw-ca", "ca"), fwCa);
    await writePem(join(dir, "eg-ca", "ca"), egCa);
    await writePem(join(dir, "up-certs", "server"), await upCa.issue(["upstream.test", "routed.test", "other.test"]));
    await writeFile(join(dir, "trust", "firewall-ca.pem"), fwCa.cert);
    await writeFile(join(dir, "trust", "egress-ca.pem"), egCa.cert);
    await writeFile(join(dir, "trust", "upstream-ca.pem"), upCa.cert);
    for (const f of await readdir(join(ROOT, "test/fixtures/proxy"))) await copyFile(join(ROOT, "test/fixtures/proxy", f), join(dir, "fixtures", f));
    if (process.getuid?.() === 0) {
      for (const d of ["fw-ca", "eg-ca"]) for (const f of ["ca.pem", "ca.key"]) await chown(join(dir, d, f), UID, GID);
    }

    firewallConfig = {
      version: 1,
      allow: ["upstream.test", "routed.test", "other.test", "rebind.test", "loopback.test", "localhost"],
      allow_cidrs: [egressSubnet],
      intercept: { enabled: true, ca_cert: "/etc/bottle/firewall-ca/ca.pem", ca_key: "/etc/bottle/firewall-ca/ca.key", passthrough: ["routed.test"] },
      dlp: { enabled: true, canary_env: ["TEST_TOKEN"], canary_exempt: [{ host: "routed.test", header: "Authorization", env: "TEST_TOKEN" }] },
      upstream_ca_files: ["/etc/bottle/trust/upstream-ca.pem"],
    };
    egressConfig = {
      version: 1,
      upstream_proxy: `http://${fw}:${PORT}`,
      ca_cert: "/etc/bottle/egress-ca/ca.pem",
      ca_key: "/etc/bottle/egress-ca/ca.key",
      upstream_ca_files: ["/etc/bottle/trust/firewall-ca.pem", "/etc/bottle/trust/upstream-ca.pem"],
      routes: [
        { name: "api", host: "routed.test", port: 8443, path_prefix: "/api/", header: "Authorization", value: "Bearer ${TEST_TOKEN}" },
        { name: "missing", host: "routed.test", port: 8443, path_prefix: "/api/missing/", header: "X-Key", value: "${MISSING_VAR}" },
      ],
    };
    await writeConfig("fw-config", firewallConfig);
    await writeConfig("eg-config", egressConfig);

    const hardened = ["--user", `${UID}:${GID}`, "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true", "--init"];
    const ro = (src: string, dst: string) => ["--mount", `type=bind,source=${join(dir, src)},target=${dst},readonly`];

    await c.start({
      name: upstream,
      image: BASE,
      networks: [{ name: egressNet.name, aliases: ["upstream.test", "routed.test", "other.test"] }],
      args: [...ro("fixtures", "/fixtures"), ...ro("up-certs", "/certs")],
      command: ["node", "/fixtures/upstream-server.ts", "8080", "8443", "/certs/server.pem", "/certs/server.key", "/tmp/requests.jsonl"],
    });
    await c.start({
      name: name("dns"),
      image: BASE,
      networks: [{ name: egressNet.name, ip: dnsIp }],
      args: ro("fixtures", "/fixtures"),
      command: ["node", "/fixtures/dns-server.ts", JSON.stringify({ "rebind.test": "192.168.77.77", "loopback.test": "127.0.0.1" })],
    });
    await c.start({
      name: fw,
      image: IMAGE,
      networks: [{ name: egressNet.name }, { name: internalNet.name, aliases: [fw] }],
      args: [...hardened, "--dns", dnsIp, ...ro("fw-config", "/etc/bottle/firewall"), ...ro("fw-ca", "/etc/bottle/firewall-ca"), ...ro("trust", "/etc/bottle/trust")],
      env: { TEST_TOKEN: TOKEN },
      command: ["firewall", "--config", "/etc/bottle/firewall/config.json", "--port", String(PORT)],
    });
    await c.start({
      name: eg,
      image: IMAGE,
      networks: [{ name: internalNet.name, aliases: ["egress"] }, { name: egressNet.name }],
      args: [...hardened, ...ro("eg-config", "/etc/bottle/egress"), ...ro("eg-ca", "/etc/bottle/egress-ca"), ...ro("trust", "/etc/bottle/trust")],
      env: { TEST_TOKEN: TOKEN },
      command: ["egress", "--config", "/etc/bottle/egress/config.json", "--port", String(PORT)],
    });
    await c.start({
      name: client,
      image: BASE,
      networks: [{ name: internalNet.name }],
      args: ["--init", ...ro("fixtures", "/fixtures"), "--mount", `type=bind,source=${join(dir, "trust")},target=/trust,readonly`],
      command: ["sleep", "infinity"],
    });
    await Promise.all([c.waitFor(fw, serving(PORT)), c.waitFor(eg, serving(PORT)), c.waitFor(upstream, ["test", "-e", "/proc/1"])]);
    upstreamIp = await c.ipOn(upstream, egressNet.name);
  });

  afterAll(async () => {
    // Always runs, also after a failed beforeAll: containers by label, then networks, then files.
    await c.removeAll();
    for (const n of networks) await removeNetwork(n.name).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("runs both roles as a non-root user on a read-only root filesystem", async () => {
    for (const n of [fw, eg]) {
      const r = await docker(["inspect", "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.State.Running}}", n]);
      expect(r.stdout.trim()).toBe(`${UID}:${GID} true [ALL] true`);
    }
    const health = await c.exec(client, ["node", "-e", `fetch("http://egress:${PORT}/health").then(async r => console.log(r.status, await r.text()))`]);
    expect(health.stdout).toMatch(/^200 .*"mode":"egress"/);
  });

  it("1. injects the credential through egress → firewall; the client never holds the token", async () => {
    const [routed, plain] = await fromClient([
      viaEgress({ url: "https://routed.test:8443/api/items?x=1", headers: [["Authorization", "Bearer client-made-this-up"]] }),
      viaEgress({ url: "http://upstream.test:8080/plain" }),
    ]);
    expect(routed!.status).toBe(200);
    const body = JSON.parse(routed!.body);
    expect(body).toMatchObject({ path: "/api/items?x=1", host: "routed.test:8443", authorization_count: 1, authorization_sha256: sha(`Bearer ${TOKEN}`) });
    expect(routed!.body).not.toContain(TOKEN);
    expect(plain).toMatchObject({ status: 200 });

    const record = (await upstreamRecords()).find((r) => r.id === body.id)!;
    expect(record.headers).toContain(`Bearer ${TOKEN}`);
    expect(record.headers).not.toContain("Bearer client-made-this-up");

    const env = await c.exec(client, ["env"]);
    expect(env.exitCode).toBe(0);
    expect(env.stdout).not.toContain(TOKEN);
    const inspect = await docker(["inspect", client]);
    expect(inspect.stdout).not.toContain(TOKEN);
  });

  it("2. refuses a non-allowlisted host with a readable 403", async () => {
    const [https, http] = await fromClient([viaEgress({ url: "https://evil.test/" }), viaEgress({ url: "http://evil.test/path" })]);
    for (const r of [https!, http!]) {
      expect(r.status).toBe(403);
      expect(r.body).toContain('bot-bottle firewall: blocked by allowlist: host "evil.test" is not in the allowlist');
    }
  });

  it("3. refuses every SSRF spelling and a DNS answer pointing an allowlisted name at a private address", async () => {
    const connectTargets = [
      "2130706433:8080",
      "0177.0.0.1:8080",
      "0x7f.1:8080",
      "0x7F000001:8080",
      "127.1:8080",
      "127.0.0.1.:8080",
      "[::ffff:127.0.0.1]:8080",
      "[::ffff:7f00:1]:8080",
      "[::1]:8080",
      "[fe80::1%25eth0]:8080",
      "[FE80::1%eth0]:8080",
      "169.254.169.254:80",
      "[fd00:ec2::254]:80",
      "10.0.0.1:80",
      "172.16.0.1:80",
      "192.168.1.1:80",
      "100.64.0.1:80",
      "0.0.0.0:80",
      "224.0.0.1:80",
      `${hostAddress(internalNet.subnet, 2)}:80`, // the bottle's internal network is not an allowed CIDR here
      "localhost:8080",
      "LOCALHOST.:8080",
      "rebind.test:8443",
      "loopback.test:8443",
    ];
    const plainTargets = [
      "http://0x7f.1:8080/",
      "http://2130706433:8080/",
      "http://[::ffff:127.0.0.1]:8080/",
      "http://0177.0.0.1:8080/",
      "http://rebind.test:8080/",
      "http://169.254.169.254/latest/meta-data/",
    ];
    const results = await fromClient([
      ...connectTargets.map((t) => viaEgress({ id: t, url: "https://placeholder.invalid/", connect: t })),
      ...plainTargets.map((t) => viaEgress({ id: t, url: "http://placeholder.invalid/", target: t })),
    ]);
    for (const r of results) {
      expect({ id: r.id, status: r.status }).toEqual({ id: r.id, status: 403 });
      expect(r.body, r.id).toMatch(/^bot-bottle firewall: blocked by ssrf: /);
    }
    expect(results.find((r) => r.id === "rebind.test:8443")!.body).toContain('host "rebind.test" resolves to the private address 192.168.77.77');
    expect(results.find((r) => r.id === "0x7f.1:8080")!.body).toContain('"0x7f.1" is the loopback address 127.0.0.1');

    // The allowed CIDR lets the allowlisted upstream through, but an IP literal still needs the allowlist.
    const [byIp] = await fromClient([viaEgress({ url: `http://${upstreamIp}:8080/` })]);
    expect(byIp!.status).toBe(403);
    expect(byIp!.body).toContain("blocked by allowlist");
  });

  it("4. DLP refuses each secret shape in URL, header and body, plain and encoded, and logs no secret", async () => {
    const pct = (s: string) => [...Buffer.from(s)].map((b) => `%${b.toString(16).padStart(2, "0").toUpperCase()}`).join("");
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const oneLine = (s: string) => s.split("\n")[0]!;
    const secrets: Record<string, string> = { ...SECRET_SAMPLES, canary: TOKEN };
    const specs: RequestSpec[] = [];
    for (const [kind, secret] of Object.entries(secrets)) {
      const forms = { plain: oneLine(secret), "url-encoded": pct(secret), base64: b64(secret) };
      for (const [enc, value] of Object.entries(forms)) {
        const urlValue = enc === "plain" ? encodeURI(value) : enc === "url-encoded" ? value : encodeURIComponent(value);
        // HTTPS to an intercepted host, and plain HTTP: both are scanned.
        specs.push(viaEgress({ id: `${kind}/${enc}/url`, url: `https://upstream.test:8443/search?q=${urlValue}` }));
        specs.push(viaEgress({ id: `${kind}/${enc}/header`, url: "http://upstream.test:8080/h", headers: [["X-Data", value]] }));
        specs.push(
          viaEgress({ id: `${kind}/${enc}/body`, url: "https://upstream.test:8443/upload", method: "POST", headers: [["Content-Type", "text/plain"]], body: enc === "plain" ? secret : value }),
        );
      }
    }
    const before = (await upstreamRecords()).length;
    const results = await fromClient(specs);
    for (const r of results) {
      expect({ id: r.id, status: r.status }).toEqual({ id: r.id, status: 403 });
      expect(r.body, r.id).toMatch(/^bot-bottle firewall: blocked by dlp: /);
    }
    expect((await upstreamRecords()).length).toBe(before);

    const logs = await c.logs(fw);
    const dlpLines = logs.split("\n").filter((l) => l.includes('"rule":"dlp"'));
    expect(dlpLines.length).toBeGreaterThanOrEqual(specs.length);
    for (const line of dlpLines) expect(() => JSON.parse(line)).not.toThrow();
    const allLogs = logs + (await c.logs(eg));
    for (const secret of Object.values(secrets)) {
      for (const form of [oneLine(secret), b64(secret), encodeURIComponent(secret)]) expect(allLogs).not.toContain(form);
    }
  });

  it("5. replaces the client's Authorization; a lying Host header never selects a route", async () => {
    const [lying, routedWithOtherHost, cleartext, missing] = await fromClient([
      viaEgress({
        url: "https://upstream.test:8443/api/x",
        headers: [
          ["Host", "routed.test:8443"],
          ["Authorization", "Bearer mine"],
        ],
      }),
      viaEgress({
        url: "https://routed.test:8443/api/y",
        headers: [
          ["Host", "upstream.test:8443"],
          ["authorization", "Bearer mine"],
          ["Authorization", "Bearer again"],
        ],
      }),
      viaEgress({ url: "http://routed.test:8080/api/z" }),
      viaEgress({ url: "https://routed.test:8443/api/missing/k" }),
    ]);
    expect(JSON.parse(lying!.body)).toMatchObject({ host: "upstream.test:8443", authorization_count: 1, authorization_sha256: sha("Bearer mine") });
    expect(JSON.parse(routedWithOtherHost!.body)).toMatchObject({ host: "routed.test:8443", authorization_count: 1, authorization_sha256: sha(`Bearer ${TOKEN}`) });
    // Routes never apply to cleartext HTTP: the credential must not cross the wire unencrypted.
    expect(JSON.parse(cleartext!.body)).toMatchObject({ authorization_sha256: null });
    expect(missing!.status).toBe(502);
    expect(missing!.body).toContain("env var MISSING_VAR is not set in the egress sidecar");
  });

  it("6. SIGHUP reloads routes and allowlist from the directory mount; a broken file is refused and the old config keeps working", async () => {
    const startedAt = async (n: string) => (await docker(["inspect", "--format", "{{.State.StartedAt}} {{.State.Running}} {{.RestartCount}}", n])).stdout.trim();
    const fwStarted = await startedAt(fw);
    const egStarted = await startedAt(eg);

    await writeConfig("eg-config", {
      ...egressConfig,
      routes: [...(egressConfig.routes as object[]), { name: "v2", host: "other.test", port: 8443, path_prefix: "/v2/", header: "X-Api-Key", value: "${TEST_TOKEN}" }],
    });
    await writeConfig("fw-config", {
      ...firewallConfig,
      allow: ["routed.test", "other.test"],
      intercept: { ...(firewallConfig.intercept as object), passthrough: ["routed.test", "other.test"] },
      dlp: { ...(firewallConfig.dlp as object), canary_exempt: [] },
    });
    await docker(["kill", "-s", "HUP", eg]);
    await docker(["kill", "-s", "HUP", fw]);
    await expect.poll(async () => (await c.logs(fw)).includes('"event":"config_reloaded"'), { timeout: 10_000 }).toBe(true);
    await expect.poll(async () => (await c.logs(eg)).includes('"event":"config_reloaded"'), { timeout: 10_000 }).toBe(true);

    const [newRoute, nowBlocked] = await fromClient([viaEgress({ url: "https://other.test:8443/v2/thing" }), viaEgress({ url: "https://upstream.test:8443/" })]);
    expect(newRoute!.status).toBe(200);
    expect(JSON.parse(newRoute!.body).header_names).toContain("x-api-key");
    expect(nowBlocked!.status).toBe(403);

    await writeConfig("fw-config", '{"version": 1, "allow": ["upstream.test"');
    await writeConfig("eg-config", { ...egressConfig, routes: [{ name: "bad", host: "x.test", header: "Authorization", value: "literal-no-env-ref" }] });
    await docker(["kill", "-s", "HUP", fw]);
    await docker(["kill", "-s", "HUP", eg]);
    await expect.poll(async () => (await c.logs(fw)).includes('"event":"config_reload_refused"'), { timeout: 10_000 }).toBe(true);
    await expect.poll(async () => (await c.logs(eg)).includes('"event":"config_reload_refused"'), { timeout: 10_000 }).toBe(true);
    const [stillRouted, stillBlocked] = await fromClient([viaEgress({ url: "https://other.test:8443/v2/again" }), viaEgress({ url: "https://upstream.test:8443/" })]);
    expect(JSON.parse(stillRouted!.body).header_names).toContain("x-api-key");
    expect(stillBlocked!.status).toBe(403);

    expect(await startedAt(fw)).toBe(fwStarted);
    expect(await startedAt(eg)).toBe(egStarted);
    expect(fwStarted).toMatch(/ true 0$/);

    // Back to the original config for anything that runs after.
    await writeConfig("fw-config", firewallConfig);
    await writeConfig("eg-config", egressConfig);
    await docker(["kill", "-s", "HUP", fw]);
    await docker(["kill", "-s", "HUP", eg]);
  });

  it("7. the client has no path out except the proxies", async () => {
    const firewallEgressIp = await c.ipOn(fw, egressNet.name);
    const results = await fromClient([
      { id: "upstream-direct", tcp: { host: upstreamIp, port: 8080, timeoutMs: 2000 } },
      { id: "upstream-direct-tls", tcp: { host: upstreamIp, port: 8443, timeoutMs: 2000 } },
      { id: "firewall-egress-side", tcp: { host: firewallEgressIp, port: PORT, timeoutMs: 2000 } },
      { id: "proxy-itself", tcp: { host: "egress", port: PORT, timeoutMs: 2000 } },
    ]);
    expect(results.map((r) => [r.id, r.connected])).toEqual([
      ["upstream-direct", false],
      ["upstream-direct-tls", false],
      ["firewall-egress-side", false],
      ["proxy-itself", true],
    ]);
  });
});
