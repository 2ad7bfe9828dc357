// Leaf certificates for TLS interception, signed by the bottle's CA (ECDSA
// P-256, SEC1 PEM key as the host writes it). One leaf key pair per process
// and one cached TLS context per host: issuing costs a signature, reusing
// costs nothing, which is what keeps interception cheap.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createSecureContext, rootCertificates, type SecureContext } from "node:tls";
import { issueLeaf, leafSigner, toPem } from "../../security/leaf-cert.js";

const LEAF_DAYS = 30;
/** Bound the cache: an agent visiting many hosts must not grow memory forever. */
const MAX_CACHED_HOSTS = 2000;

export interface LeafIssuer {
  contextFor(host: string): Promise<SecureContext>;
}

export async function loadCertificateAuthority(certFile: string, keyFile: string): Promise<LeafIssuer> {
  const [certPem, keyPem] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
  const ca = leafSigner(certPem, keyPem);
  const leafKeys = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const leafKeyPem = leafKeys.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const leafPublicKey = leafKeys.publicKey.export({ type: "spki", format: "der" });
  const cache = new Map<string, Promise<SecureContext>>();

  const issue = async (host: string): Promise<SecureContext> => {
    const now = Date.now();
    const notAfter = new Date(Math.min(now + LEAF_DAYS * 86_400_000, ca.notAfter.getTime()));
    const serial = randomBytes(16);
    serial[0]! &= 0x7f;
    const cert = issueLeaf(ca, { host, publicKey: leafPublicKey, serial, notBefore: new Date(now - 3_600_000), notAfter });
    return createSecureContext({ key: leafKeyPem, cert: `${toPem(cert, "CERTIFICATE")}\n${certPem.trim()}\n` });
  };

  return {
    contextFor(host) {
      let ctx = cache.get(host);
      if (!ctx) {
        if (cache.size >= MAX_CACHED_HOSTS) cache.clear();
        ctx = issue(host);
        cache.set(host, ctx);
        ctx.catch(() => cache.delete(host));
      }
      return ctx;
    },
  };
}

/**
 * The TLS context for connections we originate: public roots plus extra CA
 * files (the firewall's CA for egress, test CAs). Built once per config, as
 * parsing the root store per connection would dominate handshake cost.
 */
export async function loadUpstreamTrust(caFiles: readonly string[]): Promise<SecureContext> {
  const extra = await Promise.all(caFiles.map((f) => readFile(f, "utf8")));
  // No extra CA: Node's own store of the same public roots, shared by every
  // context, instead of a second parsed copy (0.7 MB per proxy).
  if (!extra.length) return createSecureContext();
  return createSecureContext({ ca: [...rootCertificates, ...extra] });
}
