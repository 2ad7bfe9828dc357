// The manifest's shape (SPEC §4). Strict everywhere: an unknown key is an
// error, because a typo in a security setting must never be silently ignored.
import ipaddr from "ipaddr.js";
import { z } from "zod";
import { cidr, domainPattern, ENV_REF_RE, envName, isIp, REF_PATTERN_RE, routeSchema, UPSTREAM_NAME_RE } from "../contracts/patterns.js";

// The atoms shared with the sidecars' config schemas live in contracts/patterns.ts.
export * from "../contracts/patterns.js";

/** Profile names are kept short so `<profile>-<4 hex>` fits the 40-char slug limit. */
export const PROFILE_NAME_RE = /^[a-z0-9][a-z0-9-]{0,34}$/;
/** `user@host:path` (scp-like) or `ssh://[user@]host[:port]/path`. */
const SSH_URL_RE = /^(?:ssh:\/\/(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(?::\d{1,5})?\/\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s/][^\s]*)$/;
const MEMORY_RE = /^\d+(?:\.\d+)?[bkmg]?$/i;
const noEnvRef = (s: string) => !s.includes("${");
const NO_REF_MSG = "${NAME} references are only allowed in egress route values";

const path = z.string().min(1, { error: "expected a path" }).refine(noEnvRef, { error: NO_REF_MSG });
export const FIREWALL_ENGINES = ["builtin", "pipelock"] as const;
/** What runs a bottle's containers: one Docker engine (compose) or a Docker Swarm (stack). */
export const BOTTLE_ENGINES = ["compose", "swarm"] as const;
export type BottleEngineKind = (typeof BOTTLE_ENGINES)[number];
export const RUNTIMES = ["runc", "runsc"] as const;
/** `network.trust` keyword: trust the host's CA store too. */
export const TRUST_SYSTEM = "system";
/** Profile `user` keyword: the agent runs as the uid:gid of whoever starts the bottle. */
export const AGENT_USER_HOST = "host";

const gitPolicySchema = z.strictObject({
  push_refs: z.array(z.string().regex(REF_PATTERN_RE, { error: 'expected a ref pattern like "refs/heads/agent/*"' })).default(["refs/heads/agent/*"]),
  protected: z.array(z.string().regex(REF_PATTERN_RE, { error: 'expected a ref pattern like "refs/heads/main"' })).default(["refs/heads/main", "refs/heads/master"]),
  allow_force: z.boolean().default(false),
  allow_delete: z.boolean().default(false),
  max_push_bytes: z
    .number()
    .int()
    .positive()
    .default(50 * 1024 * 1024),
});

const upstreamSchema = z.strictObject({
  name: z.string().regex(UPSTREAM_NAME_RE, { error: "expected an upstream name ([a-z0-9._-])" }),
  url: z.string().regex(SSH_URL_RE, { error: 'expected an SSH git URL like "git@github.com:acme/app.git"' }),
  identity_file: path,
  known_hosts: z.string().min(1, { error: "expected a known_hosts path or a pinned host key line" }),
  /** Pin the upstream host to an address (rendered as extra_hosts for the gate). */
  address: z
    .string()
    .refine((s) => isIp(s), { error: "expected an IP address" })
    .optional(),
  policy: gitPolicySchema.prefault({}),
});

const buildSchema = z.strictObject({
  context: path,
  dockerfile: path.optional(),
});

const resourcesSchema = z.strictObject({
  cpus: z.number().positive({ error: "expected a positive number of CPUs" }).optional(),
  memory: z.string().regex(MEMORY_RE, { error: 'expected a memory size like "4g" or "512m"' }).optional(),
  pids: z.number().int().positive({ error: "expected a positive whole number" }).optional(),
});

/** The largest uid/gid Linux gives out ((uid_t)-1 means "no change"). */
const MAX_ID = 4294967294;
const USER_RE = /^(0|[1-9]\d{0,9}):(0|[1-9]\d{0,9})$/;
/** `host` (whoever runs `bottle`) or a numeric `uid:gid`: names would depend on the image's /etc/passwd. */
const userSchema = z.union(
  [
    z.literal(AGENT_USER_HOST),
    z
      .string()
      .regex(USER_RE, { error: 'expected "host" or a numeric uid:gid like "1000:1000"' })
      .refine((s) => !USER_RE.test(s) || s.split(":").every((n) => Number(n) <= MAX_ID), { error: `expected a uid and gid of at most ${MAX_ID}` }),
  ],
  { error: 'expected "host" or a numeric uid:gid like "1000:1000"' },
);

const envValue = z
  .union([z.string(), z.number(), z.boolean()], { error: "expected a string, number or boolean" })
  .transform((v) => String(v))
  .refine(noEnvRef, { error: NO_REF_MSG });

/** Bottles one profile may keep waiting in its warm pool. */
export const MAX_POOL = 20;

export const profileSchema = z
  .strictObject({
    description: z.string().optional(),
    image: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/, { error: "expected an image reference" })
      .optional(),
    build: buildSchema.optional(),
    firewall: z.enum(FIREWALL_ENGINES, { error: 'expected "builtin" or "pipelock"' }).optional(),
    /** compose | swarm; default: the manifest's defaults.engine, else BOTTLE_ENGINE, else compose. */
    engine: z.enum(BOTTLE_ENGINES, { error: 'expected "compose" or "swarm"' }).optional(),
    runtime: z.enum(RUNTIMES, { error: 'expected "runc" or "runsc"' }).default("runc"),
    /** Who the agent runs as (default: the image's user, usually root). */
    user: userSchema.optional(),
    env: z.record(envName, envValue).default({}),
    forward_env: z.array(envName).default([]),
    env_file: path.optional(),
    network: z
      .strictObject({
        allow: z.array(domainPattern).default([]),
        allow_cidrs: z.array(cidr).default([]),
        /**
         * Extra CA certificates (PEM files) to trust for upstream TLS, e.g. an
         * internal CA; the keyword `system` adds the host's CA store (a
         * network that re-signs TLS). A file named "system" is `./system`.
         */
        trust: z
          .array(path)
          .default([])
          .refine((t) => t.filter((x) => x === TRUST_SYSTEM).length <= 1, { error: `expected "${TRUST_SYSTEM}" at most once` }),
      })
      .prefault({}),
    egress: z
      .strictObject({
        routes: z.array(routeSchema).default([]),
        /**
         * More hosts a supervise grant may send a credential to. Without an
         * entry, a granted route may use a credential only for the hosts and
         * path prefixes the profile's own routes send it to.
         */
        credentials: z.record(envName, z.strictObject({ hosts: z.array(domainPattern).min(1, { error: "expected at least one host" }) })).default({}),
      })
      .prefault({}),
    git: z.strictObject({ upstreams: z.array(upstreamSchema).default([]) }).prefault({}),
    supervise: z.boolean().default(false),
    /**
     * Warm pool: keep this many bottles of the profile started and waiting;
     * a start claims one (fresh CAs and configs, no restart) instead of
     * starting cold. Filled by `bottle pool <profile>` and, after each claim,
     * by the MCP server in the background.
     */
    pool: z
      .number({ error: "expected a number of bottles" })
      .int({ error: "expected a whole number" })
      .min(0)
      .max(MAX_POOL, { error: `expected at most ${MAX_POOL}` })
      .default(0),
    resources: resourcesSchema.prefault({}),
  })
  .superRefine((p, ctx) => {
    if (p.image && p.build) ctx.addIssue({ code: "custom", path: ["build"], message: "expected either image or build, not both" });
    const names = new Set<string>();
    // One container, one /etc/hosts: every pin of a host must agree.
    const pins = new Map<string, { address: string; index: number }>();
    p.git.upstreams.forEach((u, i) => {
      if (names.has(u.name)) ctx.addIssue({ code: "custom", path: ["git", "upstreams", i, "name"], message: `expected a unique upstream name ("${u.name}" is used twice)` });
      names.add(u.name);
      if (!u.address) return;
      const host = sshUrlHost(u.url).toLowerCase();
      const address = ipaddr.parse(u.address).toNormalizedString();
      const pin = pins.get(host);
      if (!pin) pins.set(host, { address, index: i });
      else if (pin.address !== address) {
        ctx.addIssue({
          code: "custom",
          path: ["git", "upstreams", i, "address"],
          message: `expected the same address for every upstream on host ${host} (git.upstreams[${pin.index}] pins it to ${pin.address}, this one to ${address})`,
        });
      }
    });
    const routed = new Set(p.egress.routes.flatMap((r) => [...r.value.matchAll(ENV_REF_RE)].map((m) => m[1]!)));
    for (const env of Object.keys(p.egress.credentials)) {
      if (!routed.has(env))
        ctx.addIssue({
          code: "custom",
          path: ["egress", "credentials", env],
          message: `expected a variable one of the egress routes uses (egress holds only those; routes use: ${[...routed].join(", ") || "none"})`,
        });
    }
    const routeNames = new Set<string>();
    p.egress.routes.forEach((r, i) => {
      const name = r.name ?? `${r.host}:${r.port}${r.path_prefix}`;
      if (routeNames.has(name))
        ctx.addIssue({ code: "custom", path: ["egress", "routes", i], message: `expected a unique route (host ${r.host} port ${r.port} with path_prefix ${r.path_prefix} appears twice)` });
      routeNames.add(name);
    });
  });

export const manifestSchema = z.strictObject({
  version: z.literal(1, { error: "expected 1" }),
  defaults: z
    .strictObject({
      firewall: z.enum(FIREWALL_ENGINES, { error: 'expected "builtin" or "pipelock"' }).default("builtin"),
      engine: z.enum(BOTTLE_ENGINES, { error: 'expected "compose" or "swarm"' }).optional(),
    })
    .prefault({}),
  agents: z
    .record(z.string().regex(PROFILE_NAME_RE, { error: "expected a profile name: lowercase letters, digits and '-', at most 35 chars" }), profileSchema)
    .refine((a) => Object.keys(a).length > 0, { error: "expected at least one agent profile" }),
});

export type Manifest = z.output<typeof manifestSchema>;
export type Profile = z.output<typeof profileSchema>;
export type EgressRoute = z.output<typeof routeSchema>;
export type GitUpstream = z.output<typeof upstreamSchema>;

/** The host of an SSH git URL (`ssh://[user@]host[:port]/path` or `user@host:path`). */
export function sshUrlHost(url: string): string {
  const m = /^ssh:\/\/(?:[^@/]+@)?([^:/]+)/.exec(url) ?? /^[^@]+@([^:]+):/.exec(url);
  return m?.[1] ?? url;
}
