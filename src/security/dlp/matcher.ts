// Linear-time matching of many secret rules at once. Every rule is anchored
// on literal triggers (a key's prefix, a scheme, a context word); one pass
// over the text hashes each 3-character window (ASCII case folded) and only
// where a trigger starts does the rule's verifier look at a bounded window
// after it. A verifier that fails tells the matcher how far its token run
// reached, and the rule's later triggers inside that run are skipped: they
// would meet the same run end. So each rule reads each character a bounded
// number of times, whatever the input (no backtracking regexes: "-eyJ"
// repeated 100k times is one pass, not 10^10 steps).
import { B64_ANY, FOLD, HEX } from "./chars.js";

/** A verifier's answer: the rule matched. Any other value is the index to resume the rule's triggers from. */
export const MATCH = -1;

export interface ModelCredential {
  /** Who issues the key, for the refusal message. */
  vendor: string;
  /** API host suffixes the key belongs to ("anthropic.com" covers api.anthropic.com). */
  hosts: readonly string[];
  /** How an egress route would send it. */
  header: string;
  value: string;
}

export interface Rule {
  /** Stable id used in logs and refusal messages, e.g. "github-token". */
  id: string;
  /** Human wording for refusal messages ("a GitHub token"). */
  description: string;
  /** Literal starts of the secret (at least 3 characters each). */
  triggers: readonly string[];
  /** Triggers match exactly as written; otherwise ASCII case is ignored. */
  caseSensitive?: boolean;
  /** Set for model-API credentials: the refusal says how to provide one properly. */
  model?: ModelCredential;
  /** Do not look for the triggers' base64 spellings (structural triggers that are not a key's prefix). */
  noNeedles?: boolean;
  /**
   * Check the text around a trigger at [at, after). `relaxed` is set for
   * views glued together from pieces (query values, header values, host
   * labels): what follows a piece is not the token's real end, so a bounded
   * token needs only its minimum length (left edges are still checked, and
   * every join counts as one: see withJoins in rules.ts).
   */
  verify(s: string, at: number, after: number, relaxed: boolean): number;
}

interface Entry {
  rule: number;
  trigger: string;
  folded: string;
  caseSensitive: boolean;
}

// A rolling hash of the last three characters, 6 bits each: letters (case
// folded), digits and the punctuation keys use get their own codes, every
// other character shares one.
const BITS = 18;
const MASK = (1 << BITS) - 1;
const CODE6 = (() => {
  const t = new Uint8Array(65536).fill(63);
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_./+=:~!#$%&*@?;,|^'\"()[]{}<> ";
  for (let k = 0; k < alphabet.length && k < 63; k++) t[alphabet.charCodeAt(k)] = k;
  for (let c = 65; c <= 90; c++) t[c] = t[c + 32]!;
  return t;
})();
const hash3 = (a: number, b: number, c: number) => (CODE6[a]! << 12) | (CODE6[b]! << 6) | CODE6[c]!;

// Character classes tracked during the same pass, for the decoders: base64
// runs, and inside them hex runs, base32 words and "73:6b:2d" byte lists.
const K_B64 = 1;
const K_HEX = 2;
/** "/" ends a base32 word inside a base64 run (a path segment); "+", "-" and "_" spoil it. */
const K_B32_END = 4;
const K_B32_BAD = 8;
const KIND = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  if (B64_ANY[c]) KIND[c]! |= K_B64;
  if (HEX[c]) KIND[c]! |= K_HEX;
  if (c === 47) KIND[c]! |= K_B32_END;
  if (c === 43 || c === 45 || c === 95) KIND[c]! |= K_B32_BAD;
}
/** Characters allowed between the pairs of a hex byte list ("\\x", "0x" and one-character separators). */
const HEX_GAP = new Uint8Array(128);
for (const ch of ":, -\\xX0") HEX_GAP[ch.charCodeAt(0)] = 1;

export const MIN_B64_RUN = 20;
export const MIN_HEX_RUN = 24;
export const MIN_HEX_PAIRS = 12;
export const MIN_B32_WORD = 16;

/** Where the encoded stretches of a text are, as flat [start, end, …] lists. */
export interface Runs {
  /** Base64 runs (line breaks inside continue them); a third entry per run: 1 when wrapped. */
  b64: number[];
  hex: number[];
  /** Hex byte lists with separators: [start, end] of the list. */
  hexLists: number[];
  b32: number[];
}

export interface MatchSink {
  /** A rule matched; return true to stop the pass. */
  onMatch(rule: Rule): boolean;
}

export class Matcher {
  readonly rules: readonly Rule[];
  private readonly present = new Uint8Array(MASK + 1);
  private readonly buckets: Array<Entry[] | undefined> = new Array(MASK + 1);
  // Per-pass state, stamped with a generation so nothing is cleared per call.
  private gen = 0;
  private readonly doneGen: Int32Array;
  private readonly resumeGen: Int32Array;
  private readonly resumeAt: Float64Array;

  constructor(rules: readonly Rule[]) {
    this.rules = rules;
    rules.forEach((rule, i) => {
      for (const trigger of rule.triggers) {
        if (trigger.length < 3) throw new Error(`rule ${rule.id}: trigger "${trigger}" is shorter than 3 characters`);
        const folded = [...trigger.slice(0, 3)].map((ch) => String.fromCharCode(FOLD[ch.charCodeAt(0)]!)).join("") + trigger.slice(3);
        const h = hash3(folded.charCodeAt(0), folded.charCodeAt(1), folded.charCodeAt(2));
        this.present[h] = 1;
        (this.buckets[h] ??= []).push({ rule: i, trigger, folded: rule.caseSensitive ? trigger : trigger.toLowerCase(), caseSensitive: !!rule.caseSensitive });
      }
    });
    this.doneGen = new Int32Array(rules.length);
    this.resumeGen = new Int32Array(rules.length);
    this.resumeAt = new Float64Array(rules.length);
  }

  /** Run every rule over `s` once; with `runs`, also note where its encoded stretches are. */
  run(s: string, relaxed: boolean, sink: MatchSink, runs?: Runs): void {
    const n = s.length;
    const gen = ++this.gen;
    const { present, buckets, rules, doneGen, resumeGen, resumeAt } = this;
    // Imported bindings can compile to property reads (CJS/ESM interop): read them once.
    const code6 = CODE6;
    const kind = KIND;
    const track = runs !== undefined;
    // Run tracking (see Runs): the current base64 run, the last non-hex and
    // the last base32-breaking character in it, and the hex byte list being built.
    let b64Start = -1;
    let b64Wrapped = 0;
    let lastNonHex = -1;
    let hexLen = 0;
    let hexOpen = -1;
    let b32From = -1;
    let b32Bad = 0;
    let listStart = -1;
    let listEnd = -1;
    let listPairs = 0;
    // (No closures in this loop: captured variables would live on the heap.)
    const b64Runs = runs?.b64;
    const hexRuns = runs?.hex;
    const hexLists = runs?.hexLists;
    const b32Runs = runs?.b32;
    let h = 0;
    for (let i = 0; i <= n; i++) {
      const code = i < n ? s.charCodeAt(i) : 0;
      if (track) {
        const k = code < 128 ? kind[code]! : 0;
        // Hex runs anywhere (inside a longer token too), without a branch per character.
        hexLen = (hexLen + 1) * ((k & K_HEX) >> 1);
        if (hexOpen >= 0 && hexLen === 0) {
          hexRuns!.push(hexOpen, i);
          hexOpen = -1;
        } else if (hexLen === MIN_HEX_RUN) hexOpen = i - MIN_HEX_RUN + 1;
        if (k & K_B64) {
          if (b64Start < 0) {
            b64Start = i;
            b64Wrapped = 0;
            lastNonHex = i - 1;
            b32From = i;
            b32Bad = 0;
          }
          // Branch-free: hex and non-hex characters alternate unpredictably in base64.
          const nonHex = ((k & K_HEX) >> 1) - 1;
          lastNonHex = (lastNonHex & ~nonHex) | (i & nonHex);
          if (k & (K_B32_END | K_B32_BAD)) {
            if (k & K_B32_BAD) b32Bad = 1;
            else {
              if (!b32Bad && i - b32From >= MIN_B32_WORD) b32Runs!.push(b32From, i);
              b32From = i + 1;
              b32Bad = 0;
            }
          }
        } else if (b64Start >= 0) {
          // A line break between base64 characters continues the run (wrapped base64).
          let wraps = false;
          if (code === 10 || code === 13) {
            let j = i + 1;
            if (code === 13 && s.charCodeAt(j) === 10) j++;
            const next = s.charCodeAt(j);
            wraps = next < 128 && (kind[next]! & K_B64) !== 0;
          }
          if (wraps) {
            b64Wrapped = 1;
            lastNonHex = i;
            if (!b32Bad && i - b32From >= MIN_B32_WORD) b32Runs!.push(b32From, i);
            b32From = i + 1;
            b32Bad = 0;
          } else {
            let end = i;
            while (end < n && end - i < 6 && s.charCodeAt(end) === 61) end++;
            if (end - b64Start >= MIN_B64_RUN) b64Runs!.push(b64Start, Math.min(end, i + 2), b64Wrapped);
            const hexFrom = lastNonHex + 1;
            if (!b32Bad && end - b32From >= MIN_B32_WORD) b32Runs!.push(b32From, end);
            // A two-digit group ("6b", "x6b", "0x6b"): one more byte of a list, or the start of one.
            if (i - hexFrom === 2 && i - b64Start <= 4) {
              let gapOk = listPairs > 0 && hexFrom - listEnd >= 1 && hexFrom - listEnd <= 4;
              for (let g = listEnd; gapOk && g < hexFrom; g++) gapOk = HEX_GAP[s.charCodeAt(g)] === 1;
              if (!gapOk) {
                if (listPairs >= MIN_HEX_PAIRS) hexLists!.push(listStart, listEnd);
                listPairs = 0;
                listStart = hexFrom;
              }
              listPairs++;
              listEnd = i;
            }
            b64Start = -1;
          }
        }
        if (listPairs !== 0 && i - listEnd > 4) {
          if (listPairs >= MIN_HEX_PAIRS) hexLists!.push(listStart, listEnd);
          listPairs = 0;
        }
      }
      if (i >= n) break;
      h = ((h << 6) | code6[code]!) & MASK;
      if (i < 2 || present[h] === 0) continue;
      const at = i - 2;
      for (const e of buckets[h]!) {
        const r = e.rule;
        if (doneGen[r] === gen) continue;
        if (resumeGen[r] === gen && at < resumeAt[r]!) continue;
        if (!triggerAt(s, at, e)) continue;
        const rule = rules[r]!;
        const res = rule.verify(s, at, at + e.trigger.length, relaxed);
        if (res === MATCH) {
          doneGen[r] = gen;
          if (sink.onMatch(rule)) return;
        } else if (res > at) {
          resumeGen[r] = gen;
          resumeAt[r] = res;
        }
      }
    }
    if (listPairs >= MIN_HEX_PAIRS) hexLists!.push(listStart, listEnd);
  }
}

function triggerAt(s: string, at: number, e: Entry): boolean {
  const t = e.folded;
  if (at + t.length > s.length) return false;
  if (e.caseSensitive) return s.startsWith(t, at);
  for (let k = 0; k < t.length; k++) if (FOLD[s.charCodeAt(at + k)] !== t.charCodeAt(k)) return false;
  return true;
}
