// Reading a TLS ClientHello off a tunnel without terminating TLS, so a
// passthrough tunnel can be held to the host its CONNECT was checked for:
// the SNI the client asks the server for must be that host. Pure and
// bounded: it looks at most MAX_CLIENT_HELLO_BYTES and never throws.

/** A ClientHello larger than this (post-quantum key shares make ~2 KB) is refused. */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;

export type ClientHello =
  | { kind: "incomplete" }
  | { kind: "invalid"; reason: string }
  /** `serverNames`: every host_name entry of the server_name extension (usually one; none when absent). */
  | { kind: "hello"; serverNames: string[] };

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;

/**
 * Extensions that carry the real server name encrypted: Encrypted Client
 * Hello (RFC 9849 / draft-ietf-tls-esni: 0xfe0d, and the code points of its
 * earlier drafts, 0xfe08-0xfe0c) and the older encrypted_server_name
 * (0xffce). With one of them the cleartext SNI is only the public name of a
 * client-facing frontend, which decrypts the inner hello and connects to a
 * host the check never saw; so the hello is refused, not judged by its
 * outer name.
 */
const EXT_ENCRYPTED_NAME: ReadonlyMap<number, string> = new Map([
  [0xfe0d, "encrypted_client_hello"],
  [0xfe0c, "encrypted_client_hello (draft)"],
  [0xfe0b, "encrypted_client_hello (draft)"],
  [0xfe0a, "encrypted_client_hello (draft)"],
  [0xfe09, "encrypted_client_hello (draft)"],
  [0xfe08, "encrypted_client_hello (draft)"],
  [0xffce, "encrypted_server_name"],
]);

/**
 * Parse the ClientHello at the start of `buf` (the first bytes the client
 * sent into the tunnel). The handshake message may span several records.
 */
export function parseClientHello(buf: Buffer): ClientHello {
  // Reassemble the handshake layer from consecutive handshake records.
  const payload: Buffer[] = [];
  let have = 0;
  let offset = 0;
  let needed = -1;
  for (;;) {
    if (needed >= 0 && have >= needed) break;
    if (buf.length < offset + 5) return tooLarge(buf) ?? { kind: "incomplete" };
    if (buf[offset] !== RECORD_HANDSHAKE) return { kind: "invalid", reason: offset === 0 ? "the tunnel does not start with a TLS handshake" : "the ClientHello is interleaved with other records" };
    if (buf[offset + 1] !== 0x03) return { kind: "invalid", reason: "unsupported TLS record version" };
    const len = buf.readUInt16BE(offset + 3);
    if (len === 0 || len > 16384 + 2048) return { kind: "invalid", reason: "malformed TLS record length" };
    if (offset === 0 && len >= 4 && buf.length >= 9) {
      // Judge the handshake header as soon as it is there, before waiting for the record.
      if (buf[5] !== HANDSHAKE_CLIENT_HELLO) return { kind: "invalid", reason: "the first handshake message is not a ClientHello" };
      if (4 + buf.readUIntBE(6, 3) > MAX_CLIENT_HELLO_BYTES) return { kind: "invalid", reason: "the ClientHello is too large" };
    }
    if (buf.length < offset + 5 + len) return tooLarge(buf) ?? { kind: "incomplete" };
    payload.push(buf.subarray(offset + 5, offset + 5 + len));
    have += len;
    offset += 5 + len;
    if (needed < 0) {
      const first = payload.length === 1 ? payload[0]! : Buffer.concat(payload);
      if (first.length < 4) continue;
      if (first[0] !== HANDSHAKE_CLIENT_HELLO) return { kind: "invalid", reason: "the first handshake message is not a ClientHello" };
      needed = 4 + first.readUIntBE(1, 3);
      if (needed > MAX_CLIENT_HELLO_BYTES) return { kind: "invalid", reason: "the ClientHello is too large" };
    }
    if (offset > MAX_CLIENT_HELLO_BYTES + 5 * 8) return { kind: "invalid", reason: "the ClientHello is too large" };
  }
  // One record holds the whole hello in practice: read it in place, no copy.
  const msg = (payload.length === 1 ? payload[0]! : Buffer.concat(payload)).subarray(4, needed);
  return readServerNames(msg);
}

function tooLarge(buf: Buffer): ClientHello | undefined {
  return buf.length > MAX_CLIENT_HELLO_BYTES + 5 * 8 ? { kind: "invalid", reason: "the ClientHello is too large" } : undefined;
}

/** The body of a ClientHello: version, random, session id, suites, compression, extensions. */
function readServerNames(m: Buffer): ClientHello {
  const bad = (what: string): ClientHello => ({ kind: "invalid", reason: `malformed ClientHello (${what})` });
  let p = 2 + 32; // legacy_version, random
  if (m.length < p + 1) return bad("too short");
  p += 1 + m[p]!; // session id
  if (m.length < p + 2) return bad("cipher suites");
  p += 2 + m.readUInt16BE(p);
  if (m.length < p + 1) return bad("compression methods");
  p += 1 + m[p]!;
  if (p === m.length) return { kind: "hello", serverNames: [] }; // no extensions at all
  if (m.length < p + 2) return bad("extensions");
  const end = p + 2 + m.readUInt16BE(p);
  if (end !== m.length) return bad("extensions length");
  p += 2;
  const names: string[] = [];
  let seenSni = false;
  while (p < end) {
    if (end < p + 4) return bad("extension header");
    const type = m.readUInt16BE(p);
    const len = m.readUInt16BE(p + 2);
    const body = p + 4;
    if (end < body + len) return bad("extension length");
    const encrypted = EXT_ENCRYPTED_NAME.get(type);
    if (encrypted) return { kind: "invalid", reason: `the ClientHello carries ${encrypted} (extension 0x${type.toString(16)}): the server name it shows is not the one it connects to` };
    if (type === EXT_SERVER_NAME) {
      if (seenSni) return bad("two server_name extensions");
      seenSni = true;
      if (len < 2 || m.readUInt16BE(body) !== len - 2) return bad("server_name list");
      let q = body + 2;
      while (q < body + len) {
        if (body + len < q + 3) return bad("server_name entry");
        const nameType = m[q]!;
        const nameLen = m.readUInt16BE(q + 1);
        if (body + len < q + 3 + nameLen) return bad("server_name entry length");
        // host_name (0) is the only type defined; anything else is refused, not skipped.
        if (nameType !== 0) return bad("unknown server_name type");
        names.push(m.toString("latin1", q + 3, q + 3 + nameLen));
        q += 3 + nameLen;
      }
    }
    p = body + len;
  }
  return { kind: "hello", serverNames: names };
}

/** TLS alert record: fatal unrecognized_name (112), sent before closing a refused tunnel. */
export const ALERT_UNRECOGNIZED_NAME = Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x70]);
