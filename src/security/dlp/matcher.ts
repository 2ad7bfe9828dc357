// Linear-time matching of many secret rules at once. Every rule is anchored
// on literal triggers (a key's prefix, a scheme, a context word); one pass
// over the text hashes each 3-character window (ASCII case folded) and only
// where a trigger starts does the rule's verifier look at a bounded window
// after it. A verifier that fails tells the matcher how far its token run
// reached, and the rule's later triggers inside that run are skipped: they
// would meet the same run end. So each rule reads each character a bounded
// number of times, whatever the input (no backtracking regexes: "-eyJ"
// repeated 100k times is one pass, not 10^10 steps).
import { FOLD } from "./chars.js";

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
  /** Set for model-API credentials (item: the refusal says how to provide one properly). */
  model?: ModelCredential;
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

const BITS = 16;
const MASK = (1 << BITS) - 1;
const hash3 = (a: number, b: number, c: number) => ((a * 961 + b * 31 + c) * 2654435761) >>> (32 - BITS);

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

  /** Run every rule over `s` once. */
  run(s: string, relaxed: boolean, sink: MatchSink): void {
    const n = s.length;
    if (n < 3) return;
    const gen = ++this.gen;
    const { present, buckets, rules, doneGen, resumeGen, resumeAt } = this;
    let a = FOLD[s.charCodeAt(0)]!;
    let b = FOLD[s.charCodeAt(1)]!;
    for (let i = 2; i < n; i++) {
      const c = FOLD[s.charCodeAt(i)]!;
      const h = hash3(a, b, c);
      a = b;
      b = c;
      if (present[h] === 0) continue;
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
  }
}

function triggerAt(s: string, at: number, e: Entry): boolean {
  const t = e.folded;
  if (at + t.length > s.length) return false;
  if (e.caseSensitive) return s.startsWith(t, at);
  for (let k = 0; k < t.length; k++) if (FOLD[s.charCodeAt(at + k)] !== t.charCodeAt(k)) return false;
  return true;
}
