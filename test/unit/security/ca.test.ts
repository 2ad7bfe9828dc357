import { X509Certificate, createPrivateKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createCertificateAuthority, issueServerCertificate } from "../../../src/security/ca.js";

describe("certificate authorities", () => {
  it("makes a P-256 CA whose key is SEC1 PEM (pipelock's requirement)", async () => {
    const ca = await createCertificateAuthority("bot-bottle test");
    expect(ca.keyPem).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
    const key = createPrivateKey(ca.keyPem);
    expect(key.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain("CN=bot-bottle test");
    expect(cert.checkPrivateKey(key)).toBe(true);
  });

  it("issues server certificates that verify against the CA", async () => {
    const ca = await createCertificateAuthority("issuer");
    const leaf = await issueServerCertificate(ca, ["upstream.test", "10.0.0.5"]);
    const cert = new X509Certificate(leaf.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkHost("upstream.test")).toBe("upstream.test");
    expect(cert.checkIP("10.0.0.5")).toBe("10.0.0.5");
    expect(cert.checkHost("other.test")).toBeUndefined();
  });
});
