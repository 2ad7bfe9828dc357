// Where a text's encoded stretches are, for the decoders: base64 runs, and
// inside them hex runs, base32 words and "73:6b:2d" byte lists. Every one of
// them is made of base64 characters, so the matcher's pass only notes where
// each maximal stretch of base64 characters starts and ends (see
// Matcher.run) and hands the stretches to RunTracker.add in batches. The
// tracker looks inside a stretch only as far as it must: a word of prose at
// most for a hex byte ("6b"), hex runs by skipping ahead (a hex run of 24
// holds every 24th position), base32 words from one "/" to the next (found
// with a forward-only cursor) and read only until their first character
// that no base32 alphabet has. So a megabyte of random base64 costs a few
// reads per hundred characters beyond the matcher's own.
import { B64_ANY, HEX } from "./chars.js";

export const MIN_B64_RUN = 20;
export const MIN_HEX_RUN = 24;
export const MIN_HEX_PAIRS = 12;
export const MIN_B32_WORD = 16;
/** Character codes in a list before it is decoded ("77,121,84,…": shorter lists are ordinary numbers). */
export const MIN_DECIMAL_CODES = 8;
/** Longer base32 words are not decoded (no secret is that long; the decoder would only burn time). */
export const MAX_B32_WORD = 1 << 16;

/** Where the encoded stretches of a text are, as flat [start, end, …] lists. */
export interface Runs {
  /** Base64 runs (line breaks inside continue them); a third entry per run: 1 when wrapped. */
  b64: number[];
  hex: number[];
  /** Hex byte lists with separators: [start, end] of the list. */
  hexLists: number[];
  /** Base32 words that read whole in at least one base32 alphabet (either case). */
  b32: number[];
  /** Lists of printable ASCII as decimal codes ("77,121,84" or "77 121 84"): [start, end] of the list (made when the first is found). */
  dec?: number[];
  /**
   * A position to ask about: when set, `probeFrom` is set to where the
   * stretch of base64 characters reaching it starts (the smallest r with
   * [r, probe) all base64 characters; probe itself when there is none).
   */
  probe?: number;
  probeFrom?: number;
}

const isB64 = (c: number) => c < 128 && B64_ANY[c] === 1;
const isHex = (c: number) => c < 128 && HEX[c] === 1;

/** Bit 1: in the RFC 4648 base32 alphabet, bit 2: in base32hex (either case); "=" (padding) is in both. */
const B32_ALPHABETS = new Uint8Array(128);
B32_ALPHABETS[61] = 3;
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") {
  B32_ALPHABETS[ch.charCodeAt(0)]! |= 1;
  B32_ALPHABETS[ch.toLowerCase().charCodeAt(0)]! |= 1;
}
for (const ch of "0123456789ABCDEFGHIJKLMNOPQRSTUV") {
  B32_ALPHABETS[ch.charCodeAt(0)]! |= 2;
  B32_ALPHABETS[ch.toLowerCase().charCodeAt(0)]! |= 2;
}

/** Characters allowed between the pairs of a hex byte list ("\\x", "0x" and one-character separators). */
const HEX_GAP = new Uint8Array(128);
for (const ch of ":, -\\xX0") HEX_GAP[ch.charCodeAt(0)] = 1;

/**
 * Collects Runs for one text. The matcher hands it, in batches, the maximal
 * stretches of base64 characters it met, as [from, to) pairs in text order
 * (`to` is the non-base64 character that ended the stretch, or the text's
 * end); `finish` closes the last hex byte list.
 */
export class RunTracker {
  private runs: Runs = { b64: [], hex: [], hexLists: [], b32: [] };
  // A run continued past a line break (wrapped base64): where it started,
  // or -1; and where the current line of the run starts.
  private open = -1;
  private lineFrom = 0;
  // The hex byte list being built.
  private listStart = -1;
  private listEnd = -1;
  private listPairs = 0;
  // The decimal code list being built.
  private decStart = -1;
  private decEnd = -1;
  private decCount = 0;
  // Next "/" at or after the last position asked about (a forward-only cursor: linear overall).
  private slash = -1;
  private probe = -1;

  reset(runs: Runs): void {
    this.runs = runs;
    this.probe = runs.probe ?? -1;
    if (this.probe >= 0) runs.probeFrom = this.probe;
    this.open = -1;
    this.lineFrom = 0;
    this.listStart = -1;
    this.listEnd = -1;
    this.listPairs = 0;
    this.decCount = 0;
    this.decEnd = -1;
    this.slash = -1;
  }

  /** Stretches [pairs[k], pairs[k + 1]) for k < count, in text order. */
  add(s: string, pairs: Int32Array, count: number): void {
    const probe = this.probe;
    for (let k = 0; k < count; k += 2) {
      const from = pairs[k]!;
      const to = pairs[k + 1]!;
      // Most stretches of prose are words: short, on one line, and at most a hex byte ("6b", "x6b").
      if (this.open < 0 && to - from < MIN_B32_WORD - 6 && (probe <= from || probe > to)) {
        const c = s.charCodeAt(to);
        if (c !== 10 && c !== 13) {
          if (to - from >= 2 && to - from <= 4) {
            this.pair(s, from, to);
            if (to - from <= 3) this.code(s, from, to);
          }
          continue;
        }
      }
      this.stretch(s, from, to);
    }
  }

  /** Call once after the last batch. */
  finish(): void {
    if (this.listPairs >= MIN_HEX_PAIRS) this.runs.hexLists.push(this.listStart, this.listEnd);
    this.listPairs = 0;
    if (this.decCount >= MIN_DECIMAL_CODES) this.pushCodes();
    this.decCount = 0;
  }

  private pushCodes(): void {
    const runs = this.runs;
    if (!runs.dec) runs.dec = [];
    runs.dec.push(this.decStart, this.decEnd);
  }

  /** A stretch [from, i) of two or three digits: one more printable ASCII code of a decimal list ("77, 121"), or the start of one. */
  private code(s: string, from: number, i: number): void {
    let v = 0;
    for (let k = from; k < i; k++) {
      const c = s.charCodeAt(k);
      if (c < 48 || c > 57) return;
      v = v * 10 + c - 48;
    }
    if (v < 32 || v > 126) return;
    // One or two separators (",", " ") since the last code continue the list.
    let ok = this.decCount > 0 && from - this.decEnd >= 1 && from - this.decEnd <= 2;
    for (let g = this.decEnd; ok && g < from; g++) ok = s.charCodeAt(g) === 44 || s.charCodeAt(g) === 32;
    if (!ok) {
      if (this.decCount >= MIN_DECIMAL_CODES) this.pushCodes();
      this.decCount = 0;
      this.decStart = from;
    }
    this.decCount++;
    this.decEnd = i;
  }

  private stretch(s: string, start: number, i: number): void {
    const runs = this.runs;
    const from = this.open >= 0 ? this.open : start;
    if (this.open < 0) this.lineFrom = from;
    if (this.probe > this.lineFrom && this.probe <= i) runs.probeFrom = this.lineFrom;
    // A line break between base64 characters continues the run (wrapped base64).
    const code = s.charCodeAt(i);
    if (code === 10 || code === 13) {
      let j = i + 1;
      if (code === 13 && s.charCodeAt(j) === 10) j++;
      if (j < s.length && isB64(s.charCodeAt(j))) {
        if (i - this.lineFrom >= MIN_B32_WORD) this.line(s, this.lineFrom, i, i);
        this.lineFrom = j;
        this.open = from;
        return;
      }
    }
    const wrapped = this.open >= 0 ? 1 : 0;
    this.open = -1;
    // Up to two "=" of padding belong to a base64 run; a base32 word's padding
    // is up to six. (Shorter runs, most words of prose, are neither.)
    if (i - from >= MIN_B32_WORD - 6) {
      let end = i;
      while (end < s.length && end - i < 6 && s.charCodeAt(end) === 61) end++;
      if (end - from >= MIN_B64_RUN) runs.b64.push(from, Math.min(end, i + 2), wrapped);
      if (end - this.lineFrom >= MIN_B32_WORD) this.line(s, this.lineFrom, i, end);
    }
    if (i - from >= 2 && i - from <= 4) {
      this.pair(s, from, i);
      if (i - from <= 3) this.code(s, from, i);
    } else if (i - this.lineFrom >= 3 * MIN_HEX_PAIRS) this.glued(s, this.lineFrom, i);
  }

  /**
   * A hex byte list whose separators are base64 characters themselves
   * ("73-6b-2d", "0x730x6b"), so the pass saw one stretch: its extent from
   * `a`, pushed when it holds MIN_HEX_PAIRS bytes. Two reads decide for
   * most stretches.
   */
  private glued(s: string, a: number, b: number): void {
    const dash = s.charCodeAt(a + 2) === 45;
    const zx = !dash && s.charCodeAt(a) === 48 && (s.charCodeAt(a + 1) | 32) === 120;
    if (!dash && !zx) return;
    let p = a;
    let pairs = 0;
    let end = a;
    while (p < b) {
      const q = zx ? p + 2 : p;
      if (zx && !(s.charCodeAt(p) === 48 && (s.charCodeAt(p + 1) | 32) === 120)) break;
      if (q + 2 > b || !isHex(s.charCodeAt(q)) || !isHex(s.charCodeAt(q + 1))) break;
      pairs++;
      end = q + 2;
      p = dash ? (s.charCodeAt(end) === 45 ? end + 1 : b) : end;
    }
    if (pairs >= MIN_HEX_PAIRS) this.runs.hexLists.push(a, end);
  }

  /** A two-digit group ("6b", "x6b", "0x6b") ending run [from, i): one more byte of a list, or the start of one. */
  private pair(s: string, from: number, i: number): void {
    if (!isHex(s.charCodeAt(i - 1)) || !isHex(s.charCodeAt(i - 2)) || (i - 3 >= from && isHex(s.charCodeAt(i - 3)))) return;
    const runs = this.runs;
    const pairFrom = i - 2;
    let gapOk = this.listPairs > 0 && pairFrom - this.listEnd >= 1 && pairFrom - this.listEnd <= 4;
    for (let g = this.listEnd; gapOk && g < pairFrom; g++) gapOk = HEX_GAP[s.charCodeAt(g)] === 1;
    if (!gapOk) {
      if (this.listPairs >= MIN_HEX_PAIRS) runs.hexLists.push(this.listStart, this.listEnd);
      this.listPairs = 0;
      this.listStart = pairFrom;
    }
    this.listPairs++;
    this.listEnd = i;
  }

  /** Hex runs and base32 words of one line [a, b) of a base64 run; the last word may extend to `wordEnd` ("=" padding). */
  private line(s: string, a: number, b: number, wordEnd: number): void {
    const { hex, b32 } = this.runs;
    // Hex runs, found as in Horspool's search: a run of MIN_HEX_RUN starting
    // at p or later holds p + MIN_HEX_RUN - 1, and a non-hex character at q
    // rules out every run through it, so the next candidate starts at q + 1.
    // No character is read more than twice, most of them never.
    // (s[p - 1] is never hex: each step lands just past a non-hex character.)
    let p = a;
    while (p + MIN_HEX_RUN <= b) {
      let q = p + MIN_HEX_RUN - 1;
      while (q >= p && isHex(s.charCodeAt(q))) q--;
      if (q >= p) {
        p = q + 1;
        continue;
      }
      let en = p + MIN_HEX_RUN;
      while (en < b && isHex(s.charCodeAt(en))) en++;
      hex.push(p, en);
      p = en + 1;
    }
    // Base32 words: "/" separates them (a path segment); a word counts when
    // one base32 alphabet spells all of it ("+", "-" and "_" are in none).
    for (let w = a; w < b; ) {
      if (this.slash < w) {
        const k = s.indexOf("/", w);
        this.slash = k < 0 ? s.length : k;
      }
      const stop = this.slash < b ? this.slash : wordEnd;
      if (stop - w >= MIN_B32_WORD && stop - w <= MAX_B32_WORD) {
        // (Words hold only base64 characters and "=": all ASCII.) Four at a time: most words fail within a dozen.
        let alphabets = 3;
        let j = w;
        for (; j + 4 <= stop && alphabets !== 0; j += 4)
          alphabets &= B32_ALPHABETS[s.charCodeAt(j)]! & B32_ALPHABETS[s.charCodeAt(j + 1)]! & B32_ALPHABETS[s.charCodeAt(j + 2)]! & B32_ALPHABETS[s.charCodeAt(j + 3)]!;
        for (; j < stop && alphabets !== 0; j++) alphabets &= B32_ALPHABETS[s.charCodeAt(j)]!;
        if (alphabets !== 0) b32.push(w, stop);
      }
      w = stop + 1;
    }
  }
}
