// Secret-shape detection, pure and reusable: the firewall scans requests with
// it and the git gate scans pushed blobs. Matches report where and what kind
// of secret was found, never the secret itself, so callers can log them.

export interface SecretRule {
  /** Stable id used in logs and refusal messages, e.g. "github-token". */
  id: string;
  /** Human wording for refusal messages. */
  description: string;
  pattern: RegExp;
}

/** How the secret was spelled where it was found. */
export type SecretEncoding = "plain" | "url-encoded" | "base64";

export interface SecretFinding {
  rule: string;
  description: string;
  encoding: SecretEncoding;
}

// Order matters: the first rule that claims a span wins, so the specific
// Anthropic shape is listed before the generic OpenAI `sk-` one.
export const SECRET_RULES: readonly SecretRule[] = [
  { id: "aws-access-key", description: "an AWS access key id", pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g },
  { id: "github-token", description: "a GitHub token", pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b/g },
  { id: "anthropic-key", description: "an Anthropic API key", pattern: /\bsk-ant-[A-Za-z0-9_-]{20,}/g },
  { id: "openai-key", description: "an OpenAI API key", pattern: /\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}/g },
  { id: "private-key", description: "a PEM private key block", pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/g },
  { id: "slack-token", description: "a Slack token", pattern: /\bxox[baprs]-[A-Za-z0-9-]{10,}/g },
  // Three base64url segments, the first two JSON objects ("eyJ" = `{"`).
  { id: "jwt", description: "a JWT bearer token", pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g },
];

const MAX_PERCENT_ROUNDS = 3;
const BASE64_RUN = /[A-Za-z0-9+/_-]{16,}={0,2}/g;
/** Decoded base64 counts as text only when it is mostly printable. */
const PRINTABLE_RATIO = 0.85;

/**
 * Every secret shape in `text`, also where it appears URL-encoded or
 * base64-encoded (one level: the encodings agents and HTTP clients use).
 * At most one finding per rule and encoding: enough to refuse and explain.
 */
export function findSecrets(text: string): SecretFinding[] {
  const found = new Map<string, SecretFinding>();
  const add = (rule: SecretRule, encoding: SecretEncoding) => {
    const key = `${rule.id}/${encoding}`;
    if (!found.has(key)) found.set(key, { rule: rule.id, description: rule.description, encoding });
  };
  const scan = (s: string, encoding: SecretEncoding) => {
    for (const rule of SECRET_RULES) {
      rule.pattern.lastIndex = 0;
      if (rule.pattern.test(s)) add(rule, encoding);
    }
  };

  scan(text, "plain");
  // Up to three rounds of percent-decoding: double encoding is a cheap dodge.
  const sources = [text];
  for (let round = 0; round < MAX_PERCENT_ROUNDS; round++) {
    const next = percentDecode(sources[sources.length - 1]!);
    if (next === sources[sources.length - 1]) break;
    sources.push(next);
    scan(next, "url-encoded");
  }
  for (const source of sources) {
    for (const run of source.matchAll(BASE64_RUN)) {
      const plain = decodeBase64Text(run[0]);
      if (plain !== undefined) scan(plain, "base64");
    }
  }
  return [...found.values()];
}

/** Lenient percent-decoding: malformed escapes stay as they are; `+` is a space (forms). */
export function percentDecode(s: string): string {
  if (!s.includes("%") && !s.includes("+")) return s;
  const bytes: number[] = [];
  const out: string[] = [];
  const flush = () => {
    if (bytes.length) out.push(Buffer.from(bytes).toString("utf8"));
    bytes.length = 0;
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "%" && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
      continue;
    }
    flush();
    out.push(c === "+" ? " " : c);
  }
  flush();
  return out.join("");
}

function decodeBase64Text(run: string): string | undefined {
  const buf = Buffer.from(run.replace(/-/g, "+").replace(/_/g, "/"), "base64");
  if (buf.length < 12) return undefined;
  let printable = 0;
  for (const b of buf) if ((b >= 0x20 && b < 0x7f) || b === 0x0a || b === 0x0d || b === 0x09) printable++;
  return printable / buf.length >= PRINTABLE_RATIO ? buf.toString("latin1") : undefined;
}

/** Literal values shorter than this are too likely to occur by chance to be canaries. */
export const MIN_CANARY_LENGTH = 8;

export interface CanaryNeedle {
  needle: string;
  encoding: SecretEncoding;
}

/**
 * The spellings of a canary value to look for: literal, URL-encoded, and its
 * base64 at each of the three byte alignments (so it is found even inside a
 * larger base64 string such as `Basic base64(user:token)`), in the standard
 * and URL-safe alphabets.
 */
export function canaryNeedles(value: string): CanaryNeedle[] {
  const needles: CanaryNeedle[] = [{ needle: value, encoding: "plain" }];
  const encoded = encodeURIComponent(value);
  if (encoded !== value) needles.push({ needle: encoded, encoding: "url-encoded" });
  const raw = Buffer.from(value, "utf8");
  for (let pad = 0; pad < 3; pad++) {
    const b64 = Buffer.concat([Buffer.alloc(pad), raw]).toString("base64");
    // Keep only the characters determined by the value's bytes alone.
    const start = Math.ceil((pad * 8) / 6);
    const end = Math.floor(((pad + raw.length) * 8) / 6);
    const core = b64.slice(start, end);
    if (core.length < MIN_CANARY_LENGTH) continue;
    needles.push({ needle: core, encoding: "base64" });
    const urlSafe = core.replace(/\+/g, "-").replace(/\//g, "_");
    if (urlSafe !== core) needles.push({ needle: urlSafe, encoding: "base64" });
  }
  return needles;
}

/** The first spelling of a canary present in `text` (also after percent-decoding), if any. */
export function findCanary(text: string, needles: readonly CanaryNeedle[]): SecretEncoding | undefined {
  for (const n of needles) if (text.includes(n.needle)) return n.encoding;
  const decoded = percentDecode(text);
  if (decoded !== text) for (const n of needles) if (decoded.includes(n.needle)) return n.encoding === "plain" ? "url-encoded" : n.encoding;
  return undefined;
}
