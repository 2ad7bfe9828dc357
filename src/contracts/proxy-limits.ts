// Connection limits of the proxy sidecars (firewall and egress), part of
// both config files. Every field has a default, so the renderer may leave
// the block out; tests and users can tighten or widen it.
import { z } from "zod";

export const DEFAULT_PROXY_LIMITS = { max_connections: 1024, head_timeout_s: 30, handshake_timeout_s: 10, idle_timeout_s: 300, max_buffered_body_mb: 96 } as const;

export const proxyLimitsSchema = z
  .strictObject({
    /** Open client connections per proxy, i.e. per bottle. */
    max_connections: z.int().min(1).max(1_000_000).default(DEFAULT_PROXY_LIMITS.max_connections),
    /** To send a complete request head (also inside intercepted tunnels). */
    head_timeout_s: z.number().positive().max(3600).default(DEFAULT_PROXY_LIMITS.head_timeout_s),
    /** To send the TLS ClientHello after CONNECT (intercepted and passthrough). */
    handshake_timeout_s: z.number().positive().max(3600).default(DEFAULT_PROXY_LIMITS.handshake_timeout_s),
    /** With no byte either way on an established connection or tunnel. */
    idle_timeout_s: z.number().positive().max(86_400).default(DEFAULT_PROXY_LIMITS.idle_timeout_s),
    /** Request bodies held for scanning at once, all connections together (MiB). */
    max_buffered_body_mb: z.number().positive().max(4096).default(DEFAULT_PROXY_LIMITS.max_buffered_body_mb),
  })
  .default(() => ({ ...DEFAULT_PROXY_LIMITS }));

export type ProxyLimitsConfig = z.output<typeof proxyLimitsSchema>;
