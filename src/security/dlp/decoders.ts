// The spellings a secret can hide behind, each undone where it occurs: a
// decoder finds the regions of a text written in its encoding and returns
// them decoded (pieces joined by a blank line, which no token rule crosses).
// All of them are single forward passes over the text with bounded
// look-around; none allocates more than the region it decodes.
import { isAscii, isUtf8 } from "node:buffer";
import { MAX_B32_WORD, MIN_HEX_RUN } from "./runs.js";

/** Joins decoded pieces: a blank line, so no token continues across two pieces. */
export const PIECE_SEPARATOR = "\n\n";

/** Printable stretches shorter than this in decoded binary cannot hold a secret worth reporting. */
export const MIN_STRETCH = 8;

const PRINTABLE = new Uint8Array(256);
for (let c = 0x20; c < 0x7f; c++) PRINTABLE[c] = 1;
for (const c of [0, 9, 10, 13]) PRINTABLE[c] = 1;

/**
 * Decoded bytes as text to scan. UTF-8 text is kept whole; binary (which a
 * base64 body of an image or a token followed by random bytes decodes to)
 * keeps its printable ASCII stretches, so a key next to binary is still seen.
 */
export function bytesToScanText(b: Buffer): string {
  if (b.length === 0) return "";
  if (isAscii(b)) return b.toString("latin1");
  if (isUtf8(b)) return b.toString("utf8");
  const parts: string[] = [];
  const n = b.length;
  // Skip ahead as in Horspool's search: every stretch of MIN_STRETCH holds
  // the byte at i + MIN_STRETCH - 1, and a non-printable byte at q rules out
  // every stretch through it, so the next candidate ends at q + MIN_STRETCH.
  // On random binary most bytes are never read. (b[i - 1] is never
  // printable here: each step lands just past a non-printable byte.)
  let i = 0;
  while (i + MIN_STRETCH <= n) {
    if (!PRINTABLE[b[i + MIN_STRETCH - 1]!]) {
      i += MIN_STRETCH;
      continue;
    }
    let q = i + MIN_STRETCH - 2;
    while (q >= i && PRINTABLE[b[q]!]) q--;
    if (q >= i) {
      i = q + 1;
      continue;
    }
    let end = i + MIN_STRETCH;
    while (end < n && PRINTABLE[b[end]!]) end++;
    parts.push(b.toString("latin1", i, end));
    i = end + 1;
  }
  return parts.length ? parts.join(PIECE_SEPARATOR) : "";
}

/** Region edges for escape-style encodings: whitespace, quotes and angle brackets. */
const isEdge = (c: number) => c <= 32 || c === 34 || c === 39 || c === 60 || c === 62;

/**
 * Regions around each occurrence of `marker` that `valid` accepts, expanded
 * to the surrounding edges; each region is handed to `decode` once (a later
 * marker inside an already decoded region is skipped), so the pass is linear.
 */
function eachRegion(
  t: string,
  marker: string | RegExp,
  valid: (i: number) => boolean,
  edge: (t: string, i: number, dir: 1 | -1) => boolean,
  decode: (region: string) => string | undefined,
  out: string[],
): void {
  // A global regex finds the candidates natively (a marker that is common
  // in text, "&" or "=" in a form body, costs a callback each otherwise).
  const next =
    typeof marker === "string"
      ? (from: number) => t.indexOf(marker, from)
      : (from: number) => {
          marker.lastIndex = from;
          return marker.exec(t)?.index ?? -1;
        };
  let done = 0;
  let i = next(0);
  while (i >= 0) {
    if (valid(i)) {
      let l = i;
      while (l > done && !edge(t, l - 1, -1)) l--;
      let r = i + 1;
      while (r < t.length && !edge(t, r, 1)) r++;
      const d = decode(t.slice(l, r));
      if (d !== undefined) out.push(d);
      done = r;
      i = next(r);
    } else i = next(i + 1);
  }
}

const plainEdge = (t: string, i: number) => isEdge(t.charCodeAt(i));
const hexVal = (c: number) => (c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1);
const isHexAt = (t: string, i: number) => hexVal(t.charCodeAt(i)) >= 0 && hexVal(t.charCodeAt(i + 1)) >= 0;

// ---- percent-encoding -------------------------------------------------------------

const MAX_PERCENT_ROUNDS = 8;
const PERCENT_ESCAPE = /%[0-9a-fA-F]{2}/g;

/** One round of lenient percent-decoding (malformed escapes stay as written; "+" stays "+"). */
function percentRound(s: string): string {
  const bytes: number[] = [];
  let out = "";
  let last = 0;
  for (let i = s.indexOf("%"); i >= 0; i = s.indexOf("%", i)) {
    if (!isHexAt(s, i + 1)) {
      i++;
      continue;
    }
    out += s.slice(last, i);
    bytes.length = 0;
    while (s.charCodeAt(i) === 37 && isHexAt(s, i + 1)) {
      bytes.push(hexVal(s.charCodeAt(i + 1)) * 16 + hexVal(s.charCodeAt(i + 2)));
      i += 3;
    }
    out += bytesToScanText(Buffer.from(bytes)) || Buffer.from(bytes).toString("latin1");
    last = i;
  }
  return last === 0 ? s : out + s.slice(last);
}

/** Percent-encoded regions, decoded until stable (double and triple encoding are cheap dodges). */
export function decodePercent(t: string, out: string[] = []): string[] {
  eachRegion(
    t,
    PERCENT_ESCAPE,
    (i) => isHexAt(t, i + 1),
    plainEdge,
    (region) => {
      let cur = region;
      for (let round = 0; round < MAX_PERCENT_ROUNDS; round++) {
        const next = percentRound(cur);
        if (next === cur) break;
        cur = next;
      }
      return cur === region ? undefined : cur;
    },
    out,
  );
  return out;
}

// ---- JSON / JavaScript string escapes ------------------------------------------------

const SIMPLE_ESCAPES: Record<string, string> = { n: "\n", r: "\r", t: "\t", b: "\b", f: "\f", v: "\v", "0": "\0", "/": "/", "\\": "\\", '"': '"', "'": "'" };

function unescapeJson(s: string): string {
  let out = "";
  let last = 0;
  for (let i = s.indexOf("\\"); i >= 0 && i < s.length - 1; i = s.indexOf("\\", i)) {
    out += s.slice(last, i);
    const c = s[i + 1]!;
    if (c === "u" && /^[0-9a-fA-F]{4}$/.test(s.slice(i + 2, i + 6))) {
      out += String.fromCharCode(parseInt(s.slice(i + 2, i + 6), 16));
      i += 6;
    } else if (c === "u" && s[i + 2] === "{" && /^[0-9a-fA-F]{1,6}\}/.test(s.slice(i + 3, i + 10))) {
      const close = s.indexOf("}", i);
      out += String.fromCodePoint(Math.min(0x10ffff, parseInt(s.slice(i + 3, close), 16)));
      i = close + 1;
    } else if (c === "x" && isHexAt(s, i + 2)) {
      out += String.fromCharCode(hexVal(s.charCodeAt(i + 2)) * 16 + hexVal(s.charCodeAt(i + 3)));
      i += 4;
    } else {
      out += SIMPLE_ESCAPES[c] ?? c;
      i += 2;
    }
    last = i;
  }
  return out + s.slice(last);
}

/** Regions with backslash escapes: \uXXXX, \xHH, \n (wrapped base64 inside a JSON string), \/ … */
export function decodeJsonEscapes(t: string, out: string[] = []): string[] {
  const escEdge = (s: string, i: number, dir: 1 | -1) => {
    const c = s.charCodeAt(i);
    // An escaped quote belongs to the region; an unescaped one ends it.
    if (c === 34 || c === 39) return !(dir === 1 ? s.charCodeAt(i - 1) === 92 : s.charCodeAt(i - 1) === 92);
    return c <= 32 || c === 60 || c === 62;
  };
  eachRegion(
    t,
    "\\",
    (i) => /[uxnrt/\\"'0bfv]/.test(t[i + 1] ?? ""),
    escEdge,
    (region) => {
      const d = unescapeJson(region);
      return d === region ? undefined : d;
    },
    out,
  );
  return out;
}

// ---- HTML entities ------------------------------------------------------------------------

const NAMED_ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  sol: "/",
  colon: ":",
  period: ".",
  lowbar: "_",
  hyphen: "-",
  dash: "-",
  equals: "=",
  plus: "+",
  num: "#",
  percnt: "%",
  excl: "!",
  nbsp: " ",
};
const ENTITY = /&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]{2,8}));?/g;

const HTML_ENTITY_START = /&(?:#|[a-zA-Z]{2,8};)/g;
const QP_ESCAPE_START = /=(?:\r?\n|[0-9A-F]{2})/g;

/** `[a-zA-Z]{2,8};` at `i`, read by character (a regex on a slice per "&" dominated form bodies' scan). */
function namedEntityAt(t: string, i: number): boolean {
  let k = 0;
  for (; k < 9; k++) {
    const c = t.charCodeAt(i + k) | 0x20;
    if (c < 97 || c > 122) break;
  }
  return k >= 2 && k <= 8 && t.charCodeAt(i + k) === 59;
}

export function decodeHtmlEntities(t: string, out: string[] = []): string[] {
  eachRegion(
    t,
    HTML_ENTITY_START,
    (i) => t.charCodeAt(i + 1) === 35 || namedEntityAt(t, i + 1),
    (s, i) => {
      const c = s.charCodeAt(i);
      return c <= 32 || c === 34 || c === 39 || c === 60 || c === 62;
    },
    (region) => {
      const d = region.replace(ENTITY, (m, dec: string | undefined, hex: string | undefined, name: string | undefined) => {
        if (dec || hex) {
          const cp = parseInt(dec ?? hex!, dec ? 10 : 16);
          return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
        }
        return NAMED_ENTITIES[name!.toLowerCase()] ?? m;
      });
      return d === region ? undefined : d;
    },
    out,
  );
  return out;
}

// ---- quoted-printable ------------------------------------------------------------------------

/** Soft line breaks ("=\r\n") rejoin a token the encoder wrapped; "=HH" escapes are decoded. */
export function decodeQuotedPrintable(t: string, out: string[] = []): string[] {
  // A region runs across soft line breaks; other whitespace ends it.
  const qpEdge = (s: string, i: number, dir: 1 | -1) => {
    const c = s.charCodeAt(i);
    if (c === 10 || c === 13) {
      if (dir === 1) return !(s.charCodeAt(i - 1) === 61 || (c === 10 && s.charCodeAt(i - 1) === 13 && s.charCodeAt(i - 2) === 61));
      const eq = c === 10 && s.charCodeAt(i - 1) === 13 ? i - 2 : i - 1;
      return s.charCodeAt(eq) !== 61;
    }
    return c <= 32;
  };
  eachRegion(
    t,
    QP_ESCAPE_START,
    (i) => {
      const c = t.charCodeAt(i + 1);
      return (
        c === 10 || (c === 13 && t.charCodeAt(i + 2) === 10) || (isHexAt(t, i + 1) && /^[0-9A-F]{2}$/.test(t.slice(i + 1, i + 3)) && (t.slice(i + 1, i + 3) === "3D" || t.charCodeAt(i + 1) >= 56))
      );
    },
    qpEdge,
    (region) => {
      const d = region.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
      return d === region ? undefined : bytesToScanText(Buffer.from(d, "latin1"));
    },
    out,
  );
  return out;
}

// ---- decimal character codes ----------------------------------------------------------------

/** Lists of decimal character codes ("77,121,84,…", found by the matcher's pass) as the text they spell. */
export function decodeDecimal(t: string, lists: readonly number[], out: string[] = []): string[] {
  for (let k = 0; k < lists.length; k += 2) {
    const codes = t
      .slice(lists[k]!, lists[k + 1]!)
      .split(/[, ]+/)
      .map(Number);
    // In slices: a list may hold millions of codes, more than one call takes as arguments.
    const parts: string[] = [];
    for (let i = 0; i < codes.length; i += 8192) parts.push(String.fromCharCode(...codes.slice(i, i + 8192)));
    out.push(parts.join(""));
  }
  return out;
}

// ---- spelled out, one character at a time ----------------------------------------------------

/** Characters a spelled-out key is made of. */
const SPELLED = new Uint8Array(128);
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") SPELLED[ch.charCodeAt(0)] = 1;
const spelled = (t: string, i: number) => {
  const c = t.charCodeAt(i);
  return c < 128 && SPELLED[c] === 1;
};
/** Characters spelled out before the dots are dropped: "e.g." and "1.2.3.4" stay as they are. */
export const MIN_SPELLED = 8;

/**
 * A key written a character per label, "A.K.I.A.I.O.…" (DNS-label style,
 * one of pipelock's encoded-credential forms): each stretch of single
 * characters separated by single dots, with the dots dropped.
 */
export function decodeDotted(t: string, out: string[] = []): string[] {
  let i = t.indexOf(".");
  while (i >= 0) {
    // A dot with one spelled character on each side, and the one before that is not part of a longer word.
    if (i >= 1 && spelled(t, i - 1) && !spelled(t, i - 2) && spelled(t, i + 1) && !spelled(t, i + 2)) {
      let e = i;
      while (t.charCodeAt(e) === 46 && spelled(t, e + 1) && !spelled(t, e + 2)) e += 2;
      if ((e - i) / 2 + 1 >= MIN_SPELLED) out.push(t.slice(i - 1, e).replaceAll(".", ""));
      i = t.indexOf(".", e);
    } else i = t.indexOf(".", i + 1);
  }
  return out;
}

// ---- base64, hex, base32 (regions found by the matcher's pass: see Runs in matcher.ts) ------------

/** Base64-decode `s` (either alphabet; line breaks skipped by Node's decoder). */
export const base64Bytes = (s: string) => Buffer.from(s, "base64");

/** Each base64 run decoded from its start (other alignments: the engine's needles). */
export function decodeBase64Runs(t: string, runs: readonly number[], out: string[] = []): string[] {
  for (let k = 0; k < runs.length; k += 3) {
    const d = bytesToScanText(base64Bytes(t.slice(runs[k]!, runs[k + 1]!)));
    if (d.length >= MIN_STRETCH) out.push(d);
  }
  return out;
}

function hexBytes(s: string, from: number, to: number): Buffer {
  const b = Buffer.allocUnsafe((to - from) >> 1);
  for (let i = from, k = 0; i + 1 < to; i += 2, k++) b[k] = hexVal(s.charCodeAt(i)) * 16 + hexVal(s.charCodeAt(i + 1));
  return b;
}

/**
 * Runs of hex digits (both nibble alignments), and byte lists written with
 * separators or prefixes: "73:6b:2d", "73 6b 2d", "\x73\x6b", "0x73,0x6b".
 */
export function decodeHex(t: string, runs: readonly number[], lists: readonly number[], out: string[] = []): string[] {
  for (let k = 0; k < runs.length; k += 2) {
    const start = runs[k]!;
    const end = runs[k + 1]!;
    for (const off of end - start > MIN_HEX_RUN ? [0, 1] : [0]) {
      const d = bytesToScanText(hexBytes(t, start + off, end));
      if (d.length >= MIN_STRETCH) out.push(d);
    }
  }
  for (let k = 0; k < lists.length; k += 2) {
    const list = t.slice(lists[k]!, lists[k + 1]!);
    const digits = list.replace(/\\x|0x|[^0-9a-fA-F]/gi, "");
    const d = bytesToScanText(hexBytes(digits, 0, digits.length));
    if (d.length >= MIN_STRETCH) out.push(d);
  }
  return out;
}

const B32_STD = new Int8Array(128).fill(-1);
const B32_HEX = new Int8Array(128).fill(-1);
for (let v = 0; v < 32; v++) {
  const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[v]!;
  const hex = "0123456789ABCDEFGHIJKLMNOPQRSTUV"[v]!;
  B32_STD[std.charCodeAt(0)] = v;
  B32_STD[std.toLowerCase().charCodeAt(0)] = v;
  B32_HEX[hex.charCodeAt(0)] = v;
  B32_HEX[hex.toLowerCase().charCodeAt(0)] = v;
}

function base32Bytes(s: string, from: number, to: number, table: Int8Array): Buffer | undefined {
  const out = Buffer.allocUnsafe(Math.floor(((to - from) * 5) / 8));
  let acc = 0;
  let bits = 0;
  let k = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 61) break;
    const v = table[c]!;
    if (v < 0) return undefined;
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[k++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, k);
}

/** Whole words (delimited by anything but letters, digits and "=") in either base32 alphabet, any case. */
export function decodeBase32(t: string, words: readonly number[], out: string[] = []): string[] {
  for (let k = 0; k < words.length; k += 2) {
    const start = words[k]!;
    const end = words[k + 1]!;
    if (end - start > MAX_B32_WORD) continue;
    for (const table of [B32_STD, B32_HEX]) {
      const b = base32Bytes(t, start, end, table);
      if (b) {
        const d = bytesToScanText(b);
        if (d.length >= MIN_STRETCH) out.push(d);
      }
    }
  }
  return out;
}
