// Linear-time matching of many secret rules at once. Every rule is anchored
// on literal triggers (a key's prefix, a scheme, a context word); one pass
// over the text keys each 3-character window (then the 4th character) and
// only where a trigger starts does the rule's verifier look at a bounded
// window after it. A verifier that fails tells the matcher how far its token run
// reached, and the rule's later triggers inside that run are skipped: they
// would meet the same run end. So each rule reads each character a bounded
// number of times, whatever the input (no backtracking regexes: "-eyJ"
// repeated 100k times is one pass, not 10^10 steps).
import { B64_ANY, FOLD } from "./chars.js";
import { MIN_B32_WORD, RunTracker, type Runs } from "./runs.js";

export type { Runs } from "./runs.js";

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
   * Each trigger begins with the character before the secret (a delimiter,
   * so a shape that must not follow a letter is not looked at inside every
   * base64 run); the start of the text counts as a delimiter too: there the
   * matcher tries each trigger's tail, with `at` = -1.
   */
  leftDelimited?: boolean;
  /** Called at the start of every pass over a text (a rule that keeps per-text state resets it). */
  beginPass?(): void;
  /**
   * Check the text around a trigger at [at, after). `relaxed` is set for
   * views glued together from pieces (query values, header values, host
   * labels): what follows a piece is not the token's real end, so a bounded
   * token needs only its minimum length (left edges are still checked, and
   * every join counts as one: see setJoins in rules.ts).
   */
  verify(s: string, at: number, after: number, relaxed: boolean): number;
}

interface Entry {
  rule: number;
  trigger: string;
  folded: string;
  caseSensitive: boolean;
  /**
   * Leading characters the pass's key already proved equal (ASCII case
   * aside for a case-insensitive trigger): 3 when the trigger's first three
   * are printable ASCII, each of which has a key code of its own; 0 otherwise.
   */
  known: number;
}

// The pass keys on the last three characters, 7 bits each: every printable
// ASCII character has its own code and everything else shares one, so the
// 21-bit key is exact for ASCII triggers and one bit of a 256 KiB bitset
// says whether any trigger starts with it. Exact keys (rather than case-folded
// ones) matter on base64: most triggers there are case-sensitive base64
// spellings (the needles, see engine.ts), and folding case made random
// base64 hit the bitset four times as often. A case-insensitive trigger sets
// the bit of each case spelling of its first three characters. The base64
// alphabet takes codes 0-65, so the same load tells the pass where base64
// runs end (see runs.ts).
const BITS = 21;
const MASK = (1 << BITS) - 1;
const B64_CODES = 66;
const OTHER = 127;
const CODE7 = (() => {
  const t = new Uint8Array(65536).fill(OTHER);
  let k = 0;
  for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_") t[ch.charCodeAt(0)] = k++;
  for (let c = 32; c < 127; c++) if (t[c] === OTHER) t[c] = k++;
  return t;
})();
for (let c = 0; c < 65536; c++) {
  if (CODE7[c]! < B64_CODES !== (c < 128 && B64_ANY[c] === 1)) throw new Error("matcher: base64 codes out of step with B64_ANY");
}
/**
 * Hex digits by code. The pass hands the run tracker only the stretches it
 * can use (see RunTracker.add, which skips the rest itself): long ones,
 * those ending or starting at a line break (or any character outside
 * printable ASCII), the probed one, and 2-4 character ones ending in two
 * hex digits (a byte of a hex list). The rest, most words of prose, would
 * cost the tracker a call each for nothing.
 */
const HEX7 = (() => {
  const t = new Uint8Array(128);
  for (const ch of "0123456789abcdefABCDEF") t[CODE7[ch.charCodeAt(0)]!] = 1;
  return t;
})();
const LONG_STRETCH = MIN_B32_WORD - 6;
const key3 = (a: number, b: number, c: number) => (CODE7[a]! << 14) | (CODE7[b]! << 7) | CODE7[c]!;

/** Every ASCII-case spelling of a (short) string. */
function caseSpellings(head: string): string[] {
  let out = [""];
  for (const ch of head) {
    const variants = new Set([ch, ch.toLowerCase(), ch.toUpperCase()].filter((v) => v.length === 1 && FOLD[v.charCodeAt(0)] === FOLD[ch.charCodeAt(0)]));
    out = out.flatMap((p) => [...variants].map((v) => p + v));
  }
  return out;
}

/**
 * Second-level key: the three-character key and the fourth character's code,
 * hashed to 21 bits. Where random base64 or prose meets a trigger's first
 * three characters (base64 spellings of key prefixes share trigrams with
 * base64 of ordinary text), the fourth character usually rules it out
 * without a look at the trigger list.
 */
const key4 = (k3: number, v: number) => Math.imul((k3 << 7) | v, 0x9e3779b1) >>> (32 - BITS);

export interface RunOptions {
  /** Also note where the text's encoded stretches are. */
  runs?: Runs | undefined;
  /**
   * Give up (return false, having told the sink nothing) at the first
   * character outside printable ASCII, tab and line breaks: the caller
   * normalises the text and runs again. Matches are held back until the pass
   * is over, so what the sink hears is exactly what a pass over normalised
   * text would tell it.
   */
  printableOnly?: boolean;
  /** The text's bytes when it is their latin1 reading (one byte per character): the pass reads them instead, which is faster. */
  bytes?: Uint8Array | undefined;
}

export interface MatchSink {
  /** A rule matched; return true to stop the pass. */
  onMatch(rule: Rule): boolean;
}

export class Matcher {
  readonly rules: readonly Rule[];
  /** Bit k: some trigger starts with the three characters whose key is k. */
  private readonly present = new Uint8Array((MASK + 1) >> 3);
  /** Bit k: some trigger is exactly the three characters whose key is k (no fourth to check). */
  private readonly short3 = new Uint8Array((MASK + 1) >> 3);
  /** Bit key4(k, v): some trigger starts with those three characters and a fourth whose code is v. */
  private readonly present4 = new Uint8Array((MASK + 1) >> 3);
  private readonly buckets = new Map<number, Entry[]>();
  // Per-pass state, stamped with a generation so nothing is cleared per call.
  private gen = 0;
  private readonly doneGen: Int32Array;
  private readonly resumeGen: Int32Array;
  private readonly resumeAt: Float64Array;
  private readonly tracker = new RunTracker();
  /** Tails of leftDelimited rules' triggers, tried at the start of the text. */
  private readonly startTails: Array<{ rule: number; tail: string }> = [];
  /** Rules with a beginPass hook. */
  private readonly passRules: Rule[];
  /** Stretch batches for the tracker: [from, to) pairs. */
  private readonly stretches = new Int32Array(2 * 1024);

  constructor(rules: readonly Rule[]) {
    this.rules = rules;
    rules.forEach((rule, i) => {
      for (const trigger of rule.triggers) {
        if (trigger.length < 3) throw new Error(`rule ${rule.id}: trigger "${trigger}" is shorter than 3 characters`);
        // (ASCII case only, as triggerAt folds the text.)
        const folded = rule.caseSensitive ? trigger : trigger.replace(/[A-Z]/g, (c) => c.toLowerCase());
        const known = [0, 1, 2].every((k) => CODE7[trigger.charCodeAt(k)]! !== OTHER) ? 3 : 0;
        const entry: Entry = { rule: i, trigger, folded, caseSensitive: !!rule.caseSensitive, known };
        const spell = (t: string) => (rule.caseSensitive ? [t] : caseSpellings(t));
        for (const head of spell(trigger.slice(0, 3))) {
          const k = key3(head.charCodeAt(0), head.charCodeAt(1), head.charCodeAt(2));
          this.present[k >> 3]! |= 1 << (k & 7);
          const bucket = this.buckets.get(k);
          if (bucket) bucket.push(entry);
          else this.buckets.set(k, [entry]);
          if (trigger.length === 3) this.short3[k >> 3]! |= 1 << (k & 7);
          else
            for (const fourth of spell(trigger[3]!)) {
              const k4 = key4(k, CODE7[fourth.charCodeAt(0)]!);
              this.present4[k4 >> 3]! |= 1 << (k4 & 7);
            }
        }
      }
    });
    rules.forEach((rule, i) => {
      if (rule.leftDelimited) for (const tail of new Set(rule.triggers.map((t) => t.slice(1)))) this.startTails.push({ rule: i, tail });
    });
    this.passRules = rules.filter((r) => r.beginPass);
    this.doneGen = new Int32Array(rules.length);
    this.resumeGen = new Int32Array(rules.length);
    this.resumeAt = new Float64Array(rules.length);
  }

  /** Run every rule over `s` once (see RunOptions); false when the pass gave up on a character needing normalisation. */
  run(s: string, relaxed: boolean, sink: MatchSink, opts: RunOptions = {}): boolean {
    const { runs, printableOnly = false, bytes } = opts;
    if (bytes !== undefined && bytes.length !== s.length) throw new Error("matcher: bytes and text differ in length");
    const n = s.length;
    const { present, short3, present4, buckets, rules, doneGen, resumeGen, resumeAt } = this;
    // Generations stay within the stamps' Int32 range (a long-running proxy makes billions of passes).
    if (this.gen >= 0x3fffffff) {
      this.gen = 0;
      doneGen.fill(0);
      resumeGen.fill(0);
    }
    const gen = ++this.gen;
    // Imported bindings can compile to property reads (CJS/ESM interop): read them once.
    const code7 = CODE7;
    const tracker = runs ? this.tracker : undefined;
    tracker?.reset(runs!);
    // Matches held back while the text may still turn out to need normalising (allocated at the first).
    let held: Rule[] | undefined;
    // Stretches of base64 characters, noted as [from, to) pairs and handed
    // to the tracker in batches (see runs.ts); the pass itself only stores them.
    const stretches = this.stretches;
    const cap = tracker ? stretches.length : 0;
    let count = 0;
    let runFrom = 0;
    // Where the last character outside printable ASCII was (a line break
    // may continue a wrapped base64 run into the stretch starting after it).
    let afterOther = -1;
    const probe = runs?.probe ?? -1;
    const hex7 = HEX7;
    for (const rule of this.passRules) rule.beginPass!();
    for (const { rule: r, tail } of this.startTails) {
      if (doneGen[r] === gen || !s.startsWith(tail)) continue;
      const rule = rules[r]!;
      if (rule.verify(s, -1, tail.length, relaxed) !== MATCH) continue;
      doneGen[r] = gen;
      if (printableOnly) {
        held ??= [];
        held.push(rule);
      } else if (sink.onMatch(rule)) return true;
    }
    let h = 0;
    let i = 0;
    while (i < n) {
      // The hot loop does nothing but hash and stop at the next trigger key
      // or the end of a stretch of base64 characters; the loop around it
      // notes the stretch and goes on. V8 keeps a loop this small in
      // registers with many iterations in flight: with the stretch handling
      // inside it the pass was twice as slow, inside a base64 run (where it
      // is never used) too, and handling trigger keys inline halved it again.
      if (bytes !== undefined) {
        for (;;) {
          let v = 0;
          for (; i < n; i++) {
            v = code7[bytes[i]!]!;
            h = ((h << 7) | v) & MASK;
            if (v >= B64_CODES || (present[h >> 3]! & (1 << (h & 7))) !== 0) break;
          }
          // The end, or a trigger key inside a stretch.
          if (i >= n || v < B64_CODES) break;
          if (v === OTHER) {
            if (printableOnly && needsNormalizing(bytes[i]!)) return false;
            afterOther = i + 1;
          }
          if (runFrom < i && count < cap) {
            const len = i - runFrom;
            if (len >= LONG_STRETCH || (len >= 2 && len <= 4 && (hex7[h >> 14]! & hex7[(h >> 7) & 127]!) !== 0) || v === OTHER || runFrom === afterOther || (probe > runFrom && probe <= i)) {
              stretches[count] = runFrom;
              stretches[count + 1] = i;
              count += 2;
            }
          }
          runFrom = i + 1;
          if ((count === cap && cap !== 0) || (present[h >> 3]! & (1 << (h & 7))) !== 0) break;
          i++;
        }
      } else {
        for (;;) {
          let v = 0;
          for (; i < n; i++) {
            v = code7[s.charCodeAt(i)]!;
            h = ((h << 7) | v) & MASK;
            if (v >= B64_CODES || (present[h >> 3]! & (1 << (h & 7))) !== 0) break;
          }
          if (i >= n || v < B64_CODES) break;
          if (v === OTHER) {
            if (printableOnly && needsNormalizing(s.charCodeAt(i))) return false;
            afterOther = i + 1;
          }
          if (runFrom < i && count < cap) {
            const len = i - runFrom;
            if (len >= LONG_STRETCH || (len >= 2 && len <= 4 && (hex7[h >> 14]! & hex7[(h >> 7) & 127]!) !== 0) || v === OTHER || runFrom === afterOther || (probe > runFrom && probe <= i)) {
              stretches[count] = runFrom;
              stretches[count + 1] = i;
              count += 2;
            }
          }
          runFrom = i + 1;
          if ((count === cap && cap !== 0) || (present[h >> 3]! & (1 << (h & 7))) !== 0) break;
          i++;
        }
      }
      if (i >= n) break;
      if (count === cap && cap !== 0) {
        tracker!.add(s, stretches, count);
        count = 0;
      }
      if ((present[h >> 3]! & (1 << (h & 7))) !== 0 && i >= 2) {
        // The fourth character must fit too, unless a trigger here has only three.
        let fits = (short3[h >> 3]! & (1 << (h & 7))) !== 0;
        if (!fits && i + 1 < n) {
          const k4 = key4(h, code7[s.charCodeAt(i + 1)]!);
          fits = (present4[k4 >> 3]! & (1 << (k4 & 7))) !== 0;
        }
        if (fits) {
          const at = i - 2;
          const bucket = buckets.get(h)!;
          for (let k = 0; k < bucket.length; k++) {
            const e = bucket[k]!;
            const r = e.rule;
            if (doneGen[r] === gen) continue;
            if (resumeGen[r] === gen && at < resumeAt[r]!) continue;
            if (!triggerAt(s, at, e)) continue;
            const rule = rules[r]!;
            const res = rule.verify(s, at, at + e.trigger.length, relaxed);
            if (res === MATCH) {
              doneGen[r] = gen;
              if (printableOnly) {
                held ??= [];
                held.push(rule);
              } else if (sink.onMatch(rule)) return true;
            } else if (res > at) {
              resumeGen[r] = gen;
              resumeAt[r] = res;
            }
          }
        }
      }
      i++;
    }
    if (tracker !== undefined) {
      if (runFrom < n) {
        if (count === cap) {
          tracker.add(s, stretches, count);
          count = 0;
        }
        stretches[count] = runFrom;
        stretches[count + 1] = n;
        count += 2;
      }
      tracker.add(s, stretches, count);
      tracker.finish();
    }
    if (held) for (const rule of held) if (sink.onMatch(rule)) break;
    return true;
  }
}

/** Outside printable ASCII, tab and line breaks: what normalizeForDlp may change. */
const needsNormalizing = (c: number) => c !== 10 && c !== 13 && c !== 9;

function triggerAt(s: string, at: number, e: Entry): boolean {
  const t = e.folded;
  if (at + t.length > s.length) return false;
  // By character, not startsWith: most candidates differ within a character
  // or two past the four the pass checked (base64 of "consectetur" begins
  // like that of "secret_access_key" and its six other "secret" triggers),
  // and a builtin call per candidate cost more than the comparison.
  if (e.caseSensitive) {
    for (let k = e.known; k < t.length; k++) if (s.charCodeAt(at + k) !== t.charCodeAt(k)) return false;
    return true;
  }
  for (let k = e.known; k < t.length; k++) if (FOLD[s.charCodeAt(at + k)] !== t.charCodeAt(k)) return false;
  return true;
}
