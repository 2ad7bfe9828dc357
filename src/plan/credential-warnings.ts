// Warnings about credentials handed to the agent with `forward_env`. A key the
// agent holds and sends to a host the profile allows is exactly what the
// firewall's DLP exists to stop, so the request fails with a 403 that only
// says "blocked by dlp" — and the agent held a real key all along. The
// supported way is an egress route: the agent keeps a placeholder and egress
// sets the real header on the way out. These warnings say so before the
// bottle starts (render, doctor). Pure: computed from the plan, never logged.
import { compileAllowlist, isAllowed } from "../security/allowlist.js";
import type { Plan } from "./plan.js";

export interface RouteSuggestion {
  host: string;
  header: string;
  /** A template like "${ANTHROPIC_API_KEY}": the name, never a value. */
  value: string;
}

export interface CredentialWarning {
  /**
   * `forwarded`: a credential-looking name is forwarded and the profile
   * allows hosts it could be sent to. `routed`: the name also feeds an egress
   * route, so the agent holds a key egress already injects for it.
   */
  kind: "forwarded" | "routed";
  variable: string;
  /** Allowed hosts (or `*.suffix` patterns) the credential would be refused on. */
  hosts: string[];
  /** The route to add (or, for `routed`, the one that already injects it). */
  route?: RouteSuggestion;
  message: string;
}

export interface CredentialInput {
  forwardEnv: readonly string[];
  /** Everything the firewall lets through (the profile's list plus routed hosts). */
  allow: readonly string[];
  routes: ReadonlyArray<{ host: string; header: string; envNames: readonly string[]; valueTemplate: string }>;
}

interface KnownCredential {
  hosts: string[];
  header: string;
  /** How the API expects the key in `header`. */
  scheme: "bare" | "bearer";
}

const bearer = (...hosts: string[]): KnownCredential => ({ hosts, header: "Authorization", scheme: "bearer" });

/** Well-known variables and the API each authenticates to, with the header that API reads. */
const KNOWN: Record<string, KnownCredential> = {
  ANTHROPIC_API_KEY: { hosts: ["api.anthropic.com"], header: "x-api-key", scheme: "bare" },
  ANTHROPIC_AUTH_TOKEN: bearer("api.anthropic.com"),
  CLAUDE_CODE_OAUTH_TOKEN: bearer("api.anthropic.com"),
  OPENAI_API_KEY: bearer("api.openai.com"),
  GH_TOKEN: bearer("api.github.com"),
  GITHUB_TOKEN: bearer("api.github.com"),
  GITLAB_TOKEN: { hosts: ["gitlab.com"], header: "PRIVATE-TOKEN", scheme: "bare" },
  HF_TOKEN: bearer("huggingface.co"),
  HUGGING_FACE_HUB_TOKEN: bearer("huggingface.co"),
  NPM_TOKEN: bearer("registry.npmjs.org"),
  GEMINI_API_KEY: { hosts: ["generativelanguage.googleapis.com"], header: "x-goog-api-key", scheme: "bare" },
  GOOGLE_API_KEY: { hosts: ["generativelanguage.googleapis.com"], header: "x-goog-api-key", scheme: "bare" },
  MISTRAL_API_KEY: bearer("api.mistral.ai"),
  GROQ_API_KEY: bearer("api.groq.com"),
  OPENROUTER_API_KEY: bearer("openrouter.ai"),
  FIREWORKS_API_KEY: bearer("api.fireworks.ai"),
  DEEPSEEK_API_KEY: bearer("api.deepseek.com"),
  XAI_API_KEY: bearer("api.x.ai"),
  STRIPE_API_KEY: bearer("api.stripe.com"),
  STRIPE_SECRET_KEY: bearer("api.stripe.com"),
  SLACK_BOT_TOKEN: bearer("slack.com"),
  SENDGRID_API_KEY: bearer("api.sendgrid.com"),
};

const VENDOR_HOSTS = new Set(Object.values(KNOWN).flatMap((k) => k.hosts));

/**
 * Names that by convention hold a secret: `*_API_KEY`, `*_TOKEN`,
 * `*_SECRET`, `*_PASSWORD` and kin, as the last word(s) of the name so that
 * `TOKENIZERS_PARALLELISM` or `GITHUB_TOKEN_FILE` (a path) do not count.
 */
const CREDENTIAL_NAME_RE = /(?:^|_)(?:API_?KEY|ACCESS_?KEY|SECRET(?:_ACCESS)?_?KEY|PRIVATE_?KEY|AUTH_?TOKEN|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|PAT|CREDENTIALS?)$/;

export function looksLikeCredential(name: string): boolean {
  const upper = name.toUpperCase();
  return upper in KNOWN || CREDENTIAL_NAME_RE.test(upper);
}

export function credentialInput(plan: Plan): CredentialInput {
  return { forwardEnv: plan.agent.forwardEnv, allow: plan.firewall.allow, routes: plan.egress?.routes ?? [] };
}

export function credentialWarnings(input: CredentialInput): CredentialWarning[] {
  const allowlist = compileAllowlist(input.allow);
  const routedHosts = new Set(input.routes.map((r) => r.host));
  const out: CredentialWarning[] = [];
  for (const variable of [...new Set(input.forwardEnv)]) {
    if (!looksLikeCredential(variable)) continue;
    const known = KNOWN[variable.toUpperCase()];
    // Routes that already put this credential (or, for a known key, its
    // API's own header) on the wire: the agent's copy is never needed.
    const routes = input.routes.filter((r) => r.envNames.includes(variable) || (known?.hosts.includes(r.host) && r.header.toLowerCase() === known.header.toLowerCase()));
    if (routes.length) {
      const first = routes[0]!;
      out.push({
        kind: "routed",
        variable,
        hosts: [...new Set(routes.map((r) => r.host))],
        route: { host: first.host, header: first.header, value: first.valueTemplate },
        message:
          `forward_env ${variable}: egress already sets ${routes.map((r) => `${r.header} on requests to ${r.host} (${JSON.stringify(r.valueTemplate)})`).join(", ")}, so the agent does not need the real value, ` +
          `and the firewall's DLP refuses requests in which the agent sends it itself (403 "blocked by dlp"). ` +
          `Remove it from forward_env; if the agent's tool insists on the variable, set a placeholder in env (env: { ${variable}: injected-by-egress }).`,
      });
      continue;
    }
    if (!input.allow.length) continue; // nowhere to send it
    const vendorHosts = known?.hosts.filter((h) => isAllowed(allowlist, h)) ?? [];
    if (known && vendorHosts.length) {
      const route = { host: vendorHosts[0]!, header: known.header, value: template(variable, known) };
      out.push({
        kind: "forwarded",
        variable,
        hosts: vendorHosts,
        route,
        message:
          `forward_env ${variable} is the credential for ${vendorHosts.join(", ")}, which this profile allows: the firewall's DLP refuses requests that carry it (403 "blocked by dlp"), ` +
          `and an agent that holds a key can leak it. Give the agent a placeholder instead (env: { ${variable}: injected-by-egress }, not forward_env) and let egress inject the real key with this route:`,
      });
      continue;
    }
    // A generic name, or a known one whose own API is not allowed: it could
    // still go to any allowed host, and DLP refuses it wherever it goes.
    // Suggest a host only when one allowed host is the plain candidate: not
    // a pattern, not served by a route already, not another vendor's API.
    const candidates = input.allow.filter((h) => !h.startsWith("*.") && !routedHosts.has(h) && !VENDOR_HOSTS.has(h));
    const route = known
      ? { host: known.hosts[0]!, header: known.header, value: template(variable, known) }
      : candidates.length === 1
        ? { host: candidates[0]!, header: "Authorization", value: `Bearer \${${variable}}` }
        : undefined;
    const how = known
      ? `with a route for the API it belongs to (a route also lets the agent reach ${known.hosts[0]}):`
      : route
        ? `with a route (this one assumes ${route.host} and a Bearer token; adjust host and header to the API it is for):`
        : `with a route for the host it authenticates to (egress.routes: host, header, value: "\${${variable}}").`;
    out.push({
      kind: "forwarded",
      variable,
      hosts: [...input.allow],
      ...(route ? { route } : {}),
      message:
        `forward_env ${variable} looks like a credential, and this profile allows ${listHosts(input.allow)}: if the agent sends it there, the firewall's DLP refuses the request when it recognises the value (403 "blocked by dlp"), ` +
        `and an agent that holds a credential can leak it. Give the agent a placeholder instead (env, not forward_env) and let egress inject the real value ${how}`,
    });
  }
  return out;
}

function template(variable: string, known: KnownCredential): string {
  return known.scheme === "bearer" ? `Bearer \${${variable}}` : `\${${variable}}`;
}

function listHosts(hosts: readonly string[]): string {
  const shown = hosts.slice(0, 5).join(", ");
  return hosts.length > 5 ? `${shown} and ${hosts.length - 5} more` : shown;
}

/** The route as manifest YAML, to paste under the profile. */
export function routeYaml(route: RouteSuggestion): string {
  return ["egress:", "  routes:", `    - host: ${route.host}`, `      header: ${route.header}`, `      value: ${JSON.stringify(route.value)}`].join("\n");
}

/** A warning for people: the message, then the route to paste (when there is one to add). */
export function warningText(w: CredentialWarning): string {
  return w.kind === "forwarded" && w.route ? `${w.message}\n${routeYaml(w.route)}` : w.message;
}
