// The scanner: normalised text, every rule in one linear pass, then each
// decoding the text contains, recursively (a key base64-encoded inside a
// percent-encoded query is two layers). Large inputs are scanned in windows
// that overlap by more than the longest secret spelling we look for, so
// memory stays bounded whatever the input size, and the total work per
// window is capped: content nested past that cap is reported as unscannable
// rather than passed unscanned.
import { isAscii, isUtf8 } from "node:buffer";
import { B64_ANY, inClass } from "./chars.js";
import {
  base64Bytes,
  bytesToScanText,
  decodeBase32,
  decodeBase64Runs,
  decodeDecimal,
  decodeDotted,
  decodeHex,
  decodeHtmlEntities,
  decodeJsonEscapes,
  decodePercent,
  decodeQuotedPrintable,
  MIN_STRETCH,
  PIECE_SEPARATOR,
} from "./decoders.js";
import { Matcher, type MatchSink, type ModelCredential, type Rule, type Runs } from "./matcher.js";
import { normalizeForDlp } from "./normalize.js";
import { canaryRules, SECRET_RULES, setJoins, UNDECODABLE_RULE } from "./rules.js";

/**
 * How the secret was spelled where it was found: "plain", one decoding
 * ("url-encoded", "base64", "hex", "base32", "json-escape", "html-entity",
 * "quoted-printable", "utf-16"), or a chain of them outermost first
 * ("url-encoded+base64").
 */
export type SecretEncoding = string;

export interface SecretFinding {
  rule: string;
  description: string;
  encoding: SecretEncoding;
  /** Set when the secret is a model-API key (or a canary), for the refusal's advice. */
  model?: ModelCredential;
}

/** Compressed or archived bytes found inside decoded base64 (the firewall's body decoders). */
export interface Unpack {
  /** Do these first bytes look like compressed or archived data? */
  sniff(head: Buffer): boolean;
  /** The data unpacked, as text to scan, or why it cannot be. */
  bytes(b: Buffer): { text: string } | { refuse: string };
}

export interface ScanOptions {
  /** Stop at the first finding (the firewall refuses on one). */
  firstOnly?: boolean;
}

/** Window size for large inputs, and how much consecutive windows share. */
export const WINDOW = 512 * 1024;
/** Longer than any spelling of a secret we match (a JWT, a PEM header in UTF-16 hex, a base64 key). */
export const OVERLAP = 16 * 1024;
/** Decoding layers under the input (base64 of hex of a key is two). */
const MAX_DEPTH = 4;
/** Work cap per window: characters of all views together, as a multiple of the window. */
const WORK_FACTOR = 24;
const WORK_SLACK = 256 * 1024;

interface Needle {
  rule: Rule;
  /** Offset of the needle inside the aligned base64 of (pad bytes + trigger). */
  coreOffset: number;
}

/** State of one scan call. */
class Pass {
  readonly found = new Map<string, SecretFinding>();
  stop = false;
  work = 0;
  budget = 0;
  constructor(readonly firstOnly: boolean) {}
  add(f: SecretFinding): void {
    const key = `${f.rule}/${f.encoding}`;
    if (this.found.has(key)) return;
    this.found.set(key, f);
    if (this.firstOnly) this.stop = true;
  }
}

/** What one view's matcher pass leaves for its decoders. */
interface Scratch {
  runs: Runs;
  /** Misaligned base64 hits of the needle rules: where the aligned 4-character group holding the trigger starts. */
  hits: number[];
  /** Per alignment lane (position mod 4), how far the last decoded hit window reaches. */
  covered: number[];
}

/** Tells a view's pass which findings to record, and where (reused: passes do not nest). */
class ViewSink implements MatchSink {
  pass!: Pass;
  encoding = "";
  constructor(private readonly needles: ReadonlyMap<Rule, Needle>) {}
  onMatch(rule: Rule): boolean {
    if (this.needles.has(rule)) return false;
    this.pass.add({ rule: rule.id, description: rule.description, encoding: this.encoding, ...(rule.model ? { model: rule.model } : {}) });
    return this.pass.stop;
  }
}

export class SecretScanner {
  private readonly matcher: Matcher;
  private readonly needleOf = new Map<Rule, Needle>();
  private readonly sink = new ViewSink(this.needleOf);
  // The running pass's scratch, read by the needle rules' verifiers.
  private current: Scratch = newScratch();

  /**
   * `ignoreCanaryCase`: match canary values whatever their ASCII case (for
   * host names, which clients and resolvers lower-case on the way).
   */
  private readonly unpack: Unpack | undefined;

  constructor(canaries: ReadonlyArray<{ env: string; value: string }> = [], opts: { ignoreCanaryCase?: boolean; unpack?: Unpack } = {}) {
    const rules: Rule[] = [...canaries.flatMap((c) => canaryRules(c.env, normalizeForDlp(c.value), opts.ignoreCanaryCase)), ...SECRET_RULES];
    this.matcher = new Matcher([...rules, ...this.needles(rules)]);
    this.unpack = opts.unpack;
  }

  /**
   * Rules that spot a trigger's base64 spelling at any byte alignment, so a
   * key inside a longer base64 run (after a prefix such as "user:", or glued
   * to other base64) is found without decoding the run at four offsets.
   */
  private needles(rules: readonly Rule[]): Rule[] {
    const out: Rule[] = [];
    for (const r of rules) {
      if (r.noNeedles) continue;
      const spellings = new Map<string, number>();
      for (const trig of r.triggers) {
        const raw = Buffer.from(trig, "utf8");
        for (let pad = 0; pad < 3; pad++) {
          const b64 = Buffer.concat([Buffer.alloc(pad), raw]).toString("base64");
          const start = Math.ceil((pad * 8) / 6);
          const end = Math.floor(((pad + raw.length) * 8) / 6);
          const core = b64.slice(start, end);
          // Three-character spellings occur by chance every few kilobytes of base64.
          if (core.length < 4) continue;
          spellings.set(core, start);
          spellings.set(core.replace(/\+/g, "-").replace(/\//g, "_"), start);
        }
      }
      for (const [core, coreOffset] of spellings) {
        const needle: Rule = {
          id: `${r.id}#b64`,
          description: r.description,
          triggers: [core],
          caseSensitive: true,
          verify: (_s, at, after) => {
            const group = at - coreOffset;
            if (group < 0) return after;
            const { covered, hits } = this.current;
            const lane = group & 3;
            if (group < covered[lane]!) return after;
            covered[lane] = group + NEEDLE_SPAN;
            hits.push(group);
            return after;
          },
        };
        this.needleOf.set(needle, { rule: r, coreOffset });
        out.push(needle);
      }
    }
    return out;
  }

  /** Every secret in `text` (at most one finding per rule and encoding). */
  scanText(text: string, opts: ScanOptions = {}): SecretFinding[] {
    const pass = new Pass(!!opts.firstOnly);
    for (let start = 0; start < text.length || start === 0; start += WINDOW) {
      const piece = start === 0 && text.length <= WINDOW + OVERLAP ? text : text.slice(start, start + WINDOW + OVERLAP);
      this.window(pass, piece);
      if (pass.stop || start + WINDOW + OVERLAP >= text.length) break;
    }
    return [...pass.found.values()];
  }

  /**
   * Secrets spread over `pieces` (query values, header values, JSON strings,
   * host labels): the pieces are scanned joined in order, a token may begin
   * at any join, and bounded tokens need only their minimum length (the
   * join's neighbour is not the token's real edge). Decodings of the joined
   * text are scanned too. The caller caps the total size.
   */
  scanPieces(pieces: readonly string[], opts: ScanOptions = {}): SecretFinding[] {
    const pass = new Pass(!!opts.firstOnly);
    const joins = new Set<number>();
    let text = "";
    for (const p of pieces) {
      if (text) joins.add(text.length);
      text += normalizeForDlp(p);
    }
    pass.budget = text.length * WORK_FACTOR + WORK_SLACK;
    this.view(pass, text, "", 0, joins);
    return [...pass.found.values()];
  }

  /** Every secret in `bytes` (text, UTF-16 text or binary with text inside), window by window. */
  scanBytes(bytes: Buffer, opts: ScanOptions = {}): SecretFinding[] {
    const stream = this.stream(opts);
    stream.push(bytes);
    return stream.end();
  }

  /** Incremental scan of a byte stream in bounded memory (the git gate's blobs). */
  stream(opts: ScanOptions = {}): ByteScan {
    return new ByteScan(this, new Pass(!!opts.firstOnly));
  }

  /**
   * @internal Scan one window of bytes. With `probe`, returns where the run
   * of base64 bytes reaching `probe` starts (see ByteScan.push), when the
   * window's own pass could tell; undefined when it could not.
   */
  scanByteWindow(pass: Pass, w: Buffer, probe?: number): number | undefined {
    let text: string;
    // ASCII bytes are their own latin1 text, one character per byte, and may
    // need no normalising at all (the matcher's pass finds out).
    const ascii = isAscii(w);
    if (ascii) text = w.toString("latin1");
    else if (isUtf8(w)) text = w.toString("utf8");
    else text = bytesToScanText(w);
    pass.work = 0;
    pass.budget = text.length * WORK_FACTOR + WORK_SLACK;
    const runStart = this.view(pass, text, "", 0, undefined, ascii ? { bytes: w, probe } : undefined, !ascii);
    // UTF-16 text (Windows files, some git blobs): its code units read at both byte alignments.
    if (!pass.stop && looksUtf16(w)) {
      this.view(pass, w.toString("utf16le"), "utf-16", 1);
      if (!pass.stop && w.length > 1) this.view(pass, w.subarray(1).toString("utf16le"), "utf-16", 1);
    }
    return runStart;
  }

  private window(pass: Pass, text: string): void {
    pass.work = 0;
    pass.budget = text.length * WORK_FACTOR + WORK_SLACK;
    this.view(pass, text, "", 0);
  }

  /**
   * Match every rule on one view of the text, then each decoding found in it,
   * one layer deeper. `latin1`: `raw` is the latin1 reading of these bytes;
   * with `probe`, return where the base64 run reaching that position starts,
   * if normalising left `raw` as it was.
   * `normalizeFirst`: the text is known to need normalising (skip the
   * optimistic pass over it as it is).
   */
  private view(
    pass: Pass,
    raw: string,
    chain: string,
    depth: number,
    joins?: ReadonlySet<number>,
    latin1?: { bytes: Uint8Array; probe?: number | undefined },
    normalizeFirst = false,
  ): number | undefined {
    if (pass.stop || raw.length < 3) return undefined;
    pass.work += raw.length;
    if (pass.work > pass.budget) {
      pass.add({ rule: UNDECODABLE_RULE, description: "content nested in more layers of encoding than the scanner unpacks", encoding: chain || "plain" });
      pass.stop = true;
      return undefined;
    }
    // The last layer is matched, not decoded: its runs only tell whether more layers are there.
    const track = depth <= MAX_DEPTH;
    this.sink.pass = pass;
    this.sink.encoding = chain || "plain";
    // Joined pieces were normalised one by one (the join positions must stay put).
    // Otherwise the text is matched as it is unless a character that
    // normalising would change turns up (then it is normalised and matched again).
    let t = joins ? raw : normalizeFirst ? normalizeForDlp(raw) : raw;
    let scratch = this.matchOnce(t, t === raw ? latin1 : undefined, !joins && !normalizeFirst, joins, track);
    if (!scratch) {
      t = normalizeForDlp(raw);
      scratch = this.matchOnce(t, undefined, false, joins, track)!;
    }
    if (pass.stop) return undefined;
    const { runs, hits } = scratch;
    if (depth >= MAX_DEPTH) {
      // Base64, hex or base32 still to unpack past the last layer: refused as unscannable, never passed unread.
      if (runs.b64.length || runs.hex.length || runs.hexLists.length || runs.b32.length || runs.dec?.length || hits.length) {
        pass.add({ rule: UNDECODABLE_RULE, description: `content nested in more than ${MAX_DEPTH} layers of encoding, more than the scanner unpacks`, encoding: chain || "plain" });
        pass.stop = true;
      }
      return undefined;
    }
    const runStart = t === raw && latin1?.probe !== undefined ? runs.probeFrom : undefined;

    const next = chain ? `${chain}+` : "";
    if (t.includes("%")) this.descend(pass, decodePercent(t), `${next}url-encoded`, depth);
    if (t.includes("\\")) this.descend(pass, decodeJsonEscapes(t), `${next}json-escape`, depth);
    if (t.includes("&")) this.descend(pass, decodeHtmlEntities(t), `${next}html-entity`, depth);
    if (t.includes("=")) this.descend(pass, decodeQuotedPrintable(t), `${next}quoted-printable`, depth);
    if (t.includes(".")) this.descend(pass, decodeDotted(t), `${next}dotted`, depth);
    if (runs.b64.length || hits.length) {
      // One run (an upload's content) decoding to ASCII text: its bytes go
      // along, so the next pass reads them rather than the string (faster).
      const whole = runs.b64.length === 3 ? base64Bytes(t.slice(runs.b64[0]!, runs.b64[1]!)) : undefined;
      const out = whole ? decodedRun(whole) : decodeBase64Runs(t, runs.b64);
      if (this.unpack && runs.b64.length && !this.unpackRuns(pass, t, runs.b64, `${next}base64`, out)) return undefined;
      for (const group of hits) if (!alignedWithRun(runs.b64, group)) out.push(decodeNeedleWindow(t, group));
      if (whole && out.length === 1 && out[0]!.length === whole.length && isAscii(whole)) {
        if (!pass.stop) this.view(pass, out[0]!, `${next}base64`, depth + 1, undefined, { bytes: whole });
      } else this.descend(pass, out, `${next}base64`, depth);
    }
    if (runs.hex.length || runs.hexLists.length) this.descend(pass, decodeHex(t, runs.hex, runs.hexLists), `${next}hex`, depth);
    if (runs.b32.length) this.descend(pass, decodeBase32(t, runs.b32), `${next}base32`, depth);
    if (runs.dec?.length) this.descend(pass, decodeDecimal(t, runs.dec), `${next}decimal`, depth);
    return runStart;
  }

  /** One matcher pass over `t`: what it found for the decoders, or undefined when it gave up on a character needing normalisation. */
  private matchOnce(
    t: string,
    latin1: { bytes: Uint8Array; probe?: number | undefined } | undefined,
    printableOnly: boolean,
    joins: ReadonlySet<number> | undefined,
    track: boolean,
  ): Scratch | undefined {
    const scratch = newScratch(latin1?.probe);
    this.current = scratch;
    const prev = setJoins(joins);
    try {
      return this.matcher.run(t, !!joins, this.sink, { runs: track ? scratch.runs : undefined, printableOnly, bytes: latin1?.bytes }) ? scratch : undefined;
    } finally {
      setJoins(prev);
    }
  }

  /**
   * Base64 runs whose bytes begin as compressed or archived data does:
   * unpacked by the `unpack` hook and scanned one layer deeper (their bytes
   * as text would be binary noise), or refused when the hook cannot unpack
   * them. False once the pass has stopped.
   */
  private unpackRuns(pass: Pass, t: string, runs: readonly number[], chain: string, out: string[]): boolean {
    for (let k = 0; k < runs.length && !pass.stop; k += 3) {
      const start = runs[k]!;
      const end = runs[k + 1]!;
      if (end - start < 16) continue;
      // The first bytes only, to look for a magic number: most runs are not archives.
      if (!this.unpack!.sniff(base64Bytes(t.slice(start, start + 12)))) continue;
      const r = this.unpack!.bytes(base64Bytes(t.slice(start, end)));
      if ("refuse" in r) {
        pass.add({ rule: UNDECODABLE_RULE, description: r.refuse, encoding: chain });
        pass.stop = true;
      } else if (r.text.length >= 3) out.push(r.text);
    }
    return !pass.stop;
  }

  /** Scan decoded pieces one layer deeper. */
  private descend(pass: Pass, out: string[], chain: string, depth: number): void {
    const pieces = out.filter((piece) => piece.length >= 3);
    if (pieces.length && !pass.stop) this.view(pass, pieces.length === 1 ? pieces[0]! : pieces.join(PIECE_SEPARATOR), chain, depth + 1);
  }
}

/** One base64 run's decoded bytes as decodeBase64Runs gives them. */
function decodedRun(b: Buffer): string[] {
  const d = bytesToScanText(b);
  return d.length >= MIN_STRETCH ? [d] : [];
}

const newScratch = (probe = -1): Scratch => ({ runs: { b64: [], hex: [], hexLists: [], b32: [], probe, probeFrom: probe }, hits: [], covered: [0, 0, 0, 0] });

/** Bytes of base64 decoded around a misaligned hit: enough for the longest token and some context before it. */
const NEEDLE_SPAN = 4 * 400;
const NEEDLE_BEFORE = 4 * 24;

/** A hit inside a fully decoded run at the run's own alignment was already seen decoded. */
function alignedWithRun(runs: readonly number[], group: number): boolean {
  let lo = 0;
  let hi = runs.length / 3 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const start = runs[mid * 3]!;
    if (group < start) hi = mid - 1;
    else if (group >= runs[mid * 3 + 1]!) lo = mid + 1;
    // Wrapped runs shift alignment at each line break: decode hits in them locally.
    else return (group - start) % 4 === 0 && runs[mid * 3 + 2] === 0;
  }
  return false;
}

function decodeNeedleWindow(t: string, group: number): string {
  let start = group;
  while (start > 0 && group - start < NEEDLE_BEFORE && inClass(B64_ANY, t.charCodeAt(start - 1))) start--;
  start += (group - start) & 3;
  let end = group;
  while (end < t.length && end - group < NEEDLE_SPAN && inClass(B64_ANY, t.charCodeAt(end))) end++;
  return bytesToScanText(base64Bytes(t.slice(start, end)));
}

const B64_BYTE = new Uint8Array(256);
for (let c = 0; c < 128; c++) B64_BYTE[c] = B64_ANY[c]!;

function looksUtf16(w: Buffer): boolean {
  if (w.indexOf(0) < 0) return false;
  const n = Math.min(w.length, 64 * 1024);
  let zeros = 0;
  for (let i = 0; i < n; i++) if (w[i] === 0) zeros++;
  return zeros * 5 > n;
}

/** Incremental byte scanning: windows of WINDOW bytes, each overlapping the last by OVERLAP. */
export class ByteScan {
  private pending: Buffer[] = [];
  private size = 0;
  private scanned = false;
  /** Where the base64 run reaching the start of the pending bytes began, relative to them (≤ 0). */
  private runOrigin = 0;

  constructor(
    private readonly scanner: SecretScanner,
    private readonly pass: Pass,
  ) {}

  /** Feed bytes; false once a finding makes the rest moot (firstOnly). */
  push(chunk: Buffer): boolean {
    if (this.pass.stop) return false;
    this.pending.push(chunk);
    this.size += chunk.length;
    while (this.size >= WINDOW + OVERLAP && !this.pass.stop) {
      const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.size);
      let cut = WINDOW + OVERLAP;
      // End the window on a UTF-8 character boundary so the text stays valid.
      while (cut > WINDOW && (all[cut]! & 0xc0) === 0x80) cut--;
      // Start the next window on a base64 group boundary of the run crossing
      // it, so whole-run decoding there keeps the blob's own alignment. The
      // window's own pass says where that run starts when it can (reading the
      // bytes back would be one more pass over a window of base64).
      let next = cut - OVERLAP;
      let runStart = this.scanner.scanByteWindow(this.pass, all.subarray(0, cut), next);
      this.scanned = true;
      if (this.pass.stop) break;
      if (runStart === undefined) {
        runStart = next;
        while (runStart > 0 && B64_BYTE[all[runStart - 1]!] === 1) runStart--;
      }
      const origin = runStart === 0 ? this.runOrigin : runStart;
      next -= (((next - origin) % 4) + 4) % 4;
      this.runOrigin = origin - next;
      const rest = all.subarray(next);
      this.pending = [rest];
      this.size = rest.length;
    }
    return !this.pass.stop;
  }

  /** Scan what is left and return every finding. */
  end(): SecretFinding[] {
    if (!this.pass.stop && (this.size > (this.scanned ? OVERLAP : 0) || !this.scanned)) {
      const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.size);
      if (all.length) this.scanner.scanByteWindow(this.pass, all);
    }
    this.pending = [];
    this.size = 0;
    return [...this.pass.found.values()];
  }

  get findings(): SecretFinding[] {
    return [...this.pass.found.values()];
  }
}
