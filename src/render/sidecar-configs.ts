// Sidecar configs that depend only on the plan. Pure, like the compose renderer.
import { FILES, gitIdentityPath, gitKnownHostsPath, MOUNTS, upstreamCaName } from "../contracts/mounts.js";
import type { Plan } from "../plan/index.js";
import type { EgressConfig } from "../contracts/egress.js";
import type { FirewallConfig } from "../contracts/firewall.js";
import { DEFAULT_PROXY_LIMITS } from "../contracts/proxy-limits.js";
import type { GitGateConfig } from "../contracts/git-gate.js";

const FIREWALL_CA = { cert: `${MOUNTS.firewallCa}/${FILES.caCert}`, key: `${MOUNTS.firewallCa}/${FILES.caKey}` };
const EGRESS_CA = { cert: `${MOUNTS.egressCa}/${FILES.caCert}`, key: `${MOUNTS.egressCa}/${FILES.caKey}` };
/** Public half of the firewall CA, readable by egress (and the agent). */
export const FIREWALL_CA_PUBLIC = `${MOUNTS.trust}/${FILES.firewallCaPublic}`;
/** Pipelock's loader refuses an empty allowlist: a profile that allows nothing gets this reserved name, which never resolves. */
export const PIPELOCK_EMPTY_ALLOWLIST = "nothing-allowed.invalid";

/** The profile's extra upstream CAs (and the host's store when it says `system`), as mounted in the trust dir. */
const upstreamCas = (plan: Plan) => [...plan.firewall.trustFiles.map((_, i) => `${MOUNTS.trust}/${upstreamCaName(i)}`), ...(plan.firewall.trustSystem ? [`${MOUNTS.trust}/${FILES.systemCa}`] : [])];

export function renderFirewallConfig(plan: Plan): FirewallConfig {
  const fw = plan.firewall;
  return {
    version: 1,
    allow: fw.allow,
    allow_cidrs: fw.allowCidrs,
    intercept: { enabled: true, ca_cert: FIREWALL_CA.cert, ca_key: FIREWALL_CA.key, passthrough: fw.passthrough },
    dlp: { enabled: true, canary_env: fw.canaryEnv, canary_exempt: fw.canaryExempt },
    upstream_ca_files: upstreamCas(plan),
    limits: { ...DEFAULT_PROXY_LIMITS },
  };
}

/**
 * Pipelock's config. Its loader rejects unknown keys, so only keys it
 * documents appear here. `mode: strict` refuses an empty allowlist: a profile
 * that allows nothing gets the reserved `.invalid` name, which never resolves.
 */
export function renderPipelockConfig(plan: Plan): Record<string, unknown> {
  const fw = plan.firewall;
  return {
    version: 1,
    mode: "strict",
    enforce: true,
    api_allowlist: fw.allow.length ? fw.allow : [PIPELOCK_EMPTY_ALLOWLIST],
    fetch_proxy: {
      listen: `0.0.0.0:${fw.port}`,
      // The default of 60/min per domain throttles an agent's package installs.
      monitoring: { max_requests_per_minute: 6000 },
    },
    forward_proxy: { enabled: true, max_tunnel_seconds: 3600, idle_timeout_seconds: 300 },
    // Exact network CIDRs (pipelock rejects host bits): the bottle's internal
    // network plus whatever private ranges the profile allows.
    ssrf: { ip_allowlist: [plan.networks.internal.subnet, ...fw.allowCidrs] },
    tls_interception: {
      enabled: true,
      ca_cert: FIREWALL_CA.cert,
      ca_key: FIREWALL_CA.key,
      // Header DLP would see the credentials egress injects: never intercept those hosts.
      // (pipelock matches domains only, on any port.)
      passthrough_domains: [...new Set(fw.passthrough.map((d) => d.host))],
    },
    dlp: { scan_env: true, include_defaults: true },
    logging: { format: "json", output: "stdout", include_allowed: true, include_blocked: true },
  };
}

export function renderEgressConfig(plan: Plan): EgressConfig | undefined {
  if (!plan.egress) return undefined;
  return {
    version: 1,
    upstream_proxy: `http://${plan.firewall.containerName}:${plan.firewall.port}`,
    ca_cert: EGRESS_CA.cert,
    ca_key: EGRESS_CA.key,
    upstream_ca_files: [FIREWALL_CA_PUBLIC, ...upstreamCas(plan)],
    routes: plan.egress.routes.map((r) => ({ name: r.name, host: r.host, port: r.port, path_prefix: r.pathPrefix, header: r.header, value: r.valueTemplate })),
    limits: { ...DEFAULT_PROXY_LIMITS },
  };
}

export type { GitGateConfig } from "../contracts/git-gate.js";

export function renderGitGateConfig(plan: Plan): GitGateConfig | undefined {
  if (!plan.gitGate) return undefined;
  return {
    version: 1,
    port: plan.gitGate.port,
    upstreams: plan.gitGate.upstreams.map((u) => ({
      name: u.name,
      url: u.url,
      identity_file: gitIdentityPath(u.name),
      known_hosts_file: gitKnownHostsPath(u.name),
      policy: {
        push_refs: u.policy.pushRefs,
        protected: u.policy.protected,
        allow_force: u.policy.allowForce,
        allow_delete: u.policy.allowDelete,
        max_push_bytes: u.policy.maxPushBytes,
      },
    })),
  };
}
