// Leaf certificates written as DER by hand (src/security/leaf-cert.ts): what
// a TLS client and an independent parser (Node's X509Certificate, and
// @peculiar/x509, which the old issuer used) read in them, and a real
// handshake that trusts only the CA.
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { once } from "node:events";
import { connect, createSecureContext, createServer } from "node:tls";
import { afterAll, describe, expect, it } from "vitest";
import { createCertificateAuthority } from "../../../src/security/ca.js";
import { issueLeaf, leafSigner, toPem } from "../../../src/security/leaf-cert.js";
import { x509 } from "../../../src/security/x509.js";

const ca = await createCertificateAuthority("leaf test CA", 30);
const signer = leafSigner(ca.certPem, ca.keyPem);
const caCert = new X509Certificate(ca.certPem);
const keys = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const spki = keys.publicKey.export({ type: "spki", format: "der" });
const HOUR = 3_600_000;

function leaf(host: string, o: { serial?: Buffer; notBefore?: Date; notAfter?: Date } = {}): X509Certificate {
  const der = issueLeaf(signer, {
    host,
    publicKey: spki,
    serial: o.serial ?? Buffer.from("7f0102030405060708090a0b0c0d0e0f", "hex"),
    notBefore: o.notBefore ?? new Date(Date.now() - HOUR),
    notAfter: o.notAfter ?? new Date(Date.now() + 24 * HOUR),
  });
  return new X509Certificate(toPem(der, "CERTIFICATE"));
}

const servers: Array<{ close(): void }> = [];
afterAll(() => {
  for (const s of servers) s.close();
});

describe("leaf certificates", () => {
  it("are issued by the CA, signed with its key, for exactly the host", () => {
    const c = leaf("api.example.test");
    expect(c.checkIssued(caCert)).toBe(true);
    expect(c.verify(caCert.publicKey)).toBe(true);
    expect(c.issuer).toBe(caCert.subject);
    expect(c.subject).toBe("CN=api.example.test");
    expect(c.subjectAltName).toBe("DNS:api.example.test");
    expect(c.ca).toBe(false);
    expect(c.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
    expect(c.publicKey.export({ type: "spki", format: "der" }).equals(spki)).toBe(true);
    expect(c.checkHost("api.example.test")).toBe("api.example.test");
    expect(c.checkHost("other.example.test")).toBeUndefined();
  });

  it("name IP hosts by address, v4 and v6", () => {
    expect(leaf("10.1.2.3").subjectAltName).toBe("IP Address:10.1.2.3");
    expect(leaf("10.1.2.3").checkIP("10.1.2.3")).toBe("10.1.2.3");
    expect(leaf("fd00::1").subjectAltName).toBe("IP Address:FD00:0:0:0:0:0:0:1");
  });

  it("carry the extensions the old issuer wrote, as another parser reads them", () => {
    const c = new x509.X509Certificate(leaf("api.example.test").raw);
    const bc = c.getExtension(x509.BasicConstraintsExtension)!;
    expect([bc.ca, bc.critical]).toEqual([false, true]);
    const ku = c.getExtension(x509.KeyUsagesExtension)!;
    expect([ku.usages, ku.critical]).toEqual([x509.KeyUsageFlags.digitalSignature, true]);
    expect(c.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    const caSki = new x509.X509Certificate(ca.certPem).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
    expect(c.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(caSki);
    expect(c.signatureAlgorithm).toMatchObject({ name: "ECDSA", hash: { name: "SHA-256" } });
  });

  it("encode serials and dates exactly (leading zeros dropped, sign kept; GeneralizedTime from 2050)", () => {
    // The serial is the TLV after the version ([0] 03 02 01 02) in the TBS.
    const serialTlv = (b: string) => {
      const raw = leaf("a.test", { serial: Buffer.from(b, "hex") }).raw;
      const at = raw.indexOf(Buffer.from("a003020102", "hex")) + 5;
      return raw.subarray(at, at + 2 + raw[at + 1]!).toString("hex");
    };
    expect(serialTlv("00000102")).toBe("02020102");
    expect(serialTlv("ff01")).toBe("020300ff01");
    const notBefore = new Date("2049-12-31T23:59:59Z");
    const notAfter = new Date("2050-01-01T00:00:01Z");
    const c = leaf("a.test", { notBefore, notAfter });
    expect(new Date(c.validFrom).toISOString()).toBe(notBefore.toISOString());
    expect(new Date(c.validTo).toISOString()).toBe(notAfter.toISOString());
  });

  it("keep names that would break a distinguished name out of the CN, but not out of the SAN", () => {
    expect(leaf('we,ird=+<>#;"\\.test').subject).toBe("CN=weird.test");
  });

  it("serve a TLS handshake that trusts only the CA", async () => {
    const host = "intercepted.example.test";
    const cert = `${toPem(issueLeaf(signer, { host, publicKey: spki, serial: Buffer.of(5), notBefore: new Date(Date.now() - HOUR), notAfter: new Date(Date.now() + HOUR) }), "CERTIFICATE")}${ca.certPem}`;
    // As the proxies serve it: the leaf's context picked per connection by SNI.
    const context = createSecureContext({ key: keys.privateKey.export({ type: "pkcs8", format: "pem" }), cert });
    const server = createServer({ SNICallback: (_name, cb) => cb(null, context) }, (s) => s.end("ok"));
    servers.push(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as { port: number }).port;
    const socket = connect({ host: "127.0.0.1", port, servername: host, ca: ca.certPem });
    await once(socket, "secureConnect");
    expect(socket.authorized).toBe(true);
    socket.destroy();
    const wrongName = connect({ host: "127.0.0.1", port, servername: "other.test", ca: ca.certPem });
    const [err] = (await once(wrongName, "error")) as [NodeJS.ErrnoException];
    expect(err.code).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
  });

  it("refuse a CA key that is not the certificate's, or not P-256", async () => {
    const other = await createCertificateAuthority("other CA", 30);
    expect(() => leafSigner(ca.certPem, other.keyPem)).toThrow(/does not belong/);
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    expect(() => leafSigner(ca.certPem, rsa)).toThrow(/P-256/);
  });
});
