// Leaf certificates for TLS interception, signed by the bottle's CA (ECDSA
// P-256, SEC1 PEM key as the host writes it). One leaf key pair per process
// and one cached TLS context per host: issuing costs a signature, reusing
// costs nothing, which is what keeps interception cheap.
import { createPrivateKey, randomBytes, webcrypto } from "node:crypto";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { createSecureContext, rootCertificates, type SecureContext } from "node:tls";
import { x509 } from "../../security/x509.js";

const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;
const CURVE = { name: "ECDSA", namedCurve: "P-256" } as const;
const LEAF_DAYS = 30;
/** Bound the cache: an agent visiting many hosts must not grow memory forever. */
const MAX_CACHED_HOSTS = 2000;

export interface LeafIssuer {
  contextFor(host: string): Promise<SecureContext>;
}

export async function loadCertificateAuthority(certFile: string, keyFile: string): Promise<LeafIssuer> {
  const [certPem, keyPem] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
  const caCert = new x509.X509Certificate(certPem);
  // WebCrypto imports PKCS#8 only; node:crypto reads SEC1 and converts.
  const pkcs8 = createPrivateKey(keyPem).export({ type: "pkcs8", format: "der" });
  const caKey = await webcrypto.subtle.importKey("pkcs8", pkcs8, CURVE, false, ["sign"]);
  const leafKeys = (await webcrypto.subtle.generateKey(CURVE, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const leafKeyDer = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", leafKeys.privateKey));
  const leafKeyPem = toPem(leafKeyDer, "PRIVATE KEY");
  const authorityKeyId = await x509.SubjectKeyIdentifierExtension.create(caCert.publicKey);
  const cache = new Map<string, Promise<SecureContext>>();

  const issue = async (host: string): Promise<SecureContext> => {
    const now = Date.now();
    const notAfter = new Date(Math.min(now + LEAF_DAYS * 86_400_000, caCert.notAfter.getTime()));
    const san = isIP(host) ? { type: "ip" as const, value: host } : { type: "dns" as const, value: host };
    const serial = randomBytes(16);
    serial[0]! &= 0x7f;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial.toString("hex"),
      subject: `CN=${host.replace(/[,=+<>#;"\\]/g, "")}`,
      issuer: caCert.subject,
      notBefore: new Date(now - 3_600_000),
      notAfter,
      signingAlgorithm: SIGNING,
      publicKey: leafKeys.publicKey,
      signingKey: caKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([san]),
        new x509.AuthorityKeyIdentifierExtension(authorityKeyId.keyId),
      ],
    });
    return createSecureContext({ key: leafKeyPem, cert: `${cert.toString("pem")}\n${certPem.trim()}\n` });
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

function toPem(der: Buffer, label: string): string {
  const b64 = der
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .trimEnd();
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/**
 * The TLS context for connections we originate: public roots plus extra CA
 * files (the firewall's CA for egress, test CAs). Built once per config, as
 * parsing the root store per connection would dominate handshake cost.
 */
export async function loadUpstreamTrust(caFiles: readonly string[]): Promise<SecureContext> {
  const extra = await Promise.all(caFiles.map((f) => readFile(f, "utf8")));
  return createSecureContext({ ca: [...rootCertificates, ...extra] });
}
