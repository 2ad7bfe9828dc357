// Test CAs and server certificates, made by the same code the host uses to
// prepare a bottle (src/security/ca.ts).
import { chmod, writeFile } from "node:fs/promises";
import { createCertificateAuthority, issueServerCertificate } from "../../../src/security/ca.js";

export interface Pem {
  cert: string;
  key: string;
}

export interface TestCa extends Pem {
  issue(names: string[]): Promise<Pem>;
}

export async function createTestCa(commonName: string): Promise<TestCa> {
  const ca = await createCertificateAuthority(commonName, 30);
  return {
    cert: ca.certPem,
    key: ca.keyPem,
    async issue(names) {
      const leaf = await issueServerCertificate(ca, names, 29);
      return { cert: leaf.certPem, key: leaf.keyPem };
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
