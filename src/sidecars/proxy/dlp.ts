// Request DLP for the firewall: secret shapes (src/security/secrets.ts) and
// canaries (literal values of env vars the firewall holds) in the URL, the
// headers and the body. A finding says where and what kind, never the value.
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import { canaryNeedles, findCanary, findSecrets, MIN_CANARY_LENGTH, type CanaryNeedle, type SecretEncoding } from "../../security/secrets.js";
import type { FirewallConfig } from "../../sidecar-config/firewall.js";

export interface DlpPolicy {
  enabled: boolean;
  canaries: Array<{ env: string; value: string; needles: CanaryNeedle[] }>;
  /** host → header (lowercase) → env names whose value may appear there. */
  exempt: Map<string, Map<string, Set<string>>>;
}

export interface DlpFinding {
  rule: string;
  description: string;
  /** "url", "body", or `header "<name>"`. */
  location: string;
  encoding: SecretEncoding;
}

export interface RequestParts {
  /** Canonical destination host (exemptions are per host). */
  host: string;
  /** Request target as sent: path and query (or the CONNECT authority). */
  url: string;
  headers: ReadonlyArray<[string, string]>;
  body?: Buffer;
  contentEncoding?: string;
}

/** Bodies are scanned whole; larger ones are refused rather than passed unscanned. */
export const MAX_SCANNED_BODY = 32 * 1024 * 1024;

export function buildDlpPolicy(cfg: FirewallConfig["dlp"], env: NodeJS.ProcessEnv): { policy: DlpPolicy; warnings: string[] } {
  const warnings: string[] = [];
  const canaries: DlpPolicy["canaries"] = [];
  for (const name of cfg.canary_env) {
    const value = env[name];
    if (!value) warnings.push(`canary env ${name} is not set; nothing to watch for`);
    else if (value.length < MIN_CANARY_LENGTH) warnings.push(`canary env ${name} is shorter than ${MIN_CANARY_LENGTH} characters; ignored`);
    else canaries.push({ env: name, value, needles: canaryNeedles(value) });
  }
  const exempt: DlpPolicy["exempt"] = new Map();
  for (const e of cfg.canary_exempt) {
    const host = e.host.toLowerCase();
    const byHeader = exempt.get(host) ?? new Map<string, Set<string>>();
    const envs = byHeader.get(e.header.toLowerCase()) ?? new Set<string>();
    envs.add(e.env);
    byHeader.set(e.header.toLowerCase(), envs);
    exempt.set(host, byHeader);
  }
  return { policy: { enabled: cfg.enabled, canaries, exempt }, warnings };
}

/** The first secret in the request, or undefined when it may pass. */
export function scanRequest(policy: DlpPolicy, req: RequestParts): DlpFinding | undefined {
  if (!policy.enabled) return undefined;
  const exemptHere = policy.exempt.get(req.host);
  const check = (location: string, text: string, exemptEnvs?: Set<string>): DlpFinding | undefined => {
    let scanned = text;
    for (const c of policy.canaries) {
      if (exemptEnvs?.has(c.env)) {
        // The injected credential may itself look like a token: blank it
        // before the shape scan too, or the exemption would be moot.
        scanned = scanned.split(c.value).join(" ");
        continue;
      }
      const encoding = findCanary(text, c.needles);
      if (encoding) return { rule: `canary:${c.env}`, description: `the value of ${c.env}`, location, encoding };
    }
    const [hit] = findSecrets(scanned);
    return hit ? { rule: hit.rule, description: hit.description, location, encoding: hit.encoding } : undefined;
  };

  const inUrl = check("url", req.url);
  if (inUrl) return inUrl;
  for (const [name, value] of req.headers) {
    const found = check(`header "${name.toLowerCase()}"`, `${name}: ${value}`, exemptHere?.get(name.toLowerCase()));
    if (found) return found;
  }
  if (req.body?.length) return check("body", decodeBody(req.body, req.contentEncoding).toString("utf8"));
  return undefined;
}

/** Undo Content-Encoding so compression cannot hide a secret; unknown encodings are scanned as sent. */
function decodeBody(body: Buffer, encoding: string | undefined): Buffer {
  const opts = { maxOutputLength: MAX_SCANNED_BODY * 4 };
  try {
    switch (encoding?.trim().toLowerCase()) {
      case "gzip":
      case "x-gzip":
        return gunzipSync(body, opts);
      case "deflate":
        return inflateSync(body, opts);
      case "br":
        return brotliDecompressSync(body, opts);
      default:
        return body;
    }
  } catch {
    return body;
  }
}

export function describeFinding(f: DlpFinding): string {
  const enc = f.encoding === "plain" ? "" : ` (${f.encoding})`;
  return `${f.location} carries ${f.description}${enc} [rule ${f.rule}]`;
}
