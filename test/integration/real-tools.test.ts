// Real tools in a bottle's agent, through the firewall (issue 12): an agent
// image built from Debian's own packages (curl, git, python3 with pip and
// requests, nodejs with npm) reaches a local HTTPS upstream with a test CA
// using each tool the way a user would, with nothing but the environment the
// bottle gives the agent (proxy and CA variables) plus the registry URLs a
// user would set (PIP_INDEX_URL, NPM_CONFIG_REGISTRY) in the profile.
//
// The upstream is one container on a network of its own that only the
// firewall joins, with a certificate from a throwaway CA the firewall trusts
// (network.trust). It speaks just enough of each protocol: static files, git
// smart HTTP (git http-backend as CGI), a PyPI "simple" index with a wheel,
// and an npm packument with a tarball. Every tool verifies TLS against the
// bottle's CA bundle (the firewall re-signs each intercepted connection);
// negative controls run the same tools with their CA variables unset and
// show each fails on TLS before anything reaches the upstream.
//
// Node: Debian bookworm's nodejs is 18, whose built-in fetch has no proxy
// support at all (NODE_USE_ENV_PROXY is Node >= 24), so the image also
// carries the official Node 24 binary from the local node:24-bookworm-slim
// image; fetch is tested with it, and Node 18's fetch is pinned as the
// documented limit. npm (Debian's 9.2 on Node 18) proxies by itself.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { execInBottle } from "../../src/bottles/exec.js";
import { startBottle } from "../../src/bottles/start.js";
import { stopBottle } from "../../src/bottles/stop.js";
import { createNetwork, removeNetwork, usedSubnets } from "../../src/engine/networks.js";
import { docker } from "../../src/engine/run.js";
import { bridgeName, stateRootId } from "../../src/plan/index.js";
import { pickFreeSubnets } from "../../src/plan/subnets.js";
import { AGENT_CA_ENV } from "../../src/render/compose.js";
import { createCertificateAuthority, issueServerCertificate } from "../../src/security/ca.js";
import { describeDocker } from "../helpers/docker.js";
import { ensureRealToolsImage, FIXTURES, REAL_TOOLS_IMAGE, type StandInFixtures, standInRequests, writeStandInFixtures } from "../helpers/real-tools.js";

const HOST = "pkgs.real-tools.test";
const ORIGIN = `https://${HOST}`;
const run = Math.random().toString(16).slice(2, 6);
const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-real-tools-"));
const state = nodePath.join(dir, "state");
const env = { ...process.env, BOTTLE_STATE_DIR: state, BOTTLE_SUBNET_POOL: "10.237.0.0/16" };
const manifest = nodePath.join(dir, "bottle.yaml");
const slug = `rt-${run}`;
const firewall = `bottle-firewall-${slug}`;
const upstreamNet = `bb-rt-up-${run}`;
const standIn = `bb-rt-stand-in-${run}`;
const labels = { "dev.bot-bottle.state-root": stateRootId(state), "dev.bot-bottle.test": "real-tools" };

let fx: StandInFixtures;
let firewallAddress = "";

const sh = (script: string, timeoutMs = 120_000) => execInBottle(slug, ["sh", "-c", script], { env, timeoutMs });
const requests = () => standInRequests(standIn);
/** The firewall's log lines about the stand-in's host. */
async function firewallLog(): Promise<Array<{ host?: string; scheme?: string; decision?: string; tls?: string }>> {
  const fw = await docker(["logs", firewall], { timeout: 30_000 });
  return fw.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { host?: string })
    .filter((l) => l.host === HOST);
}
/** exec returns stdout without its final newline. */
const body = (s: string) => s.replace(/\n$/, "");

describeDocker("real tools in the agent, through the firewall", () => {
  beforeAll(async () => {
    const t0 = Date.now();
    const built = await ensureRealToolsImage();
    process.stderr.write(`[real-tools] agent image ${built ? "built" : "cached"} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);

    const ca = await createCertificateAuthority("bot-bottle real-tools test CA", 1);
    const cert = await issueServerCertificate(ca, [HOST], 1);
    writeFileSync(nodePath.join(dir, "ca.pem"), ca.certPem);
    fx = writeStandInFixtures(nodePath.join(dir, "srv"), cert);

    const [subnet] = pickFreeSubnets("10.238.0.0/16", await usedSubnets(), 1);
    await createNetwork({ name: upstreamNet, subnet: subnet!, internal: true, bridge: bridgeName(upstreamNet), labels });
    await docker(
      [
        "run",
        "-d",
        "--init",
        "--name",
        standIn,
        "--network",
        upstreamNet,
        "--network-alias",
        HOST,
        ...Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
        "-v",
        `${fx.root}:/srv/stand-in:ro`,
        "-v",
        `${FIXTURES}:/opt/stand-in:ro`,
        REAL_TOOLS_IMAGE,
        "/opt/node24/bin/node",
        "/opt/stand-in/stand-in.mjs",
      ],
      { timeout: 60_000 },
    );

    // The registries are the user's to name; everything else is the bottle's own environment.
    writeFileSync(
      manifest,
      `version: 1
agents:
  tools:
    image: ${REAL_TOOLS_IMAGE}
    env:
      PIP_INDEX_URL: ${ORIGIN}/simple/
      NPM_CONFIG_REGISTRY: ${ORIGIN}/npm/
    network:
      allow: [${HOST}]
      allow_cidrs: [${subnet}]
      trust: [${nodePath.join(dir, "ca.pem")}]
`,
    );
    await startBottle({ profile: "tools", manifest, slug, env });
    // Only the firewall joins the upstream's network.
    await docker(["network", "connect", upstreamNet, firewall], { timeout: 30_000 });
    firewallAddress = (await docker(["inspect", "--format", `{{(index .NetworkSettings.Networks "${upstreamNet}").IPAddress}}`, firewall], { timeout: 30_000 })).stdout.trim();
    for (let i = 0; !(await docker(["logs", standIn], { timeout: 30_000 })).stdout.includes('"ready":true'); i++) {
      if (i > 100) throw new Error(`the stand-in did not start:\n${(await docker(["logs", standIn], { reject: false })).stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 1_200_000);

  afterAll(async () => {
    await stopBottle(slug, { env, purge: true }).catch(() => {});
    await docker(["rm", "-f", standIn], { timeout: 60_000, reject: false });
    await removeNetwork(upstreamNet).catch(() => {});
    const left = await docker(["ps", "-aq", "--filter", `label=dev.bot-bottle.state-root=${stateRootId(state)}`]);
    const nets = await docker(["network", "ls", "-q", "--filter", `label=dev.bot-bottle.state-root=${stateRootId(state)}`]);
    rmSync(dir, { recursive: true, force: true });
    expect(left.stdout + nets.stdout).toBe("");
  });

  it("the agent runs Debian's own tools, plus Node 24", async () => {
    const r = await sh(
      "curl --version | head -1; git --version; python3 --version; pip --version; python3 -c 'import requests; print(\"requests\", requests.__version__)'; echo node $(node --version); echo npm $(npm --version); echo node24 $(/opt/node24/bin/node --version)",
    );
    expect(r.exitCode, r.stderr).toBe(0);
    process.stderr.write(`[real-tools] ${r.stdout.replace(/\n/g, "; ")}\n`);
    for (const re of [/^curl 7\.88\./m, /^git version 2\.39\./m, /^Python 3\.11\./m, /^pip 23\./m, /^requests 2\./m, /^node v18\./m, /^npm 9\./m, /^node24 v24\./m]) expect(r.stdout).toMatch(re);
  });

  it("the agent cannot reach the upstream except through the firewall", async () => {
    const before = (await requests()).length;
    const r = await sh(`env -u HTTPS_PROXY -u https_proxy curl -sS --max-time 2 ${ORIGIN}/files/hello.txt`);
    // The agent's network has no route out and no answer for the name: the lookup fails or hangs.
    expect([6, 28], r.stderr).toContain(r.exitCode);
    expect(await requests()).toHaveLength(before);
  });

  it("curl fetches a file", async () => {
    const r = await sh(`curl -sS --fail-with-body ${ORIGIN}${fx.hello.path}`);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(body(fx.hello.body));
    expect((await requests()).filter((q) => q.ua.startsWith("curl/"))).toEqual([
      { method: "GET", host: HOST, path: fx.hello.path, from: firewallAddress, ua: expect.stringMatching(/^curl\/7\.88\./), status: 200 },
    ]);
  });

  it("Python's urllib and requests fetch the same file", async () => {
    const py = `
import json, urllib.request, requests
u = urllib.request.urlopen("${ORIGIN}${fx.hello.path}", timeout=30)
r = requests.get("${ORIGIN}${fx.hello.path}", timeout=30)
print(json.dumps({"urllib": [u.status, u.read().decode()], "requests": [r.status_code, r.text, requests.__version__]}))
`;
    const r = await execInBottle(slug, ["python3", "-c", py], { env, timeoutMs: 60_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { urllib: [number, string]; requests: [number, string, string] };
    expect(out.urllib).toEqual([200, fx.hello.body]);
    expect(out.requests).toEqual([200, fx.hello.body, expect.stringMatching(/^2\./)]);
    const seen = (await requests()).filter((q) => /^(Python-urllib|python-requests)\//.test(q.ua));
    expect(seen.map((q) => [q.ua.split("/")[0], q.path, q.from])).toEqual([
      ["Python-urllib", fx.hello.path, firewallAddress],
      ["python-requests", fx.hello.path, firewallAddress],
    ]);
  });

  it("Node 24's built-in fetch fetches it (NODE_USE_ENV_PROXY); Debian's Node 18 fetch cannot use a proxy", async () => {
    // A 4 s watchdog that kills the process: a plain exit would wait for Node 18's pending name lookup,
    // which a bottle's network never answers (glibc gives up after 2 × 5 s).
    const script = `setTimeout(() => { console.log(JSON.stringify([process.version, "error", "no answer in 4 s"])); process.kill(process.pid, "SIGKILL"); }, 4000); fetch("${ORIGIN}${fx.hello.path}").then(async (r) => { console.log(JSON.stringify([process.version, r.status, await r.text()])); process.exit(0); }, (e) => { console.log(JSON.stringify([process.version, "error", e.cause?.code ?? e.name])); process.exit(1); })`;
    const r24 = await execInBottle(slug, ["/opt/node24/bin/node", "-e", script], { env, timeoutMs: 60_000 });
    expect(r24.exitCode, r24.stdout + r24.stderr).toBe(0);
    expect(JSON.parse(r24.stdout)).toEqual([expect.stringMatching(/^v24\./), 200, fx.hello.body]);
    expect((await requests()).filter((q) => q.ua === "node").map((q) => [q.path, q.from])).toEqual([[fx.hello.path, firewallAddress]]);

    // Node 18 ignores HTTPS_PROXY for fetch and connects by itself, which the bottle's network does not allow:
    // the firewall never hears of it.
    const firewallLines = (await firewallLog()).length;
    const r18 = await execInBottle(slug, ["node", "-e", script], { env, timeoutMs: 60_000 });
    expect(r18.exitCode).not.toBe(0);
    expect(JSON.parse(r18.stdout)).toEqual([expect.stringMatching(/^v18\./), "error", expect.stringMatching(/^(ENOTFOUND|EAI_AGAIN|UND_ERR_CONNECT_TIMEOUT|no answer in 4 s)$/)]);
    expect((await requests()).filter((q) => q.ua === "node")).toHaveLength(1);
    expect((await firewallLog()).slice(firewallLines)).toEqual([]);
  });

  it("git clones a repository over smart HTTP", async () => {
    const r = await sh(`rm -rf /tmp/probe && git clone -q ${ORIGIN}/git/${fx.git.repo} /tmp/probe && git -C /tmp/probe rev-parse HEAD && cat /tmp/probe/README`);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(body(`${fx.git.head}\n${fx.git.readme}`));
    const seen = (await requests()).filter((q) => q.ua.startsWith("git/"));
    // Smart HTTP: the ref advertisement, then the pack from POST git-upload-pack.
    expect(seen.map((q) => [q.method, q.path, q.status, q.from])).toEqual(
      expect.arrayContaining([
        ["GET", `/git/${fx.git.repo}/info/refs`, 200, firewallAddress],
        ["POST", `/git/${fx.git.repo}/git-upload-pack`, 200, firewallAddress],
      ]),
    );
    expect(seen[0]!.ua).toMatch(/^git\/2\.39\./);
    // Protocol v2: the Git-Protocol header made it through the firewall to the server.
    expect(seen.map((q) => q.gitProtocol)).toEqual(seen.map(() => "version=2"));
  });

  it("pip downloads a wheel from the PyPI simple index, hash-checked, and Python imports it", async () => {
    const w = fx.wheel;
    const r = await sh(
      `rm -rf /tmp/wheels && pip download -q --no-deps -d /tmp/wheels ${w.project}==${w.version} && cd /tmp/wheels && sha256sum * && PYTHONPATH=/tmp/wheels/${w.file} python3 -c "import bb_probe; print(bb_probe.VALUE)"`,
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${w.sha256}  ${w.file}\n${w.value}`);
    const seen = (await requests()).filter((q) => q.ua.startsWith("pip/"));
    expect(seen.map((q) => [q.path, q.status, q.from])).toEqual(
      expect.arrayContaining([
        [`/simple/${w.project}/`, 200, firewallAddress],
        [`/packages/${w.file}`, 200, firewallAddress],
      ]),
    );
  });

  it("npm views a package from the registry and installs it, integrity-checked", async () => {
    const n = fx.npm;
    const view = await sh(`npm view ${n.name} --json`);
    expect(view.exitCode, view.stderr).toBe(0);
    expect(JSON.parse(view.stdout)).toMatchObject({ name: n.name, version: n.version, dist: { integrity: n.integrity, tarball: `${ORIGIN}/npm/${n.name}/-/${n.name}-${n.version}.tgz` } });

    const install = await sh(
      `rm -rf /tmp/np && mkdir /tmp/np && cd /tmp/np && npm install --no-audit --no-fund --loglevel=error ${n.name} && node -p "require('${n.name}')" && node -p "require('./package-lock.json').packages['node_modules/${n.name}'].integrity"`,
    );
    expect(install.exitCode, install.stderr).toBe(0);
    expect(install.stdout.trim().split("\n").slice(-2)).toEqual([n.main.match(/'(.*)'/)![1], n.integrity]);
    const seen = (await requests()).filter((q) => q.ua.startsWith("npm/"));
    expect(seen[0]!.ua).toMatch(/^npm\/9\.2\.0 node\/v18\./);
    expect(seen.map((q) => [q.path, q.status, q.from])).toEqual(
      expect.arrayContaining([
        [`/npm/${n.name}`, 200, firewallAddress],
        [`/npm/${n.name}/-/${n.name}-${n.version}.tgz`, 200, firewallAddress],
      ]),
    );
  });

  it("each tool trusts the firewall through its own CA variable, and fails on TLS without any", async () => {
    const file = `${ORIGIN}${fx.hello.path}`;
    // [tool, the variable the bottle sets for it, command, its TLS error]
    const cases: Array<[string, string, string, RegExp]> = [
      ["curl", "CURL_CA_BUNDLE", `curl -sS --fail ${file}`, /SSL certificate problem: (self-signed certificate in certificate chain|unable to get local issuer certificate)/],
      ["urllib", "SSL_CERT_FILE", `python3 -c 'import urllib.request; urllib.request.urlopen("${file}")'`, /CERTIFICATE_VERIFY_FAILED/],
      ["requests", "REQUESTS_CA_BUNDLE", `python3 -c 'import requests; requests.get("${file}").raise_for_status()'`, /CERTIFICATE_VERIFY_FAILED/],
      [
        "fetch",
        "NODE_EXTRA_CA_CERTS",
        `/opt/node24/bin/node -e 'fetch("${file}").then((r) => { if (!r.ok) process.exit(2); }, (e) => { console.error(e.cause?.code); process.exit(1); })'`,
        /^(UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)$/m,
      ],
      ["git", "GIT_SSL_CAINFO", `git ls-remote ${ORIGIN}/git/${fx.git.repo}`, /server certificate verification failed|SSL certificate problem/],
      ["pip", "PIP_CERT", `pip download --retries 0 --no-cache-dir --no-deps -d "$(mktemp -d)" ${fx.wheel.project}`, /CERTIFICATE_VERIFY_FAILED/],
      // A fresh cache each time: npm would otherwise answer from the packument it fetched above.
      ["npm", "NPM_CONFIG_CAFILE", `npm view --fetch-retries=0 --cache="$(mktemp -d)" ${fx.npm.name} version`, /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN/],
    ];
    const without = (vars: readonly string[]) => `env ${vars.map((v) => `-u ${v}`).join(" ")}`;
    for (const [tool, own, command, tlsError] of cases) {
      expect(AGENT_CA_ENV, tool).toContain(own);
      const before = (await requests()).length;
      const none = await sh(`${without(AGENT_CA_ENV)} ${command}`);
      expect(none.exitCode, `${tool} without CA variables: ${none.stdout}${none.stderr}`).not.toBe(0);
      expect(none.stdout + none.stderr, tool).toMatch(tlsError);
      expect(await requests(), `${tool}: nothing reached the upstream`).toHaveLength(before);

      const onlyOwn = await sh(`${without(AGENT_CA_ENV.filter((v) => v !== own))} ${command}`);
      expect(onlyOwn.exitCode, `${tool} with only ${own}: ${onlyOwn.stdout}${onlyOwn.stderr}`).toBe(0);
      expect((await requests()).length, tool).toBeGreaterThan(before);
    }
  });

  it("the firewall logged every request the upstream answered, each allowed on an intercepted tunnel", async () => {
    const ours = await firewallLog();
    const connects = ours.filter((l) => l.tls !== undefined);
    expect(connects.length).toBeGreaterThan(0);
    expect(new Set(connects.map((l) => `${l.decision}/${l.tls}`))).toEqual(new Set(["allowed/intercepted"]));
    const forwarded = ours.filter((l) => l.scheme === "https" && l.decision === "allowed");
    expect(forwarded).toHaveLength((await requests()).length);
  });
});
