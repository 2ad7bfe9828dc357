// prepare: everything a bottle's state dir must hold before `compose up`:
// CAs, the agent's trust bundle, sidecar configs, the compose file.
import { promises as fs } from "node:fs";
import nodePath from "node:path";
import { rootCertificates } from "node:tls";
import { writeFileAtomic } from "../contracts/atomic.js";
import { upstreamCaName } from "../contracts/mounts.js";
import type { Plan } from "../plan/index.js";
import { renderEgressConfig, renderFirewallConfig, renderGitGateConfig, renderPipelockConfig, type RenderedBottle } from "../render/index.js";
import { mcpClientConfig } from "../contracts/access.js";
import { FILES } from "../contracts/mounts.js";
import { effectiveConfigs, writeBase, type BaseConfigs } from "../state/grants.js";
import { ensureQueue } from "../contracts/queue.js";
import { createCertificateAuthority } from "../security/ca.js";

/** Directories holding only public material the agent or egress read. */
const PUBLIC_DIR = 0o755;
const PRIVATE_DIR = 0o700;

export async function prepareStateDir(plan: Plan, rendered: RenderedBottle): Promise<void> {
  const p = plan.paths;
  const dirs: Array<[string, number]> = [
    [p.firewallConfigDir, PRIVATE_DIR],
    [p.firewallCaDir, PRIVATE_DIR],
    [p.trustDir, PUBLIC_DIR],
    [p.accessDir, PUBLIC_DIR],
  ];
  if (plan.egress) dirs.push([p.egressConfigDir, PRIVATE_DIR], [p.egressCaDir, PRIVATE_DIR]);
  if (plan.gitGate) dirs.push([p.gitGateConfigDir, PRIVATE_DIR], [nodePath.join(p.gitGateConfigDir, "known_hosts"), PRIVATE_DIR]);
  if (plan.supervise) dirs.push([p.queueDir, PRIVATE_DIR]);
  for (const [dir, mode] of dirs) {
    await fs.mkdir(dir, { recursive: true, mode });
    await fs.chmod(dir, mode);
  }

  const firewallCa = await createCertificateAuthority(`bot-bottle firewall ${plan.slug}`);
  await writeFileAtomic(nodePath.join(p.firewallCaDir, "ca.pem"), firewallCa.certPem, 0o644);
  await writeFileAtomic(nodePath.join(p.firewallCaDir, "ca.key"), firewallCa.keyPem, 0o600);
  await writeFileAtomic(nodePath.join(p.trustDir, "firewall-ca.pem"), firewallCa.certPem, 0o644);
  const bundle = [...rootCertificates, firewallCa.certPem.trim()];
  if (plan.egress) {
    const egressCa = await createCertificateAuthority(`bot-bottle egress ${plan.slug}`);
    await writeFileAtomic(nodePath.join(p.egressCaDir, "ca.pem"), egressCa.certPem, 0o644);
    await writeFileAtomic(nodePath.join(p.egressCaDir, "ca.key"), egressCa.keyPem, 0o600);
    await writeFileAtomic(nodePath.join(p.trustDir, "egress-ca.pem"), egressCa.certPem, 0o644);
    bundle.push(egressCa.certPem.trim());
  }
  for (const [i, file] of plan.firewall.trustFiles.entries()) {
    await writeFileAtomic(nodePath.join(p.trustDir, upstreamCaName(i)), await fs.readFile(file, "utf8"), 0o644);
  }
  await writeFileAtomic(nodePath.join(p.trustDir, "bundle.pem"), `${bundle.join("\n")}\n`, 0o644);

  for (const f of rendered.files) await writeFileAtomic(f.path, f.content, 0o600);
  for (const u of plan.gitGate?.upstreams ?? []) {
    const line = u.knownHosts.kind === "inline" ? `${u.knownHosts.line}\n` : await fs.readFile(u.knownHosts.path, "utf8");
    await writeFileAtomic(nodePath.join(p.gitGateConfigDir, "known_hosts", u.name), line, 0o600);
  }
  // What supervise grants are added to, and the agent's view of its access.
  const egress = renderEgressConfig(plan);
  const gitGate = renderGitGateConfig(plan);
  const base: BaseConfigs = {
    engine: plan.firewall.engine,
    firewall: plan.firewall.engine === "builtin" ? renderFirewallConfig(plan) : renderPipelockConfig(plan),
    ...(egress ? { egress } : {}),
    ...(gitGate ? { gitGate } : {}),
    egressEnv: plan.egress?.envNames ?? [],
    ...(plan.egress?.credentialHosts ? { credentialHosts: plan.egress.credentialHosts } : {}),
  };
  await writeBase(p.stateDir, base);
  await writeFileAtomic(nodePath.join(p.accessDir, FILES.access), `${JSON.stringify(effectiveConfigs(base, [], new Date()).access, null, 2)}\n`, 0o644);
  if (plan.supervise) {
    await writeFileAtomic(nodePath.join(p.accessDir, FILES.mcpConfig), `${JSON.stringify(mcpClientConfig(plan.supervise.url), null, 2)}\n`, 0o644);
    await ensureQueue(p.queueDir);
  }
  await writeFileAtomic(p.composeFile, rendered.composeYaml, 0o600);
}
