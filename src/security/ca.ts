// Certificate authorities as the host makes them for a bottle: ECDSA P-256,
// keys as SEC1 PEM ("EC PRIVATE KEY"), which pipelock requires and our
// proxies read. Server certificates signed by such a CA serve tests' upstreams.
import { createPrivateKey, KeyObject, randomBytes, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import { x509 } from "./x509.js";

const CURVE = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;
const DAY = 86_400_000;

export interface PemPair {
  certPem: string;
  /** SEC1 PEM. Written 0600, mounted only where it is used. */
  keyPem: string;
}

export type CertificateAuthority = PemPair;

function serial(): string {
  const b = randomBytes(16);
  b[0]! &= 0x7f;
  return b.toString("hex");
}

const sec1 = (key: webcrypto.CryptoKey) => KeyObject.from(key).export({ type: "sec1", format: "pem" }).toString();

export async function createCertificateAuthority(commonName: string, days = 365): Promise<CertificateAuthority> {
  const keys = (await webcrypto.subtle.generateKey(CURVE, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}, O=bot-bottle`,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + days * DAY),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: `${cert.toString("pem")}\n`, keyPem: sec1(keys.privateKey) };
}

/** A server certificate for `names` (DNS names or IPs), signed by `ca`. */
export async function issueServerCertificate(ca: CertificateAuthority, names: string[], days = 30): Promise<PemPair> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const pkcs8 = createPrivateKey(ca.keyPem).export({ type: "pkcs8", format: "der" });
  const signingKey = await webcrypto.subtle.importKey("pkcs8", pkcs8, CURVE, false, ["sign"]);
  const keys = (await webcrypto.subtle.generateKey(CURVE, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names[0]}`,
    issuer: caCert.subject,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + days * DAY),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => (isIP(n) ? { type: "ip" as const, value: n } : { type: "dns" as const, value: n }))),
    ],
  });
  return { certPem: `${cert.toString("pem")}\n`, keyPem: sec1(keys.privateKey) };
}
