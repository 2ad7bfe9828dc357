// The egress sidecar's config file: credential-injecting routes plus where to
// send traffic next. Rendered on the host, validated again in the sidecar.
import { z } from "zod";
import { proxyLimitsSchema } from "./proxy-limits.js";
import { routeSchema } from "./patterns.js";

export const egressRouteSchema = routeSchema.extend({
  name: z.string().regex(/^[a-z0-9][a-z0-9._/-]{0,127}$/),
});

export const egressConfigSchema = z.strictObject({
  version: z.literal(1),
  /** The firewall, as an http:// proxy URL: every request leaves through it. */
  upstream_proxy: z.url({ protocol: /^http$/ }),
  ca_cert: z.string(),
  ca_key: z.string(),
  /** CA files to trust upstream in addition to public roots (the firewall's CA). */
  upstream_ca_files: z.array(z.string()),
  routes: z.array(egressRouteSchema),
  limits: proxyLimitsSchema,
});

export type EgressConfig = z.output<typeof egressConfigSchema>;
export type EgressRouteConfig = z.output<typeof egressRouteSchema>;
