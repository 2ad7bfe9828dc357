// The main job: bring up a demo bottle on the built-in defaults, show one
// allowed request, one refused request and one injected credential from
// inside the agent, print the proxies' logs, and stop it. Everything it
// talks to is a container it starts itself on this machine.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { parse, stringify } from "yaml";
import { bottleLogs, execInBottle, startBottle, stopBottle, type StartStep } from "../bottles/index.js";
import { createNetwork, usedSubnets } from "../engine/networks.js";
import { docker } from "../engine/run.js";
import { packageRoot } from "../package.js";
import { bottleLabels, bridgeName, containerName, DEFAULT_SUBNET_POOL, networkName, pickFreeSubnets } from "../plan/index.js";
import { layoutOf } from "../state/layout.js";
import { stateRoot } from "../state/root.js";

export interface DemoReport {
  slug: string;
  agentOutput: string;
  logs: string[];
  stopMs: number;
}

export async function runDemo(o: { env?: NodeJS.ProcessEnv; say?: (line: string) => void; onProgress?: (step: StartStep, message: string) => void } = {}): Promise<DemoReport> {
  const say = o.say ?? (() => {});
  const root = packageRoot();
  const token = `demo-${randomBytes(16).toString("hex")}`;
  const env: NodeJS.ProcessEnv = { ...(o.env ?? process.env), BOTTLE_DEMO_TOKEN: token };
  const slug = `demo-${randomBytes(2).toString("hex")}`;
  const labels = bottleLabels(slug, "demo", stateRoot(env));
  const dir = mkdtempSync(nodePath.join(tmpdir(), "bottle-demo-"));

  say("making the demo upstream's CA and certificate");
  const { createCertificateAuthority, issueServerCertificate } = await import("../security/ca.js"); // not at startup: see bottles/prepare.ts
  const ca = await createCertificateAuthority("bot-bottle demo upstream CA", 2);
  const cert = await issueServerCertificate(ca, ["api.demo.test", "allowed.demo.test", "blocked.demo.test"], 2);
  writeFileSync(nodePath.join(dir, "ca.pem"), ca.certPem);
  writeFileSync(nodePath.join(dir, "server.pem"), cert.certPem);
  writeFileSync(nodePath.join(dir, "server.key"), cert.keyPem, { mode: 0o644 }); // a throwaway demo key the upstream container reads
  copyFileSync(nodePath.join(root, "examples", "demo", "upstream.mjs"), nodePath.join(dir, "upstream.mjs"));

  // The upstream lives on a network of its own, labelled as part of the
  // bottle so that stopping the bottle removes it too.
  const [subnet] = pickFreeSubnets(env.BOTTLE_SUBNET_POOL ?? DEFAULT_SUBNET_POOL, await usedSubnets(), 1);
  const upstreamNet = networkName(slug, "demo");
  await createNetwork({ name: upstreamNet, subnet: subnet!, internal: true, bridge: bridgeName(upstreamNet), labels });
  say(`starting the demo upstream on ${upstreamNet} (${subnet})`);
  const labelArgs = Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
  await docker(
    [
      "run",
      "-d",
      "--name",
      containerName("demo-upstream", slug),
      "--network",
      upstreamNet,
      "--network-alias",
      "api.demo.test",
      "--network-alias",
      "allowed.demo.test",
      ...labelArgs,
      "-e",
      "DEMO_TOKEN",
      "-v",
      `${dir}:/demo:ro`,
      "node:24-bookworm-slim",
      "node",
      "/demo/upstream.mjs",
    ],
    { env: { DEMO_TOKEN: token } },
  );

  // The built-in manifest, plus what only exists now.
  const manifest = parse(readFileSync(nodePath.join(root, "examples", "bottle.yaml"), "utf8"));
  manifest.agents.demo.network.allow_cidrs = [subnet];
  manifest.agents.demo.network.trust = [nodePath.join(dir, "ca.pem")];
  const manifestFile = nodePath.join(dir, "bottle.yaml");
  writeFileSync(manifestFile, stringify(manifest));

  let result: Omit<DemoReport, "stopMs">;
  let stopMs = 0;
  try {
    say(`starting bottle ${slug}`);
    await startBottle({ profile: "demo", manifest: manifestFile, slug, env, ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
    // Only the firewall dials out, so only it joins the upstream's network.
    await docker(["network", "connect", upstreamNet, containerName("firewall", slug)]);

    say("running the demo client inside the agent");
    const script = readFileSync(nodePath.join(root, "examples", "demo", "agent.mjs"), "utf8");
    const r = await execInBottle(slug, ["node", "--input-type=module", "-"], { stdin: script, env, timeoutMs: 60_000 });
    const agentOutput = `${r.stdout}${r.stderr ? `\n${r.stderr}` : ""}`.trim();

    const logs = (await bottleLogs({ slug, env, tail: 40 })).lines.filter((l) => /^bottle-(firewall|egress)-/.test(l)).slice(-12);
    result = { slug, agentOutput, logs };
  } finally {
    say(`stopping bottle ${slug}`);
    const t0 = Date.now();
    await stopBottle(slug, { env }).catch((err: Error) => say(`stop failed: ${err.message}`));
    stopMs = Date.now() - t0;
    say(`stopped in ${stopMs} ms; its state dir (logs, compose file) is kept in ${layoutOf(stateRoot(env), slug).stateDir}`);
  }
  return { ...result, stopMs };
}
