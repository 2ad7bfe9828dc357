// TLS leaf certificates for interception, written as DER by hand and signed
// with node:crypto. The proxies issue one per intercepted host; doing it with
// @peculiar/x509 brought its ASN.1 schemas, tsyringe and reflect-metadata
// into every proxy (40% of the bundle, ~45 ms and several MB at each start)
// for a certificate whose shape never changes: ECDSA P-256 with SHA-256, one
// name, the extensions a browser-grade client checks. The host still makes
// the CA with @peculiar/x509 (src/security/ca.ts); this only reads it.
import { createHash, createPrivateKey, type KeyObject, sign, X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

/** What a CA contributes to every leaf it signs, read once. */
export interface LeafSigner {
  /** The CA's subject, as DER: each leaf's issuer, byte for byte. */
  subject: Buffer;
  notAfter: Date;
  /** SHA-1 of the CA's public key bits (its subject key identifier), for each leaf's authority key identifier. */
  keyId: Buffer;
  key: KeyObject;
}

export interface LeafRequest {
  /** A DNS name or an IP address (no brackets). */
  host: string;
  /** The leaf's public key, SPKI DER (P-256). */
  publicKey: Buffer;
  /** Positive, at most 20 bytes. */
  serial: Buffer;
  notBefore: Date;
  notAfter: Date;
}

// ---- DER -------------------------------------------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.of(0x80 | bytes.length, ...bytes);
}
const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.of(tag), length(body.length), body]);
};
const seq = (...items: Buffer[]) => tlv(0x30, ...items);
const set = (...items: Buffer[]) => tlv(0x31, ...items);
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer) => tlv(0x03, Buffer.of(0), b);
const bool = (v: boolean) => tlv(0x01, Buffer.of(v ? 0xff : 0));
const explicit = (n: number, inner: Buffer) => tlv(0xa0 | n, inner);

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split(".").map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const groups = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) groups.unshift((v & 0x7f) | 0x80);
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/** A non-negative INTEGER from big-endian bytes, minimally encoded. */
function uint(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  return tlv(0x02, v[0]! & 0x80 ? Buffer.concat([Buffer.of(0), v]) : v);
}

/** UTCTime for 1950-2049, GeneralizedTime after (RFC 5280 4.1.2.5), to the second. */
function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = d.getUTCFullYear();
  return year < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), "latin1")) : tlv(0x18, Buffer.from(digits, "latin1"));
}

/** Read one TLV at `at`: where its content starts and ends, and where the next begins. */
function read(der: Buffer, at: number): { tag: number; start: number; end: number } {
  const tag = der[at]!;
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4) throw new Error("certificate: unsupported DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  const end = start + len;
  if (end > der.length) throw new Error("certificate: truncated DER");
  return { tag, start, end };
}

/** The subject Name of a DER certificate, as it appears in it. */
function subjectOf(certDer: Buffer): Buffer {
  const cert = read(certDer, 0);
  const tbs = read(certDer, cert.start);
  let at = tbs.start;
  // version [0] (optional), serial, signature, issuer, validity, subject
  if (certDer[at] === 0xa0) at = read(certDer, at).end;
  for (let i = 0; i < 4; i++) at = read(certDer, at).end;
  const subject = read(certDer, at);
  if (subject.tag !== 0x30) throw new Error("certificate: no subject where one should be");
  return certDer.subarray(at, subject.end);
}

/** The public key bits of an SPKI (without the unused-bits byte): what a key identifier hashes (RFC 5280 4.2.1.2, method 1). */
function publicKeyBits(spki: Buffer): Buffer {
  const outer = read(spki, 0);
  const algorithm = read(spki, outer.start);
  const key = read(spki, algorithm.end);
  if (key.tag !== 0x03) throw new Error("public key: no BIT STRING");
  return spki.subarray(key.start + 1, key.end);
}

// ---- Certificates ------------------------------------------------------------

const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));
const EXT = {
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  authorityKeyId: "2.5.29.35",
} as const;
const extension = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

/** Read a CA (PEM certificate, PEM key in SEC1 or PKCS#8) for signing leaves; refuses a key that is not the certificate's. */
export function leafSigner(certPem: string, keyPem: string): LeafSigner {
  const cert = new X509Certificate(certPem);
  const key = createPrivateKey(keyPem);
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") throw new Error("CA key: expected an ECDSA P-256 key");
  if (!cert.checkPrivateKey(key)) throw new Error("CA key does not belong to the CA certificate");
  const spki = cert.publicKey.export({ type: "spki", format: "der" });
  return {
    subject: subjectOf(cert.raw),
    notAfter: new Date(cert.validTo),
    keyId: createHash("sha1").update(publicKeyBits(spki)).digest(),
    key,
  };
}

/** A server certificate for one host, signed by `ca`: DER. */
export function issueLeaf(ca: LeafSigner, req: LeafRequest): Buffer {
  const ip = isIP(req.host) ? Buffer.from(ipaddr.parse(req.host).toByteArray()) : undefined;
  const name = ip ? tlv(0x87, ip) : tlv(0x82, Buffer.from(req.host, "utf8"));
  const commonName = req.host.replace(/[,=+<>#;"\\]/g, "");
  const tbs = seq(
    explicit(0, tlv(0x02, Buffer.of(2))), // v3
    uint(req.serial),
    ECDSA_SHA256,
    ca.subject,
    seq(time(req.notBefore), time(req.notAfter)),
    seq(set(seq(oid("2.5.4.3"), tlv(0x0c, Buffer.from(commonName, "utf8"))))),
    req.publicKey,
    explicit(
      3,
      seq(
        extension(EXT.basicConstraints, true, seq()),
        // digitalSignature only: bit 0 of a one-byte BIT STRING with 7 unused bits.
        extension(EXT.keyUsage, true, tlv(0x03, Buffer.of(7, 0x80))),
        extension(EXT.extKeyUsage, false, seq(oid("1.3.6.1.5.5.7.3.1"))),
        extension(EXT.subjectAltName, false, seq(name)),
        extension(EXT.authorityKeyId, false, seq(tlv(0x80, ca.keyId))),
      ),
    ),
  );
  return seq(tbs, ECDSA_SHA256, bits(sign("sha256", tbs, ca.key)));
}

export function toPem(der: Buffer, label: string): string {
  const b64 = der
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .trimEnd();
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
