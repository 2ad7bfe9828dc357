// Keeping an injected credential from coming back to the agent: an upstream
// that echoes request headers (debug endpoints, error pages, httpbin-style
// services) would otherwise hand the agent the very value egress holds for
// it. The reason phrase, header names and values and the body of a response
// to a request egress injected into are masked wherever a credential
// appears in any reversible spelling an upstream is likely to produce: as
// sent; escaped character by character (percent-encoding in either case,
// JSON and other backslash escapes, HTML character references, singly or
// doubly); base64 (standard and URL-safe, at each of the three alignments
// inside a longer encoded run), hex and UTF-16. A body that is compressed data
// without a Content-Encoding (a .gz download) cannot be masked as bytes: it
// is held, decoded and refused when the credential is inside.
import { Transform, type TransformCallback } from "node:stream";
import { constants as zlibConstants, gunzipSync, inflateRawSync, inflateSync, zstdDecompressSync } from "node:zlib";
import { base64Runs } from "../../security/dlp/rules.js";

const MASK = 0x2a; // '*'
const EMPTY = Buffer.alloc(0);

/** Values shorter than this are not masked (they would star out ordinary text). */
const MIN_VALUE_LENGTH = 4;

/** Every spelling of a set of credentials, compiled once per credential set. */
export interface CredentialNeedles {
  /** Byte-exact spellings (as sent, base64 runs, hex), longest first. */
  readonly exact: readonly Buffer[];
  /** Spellings escaped character by character, as global regular expressions over the latin1 form of the bytes. */
  readonly patterns: readonly RegExp[];
  /**
   * Substrings one of which every spelling contains: the quick test that
   * keeps masking cheap when no credential is there (a few byte searches per
   * chunk; the patterns run only after a probe is found).
   */
  readonly probes: readonly Buffer[];
  /** The probes as latin1 strings (header values and the reason phrase are latin1 strings). */
  readonly probeForms: readonly string[];
  /** Bytes the longest spelling can take (how much of a chunk's tail a body masker holds back at most). */
  readonly longest: number;
  /**
   * Matches, anchored at the end of a text, anything that may be the start
   * of an escaped spelling cut off by the end of a chunk (a proper prefix of
   * one; it over-approximates, never under-). With the exact spellings'
   * prefixes, what a body masker must hold back instead of a fixed tail.
   */
  readonly partial: RegExp | undefined;
}

/** The spellings of these credentials worth masking (see the header comment). */
export function credentialNeedles(values: readonly string[]): CredentialNeedles {
  // A value containing another is masked where the other is: keep only the minimal ones.
  const long = [...new Set(values.filter((v) => v.length >= MIN_VALUE_LENGTH))].sort((a, b) => a.length - b.length);
  const minimal: string[] = [];
  for (const v of long) if (!minimal.some((w) => v.includes(w))) minimal.push(v);
  const exact = new Map<string, Buffer>();
  const patterns: RegExp[] = [];
  const partials: string[] = [];
  const probes: Buffer[] = [];
  let longest = 0;
  for (const v of minimal) {
    const bytes = Buffer.from(v, "utf8");
    const add = (b: Buffer) => {
      if (b.length >= MIN_VALUE_LENGTH) exact.set(b.toString("latin1"), b);
    };
    add(bytes);
    for (const run of base64Runs(bytes)) add(Buffer.from(run, "latin1"));
    add(Buffer.from(bytes.toString("hex"), "latin1"));
    add(Buffer.from(bytes.toString("hex").toUpperCase(), "latin1"));
    // UTF-16 (a Windows or Java service echoing a header as wide text), little- and big-endian.
    const wide = Buffer.from(v, "utf16le");
    add(wide);
    add(Buffer.from(wide).swap16());
    const escaped = escapedSpelling(v);
    if (escaped) {
      patterns.push(escaped.re);
      partials.push(escaped.partial);
      longest = Math.max(longest, escaped.longest);
      probes.push(Buffer.from(escaped.probe, "utf8"));
    }
  }
  const exactList = [...exact.values()].sort((a, b) => b.length - a.length);
  for (const b of exactList) longest = Math.max(longest, b.length);
  // The fewest probes: one that contains another is found whenever the other is.
  const candidates = [...probes, ...exactList].sort((a, b) => a.length - b.length);
  const kept: Buffer[] = [];
  for (const p of candidates) if (!kept.some((q) => p.includes(q))) kept.push(p);
  const partial = partials.length ? new RegExp(`(?:${partials.join("|")})$`) : undefined;
  return { exact: exactList, patterns, probes: kept, probeForms: kept.map((p) => p.toString("latin1")), longest, partial };
}

/** Named HTML character references of the ASCII characters an encoder may escape (HTML5 names). */
const ENTITY_NAMES: Record<string, string[]> = {
  " ": ["nbsp"],
  "!": ["excl"],
  '"': ["quot", "QUOT"],
  "#": ["num"],
  $: ["dollar"],
  "%": ["percnt"],
  "&": ["amp", "AMP"],
  "'": ["apos"],
  "(": ["lpar"],
  ")": ["rpar"],
  "*": ["ast", "midast"],
  "+": ["plus"],
  ",": ["comma"],
  "-": ["hyphen", "dash"],
  ".": ["period"],
  "/": ["sol"],
  ":": ["colon"],
  ";": ["semi"],
  "<": ["lt", "LT"],
  "=": ["equals"],
  ">": ["gt", "GT"],
  "?": ["quest"],
  "@": ["commat"],
  "[": ["lsqb", "lbrack"],
  "\\": ["bsol"],
  "]": ["rsqb", "rbrack"],
  "^": ["Hat"],
  _: ["lowbar", "UnderBar"],
  "`": ["grave", "DiacriticalGrave"],
  "{": ["lcub", "lbrace"],
  "|": ["verbar", "vert", "VerticalLine"],
  "}": ["rcub", "rbrace"],
  "~": ["tilde"],
};

const ALNUM = /^[A-Za-z0-9]$/;
const reLiteral = (s: string) => s.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
/** Hex digits of `n`, `width` wide, each letter matching either case. */
const hexRe = (n: number, width = 0) =>
  n
    .toString(16)
    .padStart(width, "0")
    .replace(/[a-f]/g, (d) => `[${d}${d.toUpperCase()}]`);

// Escapes may be nested (JSON in JSON, a percent-encoded URL in an HTML
// attribute): up to this many extra levels of the escape's own lead-in.
const NESTING = 2;
/** Backslashes before a backslash escape: JSON in JSON in JSON doubles them each level (1, 3, 7). */
const BACKSLASHES = 8;
const ZEROS = 4; // leading zeros allowed in a numeric character reference

/** A numeric character reference of `cp`: &#xHH; or &#DD;, the ';' optional as in HTML. */
function numericReference(cp: number): { source: string; longest: number } {
  const hex = cp.toString(16).length;
  const dec = String(cp).length;
  return {
    source: `&(?:amp;){0,${NESTING}}#(?:[xX]0{0,${ZEROS}}${hexRe(cp)}|0{0,${ZEROS}}${cp});?`,
    longest: 1 + 4 * NESTING + 2 + ZEROS + Math.max(hex, dec) + 1,
  };
}

/** Backslash escapes: \/, \uHHHH, \xHH, \UHHHHHHHH, behind up to BACKSLASHES backslashes. */
function backslashEscape(ch: string, cp: number): { source: string; longest: number } {
  return { source: `\\\\{1,${BACKSLASHES}}(?:${reLiteral(ch)}|u${hexRe(cp, 4)}|x${hexRe(cp, 2)}|U${hexRe(cp, 8)})`, longest: BACKSLASHES + 9 };
}

/**
 * Every spelling of one character, as regex source over latin1 (one char
 * per byte), the longest, and `prefix`: a pattern for the non-empty proper
 * prefixes of its spellings (a lead-in — %, \ or & — and then up to the
 * longest of the characters escapes use, or the first bytes of its UTF-8
 * form), or undefined when every spelling is one byte.
 */
function characterSpellings(ch: string): { source: string; longest: number; prefix?: string } {
  const cp = ch.codePointAt(0)!;
  if (ALNUM.test(ch)) return { source: ch, longest: 1 };
  const utf8 = Buffer.from(ch, "utf8");
  const alts: Array<{ source: string; longest: number }> = [];
  alts.push({ source: reLiteral(utf8.toString("latin1")), longest: utf8.length });
  alts.push({ source: [...utf8].map((b) => `%(?:25){0,${NESTING}}${hexRe(b, 2)}`).join(""), longest: utf8.length * (3 + 2 * NESTING) });
  if (cp < 0x80) {
    alts.push(backslashEscape(ch, cp));
    if (ch === " ") alts.push({ source: "\\+", longest: 1 }); // form encoding
  } else {
    // \u escapes of the UTF-16 units (a surrogate pair past the BMP).
    const units = [...Array(ch.length).keys()].map((i) => ch.charCodeAt(i));
    alts.push({ source: units.map((u) => `\\\\{1,${BACKSLASHES}}u${hexRe(u, 4)}`).join(""), longest: units.length * (BACKSLASHES + 5) });
  }
  alts.push(numericReference(cp));
  const names = ENTITY_NAMES[ch];
  if (names) alts.push({ source: `&(?:amp;){0,${NESTING}}(?:${names.join("|")});`, longest: 1 + 4 * NESTING + Math.max(...names.map((n) => n.length)) + 1 });
  const longest = Math.max(...alts.map((a) => a.longest));
  const leadIns = [`[%\\\\&][%\\\\&#;0-9A-Za-z]{0,${longest}}`, ...[...Array(utf8.length - 1).keys()].map((i) => reLiteral(utf8.subarray(0, i + 1).toString("latin1")))];
  return { source: `(?:${alts.map((a) => a.source).join("|")})`, longest, prefix: `(?:${leadIns.join("|")})` };
}

/**
 * The value escaped character by character in any mix of escapes, as one
 * pattern; undefined when it has nothing an encoder escapes (then every
 * such spelling is the value as sent). ASCII letters and digits are left
 * as they are (no encoder escapes them), so the longest run of them is in
 * every spelling: that run is the pattern's probe.
 */
function escapedSpelling(v: string): { re: RegExp; longest: number; probe: string; partial: string } | undefined {
  const chars = [...v];
  if (chars.every((c) => ALNUM.test(c))) return undefined;
  const parts = chars.map(characterSpellings);
  const probe = v.split(/[^A-Za-z0-9]+/).reduce((a, b) => (b.length > a.length ? b : a), "");
  // A proper prefix (or the whole: a last ';' may still follow) is the
  // first k characters' spellings and then part of the next one's:
  // R_k = C_k (R_k+1)? | P_k, built from the last character back.
  let partial = "";
  for (let k = parts.length - 1; k >= 0; k--) {
    const p = parts[k]!;
    const alts = [partial ? `${p.source}(?:${partial})?` : p.source, ...(p.prefix ? [p.prefix] : [])];
    partial = `(?:${alts.join("|")})`;
  }
  return { re: new RegExp(parts.map((p) => p.source).join(""), "g"), longest: parts.reduce((n, p) => n + p.longest, 0), probe, partial };
}

/**
 * Where the bytes a body masker must still hold back begin: the earliest
 * position, among the last `window` bytes of `buf`, from which the rest of
 * `buf` may be the start of a spelling (a proper prefix of an exact one,
 * or what `needles.partial` matches); `buf.length` when there is none.
 * Holding only that, not a fixed tail, lets a stream's text through as it
 * comes (server-sent events are not held up until the next event).
 */
function heldFrom(buf: Buffer, needles: CredentialNeedles, window: number): number {
  const from = Math.max(0, buf.length - window);
  let cut = buf.length;
  for (const n of needles.exact) {
    const first = n[0]!;
    for (let p = buf.indexOf(first, Math.max(from, buf.length - n.length + 1)); p >= 0 && p < cut; p = buf.indexOf(first, p + 1)) {
      if (buf.compare(n, 0, buf.length - p, p, buf.length) === 0) {
        cut = p;
        break;
      }
    }
  }
  if (needles.partial && cut > from) {
    const m = needles.partial.exec(buf.toString("latin1", from));
    if (m) cut = Math.min(cut, from + m.index);
  }
  return cut;
}

/** Whether a probe of `needles` occurs in `buf` (every spelling contains one). */
function holdsProbe(buf: Buffer, needles: CredentialNeedles): boolean {
  for (const p of needles.probes) if (buf.includes(p)) return true;
  return false;
}

/** Where spellings occur in `buf`, as [start, end) pairs merged into disjoint, ordered ranges. */
function spellingRanges(buf: Buffer, needles: CredentialNeedles): Array<[number, number]> {
  if (!holdsProbe(buf, needles)) return [];
  const found: Array<[number, number]> = [];
  for (const needle of needles.exact) {
    for (let i = buf.indexOf(needle); i >= 0; i = buf.indexOf(needle, i + 1)) found.push([i, i + needle.length]);
  }
  if (needles.patterns.length) {
    const text = buf.toString("latin1");
    for (const re of needles.patterns) for (const m of text.matchAll(re)) found.push([m.index, m.index + m[0].length]);
  }
  if (found.length < 2) return found;
  found.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const merged: Array<[number, number]> = [found[0]!];
  for (const r of found.slice(1)) {
    const last = merged[merged.length - 1]!;
    if (r[0] < last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push(r);
  }
  return merged;
}

/** Mask every spelling in `buf` in place (same length); returns how many separate places were masked. */
export function maskInPlace(buf: Buffer, needles: CredentialNeedles): number {
  const ranges = spellingRanges(buf, needles);
  for (const [from, to] of ranges) buf.fill(MASK, from, to);
  return ranges.length;
}

/** Whether any spelling of the credentials occurs in `buf`. */
export function holdsCredential(buf: Buffer, needles: CredentialNeedles): boolean {
  return spellingRanges(buf, needles).length > 0;
}

/** A char above U+00FF: its latin1 bytes would not be the string's chars, so the string test does not apply. */
const BEYOND_LATIN1 = /[^\x00-\xff]/;

/**
 * `text` (a header name or value, or the reason phrase: latin1, one char
 * per byte as node reads them) with every spelling masked. It is turned
 * into bytes only when a probe's latin1 form is in it, the same test as on
 * the bytes. Returns `text` itself when nothing was masked.
 */
export function redactText(text: string, needles: CredentialNeedles): { text: string; masked: number } {
  if (!BEYOND_LATIN1.test(text) && !needles.probeForms.some((f) => text.includes(f))) return { text, masked: 0 };
  const b = Buffer.from(text, "latin1");
  const masked = maskInPlace(b, needles);
  return masked ? { text: b.toString("latin1"), masked } : { text, masked: 0 };
}

/**
 * Response headers (flat raw list) with every credential masked in their
 * names and values, byte for byte as they go on the wire (latin1). Returns
 * `raw` itself when nothing was masked.
 */
export function redactHeaders(raw: string[], needles: CredentialNeedles): { headers: string[]; masked: number } {
  let masked = 0;
  let out: string[] | undefined;
  for (let i = 0; i < raw.length; i++) {
    const r = redactText(raw[i]!, needles);
    if (!r.masked) continue;
    masked += r.masked;
    out ??= raw.slice();
    out[i] = r.text;
  }
  return { headers: out ?? raw, masked };
}

/** Compressed data a response body may be without saying so (no Content-Encoding), by its first bytes. */
type Compression = "gzip" | "zlib" | "zstd" | "zip";

function sniffCompression(head: Buffer, complete: boolean): Compression | undefined | "more" {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  // zlib: CM 8 with a window up to 32K, no preset dictionary, the header
  // check (a multiple of 31), and what follows inflates: two bytes alone
  // also start ordinary text (1 in 31 pairs such as "x^", "hC" pass the
  // header check), which must not be held as zlib. A few bytes of text
  // often still inflate, so it is judged on ZLIB_SNIFF_BYTES (or the whole
  // body, when shorter): "more" asks for them.
  if (head.length >= 2 && (head[0]! & 0x0f) === 8 && head[0]! >> 4 <= 7 && !(head[1]! & 0x20) && ((head[0]! << 8) | head[1]!) % 31 === 0 && inflates(head)) {
    return head.length >= ZLIB_SNIFF_BYTES || complete ? "zlib" : "more";
  }
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return "zstd";
  if (head.length >= 4 && head.readUInt32LE(0) === ZIP_LOCAL_HEADER) return "zip";
  return undefined;
}

/** Whether `head` starts a zlib stream (decodes so far without an error). */
function inflates(head: Buffer): boolean {
  try {
    inflateSync(head, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: 1 });
    return true;
  } catch (err) {
    return err instanceof RangeError; // more output than asked for: it does decode
  }
}

/** Bytes needed to tell (sniffCompression): zstd's and zip's magic numbers are four. */
const SNIFF_BYTES = 4;
/** What a body that starts like zlib must still inflate through before it is held as zlib. */
const ZLIB_SNIFF_BYTES = 64;
/** A compressed body held for checking may be at most this large, and decode to at most this much. */
export const MAX_HELD_COMPRESSED = 8 * 1024 * 1024;
export const MAX_DECODED_COMPRESSED = 64 * 1024 * 1024;
/** Compressed data inside compressed data is opened this many levels deep. */
const MAX_LAYERS = 3;
/** Entries of one zip archive opened at most (a bound on the work one body can ask for). */
const MAX_ZIP_ENTRIES = 10_000;

const ZIP_LOCAL_HEADER = 0x04034b50; // "PK\x03\x04"
const ZIP_SIGNATURES = [Buffer.from("PK\x03\x04", "latin1"), Buffer.from("PK\x01\x02", "latin1"), Buffer.from("PK\x07\x08", "latin1")];

type Codec = "gzip" | "zlib" | "zstd" | "raw";

function decode(codec: Codec, buf: Buffer, maxOutputLength: number): Buffer {
  if (codec === "zstd") return zstdDecompressSync(buf, { maxOutputLength });
  // Sync flush: a truncated stream gives what it holds instead of an error (as a streaming decoder would).
  const opts = { maxOutputLength, finishFlush: zlibConstants.Z_SYNC_FLUSH };
  return codec === "gzip" ? gunzipSync(buf, opts) : codec === "zlib" ? inflateSync(buf, opts) : inflateRawSync(buf, opts);
}

/**
 * What a decoder gets out of `buf`: all of it, or, when the data is
 * corrupt somewhere, the output of the longest prefix that decodes (a
 * streaming decoder hands that much over before it stops).
 */
function decodable(codec: Codec, buf: Buffer, maxOutputLength = MAX_DECODED_COMPRESSED): Buffer | { error: string } {
  try {
    return decode(codec, buf, maxOutputLength);
  } catch (err) {
    if (err instanceof RangeError || codec === "zstd") return { error: (err as Error).message };
    let lo = 0;
    let hi = buf.length - 1;
    let best: Buffer = EMPTY;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      try {
        best = decode(codec, buf.subarray(0, mid), maxOutputLength);
        lo = mid;
      } catch (e) {
        if (e instanceof RangeError) return { error: e.message };
        hi = mid - 1;
      }
    }
    return best;
  }
}

/**
 * The files of a zip archive, by its local headers (what a streaming
 * unzipper reads; the central directory only repeats them): stored and
 * deflated entries decoded, anything else (encrypted, other methods) an error.
 */
function zipEntries(buf: Buffer): Buffer[] | { error: string } {
  const out: Buffer[] = [];
  let total = 0;
  let at = 0;
  while (at + 30 <= buf.length && buf.readUInt32LE(at) === ZIP_LOCAL_HEADER) {
    if (out.length >= MAX_ZIP_ENTRIES) return { error: `more than ${MAX_ZIP_ENTRIES} entries` };
    const flags = buf.readUInt16LE(at + 6);
    const method = buf.readUInt16LE(at + 8);
    const declared = buf.readUInt32LE(at + 18);
    const start = at + 30 + buf.readUInt16LE(at + 26) + buf.readUInt16LE(at + 28);
    if (flags & 1) return { error: "an encrypted entry" };
    // Sizes after the data (flag 3) or not given: the data runs to the next signature.
    let end = Math.min(buf.length, start + declared);
    if (flags & 8 || declared === 0) {
      const next = ZIP_SIGNATURES.map((sig) => buf.indexOf(sig, start)).filter((i) => i >= 0);
      end = next.length ? Math.min(...next) : buf.length;
    }
    const data = buf.subarray(Math.min(start, buf.length), end);
    let entry: Buffer | { error: string };
    if (method === 0) entry = data;
    else if (method === 8) entry = decodable("raw", data, MAX_DECODED_COMPRESSED - total);
    else return { error: `an entry compressed with method ${method}` };
    if (!Buffer.isBuffer(entry)) return entry;
    total += entry.length;
    out.push(entry);
    const nextHeader = buf.indexOf(ZIP_SIGNATURES[0]!, end);
    if (nextHeader < 0) break;
    at = nextHeader;
  }
  return out;
}

/** What `buf` holds once decoded: one stream, or a zip archive's files. */
function decodedMembers(kind: Compression, buf: Buffer): Buffer[] | { error: string } {
  if (kind === "zip") return zipEntries(buf);
  const out = decodable(kind, buf);
  return Buffer.isBuffer(out) ? [out] : out;
}

/**
 * Why a compressed body must not reach the agent: the credential is in it
 * as it is (a zip's stored entries and names) or in what it decodes to, at
 * any layer; or it cannot be checked. Undefined when it can be sent as it is.
 */
function compressedRefusal(kind: Compression, buf: Buffer, needles: CredentialNeedles, layer = 1): string | undefined {
  const what = kind === "zip" ? "a zip archive" : `${kind}-compressed data`;
  if (holdsCredential(buf, needles)) return `the response body is ${what} holding the credential egress added to the request`;
  const members = decodedMembers(kind, buf);
  if (!Array.isArray(members)) return `the response body is ${what} that egress cannot decode to check for the credential it added (${members.error})`;
  for (const out of members) {
    if (holdsCredential(out, needles)) return `the response body is ${what} holding the credential egress added to the request`;
    // A decoded member is whole: judged on all of it.
    const inner = sniffCompression(out, true);
    if (!inner || inner === "more") continue;
    if (layer >= MAX_LAYERS) return `the response body is compressed data nested more than ${MAX_LAYERS} levels deep, which egress does not open to check for the credential it added`;
    const why = compressedRefusal(inner, out, needles, layer + 1);
    if (why) return why;
  }
  return undefined;
}

/**
 * Masks a body chunk by chunk, also across chunk boundaries: what may be
 * the start of a spelling cut off by the chunk's end (heldFrom; at most the
 * longest spelling − 1 bytes) is held back until the next chunk shows
 * whether it is one. The result is the same however the body is cut. Same length out as in. A chunk is copied
 * only when something in it is masked (the chunk given is never changed);
 * what is sent is otherwise a view of it.
 *
 * A body that starts as compressed data (gzip, zlib, zstd, zip) is held whole
 * instead, decoded at its end and sent only if the credential is not in
 * it; otherwise (or when it is too large to hold) `refusal` says why and
 * nothing of it is given out.
 */
export class BodyMasker {
  /** The held-back tail as it came (unmasked: a spelling may begin inside a part already masked). */
  #carry: Buffer = EMPTY;
  /** How many leading bytes of the carry a spelling found earlier covers (masked whatever else is found). */
  #carryMasked = 0;
  readonly #keep: number;
  masked = 0;
  /** Set when the body must not be sent at all (then push, flush and end give nothing more). */
  refusal: string | undefined;
  /** Until the first bytes are seen: held to tell whether the body is compressed data. */
  #sniffing = true;
  #compressed: Compression | undefined;
  #held: Buffer[] = [];
  #heldBytes = 0;

  constructor(private readonly needles: CredentialNeedles) {
    this.#keep = Math.max(0, needles.longest - 1);
  }

  /** The bytes that may be sent now (possibly none). */
  push(chunk: Buffer): Buffer {
    const plain = this.#plain(chunk, false);
    if (!plain) return EMPTY;
    const whole = this.#carry.length ? Buffer.concat([this.#carry, plain]) : plain;
    const cut = heldFrom(whole, this.needles, this.#keep);
    const buf = this.#masked(whole, cut);
    // A copy: the held-back tail must not depend on who else holds `chunk`.
    this.#carry = Buffer.from(whole.subarray(cut));
    return buf.subarray(0, cut);
  }

  /** What was held back, at the end of the body. */
  flush(): Buffer {
    return this.end(EMPTY);
  }

  /** The last chunk of the body, masked, with what was held back before it: push and flush in one. */
  end(chunk: Buffer): Buffer {
    const plain = this.#plain(chunk, true);
    if (!plain) return EMPTY;
    const whole = this.#carry.length ? Buffer.concat([this.#carry, plain]) : plain;
    const buf = this.#masked(whole, whole.length);
    this.#carry = EMPTY;
    return buf;
  }

  /** `chunk` when the body is plain bytes to mask as they come; undefined while (or when) it is held. */
  #plain(chunk: Buffer, last: boolean): Buffer | undefined {
    if (this.refusal) return undefined;
    if (!this.#sniffing && !this.#compressed) return chunk;
    if (this.#sniffing && !this.#heldBytes && chunk.length >= SNIFF_BYTES) {
      // The usual first chunk: enough to tell at once, nothing held before it.
      const sniffed = sniffCompression(chunk, last);
      if (sniffed !== "more") {
        this.#compressed = sniffed;
        this.#sniffing = false;
        if (!this.#compressed) return chunk;
      }
    }
    if (chunk.length) {
      this.#held.push(chunk);
      this.#heldBytes += chunk.length;
    }
    if (this.#sniffing) {
      if (this.#heldBytes < SNIFF_BYTES && !last) return undefined;
      const sniffed = sniffCompression(Buffer.concat(this.#held), last);
      if (sniffed === "more") return undefined;
      this.#sniffing = false;
      this.#compressed = sniffed;
      if (!this.#compressed) return this.#release();
    }
    if (this.#heldBytes > MAX_HELD_COMPRESSED) {
      this.#refuse(`the response body is ${this.#compressed}-compressed data larger than ${MAX_HELD_COMPRESSED / 1048576} MiB, too large for egress to check for the credential it added`);
      return undefined;
    }
    if (!last) return undefined;
    const whole = this.#release();
    const why = compressedRefusal(this.#compressed!, whole, this.needles);
    if (why) {
      this.#refuse(why);
      return undefined;
    }
    return whole;
  }

  #release(): Buffer {
    const whole = this.#held.length === 1 ? this.#held[0]! : Buffer.concat(this.#held);
    this.#held = [];
    this.#heldBytes = 0;
    return whole;
  }

  #refuse(why: string): void {
    this.refusal = `bot-bottle egress: ${why}`;
    this.#held = [];
    this.#heldBytes = 0;
  }

  /**
   * `buf` (the carry and `chunk`) with every spelling that starts before
   * `upTo` masked. One starting later is left for the next call, which sees
   * what follows it: a spelling may end in an optional character (the ';'
   * of a character reference), and masking it before the next bytes arrive
   * would leave that character out.
   */
  #masked(buf: Buffer, upTo: number): Buffer {
    const ranges = spellingRanges(buf, this.needles);
    const before = this.#carryMasked;
    // `buf` is never changed (it is the caller's chunk, or holds the carry as it came): masked copy on first write.
    let out = buf;
    if (before) {
      out = Buffer.from(buf);
      out.fill(MASK, 0, before);
    }
    let reach = before;
    for (const [from, to] of ranges) {
      if (from >= upTo) break;
      if (out === buf) out = Buffer.from(buf);
      out.fill(MASK, from, to);
      // One overlapping what an earlier chunk's spelling covered is the same place (as one range of the whole body).
      if (from >= before) this.masked++;
      reach = Math.max(reach, to);
    }
    this.#carryMasked = Math.max(0, reach - upTo);
    return out;
  }
}

/** Raised by RedactStream when the body must not be sent (BodyMasker.refusal). */
export class ResponseRefusedError extends Error {
  constructor(readonly refusal: string) {
    super(refusal);
  }
}

/** BodyMasker as a stream stage, for bodies that are decoded on the way (a pipe of stages). */
export class RedactStream extends Transform {
  readonly #masker: BodyMasker;

  constructor(needles: CredentialNeedles) {
    super();
    this.#masker = new BodyMasker(needles);
  }

  get masked(): number {
    return this.#masker.masked;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out = this.#masker.push(chunk);
    if (this.#masker.refusal) done(new ResponseRefusedError(this.#masker.refusal));
    else done(null, out.length ? out : undefined);
  }

  override _flush(done: TransformCallback): void {
    const rest = this.#masker.flush();
    if (this.#masker.refusal) done(new ResponseRefusedError(this.#masker.refusal));
    else done(null, rest.length ? rest : undefined);
  }
}
