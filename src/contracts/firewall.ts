// The builtin firewall's config file. Rendered on the host from the plan,
// validated again by the sidecar when it loads or reloads it (SPEC §3).
import { z } from "zod";
import { proxyLimitsSchema } from "./proxy-limits.js";
import { cidr, domainPattern, envName, hostname } from "./patterns.js";

export const firewallConfigSchema = z.strictObject({
  version: z.literal(1),
  /** Domain allowlist: exact names and `*.suffix`. */
  allow: z.array(domainPattern),
  /** Private ranges that may still be dialed (SSRF exceptions), exact network CIDRs. */
  allow_cidrs: z.array(cidr),
  /** TLS interception of allowlisted hosts, so DLP can see HTTPS bodies. */
  intercept: z.strictObject({
    enabled: z.boolean(),
    ca_cert: z.string(),
    ca_key: z.string(),
    /**
     * Where tunnels go untouched (egress injects credentials there): a route's
     * host and port. A bare host (configs from before ports) means any port.
     */
    passthrough: z.array(z.union([domainPattern, z.strictObject({ host: domainPattern, port: z.number().int().min(1).max(65535) })])),
  }),
  dlp: z.strictObject({
    enabled: z.boolean(),
    /** Env vars (held by the firewall) whose literal values must never leave. */
    canary_env: z.array(envName),
    /** Where a canary may legitimately appear: the header egress injects, to the routed host. */
    canary_exempt: z.array(z.strictObject({ host: hostname, header: z.string(), env: envName })),
  }),
  /** Extra CA files to trust for upstream TLS, on top of the public roots. */
  upstream_ca_files: z.array(z.string()).default([]),
  limits: proxyLimitsSchema,
});

export type FirewallConfig = z.output<typeof firewallConfigSchema>;
