// Per-bottle certificate authorities: ECDSA P-256, keys as SEC1 PEM
// ("EC PRIVATE KEY"), which pipelock requires and our proxies read.
import { KeyObject, randomBytes, webcrypto } from "node:crypto";
import { x509 } from "../security/x509.js";

const CURVE = { name: "ECDSA", namedCurve: "P-256" } as const;
const CA_DAYS = 365;

export interface CertificateAuthority {
  certPem: string;
  /** SEC1 PEM. Written 0600, mounted only into the sidecar that signs with it. */
  keyPem: string;
}

export async function createCertificateAuthority(commonName: string): Promise<CertificateAuthority> {
  const keys = (await webcrypto.subtle.generateKey(CURVE, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString("hex"),
    name: `CN=${commonName}, O=bot-bottle`,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + CA_DAYS * 86_400_000),
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = KeyObject.from(keys.privateKey).export({ type: "sec1", format: "pem" }).toString();
  return { certPem: cert.toString("pem") + "\n", keyPem };
}
