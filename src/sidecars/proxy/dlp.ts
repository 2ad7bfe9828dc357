// Request DLP for the firewall (and egress): secret shapes and canaries
// (literal values of env vars the sidecar holds) in the host name, the URL,
// the headers and the body, through every encoding the scanner knows, and
// across the pieces a request splits into (query values, header values,
// JSON strings, host labels). A body the firewall cannot decode is refused,
// never passed unscanned. A finding says where and what kind, never the value.
import { brotliDecompressSync, constants as zc, gunzipSync, inflateRawSync, inflateSync, zstdDecompressSync } from "node:zlib";
import { domainToUnicode } from "node:url";
import type { Unpack } from "../../security/dlp/engine.js";
import { bytesToScanText } from "../../security/dlp/decoders.js";
import { MIN_CANARY_LENGTH, SecretScanner, UNDECODABLE_RULE, percentDecode, type ModelCredential, type SecretEncoding, type SecretFinding } from "../../security/secrets.js";
import type { FirewallConfig } from "../../contracts/firewall.js";
import { isIpv6Literal, parseAddress } from "../../security/address.js";

export interface DlpPolicy {
  enabled: boolean;
  canaries: Array<{ env: string; value: string }>;
  /** host → header (lowercase) → env names whose value may appear there. */
  exempt: Map<string, Map<string, Set<string>>>;
  /** The built-in rules plus this policy's canaries. */
  scanner: SecretScanner;
  /** The same for host names: canaries matched whatever their case (DNS names are case-insensitive). */
  hostScanner: SecretScanner;
}

export interface DlpFinding {
  /** Rule id ("github-token", "canary:TOKEN"), or "dlp-undecodable" for content that cannot be scanned. */
  rule: string;
  description: string;
  /** "url", "body", `header "<name>"`, "host name", or a joined view such as "query values (joined)". */
  location: string;
  encoding: SecretEncoding;
  /** What the user can do instead, when there is a supported way (model keys, forwarded credentials). */
  hint?: string;
}

export interface RequestParts {
  /** Canonical destination host (exemptions are per host). */
  host: string;
  /** Request target as sent: path and query (or the CONNECT authority). */
  url: string;
  headers: ReadonlyArray<[string, string]>;
  body?: Buffer;
  contentEncoding?: string;
  contentType?: string;
  /** Query values and path segments of the latest earlier requests to this host, oldest first (RequestHistory). */
  recent?: readonly string[];
}

/** How long, and how many, of a host's earlier URL pieces are joined with a new request's. */
const HISTORY_MS = 60_000;
const HISTORY_PIECES = 16;
const HISTORY_PIECE_MAX = 512;
const HISTORY_HOSTS = 512;

/**
 * The URL pieces (query values, path segments) of the requests that passed,
 * per destination host, for a short while: a secret sent a few characters
 * per request (`?q=ghp_AbCd…`, then `?q=EfGh…`) is found when the pieces of
 * the latest requests and the new one are scanned joined, as pipelock
 * reassembles fragments per session. Bounded: the newest HISTORY_PIECES
 * pieces of at most HISTORY_HOSTS hosts, each at most HISTORY_PIECE_MAX
 * characters, none older than HISTORY_MS; a piece seen again moves to the end.
 */
export class RequestHistory {
  readonly #hosts = new Map<string, Array<{ at: number; piece: string }>>();

  /** What to pass as RequestParts.recent for a request to `host`. */
  recent(host: string, now = Date.now()): string[] {
    const kept = this.#hosts.get(host.toLowerCase());
    if (!kept) return [];
    while (kept.length && now - kept[0]!.at > HISTORY_MS) kept.shift();
    return kept.map((k) => k.piece);
  }

  /** Remember a request that passed. */
  add(host: string, url: string, now = Date.now()): void {
    const { values, segments } = splitUrl(url);
    const pieces = [...segments, ...values].filter((p) => p.length > 0 && p.length <= HISTORY_PIECE_MAX);
    if (!pieces.length) return;
    const key = host.toLowerCase();
    const kept = this.#hosts.get(key) ?? [];
    this.#hosts.delete(key);
    this.#hosts.set(key, kept);
    for (const piece of pieces) {
      // Once each, newest last: the same URL asked again and again (polling, an API client) keeps a short list.
      const was = kept.findIndex((k) => k.piece === piece);
      if (was >= 0) kept.splice(was, 1);
      kept.push({ at: now, piece });
    }
    if (kept.length > HISTORY_PIECES) kept.splice(0, kept.length - HISTORY_PIECES);
    if (this.#hosts.size > HISTORY_HOSTS) this.#hosts.delete(this.#hosts.keys().next().value!);
  }
}

/** Bodies are read whole up to this size; larger ones are refused rather than passed unscanned. */
export const MAX_SCANNED_BODY = 32 * 1024 * 1024;
/**
 * A compressed body may inflate to this much, the same budget as a body
 * sent as it is (decoded bytes cost the scan what sent bytes do); past it
 * the request is refused (a bomb never allocates more).
 */
export const MAX_DECODED_BODY = MAX_SCANNED_BODY;
/**
 * Nor may it inflate more than this many times its size on the wire (past
 * RATIO_FLOOR bytes): real request bodies compress a few times to a few
 * dozen times; a small request that asks for the whole decoded budget is a
 * bomb, refused before it costs the proxy that memory and scan time.
 */
export const MAX_INFLATE_RATIO = 100;
const RATIO_FLOOR = 1024 * 1024;
/** Joined views (query values, headers) hold at most this much text; body views are scanned in windows of it. */
const MAX_JOINED = 1024 * 1024;
/** A body's joined window holds at most this many pieces (each join costs the scanner a position). */
const MAX_WINDOW_PIECES = 64 * 1024;
/** What a body window carries over from the one before: more than any secret's spelling. */
const JOINED_OVERLAP = 4096;
/**
 * JSON strings or form fields in one body past which it is refused: each
 * piece costs time to split off and scan joined, and no real upload has
 * this many (an empty field is still a piece).
 */
export const MAX_BODY_PIECES = 1_000_000;
/** Long JSON strings contribute their ends to the joined view (a split secret meets at an end). */
const JSON_PIECE_EDGE = 512;
/** Query parameters beyond this many are joined whole only, not pair by pair. */
const MAX_PAIRED_PARAMS = 10;

export function buildDlpPolicy(cfg: FirewallConfig["dlp"], env: NodeJS.ProcessEnv): { policy: DlpPolicy; warnings: string[] } {
  const warnings: string[] = [];
  const canaries: DlpPolicy["canaries"] = [];
  for (const name of cfg.canary_env) {
    const value = env[name];
    if (!value) warnings.push(`canary env ${name} is not set; nothing to watch for`);
    else if (value.length < MIN_CANARY_LENGTH) warnings.push(`canary env ${name} is shorter than ${MIN_CANARY_LENGTH} characters; ignored`);
    else canaries.push({ env: name, value });
  }
  const exempt: DlpPolicy["exempt"] = new Map();
  for (const e of cfg.canary_exempt) {
    const host = e.host.toLowerCase();
    const byHeader = exempt.get(host) ?? new Map<string, Set<string>>();
    const envs = byHeader.get(e.header.toLowerCase()) ?? new Set<string>();
    envs.add(e.env);
    byHeader.set(e.header.toLowerCase(), envs);
    exempt.set(host, byHeader);
  }
  const scanner = new SecretScanner(canaries, { unpack: UNPACK });
  const hostScanner = canaries.length ? new SecretScanner(canaries, { ignoreCanaryCase: true }) : scanner;
  return { policy: { enabled: cfg.enabled, canaries, exempt, scanner, hostScanner }, warnings };
}

/** The first secret in the request (or a body that cannot be scanned), or undefined when it may pass. */
export function scanRequest(policy: DlpPolicy, req: RequestParts): DlpFinding | undefined {
  const steps = scanSteps(policy, req, false);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** How long scanRequestAsync runs before it lets the event loop serve others. */
const SLICE_MS = 20;

/**
 * scanRequest in slices: the body is scanned a window at a time (and its
 * joined views a window at a time), and the event loop gets a turn every
 * SLICE_MS, so one large or adversarial body (dense with key prefixes, or
 * a compressed one at the decoded-size cap) never holds up every other
 * connection of the proxy. Same verdicts as scanRequest.
 */
export async function scanRequestAsync(policy: DlpPolicy, req: RequestParts, sliceMs = SLICE_MS): Promise<DlpFinding | undefined> {
  const steps = scanSteps(policy, req, true);
  let since = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - since >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      since = performance.now();
    }
  }
}

/** Body bytes scanned between two chances to yield (scanRequestAsync). */
const BODY_SLICE = 512 * 1024;

/** The scan, as steps: yields between slices of the body's work when `sliced`. */
function* scanSteps(policy: DlpPolicy, req: RequestParts, sliced: boolean): Generator<void, DlpFinding | undefined> {
  if (!policy.enabled) return undefined;
  const { scanner } = policy;
  const host = req.host.toLowerCase();
  const exemptHere = policy.exempt.get(host);
  const found = (location: string, hits: SecretFinding[]) => (hits[0] ? toFinding(hits[0], location, host) : undefined);

  // 1. The URL, whole, then its query values and path segments joined.
  const inUrl = found(
    "url",
    remembered(scanner, req.url, () => scanner.scanText(req.url, { firstOnly: true })),
  );
  if (inUrl) return inUrl;
  const { values, keys, segments } = splitUrl(req.url);
  const joined = scanJoined(scanner, values, "query values (joined)", host) ?? scanJoined(scanner, keys, "query names (joined)", host) ?? scanJoined(scanner, segments, "path segments (joined)", host);
  if (joined) return joined;
  if (req.recent?.length) {
    // The latest earlier requests' pieces, then this one's: a secret sent a piece per request.
    const spread = scanJoined(scanner, [...req.recent, ...segments, ...values], "earlier requests and this one (joined)", host);
    if (spread) return spread;
  }
  if (values.length > 2 && values.length <= MAX_PAIRED_PARAMS) {
    // Pieces with a noise parameter between them: every ordered pair.
    for (let i = 0; i < values.length; i++)
      for (let j = i + 2; j < values.length; j++) {
        const pair = found("query values (joined)", scanner.scanPieces([values[i]!, values[j]!], { firstOnly: true }));
        if (pair) return pair;
      }
  }

  // 2. Headers one by one, then joined (values; names with their values).
  const headers = req.headers.map(([name, value]): [string, string] => [name, blankExempt(policy, exemptHere?.get(name.toLowerCase()), value)]);
  for (const [name, value] of headers) {
    const hit = found(
      `header "${name.toLowerCase()}"`,
      remembered(scanner, `${name}: ${value}`, () => scanner.scanText(`${name}: ${value}`, { firstOnly: true })),
    );
    if (hit) return hit;
  }
  const hit =
    scanJoined(
      scanner,
      headers.map(([, v]) => v),
      "header values (joined)",
      host,
    ) ?? scanJoined(scanner, headers.flat(), "header names and values (joined)", host);
  if (hit) return hit;

  // The URL's pieces and the header values joined across (path and query, query and a header),
  // then the body's first characters (query and body): one view, once the body's start is known.
  // Only the pieces are joined that sit next to each other, so the headers every client sends
  // (whose values are known words) are left out: the query's last value meets the first custom header.
  const carriers = headers.filter(([name]) => !ROUTINE_HEADERS.has(name.toLowerCase())).map(([, v]) => v);
  const across = (bodyStart?: string) => scanJoined(scanner, [...segments, ...values, ...carriers, ...(bodyStart ? [bodyStart.slice(0, JSON_PIECE_EDGE)] : [])], "request parts (joined)", host);

  // 3. The body: decoded as its Content-Encoding (and magic bytes) say, or refused.
  if (!req.body?.length) return across();
  const decoded = decodeBody(req.body, req.contentEncoding);
  if (!decoded.ok) return { rule: UNDECODABLE_RULE, description: decoded.reason, location: "body", encoding: decoded.encoding };
  const body = decoded.body;
  let bodyHits: SecretFinding[];
  if (sliced) {
    const stream = scanner.stream({ firstOnly: true });
    for (let at = 0; at < body.length; at += BODY_SLICE) {
      if (!stream.push(body.subarray(at, at + BODY_SLICE))) break;
      yield;
    }
    bodyHits = stream.end();
  } else bodyHits = scanner.scanBytes(body, { firstOnly: true });
  const inBody = found("body", bodyHits);
  if (inBody) return decoded.encoding === "identity" ? inBody : { ...inBody, encoding: inBody.encoding === "plain" ? decoded.encoding : `${decoded.encoding}+${inBody.encoding}` };
  const inner = scanEmbedded(scanner, body, host);
  if (inner) return inner;
  const parts = multipartParts(body, req.contentType);
  if (parts) {
    // Each part's content, its ends when long (the middle was scanned with the body): a key split over two fields.
    const inParts = new JoinedWindows(scanner, "multipart parts (joined)", host);
    for (const p of parts) if (!inParts.push(p)) break;
    const inPart = inParts.end();
    if (inPart) return inPart;
  }
  const head = bodyHead(body);
  const acrossAll = across(head);
  if (acrossAll || head === undefined || parts) return acrossAll;
  const json = looksLikeJson(head);
  if (!json && !looksLikeForm(head, req.contentType)) return undefined;
  const inValues = new JoinedWindows(scanner, json ? "body JSON strings (joined)" : "form values (joined)", host);
  const inKeys = new JoinedWindows(scanner, json ? "body JSON keys (joined)" : "form names (joined)", host);
  // The query values lead the body's: a key split between the query and the first field.
  for (const v of values) inValues.push(v);
  // Sliced: the split pauses after each window scanned, for a turn of the event loop.
  const go = () => !(sliced && (inValues.flushed || inKeys.flushed));
  let pieces = 0;
  for (let next = 0; next >= 0; ) {
    inValues.flushed = false;
    inKeys.flushed = false;
    const r = json
      ? jsonStrings(body, (isKey, str) => (isKey ? inKeys : inValues).push(str) && go(), next)
      : formFields(body, (key, value) => inKeys.push(key) && (value === undefined || inValues.push(value)) && go(), next);
    pieces += r.count;
    if (pieces > MAX_BODY_PIECES) return tooManyPieces(json ? "JSON strings" : "form fields");
    if (inValues.finding || inKeys.finding) break;
    next = r.next;
    if (next >= 0) yield;
  }
  return inValues.end() ?? inKeys.end();
}

/**
 * The contents of a multipart body's parts as text (long ones by their
 * ends), or undefined when the body is not multipart. At most
 * MAX_BODY_PIECES parts are read.
 */
function multipartParts(body: Buffer, contentType: string | undefined): string[] | undefined {
  const m = /^multipart\/[\w.+-]+\s*;(?:.*;)?\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType ?? "");
  if (!m) return undefined;
  const delimiter = Buffer.from(`--${m[1] ?? m[2]}`);
  const out: string[] = [];
  for (let at = body.indexOf(delimiter); at >= 0 && out.length < MAX_BODY_PIECES; ) {
    const next = body.indexOf(delimiter, at + delimiter.length);
    const headEnd = body.indexOf("\r\n\r\n", at);
    const end = next < 0 ? body.length : next;
    if (headEnd >= 0 && headEnd < end) {
      const start = headEnd + 4;
      const stop = Math.max(start, end - (body[end - 2] === 13 && body[end - 1] === 10 ? 2 : 0));
      out.push(
        stop - start > 2 * JSON_PIECE_EDGE
          ? `${body.toString("utf8", start, charBoundary(body, start + JSON_PIECE_EDGE, false))}\n\n${body.toString("utf8", charBoundary(body, stop - JSON_PIECE_EDGE, true), stop)}`
          : body.toString("utf8", start, stop),
      );
    }
    at = next;
  }
  return out;
}

/** Headers left out of the view joined across the request's parts (their own joined views still hold them). */
const ROUTINE_HEADERS = new Set([
  "host",
  "user-agent",
  "accept",
  "accept-encoding",
  "accept-language",
  "content-type",
  "content-length",
  "connection",
  "cache-control",
  "pragma",
  "te",
  "upgrade-insecure-requests",
]);

const tooManyPieces = (what: string): DlpFinding => ({
  rule: UNDECODABLE_RULE,
  description: `the body has more than ${MAX_BODY_PIECES} ${what}, more than the firewall scans joined`,
  location: "body",
  encoding: "plain",
});

/**
 * Pieces of a body (JSON strings, form fields) scanned joined, as they are
 * split off, in windows of MAX_JOINED characters or MAX_WINDOW_PIECES
 * pieces; each window begins with the last pieces of the one before (about
 * JOINED_OVERLAP characters), so a secret split at a window's edge is seen
 * whole. Memory stays at one window whatever the body holds. Empty pieces
 * add nothing to a join and are not kept.
 */
class JoinedWindows {
  private pieces: string[] = [];
  private size = 0;
  /** Pieces in `pieces` not yet scanned (the rest are the previous window's tail). */
  private fresh = 0;
  finding: DlpFinding | undefined;
  /** Set when a window was scanned (the caller clears it). */
  flushed = false;

  constructor(
    private readonly scanner: SecretScanner,
    private readonly location: string,
    private readonly host: string,
  ) {}

  /** Add a piece; false once a finding makes the rest moot. */
  push(piece: string): boolean {
    if (this.finding) return false;
    if (!piece) return true;
    this.pieces.push(piece);
    this.size += piece.length;
    this.fresh++;
    if (this.size >= MAX_JOINED || this.pieces.length >= MAX_WINDOW_PIECES) this.flush();
    return !this.finding;
  }

  /** The first finding in the joined pieces, if any. */
  end(): DlpFinding | undefined {
    if (!this.finding && this.fresh) this.flush();
    return this.finding;
  }

  private flush(): void {
    this.flushed = true;
    const { pieces } = this;
    if (pieces.length >= 2) {
      const scan = () => this.scanner.scanPieces(pieces, { firstOnly: true });
      const hits = this.size <= MEMO_MAX_KEY ? remembered(this.scanner, `\0${JSON.stringify(pieces)}`, scan) : scan();
      if (hits[0]) {
        this.finding = toFinding(hits[0], this.location, this.host);
        return;
      }
    }
    let from = pieces.length;
    let kept = 0;
    while (from > 1 && kept < JOINED_OVERLAP) kept += pieces[--from]!.length;
    this.pieces = pieces.slice(from);
    this.size = kept;
    this.fresh = 0;
  }
}

/**
 * A host name we are about to look up or connect to (CONNECT target,
 * absolute-form URL, Host header). Scanned before any DNS query, since the
 * query itself would carry a secret to the name's authoritative server:
 * the whole name (also its Unicode form), each label through every decoding
 * (base32 and hex labels are the classic DNS-exfiltration spellings), and
 * the labels joined (a key split over several labels).
 */
export function scanHostName(policy: DlpPolicy, host: string): DlpFinding | undefined {
  if (!policy.enabled) return undefined;
  // Agents connect to the same few hosts again and again: remembered per scanner, like header scans.
  if (host.length > MEMO_MAX_KEY) return scanHostNameNow(policy.hostScanner, host);
  let memo = hostMemos.get(policy.hostScanner);
  if (!memo) {
    memo = new Map();
    hostMemos.set(policy.hostScanner, memo);
  }
  const hit = memo.get(host);
  if (hit !== undefined) return hit ?? undefined;
  const result = scanHostNameNow(policy.hostScanner, host);
  if (memo.size >= MEMO_ENTRIES) memo.clear();
  memo.set(host, result ?? null);
  return result;
}

const hostMemos = new WeakMap<SecretScanner, Map<string, DlpFinding | null>>();

function scanHostNameNow(scanner: SecretScanner, host: string): DlpFinding | undefined {
  let name = host.trim();
  if (name.startsWith("[")) {
    // An IPv6 literal carries no labels; anything else in brackets is a name
    // someone hoped would skip this scan: scanned all the same, and refused.
    const close = name.indexOf("]");
    const inner = close < 0 ? name.slice(1) : name.slice(1, close);
    if (close >= 0 && isIpv6Literal(inner) && /^(?::\d*)?$/.test(name.slice(close + 1))) return undefined;
    return scanHostNameNow(scanner, inner.replace(/[[\]]/g, "")) ?? BRACKETED_NAME(inner.toLowerCase());
  }
  name = name.replace(/:\d*$/, "").replace(/\.$/, "");
  if (!name) return undefined;
  const where = name.toLowerCase();
  const unicode = name.includes("xn--") ? domainToUnicode(name.toLowerCase()) : "";
  const views = unicode && unicode !== name.toLowerCase() ? `${name}\n${unicode}` : name;
  const whole = scanner.scanText(views, { firstOnly: true });
  if (whole[0]) return toFinding(whole[0], "host name", where);
  const labels = name.split(".").filter(Boolean);
  if (labels.length < 2) return undefined;
  const pieces = scanner.scanPieces(labels, { firstOnly: true });
  if (pieces[0]) return toFinding(pieces[0], "host name (labels joined)", where);
  return randomLabel(labels);
}

/** Bits per character past which a host label reads as encoded data, not a name (pipelock's default). */
export const LABEL_ENTROPY_LIMIT = 4.0;
/** Labels with fewer letters than this are not judged (no shorter string can pass the limit: log2(16) = 4). */
const LABEL_MIN_LETTERS = 17;

/**
 * A label that is no known secret's shape but reads as encoded data (base64
 * or base32 of a file chunk, DNS-tunnel style): the Shannon entropy of its
 * letters over LABEL_ENTROPY_LIMIT. Like pipelock, only the labels left of
 * the last two (the registered name and its suffix are the site's own),
 * and, unlike it, only letters are counted: digit runs and hyphens are how
 * ordinary generated names (load balancers, CDN ids, build hashes) differ,
 * and an encoding in digits or hex stays under the limit anyway (hex is
 * decoded and scanned as such).
 */
function randomLabel(labels: readonly string[]): DlpFinding | undefined {
  if (labels.length < 3 || parseAddress(labels.join("."))) return undefined;
  for (const label of labels.slice(0, -2)) {
    const letters = label.toLowerCase().replace(/[^a-z]/g, "");
    if (letters.length < LABEL_MIN_LETTERS) continue;
    const bits = shannonEntropy(letters);
    if (bits > LABEL_ENTROPY_LIMIT)
      return {
        rule: "host-label-entropy",
        description: `a host label that reads as encoded data (${label.length} characters, ${bits.toFixed(2)} bits per letter; names stay under ${LABEL_ENTROPY_LIMIT})`,
        location: "host name",
        encoding: "plain",
      };
  }
  return undefined;
}

export function shannonEntropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

const BRACKETED_NAME = (inner: string): DlpFinding => ({
  rule: UNDECODABLE_RULE,
  description: `brackets around "${inner.length > 64 ? `${inner.slice(0, 64)}…` : inner}", which is not an IPv6 address (only an IPv6 literal may be bracketed)`,
  location: "host name",
  encoding: "plain",
});

export function describeFinding(f: DlpFinding): string {
  if (f.rule === UNDECODABLE_RULE) return `${f.location} cannot be scanned: ${f.description} [rule ${f.rule}]`;
  const enc = f.encoding === "plain" ? "" : ` (${f.encoding})`;
  return `${f.location} carries ${f.description}${enc} [rule ${f.rule}]${f.hint ? `; ${f.hint}` : ""}`;
}

// ---- findings and advice --------------------------------------------------------

const ENV_VENDOR: Array<[RegExp, ModelCredential]> = [
  [/ANTHROPIC|CLAUDE/, { vendor: "Anthropic", hosts: ["anthropic.com"], header: "x-api-key", value: "" }],
  [/OPENAI/, { vendor: "OpenAI", hosts: ["openai.com"], header: "Authorization", value: "Bearer " }],
  [/GEMINI|GOOGLE_API/, { vendor: "Google", hosts: ["googleapis.com"], header: "x-goog-api-key", value: "" }],
  [/OPENROUTER/, { vendor: "OpenRouter", hosts: ["openrouter.ai"], header: "Authorization", value: "Bearer " }],
  [/GROQ/, { vendor: "Groq", hosts: ["groq.com"], header: "Authorization", value: "Bearer " }],
  [/MISTRAL/, { vendor: "Mistral", hosts: ["mistral.ai"], header: "Authorization", value: "Bearer " }],
];

const hostIn = (host: string, suffixes: readonly string[]) => suffixes.some((s) => host === s || host.endsWith(`.${s}`));

const ROUTE_ADVICE = "instead of forward_env (the agent then holds a placeholder and egress injects the real key)";

/**
 * What to tell the user when the agent sends a credential: a model key sent
 * to its own API is the supported case for an egress route; anywhere else
 * the advice is only conditional, so the firewall never suggests routing a
 * key to a host it does not belong to.
 */
function adviceFor(f: SecretFinding, host: string): string | undefined {
  if (f.model && hostIn(host, f.model.hosts)) {
    return `to give the agent a model API key, add an egress route for ${host} with header ${f.model.header} and value ${f.model.value} ${ROUTE_ADVICE}`;
  }
  if (f.rule.startsWith("canary:")) {
    const env = f.rule.slice("canary:".length);
    const vendor = ENV_VENDOR.find(([re]) => re.test(env))?.[1];
    if (vendor && hostIn(host, vendor.hosts)) {
      return `to give the agent a model API key, add an egress route for ${host} with header ${vendor.header} and value ${vendor.value}\${${env}} ${ROUTE_ADVICE}`;
    }
    return `if ${env} is meant for ${host}, give it to the agent through an egress route for that host (value \${${env}}) ${ROUTE_ADVICE}`;
  }
  return undefined;
}

function toFinding(f: SecretFinding, location: string, host: string): DlpFinding {
  const hint = f.rule === UNDECODABLE_RULE ? undefined : adviceFor(f, host);
  return { rule: f.rule, description: f.description, location, encoding: f.encoding, ...(hint ? { hint } : {}) };
}

/**
 * Scan results for short texts that come back with every request (an
 * agent's User-Agent, Accept and other headers, its URLs, and the joined
 * views), per scanner. A scan is a pure function of the text for a given
 * scanner (its rules and canaries), so a remembered result is exactly the
 * scan's. Keys are the text scanned whole (scanText), or NUL and the JSON
 * of the pieces (scanPieces): the two kinds never share a key.
 */
const MEMO_MAX_KEY = 1024;
const MEMO_ENTRIES = 512;
const memos = new WeakMap<SecretScanner, Map<string, SecretFinding[]>>();

function remembered(scanner: SecretScanner, key: string, scan: () => SecretFinding[]): SecretFinding[] {
  if (key.length > MEMO_MAX_KEY) return scan();
  let memo = memos.get(scanner);
  if (!memo) {
    memo = new Map();
    memos.set(scanner, memo);
  }
  const hit = memo.get(key);
  if (hit) return hit;
  const result = scan();
  if (memo.size >= MEMO_ENTRIES) memo.clear();
  memo.set(key, result);
  return result;
}

function scanJoined(scanner: SecretScanner, pieces: string[], location: string, host: string): DlpFinding | undefined {
  if (pieces.length < 2) return undefined;
  let size = 0;
  const kept: string[] = [];
  for (const p of pieces) {
    if (!p) continue;
    size += p.length;
    if (size > MAX_JOINED) break;
    kept.push(p);
  }
  if (kept.length < 2) return undefined;
  const hits = remembered(scanner, `\0${JSON.stringify(kept)}`, () => scanner.scanPieces(kept, { firstOnly: true }));
  return hits[0] ? toFinding(hits[0], location, host) : undefined;
}

/** The exempt header's canary values blanked (that header to that host is where egress injects them). */
function blankExempt(policy: DlpPolicy, envs: Set<string> | undefined, value: string): string {
  if (!envs) return value;
  let out = value;
  for (const c of policy.canaries) if (envs.has(c.env)) out = out.split(c.value).join(" ");
  return out;
}

// ---- request pieces -----------------------------------------------------------------

const safeDecode = (s: string) => percentDecode(s);

function splitQuery(q: string): { keys: string[]; values: string[] } {
  const keys: string[] = [];
  const values: string[] = [];
  for (const part of q.split(/[&;]/)) {
    if (!part) continue;
    const eq = part.indexOf("=");
    keys.push(safeDecode(eq < 0 ? part : part.slice(0, eq)));
    if (eq >= 0) values.push(safeDecode(part.slice(eq + 1)));
  }
  return { keys, values };
}

function splitUrl(url: string): { keys: string[]; values: string[]; segments: string[] } {
  const hash = url.indexOf("#");
  const noFrag = hash < 0 ? url : url.slice(0, hash);
  const q = noFrag.indexOf("?");
  const path = q < 0 ? noFrag : noFrag.slice(0, q);
  const query = q < 0 ? "" : noFrag.slice(q + 1);
  const fragment = hash < 0 ? "" : url.slice(hash + 1);
  const { keys, values } = splitQuery(query);
  if (fragment) values.push(...splitQuery(fragment).values);
  return { keys, values, segments: path.split("/").filter(Boolean).map(safeDecode) };
}

/**
 * The start of a body as text (for telling JSON and forms apart), or
 * undefined for binary. Only the start: a whole large body as one string
 * would cost its size again (and V8 keeps such strings outside its heap,
 * where they linger until a full collection).
 */
function bodyHead(body: Buffer): string | undefined {
  if (body.length > MAX_DECODED_BODY) return undefined;
  if (body.subarray(0, 1024).includes(0)) return undefined;
  // 3 bytes per UTF-16 unit at most: enough bytes for FORM_HEAD whole units.
  return body.toString("utf8", 0, Math.min(body.length, 3 * FORM_HEAD + 3)).slice(0, FORM_HEAD);
}

const FORM_HEAD = 4096;
const looksLikeJson = (t: string) => /^\s*[[{"]/.test(t.slice(0, 64));
const FORM_NAME_THEN_EQ = /^[\w.%+\-[\]]{1,64}=/;
const FORM_NEXT_PAIR = /&[\w.%+\-[\]]{1,64}=/;
/**
 * A urlencoded form by its Content-Type, or by its start: `name=value`
 * pairs joined by `&`, no white space. Checked in linear time (a single
 * regex with nested `[^\s]*` runs backtracks exponentially on a near miss):
 * the first pair's name, then one more `&name=` after it.
 */
export function looksLikeForm(t: string, contentType?: string): boolean {
  if (/application\/x-www-form-urlencoded/i.test(contentType ?? "")) return true;
  const head = t.slice(0, FORM_HEAD);
  if (/\s/.test(head)) return false;
  const first = FORM_NAME_THEN_EQ.exec(head);
  return first !== null && FORM_NEXT_PAIR.test(head.slice(first[0].length));
}

const QUOTE = 34;
const BACKSLASH = 92;
/** A UTF-8 character boundary at or before `i` (at or after, with `forward`). */
function charBoundary(b: Buffer, i: number, forward: boolean): number {
  while (i > 0 && i < b.length && (b[i]! & 0xc0) === 0x80) i += forward ? 1 : -1;
  return i;
}

/**
 * The string literals of a JSON body, keys and values apart, in order, unescaped.
 * A linear scan of the bytes, not JSON.parse: it never builds the document
 * (nor the body as one string), tolerates a truncated or invalid body, and
 * keeps only the ends of long strings (their middles were scanned with the
 * body). Quotes and backslashes never occur inside a UTF-8 sequence, so
 * byte positions serve.
 */
export function jsonStrings(body: Buffer, onString: (isKey: boolean, value: string) => boolean, from = 0): Split {
  let count = 0;
  // Next backslash at or after the current string (4294967295 when none): found once, not per string.
  let nextBackslash = -1;
  for (let i = body.indexOf(QUOTE, from); i >= 0; ) {
    if (++count > MAX_BODY_PIECES) break;
    // The closing quote: the next one not escaped by an odd run of backslashes.
    let j = body.indexOf(QUOTE, i + 1);
    let escaped = false;
    for (;;) {
      if (j < 0) {
        j = body.length;
        break;
      }
      let bs = 0;
      while (body[j - 1 - bs] === BACKSLASH) bs++;
      if (bs) escaped = true;
      if (bs % 2 === 0) break;
      j = body.indexOf(QUOTE, j + 1);
    }
    if (nextBackslash < i) nextBackslash = body.indexOf(BACKSLASH, i) >>> 0;
    if (nextBackslash < j) escaped = true;
    const raw =
      j - i - 1 > 2 * JSON_PIECE_EDGE
        ? `${body.toString("utf8", i + 1, charBoundary(body, i + 1 + JSON_PIECE_EDGE, false))}\n\n${body.toString("utf8", charBoundary(body, j - JSON_PIECE_EDGE, true), j)}`
        : body.toString("utf8", i + 1, j);
    const value = escaped ? unescapeJsonString(raw) : raw;
    let k = j + 1;
    while (k < body.length && (body[k] === 32 || body[k] === 10 || body[k] === 13 || body[k] === 9)) k++;
    if (!onString(body[k] === 58, value)) return { count, next: j + 1 < body.length ? j + 1 : -1 };
    i = body.indexOf(QUOTE, j + 1);
  }
  return { count, next: -1 };
}

/** How many pieces a split handed over, and where to resume it (-1: the body is done). */
export interface Split {
  count: number;
  next: number;
}

const AMP = 38;
const SEMI = 59;
const EQ = 61;

/**
 * The fields of a urlencoded body, split off one at a time from the bytes
 * (never the body as one string, nor every field at once): name and
 * percent-decoded value (undefined for a field without `=`); long names or
 * values contribute only their ends, like long JSON strings (the body was
 * scanned whole). Stops when `onField` returns false (resume from `next`) or past
 * MAX_BODY_PIECES fields.
 */
export function formFields(body: Buffer, onField: (name: string, value: string | undefined) => boolean, from = 0): Split {
  let count = 0;
  let amp = -1;
  let semi = -1;
  for (let i = from; i <= body.length; ) {
    if (amp !== body.length && amp < i) amp = indexOr(body, AMP, i);
    if (semi !== body.length && semi < i) semi = indexOr(body, SEMI, i);
    const end = Math.min(amp, semi);
    if (end > i) {
      if (++count > MAX_BODY_PIECES) break;
      const eq = body.indexOf(EQ, i);
      const hasValue = eq >= 0 && eq < end;
      const name = formPiece(body, i, hasValue ? eq : end);
      if (!onField(name, hasValue ? formPiece(body, eq + 1, end) : undefined)) return { count, next: end < body.length ? end + 1 : -1 };
    }
    i = end + 1;
  }
  return { count, next: -1 };
}

const indexOr = (b: Buffer, byte: number, from: number) => {
  const at = b.indexOf(byte, from);
  return at < 0 ? b.length : at;
};

function formPiece(b: Buffer, start: number, end: number): string {
  if (end - start <= 2 * JSON_PIECE_EDGE) return safeDecode(b.toString("utf8", start, end));
  const a = safeDecode(b.toString("utf8", start, charBoundary(b, start + JSON_PIECE_EDGE, false)));
  return `${a}\n\n${safeDecode(b.toString("utf8", charBoundary(b, end - JSON_PIECE_EDGE, true), end))}`;
}

function unescapeJsonString(s: string): string {
  try {
    return JSON.parse(`"${s}"`) as string;
  } catch {
    return s.replace(/\\u([0-9a-fA-F]{4})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))).replace(/\\(.)/g, "$1");
  }
}

// ---- archives inside a body ----------------------------------------------------------------

/**
 * Magic numbers of compressed and archived data, looked for anywhere in a
 * body (a file in a multipart form, gzip after a text prefix), not only at
 * its start. Each is long enough (with the checks in `embeddedAt`) not to
 * turn up by chance in ordinary binary uploads.
 */
const EMBEDDED_MAGIC: ReadonlyArray<Buffer> = [
  Buffer.from([0x1f, 0x8b, 0x08]), // gzip (deflate)
  Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), // zstd
  Buffer.from("PK\x03\x04", "latin1"), // zip
  Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]), // 7z
  Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), // xz
  Buffer.from("BZh", "latin1"), // bzip2 (block magic checked below)
];
/** Archives inside one body looked at, at most (each costs an inflate). */
const MAX_EMBEDDED = 16;
/** What an archive inside a body (or inside base64) may inflate to. */
const MAX_EMBEDDED_DECODED = 8 * 1024 * 1024;

/** Is there compressed or archived data starting at `at`? (More than the magic number is checked where it is short.) */
function embeddedAt(b: Buffer, at: number): boolean {
  const c = b[at];
  if (c === 0x1f) return (b[at + 3]! & 0xe0) === 0; // gzip: reserved flag bits clear
  if (c === 0x42) return b[at + 3]! >= 0x31 && b[at + 3]! <= 0x39 && b.toString("latin1", at + 4, at + 10) === "1AY&SY"; // bzip2
  return true;
}

/**
 * What embeddedOffsets searches for, per magic: bytes that must be at
 * `offset` from the magic's start, beginning with a byte that is rare in
 * text and base64 (a search runs about as fast as its first byte is rare:
 * "P", "7" and "B" begin a few matches per hundred bytes of base64, which
 * made the searches for zip, 7z and bzip2 cost 2 ms per 10 MB each).
 */
const EMBEDDED_ANCHORS: ReadonlyArray<{ magic: Buffer; anchor: Buffer; offset: number }> = EMBEDDED_MAGIC.map((magic) => {
  // bzip2: the block magic after "BZh" and the level digit (see embeddedAt), from its "&".
  if (magic[0] === 0x42) return { magic, anchor: Buffer.from("&SY", "latin1"), offset: 7 };
  let offset = 0;
  while (offset < magic.length - 1 && magic[offset]! >= 0x20 && magic[offset]! < 0x7f) offset++;
  return { magic, anchor: magic.subarray(offset), offset };
});

/** Where compressed or archived data starts in `b` after its first byte (at most MAX_EMBEDDED places, in order). */
function embeddedOffsets(b: Buffer): number[] {
  const out: number[] = [];
  for (const { magic, anchor, offset } of EMBEDDED_ANCHORS)
    for (let p = b.indexOf(anchor, 1 + offset); p >= 0 && out.length < 4 * MAX_EMBEDDED; p = b.indexOf(anchor, p + 1)) {
      const at = p - offset;
      if (b.subarray(at, at + magic.length).equals(magic) && embeddedAt(b, at)) out.push(at);
    }
  return out.sort((x, y) => x - y).slice(0, MAX_EMBEDDED + 1);
}

/** gzip member data: header fields skipped (RFC 1952), then raw deflate, which stops at the member's end. */
function gunzipMember(b: Buffer, limit: number): Buffer {
  const flags = b[3]!;
  let p = 10;
  if (flags & 4) p += 2 + b.readUInt16LE(p);
  if (flags & 8) p = b.indexOf(0, p) + 1;
  if (flags & 16) p = b.indexOf(0, p) + 1;
  if (flags & 2) p += 2;
  if (p <= 0 || p >= b.length) throw new Error("truncated gzip header");
  return inflateRawSync(b.subarray(p), { maxOutputLength: limit, finishFlush: zc.Z_SYNC_FLUSH });
}

/**
 * Unpack the compressed or archived data at the start of `b` (with
 * whatever follows it: a multipart boundary, more text). gzip and zstd are
 * inflated (partly, when cut short); what cannot be decoded at all is
 * refused, as the same data is when it is the whole body.
 */
function unpackEmbedded(b: Buffer, limit: number): { bytes: Buffer; name: string } | { refuse: string; name: string } {
  const c = b[0];
  const name = c === 0x1f ? "gzip" : c === 0x28 ? "zstd" : c === 0x50 ? "zip" : c === 0x37 ? "7z" : c === 0xfd ? "xz" : "bzip2";
  const tooLarge = (err: unknown) => (err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE" || err instanceof RangeError;
  try {
    if (name === "gzip") return { bytes: gunzipMember(b, limit), name };
    if (name === "zstd") return { bytes: zstdDecompressSync(b, { maxOutputLength: limit }), name };
  } catch (err) {
    if (tooLarge(err)) return { refuse: `${name} data in the body inflates past ${limit} bytes`, name };
    return { refuse: `${name} data in the body is truncated or corrupt`, name };
  }
  return { refuse: `the body holds ${name} data (by its magic bytes), which the firewall cannot decode to scan`, name };
}

/** Secrets in compressed or archived data inside the body (not at its start), or such data that cannot be scanned. */
function scanEmbedded(scanner: SecretScanner, body: Buffer, host: string): DlpFinding | undefined {
  const offsets = embeddedOffsets(body);
  if (offsets.length > MAX_EMBEDDED) return { rule: UNDECODABLE_RULE, description: `the body holds more than ${MAX_EMBEDDED} compressed or archived parts`, location: "body", encoding: "plain" };
  for (const at of offsets) {
    const r = unpackEmbedded(body.subarray(at), MAX_EMBEDDED_DECODED);
    if ("refuse" in r) return { rule: UNDECODABLE_RULE, description: `${r.refuse} (at byte ${at})`, location: "body", encoding: r.name };
    // The unpacked data may itself be compressed (a .tar.gz's tar is not; a .gz of a .gz is).
    const inner = decodeBody(r.bytes, undefined, MAX_EMBEDDED_DECODED);
    if (!inner.ok) return { rule: UNDECODABLE_RULE, description: `${inner.reason} (inside the ${r.name} data at byte ${at})`, location: "body", encoding: `${r.name}+${inner.encoding}` };
    const hit = scanner.scanBytes(inner.body, { firstOnly: true })[0];
    if (hit) {
      const enc = [r.name, ...(inner.encoding === "identity" ? [] : [inner.encoding]), ...(hit.encoding === "plain" ? [] : [hit.encoding])].join("+");
      return { ...toFinding(hit, "body", host), encoding: enc };
    }
  }
  return undefined;
}

/** Compressed or archived data inside decoded base64 (a gzip file in a JSON field): unpacked to scan, or refused. */
const UNPACK: Unpack = {
  sniff: (head) => head.length >= 4 && embeddedAt(head, 0) && EMBEDDED_MAGIC.some((m) => head.subarray(0, m.length).equals(m)),
  bytes(b) {
    const r = unpackEmbedded(b, MAX_EMBEDDED_DECODED);
    if ("refuse" in r) return { refuse: `base64 in the body decodes to ${r.refuse.replace(/ in the body/, "").replace(/^the body holds /, "")}` };
    const inner = decodeBody(r.bytes, undefined, MAX_EMBEDDED_DECODED);
    if (!inner.ok) return { refuse: `base64 in the body decodes to ${r.name} data that holds more: ${inner.reason}` };
    return { text: bytesToScanText(inner.body) };
  },
};

// ---- bodies ------------------------------------------------------------------------------

type Decoded = { ok: true; body: Buffer; encoding: string } | { ok: false; reason: string; encoding: string };

type Inflate = (b: Buffer, o: { maxOutputLength: number }) => Buffer;
const zstd: Inflate = (b, o) => zstdDecompressSync(b, o);
const inflateAny: Inflate = (b, o) => {
  try {
    return inflateSync(b, o);
  } catch (err) {
    // "deflate" is zlib-wrapped by the RFC, raw by some clients.
    if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") throw err;
    return inflateRawSync(b, o);
  }
};
const CODINGS: Record<string, Inflate> = {
  gzip: gunzipSync,
  "x-gzip": gunzipSync,
  deflate: inflateAny,
  br: brotliDecompressSync,
  zstd,
};

/** Compressed or archive formats recognised by their first bytes, whatever the headers say. */
function sniff(b: Buffer): { name: string; inflate?: Inflate; strong: boolean } | undefined {
  if (b.length < 4) return undefined;
  if (b[0] === 0x1f && b[1] === 0x8b) return { name: "gzip", inflate: gunzipSync, strong: true };
  if (b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return { name: "zstd", inflate: zstd, strong: true };
  if ((b[0]! & 0x0f) === 8 && b[0]! >> 4 <= 7 && ((b[0]! << 8) | b[1]!) % 31 === 0) return { name: "zlib", inflate: inflateSync, strong: false };
  if (b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68 && b[3]! >= 0x31 && b[3]! <= 0x39) return { name: "bzip2", strong: true };
  if (b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58) return { name: "xz", strong: true };
  if (b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04) return { name: "zip", strong: true };
  if (b[0] === 0x37 && b[1] === 0x7a && b[2] === 0xbc && b[3] === 0xaf) return { name: "7z", strong: true };
  return undefined;
}

const MAX_LAYERS = 4;

/** How far a body of `wireSize` bytes may inflate: the decoded budget, or MAX_INFLATE_RATIO times its size. */
const inflateLimit = (wireSize: number, max: number) => Math.min(max, Math.max(RATIO_FLOOR, wireSize * MAX_INFLATE_RATIO));

function tooLarge(what: string, encoding: string, wireSize: number, max: number): Decoded {
  const limit = inflateLimit(wireSize, max);
  const why = limit < max ? ` (more than ${MAX_INFLATE_RATIO} times its ${wireSize} bytes: a decompression bomb?)` : "";
  return { ok: false, reason: `the ${what} body inflates past ${limit} bytes${why}`, encoding };
}

function inflate(fn: Inflate, body: Buffer, what: string, encoding: string, wireSize: number, max: number): Decoded {
  try {
    return { ok: true, body: fn(body, { maxOutputLength: inflateLimit(wireSize, max) }), encoding };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ERR_BUFFER_TOO_LARGE" || err instanceof RangeError) return tooLarge(what, encoding, wireSize, max);
    return { ok: false, reason: `the ${what} body is truncated or corrupt`, encoding };
  }
}

/**
 * Undo the Content-Encoding (stacked codings in reverse order of
 * application), then any compression recognised by magic bytes. Anything
 * that cannot be decoded whole is an error: the caller refuses the request.
 */
export function decodeBody(body: Buffer, contentEncoding: string | undefined, maxDecoded = MAX_DECODED_BODY): Decoded {
  const codings = (contentEncoding ?? "")
    .split(",")
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c && c !== "identity");
  let cur = body;
  const applied: string[] = [];
  for (const coding of codings.reverse()) {
    const fn = CODINGS[coding];
    if (!fn) return { ok: false, reason: `Content-Encoding "${coding}" is not one the firewall can decode (gzip, deflate, br, zstd)`, encoding: coding };
    const d = inflate(fn, cur, `Content-Encoding ${coding}`, [...applied, coding].join("+"), body.length, maxDecoded);
    if (!d.ok) return d;
    applied.push(coding);
    cur = d.body;
  }
  for (let layer = 0; layer < MAX_LAYERS; layer++) {
    const kind = sniff(cur);
    if (!kind) break;
    const encoding = [...applied, kind.name].join("+");
    if (!kind.inflate) return { ok: false, reason: `the body is ${kind.name} data (by its magic bytes), which the firewall cannot decode to scan`, encoding };
    if (!kind.strong) {
      // Two bytes are weak evidence: decode what a zlib stream yields, else treat the body as it is.
      try {
        cur = Buffer.concat([cur, Buffer.from("\n\n"), inflateSync(cur, { maxOutputLength: inflateLimit(body.length, maxDecoded), finishFlush: zc.Z_SYNC_FLUSH })]);
        applied.push(kind.name);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE" || err instanceof RangeError) return tooLarge("zlib data in the", encoding, body.length, maxDecoded);
      }
      break;
    }
    const d = inflate(kind.inflate, cur, `${kind.name} (by its magic bytes)`, encoding, body.length, maxDecoded);
    if (!d.ok) return d;
    applied.push(kind.name);
    cur = d.body;
  }
  return { ok: true, body: cur, encoding: applied.length ? applied.join("+") : "identity" };
}
