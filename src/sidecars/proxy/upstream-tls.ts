// What an upstream TLS failure means, in words a user can act on. The bare
// OpenSSL code alone (SELF_SIGNED_CERT_IN_CHAIN in a 502) left users of a
// network that re-signs TLS guessing; the reason names the cause and the fix.

/** Chain codes: the certificate leads to a CA the proxy does not trust. */
const UNTRUSTED_CA = new Set(["SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT", "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"]);
const BAD_DATES = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);
const OTHER_VERIFY = new Set([
  "CERT_REVOKED",
  "CERT_REJECTED",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "CERT_CHAIN_TOO_LONG",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "PATH_LENGTH_EXCEEDED",
  "HOSTNAME_MISMATCH",
]);

const TRUST_HINT = "if your network re-signs TLS, add `network.trust: [system]` or the CA file to the profile";

/**
 * The reason for a failed upstream request: for a certificate the proxy
 * rejected, what happened and what to do; otherwise the error code as is.
 * `who` names the proxy ("firewall", "egress").
 */
export function upstreamFailure(who: string, host: string, code: string): string {
  return `request to "${host}" failed: ${explain(who, host, code)}`;
}

function explain(who: string, host: string, code: string): string {
  if (UNTRUSTED_CA.has(code)) return `the upstream's certificate is signed by a CA the ${who} does not trust (${code}); ${TRUST_HINT}`;
  if (BAD_DATES.has(code)) return `the upstream's certificate is expired or not yet valid (${code}); check this machine's clock, and ${TRUST_HINT}`;
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID")
    return `the upstream's certificate is not valid for "${host}" (${code}); the name may point at another site, or something on your network answers in its place`;
  if (OTHER_VERIFY.has(code)) return `the upstream's certificate failed verification (${code}); ${TRUST_HINT}`;
  return code;
}
