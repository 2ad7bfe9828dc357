// Test CAs and server certificates, generated the way the host prepares a
// bottle: ECDSA P-256, keys as SEC1 PEM ("EC PRIVATE KEY") written 0600.
import { createPrivateKey, randomBytes, webcrypto } from "node:crypto";
import { chmod, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { x509 } from "../../../src/security/x509.js";

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export interface Pem {
  cert: string;
  key: string;
}

export interface TestCa extends Pem {
  issue(names: string[]): Promise<Pem>;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", key));
  return createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({ type: "sec1", format: "pem" }).toString();
}

function serial(): string {
  const b = randomBytes(16);
  b[0]! &= 0x7f;
  return b.toString("hex");
}

export async function createTestCa(commonName: string): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 30 * 86_400_000),
    signingAlgorithm: ALG,
    keys: keys as never,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
    ],
  });
  const caPem = ca.toString("pem");
  return {
    cert: caPem,
    key: await keyPem(keys.privateKey),
    async issue(names) {
      const leafKeys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `CN=${names[0]}`,
        issuer: ca.subject,
        notBefore: new Date(Date.now() - 86_400_000),
        notAfter: new Date(Date.now() + 29 * 86_400_000),
        signingAlgorithm: ALG,
        publicKey: leafKeys.publicKey as never,
        signingKey: keys.privateKey as never,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension(names.map((n) => (isIP(n) ? { type: "ip" as const, value: n } : { type: "dns" as const, value: n }))),
        ],
      });
      return { cert: leaf.toString("pem"), key: await keyPem(leafKeys.privateKey) };
    },
  };
}

/** Write cert (0644) and key (0600) as `<base>.pem` / `<base>.key`. */
export async function writePem(base: string, pem: Pem): Promise<{ cert: string; key: string }> {
  await writeFile(`${base}.pem`, pem.cert, { mode: 0o644 });
  await writeFile(`${base}.key`, pem.key, { mode: 0o600 });
  await chmod(`${base}.key`, 0o600);
  return { cert: `${base}.pem`, key: `${base}.key` };
}
