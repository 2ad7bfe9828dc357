// Secret detection, pure and reusable: the firewall scans requests with it
// and the git gate scans pushed blobs and names. One scanner, one rule set
// (src/security/dlp/). Findings say what kind of secret was found and how it
// was spelled, never the secret itself, so callers can log them.
import { SecretScanner, type SecretFinding } from "./dlp/engine.js";

export { SecretScanner, type ByteScan, type ScanOptions, type SecretEncoding, type SecretFinding } from "./dlp/engine.js";
export { SECRET_RULES, UNDECODABLE_RULE } from "./dlp/rules.js";
export type { ModelCredential, Rule as SecretRule } from "./dlp/matcher.js";

/** Literal values shorter than this are too likely to occur by chance to be canaries. */
export const MIN_CANARY_LENGTH = 8;

let shared: SecretScanner | undefined;
/** The scanner with the built-in rules and no canaries. */
export const defaultScanner = () => (shared ??= new SecretScanner());

/**
 * Every secret shape in `text`, also where it is percent-, base64-, hex-,
 * base32-, JSON-, HTML- or quoted-printable-encoded, disguised with
 * look-alike or invisible characters, or nested in several such layers.
 * At most one finding per rule and encoding: enough to refuse and explain.
 */
export function findSecrets(text: string): SecretFinding[] {
  return defaultScanner().scanText(text);
}

/** findSecrets for raw bytes (UTF-8, UTF-16 or binary with text inside). */
export function findSecretsInBytes(bytes: Buffer): SecretFinding[] {
  return defaultScanner().scanBytes(bytes);
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
