// The secret shapes: vendor key formats, credential-bearing URLs and
// parameters, private keys and JWTs.
//
// Why hand-written rules and not a maintained rule set as data:
//  - @secretlint/secretlint-rule-preset-recommend covers about 20 of the
//    families below, and runs through an async lint API built for source
//    files (one regex pass per rule family, no streaming, no resume points).
//  - gitleaks' rules (about 220, RE2 syntax) mostly need a keyword context;
//    many use inline (?i) groups and unbounded classes that V8's
//    backtracking engine does not run in linear time, one regex per rule.
// Either would mean one regex pass per rule over every request body. The
// shapes themselves are public facts (vendor docs, gitleaks, pipelock);
// here each is a literal trigger plus a bounded verifier, so all of them run
// in one linear pass (see matcher.ts) and the firewall can scan every
// request. Families and boundaries follow pipelock's defaults, which were
// tuned against real traffic for false positives.
import { createHash } from "node:crypto";
import { ALNUM, charClass, type CharClass, HEX, inClass, TOKEN, WORD } from "./chars.js";
import { MATCH, type ModelCredential, type Rule } from "./matcher.js";

// ---- run scanning -----------------------------------------------------------

/** End index of the last run scanned by `run` (kept out of the return value to avoid allocation). */
let runEnd = 0;

/**
 * Where the pieces of a relaxed view (see Rule.verify) were joined: a token
 * may start there whatever the previous piece ended with.
 */
let joins: ReadonlySet<number> | undefined;

/** Set the join positions for the passes that follow; returns the previous ones (to restore). */
export function setJoins(positions: ReadonlySet<number> | undefined): ReadonlySet<number> | undefined {
  const prev = joins;
  joins = positions;
  return prev;
}

/**
 * Length of the run of `cls` characters from `from`, reading at most `cap`.
 * A single line break (with the indentation after it) is stepped over while
 * the run is still shorter than `min`, so a token wrapped onto the next line
 * is still one token; a token long enough on its own line never is.
 */
function run(s: string, from: number, cls: CharClass, cap: number, min: number, spaces = 0): number {
  const len = s.length;
  let i = from;
  let n = 0;
  while (n < cap && i < len) {
    const c = s.charCodeAt(i);
    if (c < 128 && cls[c] === 1) {
      i++;
      n++;
      continue;
    }
    // One space (or tab) inside a token still short of its minimum is stepped
    // over ("AKIAABCD EFGH…", "sk-ant-\t…": pipelock's whitespace-collapsed
    // view), once: a word of prose after a prefix never adds up to a key's
    // length. (Where `spaces` is given, a line break right after the prefix is stepped over too.)
    if ((c === 32 || c === 9) && spaces > 0 && n < min && i + 1 < len && inClass(cls, s.charCodeAt(i + 1))) {
      spaces--;
      i++;
      continue;
    }
    if ((c === 10 || c === 13) && (n > 0 || spaces > 0) && n < min) {
      let j = i + 1;
      if (c === 13 && s.charCodeAt(j) === 10) j++;
      const stop = j + 32;
      while (j < len && j < stop && (s.charCodeAt(j) === 32 || s.charCodeAt(j) === 9)) j++;
      if (j < len && inClass(cls, s.charCodeAt(j))) {
        i = j;
        continue;
      }
    }
    break;
  }
  runEnd = i;
  return n;
}

/** Whether a join (see setJoins) falls inside (from, to]: a token there spans two pieces. */
function crossesJoin(from: number, to: number): boolean {
  if (!joins?.size) return false;
  for (let k = from + 1; k <= to; k++) if (joins.has(k)) return true;
  return false;
}

const before = (s: string, at: number) => (at > 0 && !joins?.has(at) ? s.charCodeAt(at - 1) : -1);

/**
 * Where the rule's triggers may next pass a failed left-edge check: every
 * trigger starting inside the run of `left` characters from `at` (or right
 * after it) has one of them before it, so it fails the same way. Skipping
 * them keeps a text that is one trigger after another ("sk-sk-sk-…") to one
 * read per character, not one verification per trigger. (Not for joined
 * views: a join is an edge wherever it falls.)
 */
function leftRunEnd(s: string, at: number, left: CharClass, after: number): number {
  // Read a bounded stretch: a trigger met by chance inside a long base64 run must not read the whole run.
  const stop = Math.min(s.length, at + LEFT_SKIP_MAX);
  let i = at;
  while (i < stop && inClass(left, s.charCodeAt(i))) i++;
  return Math.max(i, after);
}

/** How far one failed left-edge check looks ahead for the run's end (each character is still read once per rule). */
const LEFT_SKIP_MAX = 256;

// ---- rule builders ------------------------------------------------------------

interface TokenSpec {
  id: string;
  description: string;
  triggers: readonly string[];
  caseSensitive?: boolean;
  body: CharClass;
  /** Characters after the trigger. */
  min: number;
  /** When set, the token must end within [min, max] characters (a right boundary). */
  max?: number;
  /** The character before the trigger must not be in this class (default: word characters for bounded tokens). */
  left?: CharClass | null;
  /**
   * The token must not run on into a word character ("_", a letter): pipelock's
   * trailing \b, for bodies without "_" (so "tok_<40>_payload" is an identifier, not a key).
   */
  rightWord?: boolean;
  /** Return false to reject a candidate token [at, end). */
  check?: (s: string, at: number, bodyStart: number, end: number) => boolean;
  model?: ModelCredential;
  /** See Rule.noNeedles. */
  noNeedles?: boolean;
}

/** How far past its minimum a rightWord token is read to find its end. */
const RIGHT_SCAN_MAX = 512;

/** A literal prefix followed by a run of token characters. */
function token(spec: TokenSpec): Rule {
  const { body, min, max, check } = spec;
  const left = spec.left === undefined ? (max !== undefined ? WORD : null) : spec.left;
  return {
    id: spec.id,
    description: spec.description,
    triggers: spec.triggers,
    ...(spec.caseSensitive ? { caseSensitive: true } : {}),
    ...(spec.model ? { model: spec.model } : {}),
    ...(spec.noNeedles ? { noNeedles: true } : {}),
    verify(s, at, after, relaxed) {
      if (left && inClass(left, before(s, at))) return joins ? after : leftRunEnd(s, at, left, after);
      // In a joined view a bounded token is held to its length only when it
      // lies inside one piece: what follows a piece is not the token's real end.
      const exact = max !== undefined && (!relaxed || !crossesJoin(after, after + max + 1));
      const n = run(s, after, body, exact ? max + 1 : min, min, 1);
      let end = runEnd;
      if (n < min) return end;
      if (exact) {
        if (n > max) return end;
        const next = s.charCodeAt(end);
        if (inClass(WORD, next) || inClass(body, next)) return end;
      } else if (spec.rightWord) {
        const stop = Math.min(s.length, end + RIGHT_SCAN_MAX);
        while (end < stop && inClass(body, s.charCodeAt(end))) end++;
        if (inClass(WORD, s.charCodeAt(end)) && !(relaxed && crossesJoin(after, end))) return end;
      }
      if (check && !check(s, at, after, end)) return end;
      return MATCH;
    },
  };
}

/** Every trigger followed by each character of `chars` (for short prefixes such as Twilio's "SK"). */
const withNext = (prefixes: readonly string[], chars: string) => prefixes.flatMap((p) => [...chars].map((c) => p + c));

const B64URL = charClass("A-Za-z0-9_-");
const B64STD = charClass("A-Za-z0-9+/");
const B64STD_PAD = charClass("A-Za-z0-9+/=");
const HEX_LOWER = charClass("0-9a-f");
const UPPER_NUM = charClass("A-Z0-9");
const BASE58 = charClass("1-9A-HJ-NP-Za-km-z");
const BECH32_UPPER = charClass("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L");
const JWT_SEG = charClass("A-Za-z0-9_=-");
const AZURE_SECRET = charClass("A-Za-z0-9_~.-");
const SLACK_HOOK = charClass("A-Za-z0-9/_-");
const GH_SERVER = charClass("A-Za-z0-9._-");
const SAS_SIG = charClass("A-Za-z0-9+/%=");

const model = (vendor: string, hosts: string[], header: string, value: string): ModelCredential => ({ vendor, hosts, header, value });
const ANTHROPIC = model("Anthropic", ["anthropic.com"], "x-api-key", "${ANTHROPIC_API_KEY}");
const OPENAI = model("OpenAI", ["openai.com"], "Authorization", "Bearer ${OPENAI_API_KEY}");

// ---- structural rules -----------------------------------------------------------

/** header.payload.signature, the first two base64url JSON objects. */
const JWT_HEAD = ["eyJ", "eyA", "ewo", "ewk", "ew0"];
const jwt: Rule = {
  id: "jwt",
  description: "a JWT bearer token",
  triggers: JWT_HEAD,
  caseSensitive: true,
  verify(s, at, after, _relaxed) {
    if (inClass(TOKEN, before(s, at))) return after;
    const n1 = run(s, after, JWT_SEG, Infinity, 7);
    const e1 = runEnd;
    if (n1 < 7 || s.charCodeAt(e1) !== 46) return e1;
    const p = e1 + 1;
    let n2: number;
    if (JWT_HEAD.some((h) => s.startsWith(h, p))) n2 = run(s, p + 3, JWT_SEG, Infinity, 7) >= 7 ? 1 : 0;
    else if (s.startsWith("e30", p)) {
      run(s, p + 3, JWT_SEG, Infinity, 0);
      n2 = 1;
    } else n2 = 0;
    const e2 = runEnd;
    if (!n2 || s.charCodeAt(e2) !== 46) return e1;
    return run(s, e2 + 1, JWT_SEG, 10, 10) >= 10 ? MATCH : e1;
  },
};

const PEM_TAIL = /^[ \t]+(?:[A-Z0-9]+[ \t]+){0,4}PRIVATE[ \t]+KEY(?:[ \t]+BLOCK)?-----/i;
const privateKey: Rule = {
  id: "private-key",
  description: "a private key",
  triggers: ["-----BEGIN", "PuTTY-User-Key-File-"],
  verify(s, at, after) {
    if (s.charCodeAt(at) === 80 || s.charCodeAt(at) === 112) return /^\d+:/.test(s.slice(after, after + 4)) ? MATCH : after;
    return PEM_TAIL.test(s.slice(after, after + 96)) ? MATCH : after;
  },
};

/** Obvious stand-ins for a credential in docs and templates. */
const PLACEHOLDER =
  /^(?:x+|\*+|\.+|-+|_+|0+|password|passwd|pass|pwd|secret|token|changeme|change_me|example|sample|dummy|test|testing|redacted|hidden|none|null|nil|undefined|true|false|string|value|your[_-]?\w*|my[_-]?\w*|<[^>]*>|\{\{.*\}\}|\$\{.*\}|%s|\$\w+|\[\w+\])$/i;
// (A letter or digit repeated is not a stand-in: "pppppppppppp" is as good a password as any, and pipelock flags it.)
// A word such as "example" marks a stand-in only in a value without digits: "example_password"
// is one, "s3cretP4ssw0rd_EXAMPLE" (pipelock's case) a password that happens to hold the word.
export const isPlaceholder = (v: string) => PLACEHOLDER.test(v) || /^([^A-Za-z0-9])\1*$/.test(v) || /\.\.\.|\u2026/.test(v) || (/placeholder|example|redacted/i.test(v) && !/\d/.test(v));

/** A token body that is not an obvious stand-in. */
function notPlaceholder(s: string, _at: number, bodyStart: number, end: number): boolean {
  // The whole token (the run stopped at the minimum), or its first 256 characters.
  const stop = Math.min(s.length, bodyStart + 256);
  while (end < stop && inClass(TOKEN, s.charCodeAt(end))) end++;
  const body = s.slice(bodyStart, end);
  // "sk-ant-api03-xxxx…": a version tag, then a stand-in.
  return !isPlaceholder(body) && !isPlaceholder(body.replace(/^[a-z]+\d*-/, ""));
}

/** scheme://user:password@ for database and queue URLs (http basic-auth URLs are left alone, as pipelock does). */
const DB_AUTH = /^([^:/?#\s@]{0,256}):([^@/?#\s]{1,256})@/;
const dbUrl: Rule = {
  id: "database-url",
  description: "a database URL with a password",
  triggers: [
    "postgres://",
    "postgresql://",
    "mysql://",
    "mariadb://",
    "mongodb://",
    "mongodb+srv://",
    "redis://",
    "rediss://",
    "amqp://",
    "amqps://",
    "mssql://",
    "sqlserver://",
    "clickhouse://",
    "cockroachdb://",
  ],
  verify(s, at, after) {
    if (inClass(ALNUM, before(s, at))) return after;
    const m = DB_AUTH.exec(s.slice(after, after + 520));
    return m && !isPlaceholder(m[2]!) ? MATCH : after;
  },
};

/** key=value credentials in queries, forms and env-style lines (pipelock's "Credential in URL"). */
const PARAM_VALUE_START = charClass("A-Za-z0-9_+/=~%.-");
const PARAM_LEFT_OK = (c: number) => c === -1 || c === 63 || c === 38 || c === 59 || c === 10 || c === 13 || c === 32 || c === 9 || c === 34 || c === 39;
const credentialParam: Rule = {
  id: "credential-param",
  description: "a credential parameter (password=, token=, secret=, api_key=)",
  triggers: ["password", "passwd", "secret", "token", "apikey", "api_key", "api-key", "access_token", "auth_token", "client_secret"],
  verify(s, at, after) {
    const left = before(s, at);
    if (!PARAM_LEFT_OK(left)) return after;
    // After a query/form delimiter, spaces around "=" are tolerated (hand-written
    // and decoded URLs); elsewhere it must be "key=value" (not "token = f(x)" in code).
    const query = left === 63 || left === 38 || left === 59;
    let i = after;
    if (query) while (s.charCodeAt(i) === 32 || s.charCodeAt(i) === 9) i++;
    if (s.charCodeAt(i) !== 61) return after;
    i++;
    if (query) while (s.charCodeAt(i) === 32 || s.charCodeAt(i) === 9) i++;
    if (!inClass(PARAM_VALUE_START, s.charCodeAt(i))) return i;
    const start = i;
    const stop = Math.min(s.length, i + 256);
    while (i < stop) {
      const c = s.charCodeAt(i);
      if (c <= 32 || c === 38 || c === 59 || c === 34 || c === 39 || c === 60 || c === 62) break;
      i++;
    }
    const value = s.slice(start, i);
    return value.length >= 4 && !isPlaceholder(value) && !/^\d{1,8}$/.test(value) ? MATCH : i;
  },
};

/** UPPER_CASE names ending in a credential word, assigned a value (.env files, env dumps). */
const ENV_NAME = charClass("A-Z0-9_-");
const ENV_VALUE_START = charClass("A-Za-z0-9_+/=~.-");
const envSecret: Rule = {
  id: "env-secret",
  description: "a credential environment variable assignment",
  triggers: ["_SECRET", "-SECRET", "_PASSWORD", "-PASSWORD", "_PASSWD", "_TOKEN", "-TOKEN", "_API_KEY", "_APIKEY", "-API-KEY", "_ACCESS_KEY", "_PRIVATE_KEY"],
  caseSensitive: true,
  verify(s, at, after) {
    // The name: [A-Z][A-Z0-9_-]* ending at the trigger, not part of a longer word.
    let j = at - 1;
    const stop = Math.max(0, at - 64);
    while (j >= stop && inClass(ENV_NAME, s.charCodeAt(j))) j--;
    if (j >= 0 && (inClass(WORD, before(s, j + 1)) || j < stop)) return after;
    if (j + 1 >= at || !(s.charCodeAt(j + 1) >= 65 && s.charCodeAt(j + 1) <= 90)) return after;
    let i = after;
    for (const tail of ["_ACCESS_KEY", "_KEY", "-KEY", "KEY"])
      if (s.startsWith(tail, i)) {
        i += tail.length;
        break;
      }
    // NAME=value as env files and dumps write it ("const NAME = f()" in code is not one).
    if (s.charCodeAt(i) !== 61) return after;
    i++;
    if (s.charCodeAt(i) === 34 || s.charCodeAt(i) === 39) i++;
    if (!inClass(ENV_VALUE_START, s.charCodeAt(i))) return after;
    const start = i;
    const end = Math.min(s.length, i + 256);
    while (i < end && s.charCodeAt(i) > 32 && s.charCodeAt(i) !== 34 && s.charCodeAt(i) !== 39) i++;
    const value = s.slice(start, i);
    return value.length >= 8 && !isPlaceholder(value) ? MATCH : after;
  },
};

/** AWS secret access key: 40 base64 characters right after its name. */
const awsSecret: Rule = {
  id: "aws-secret-key",
  description: "an AWS secret access key",
  triggers: ["secret_access_key", "secretaccesskey", "secret-access-key", "secret.access.key", "secret access key", "aws_secret_key"],
  verify(s, _at, after, relaxed) {
    let i = after;
    const stop = after + 8;
    while (i < stop && (s.charCodeAt(i) === 34 || s.charCodeAt(i) === 39 || s.charCodeAt(i) === 61 || s.charCodeAt(i) === 58 || s.charCodeAt(i) === 32 || s.charCodeAt(i) === 9)) i++;
    if (i === after) return after;
    const n = run(s, i, B64STD_PAD, relaxed ? 40 : 41, 40);
    return n === 40 ? MATCH : after;
  },
};

/** Discord bot token: base64 of the bot's numeric id, a 6-character timestamp, an HMAC. */
const DISCORD_ID_START = [...withNext(withNext(["M", "N", "O"], "DTjz"), "AEIMQUYcgk")];
const discordBot: Rule = {
  id: "discord-token",
  noNeedles: true,
  description: "a Discord bot token",
  triggers: [...DISCORD_ID_START, "mfa."],
  caseSensitive: true,
  verify(s, at, after, relaxed) {
    if (inClass(TOKEN, before(s, at))) return after;
    if (s.startsWith("mfa.", at)) return run(s, after, B64URL, 84, 84) >= 84 ? MATCH : runEnd;
    const n1 = run(s, at, ALNUM, 29, 0);
    const e1 = runEnd;
    if (n1 < 24 || n1 > 28 || s.charCodeAt(e1) !== 46) return e1;
    if (run(s, e1 + 1, B64URL, 7, 0) !== 6 || s.charCodeAt(runEnd) !== 46) return e1;
    const n3 = run(s, runEnd + 1, B64URL, relaxed ? 27 : 39, 27);
    return n3 >= 27 && n3 <= 38 ? MATCH : e1;
  },
};

/** Telegram bot token: numeric bot id, ":", then 35 characters starting "AA". */
const telegram: Rule = {
  id: "telegram-bot-token",
  noNeedles: true,
  description: "a Telegram bot token",
  triggers: [":AA"],
  caseSensitive: true,
  verify(s, at, after, relaxed) {
    let j = at - 1;
    while (j >= 0 && at - j <= 13 && s.charCodeAt(j) >= 48 && s.charCodeAt(j) <= 57) j--;
    const digits = at - 1 - j;
    if (digits < 6 || digits > 12 || inClass(ALNUM, before(s, j + 1))) return after;
    const n = run(s, after, B64URL, relaxed ? 33 : 34, 33);
    if (n < 33) return runEnd;
    return relaxed || n === 33 ? MATCH : runEnd;
  },
};

/** Microsoft Entra (Azure AD) client secret: 3 characters, a digit, "Q~", 31-34 more. */
const azureAdSecret: Rule = {
  id: "azure-ad-client-secret",
  noNeedles: true,
  description: "an Azure AD client secret",
  triggers: withNext([""], "0123456789").map((d) => `${d}Q~`),
  caseSensitive: true,
  verify(s, at, after, relaxed) {
    if (at < 3) return after;
    for (let k = at - 3; k < at; k++) if (!inClass(AZURE_SECRET, s.charCodeAt(k))) return after;
    if (inClass(AZURE_SECRET, before(s, at - 3))) return after;
    const n = run(s, after, AZURE_SECRET, relaxed ? 31 : 35, 31);
    return n >= 31 && n <= 34 ? MATCH : runEnd;
  },
};

/** GCP service-account key file markers. */
const gcpServiceAccount: Rule = {
  id: "gcp-service-account",
  description: "a GCP service-account key",
  triggers: ["service_account", "private_key_id"],
  caseSensitive: true,
  verify(s, at, after) {
    if (s.startsWith("service_account", at)) return s.charCodeAt(after) === 34 && /"type"\s{0,8}:\s{0,8}"$/.test(s.slice(Math.max(0, at - 32), at)) ? MATCH : after;
    return /^"\s{0,8}:\s{0,8}"[a-f0-9]{40}"/.test(s.slice(after, after + 60)) ? MATCH : after;
  },
};

/** Azure storage / service-bus connection-string keys and SAS signatures. */
const azureKeys: Rule = {
  id: "azure-storage-key",
  description: "an Azure storage or service-bus key",
  triggers: ["AccountKey=", "SharedAccessKey=", "sig="],
  verify(s, at, after, relaxed) {
    const lower = s.charCodeAt(at) | 32;
    if (lower === 115) {
      // sig=<base64 HMAC-SHA256>, raw ("…=") or URL-encoded ("…%3D").
      if (inClass(ALNUM, before(s, at))) return after;
      const n = run(s, after, SAS_SIG, 200, 0);
      const v = s.slice(after, after + n);
      return (n >= 46 && /%3d$/i.test(v)) || (n === 44 && v.endsWith("=") && !v.slice(0, 43).includes("=")) ? MATCH : runEnd;
    }
    const want = lower === 97 ? 88 : 44;
    const n = run(s, after, B64STD_PAD, want + 1, want);
    return n === want || (relaxed && n >= want) ? MATCH : runEnd;
  },
};

/** Base58Check-decoded bytes of s[from, to), or undefined when the checksum does not hold. */
function base58Check(s: string, from: number, to: number): Buffer | undefined {
  let v = 0n;
  for (let i = from; i < to; i++) v = v * 58n + BigInt(B58_DIGITS.indexOf(s[i]!));
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let zeros = 0;
  while (s.charCodeAt(from + zeros) === 49) zeros++;
  const b = Buffer.concat([Buffer.alloc(zeros), Buffer.from(hex, "hex")]);
  if (b.length < 5) return undefined;
  const body = b.subarray(0, -4);
  const sum = createHash("sha256").update(createHash("sha256").update(body).digest()).digest();
  return sum.subarray(0, 4).equals(b.subarray(-4)) ? body : undefined;
}
const B58_DIGITS = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** Checksums verified per text before the WIF shape alone is taken for a key (see wifKey). */
const WIF_CHECKS = 256;
let wifChecks = 0;

/** What may stand before a WIF key: anything printable but a letter or digit, and line breaks and tabs. */
const WIF_LEFT = (() => {
  let out = "\t\n\r";
  for (let c = 32; c < 127; c++) if (!inClass(ALNUM, c)) out += String.fromCharCode(c);
  return out;
})();

/**
 * Bitcoin private key in wallet import format: Base58Check of 0x80, the 32
 * key bytes and (compressed) 0x01; 51 characters from "5H/5J/5K", or 52
 * from "Kw…Kz"/"L1…L5". The checksum is verified, as pipelock's validator
 * does, so base58 text that merely has the shape is not one.
 */
const wifKey: Rule = {
  id: "bitcoin-wif-key",
  noNeedles: true,
  description: "a Bitcoin private key (WIF)",
  // The delimiter before the key, then its first two characters: random base64 (where a key
  // after a letter is never one) seldom holds a delimiter, so the pass seldom stops for these.
  triggers: [...WIF_LEFT].flatMap((d) => ["5H", "5J", "5K", "Kw", "Kx", "Ky", "Kz", "L1", "L2", "L3", "L4", "L5"].map((p) => d + p)),
  leftDelimited: true,
  caseSensitive: true,
  beginPass() {
    wifChecks = WIF_CHECKS;
  },
  verify(s, delimiter, _after, relaxed) {
    const at = delimiter + 1;
    const want = s.charCodeAt(at) === 53 ? 51 : 52;
    const n = run(s, at, BASE58, want + 1, want);
    const end = runEnd;
    if (n < want || (n > want && !(relaxed && crossesJoin(at, at + want))) || (n === want && inClass(ALNUM, s.charCodeAt(end)))) return end;
    // Checksums are worth checking a few hundred times per text; past that
    // the text is dense with key-shaped strings (an attack on the scan's
    // time, none in real traffic) and the shape alone is refused.
    if (--wifChecks < 0) return MATCH;
    const b = base58Check(s, at, at + want);
    return b && b[0] === 0x80 && (b.length === 33 || (b.length === 34 && b[33] === 1)) ? MATCH : end;
  },
};

// ---- the table ---------------------------------------------------------------------

const t = (spec: Omit<TokenSpec, "body"> & { body?: CharClass }) => token({ body: TOKEN, ...spec });

/**
 * Order matters only for which rule names a span two rules both claim: the
 * specific shape comes first (Anthropic before OpenAI's generic "sk-").
 */
export const SECRET_RULES: readonly Rule[] = [
  // Cloud providers
  t({
    id: "aws-access-key",
    description: "an AWS access key id",
    // Any case of the prefix (pipelock matches "akia…" too); the 16 after it are upper-case as AWS writes them.
    triggers: ["AKIA", "ASIA", "AROA", "AIDA", "AIPA", "AGPA", "ANPA", "ANVA", "ABIA", "ACCA"],
    body: UPPER_NUM,
    min: 16,
    max: 16,
    left: ALNUM,
  }),
  // The legacy prefix is one character shorter; the id is 20 characters all the same.
  t({ id: "aws-access-key", description: "an AWS access key id", triggers: ["A3T"], body: UPPER_NUM, min: 17, max: 17, left: ALNUM }),
  awsSecret,
  t({ id: "aws-session-token", description: "an AWS session token", triggers: ["FwoGZXIvYXdz", "IQoJb3JpZ2lu"], caseSensitive: true, body: B64STD, min: 100 }),
  t({
    id: "google-api-key",
    description: "a Google API key",
    triggers: ["AIza"],
    caseSensitive: true,
    body: TOKEN,
    min: 35,
    max: 35,
    model: model("Google", ["generativelanguage.googleapis.com"], "x-goog-api-key", "${GEMINI_API_KEY}"),
  }),
  t({ id: "google-oauth-secret", description: "a Google OAuth client secret", triggers: ["GOCSPX-"], caseSensitive: true, min: 28 }),
  t({ id: "google-oauth-token", description: "a Google OAuth access token", triggers: ["ya29."], caseSensitive: true, min: 20 }),
  gcpServiceAccount,
  azureKeys,
  azureAdSecret,
  t({ id: "digitalocean-token", description: "a DigitalOcean token", triggers: ["dop_v1_", "doo_v1_", "dor_v1_"], body: HEX_LOWER, min: 64 }),
  t({ id: "heroku-key", description: "a Heroku API key", triggers: ["HRKU-"], caseSensitive: true, min: 60 }),
  t({ id: "vercel-token", description: "a Vercel token", triggers: ["vercel_", "vcp_", "vci_", "vca_", "vcr_", "vck_"], caseSensitive: true, body: ALNUM, rightWord: true, min: 24 }),
  t({ id: "supabase-secret", description: "a Supabase secret key", triggers: ["sb_secret_"], caseSensitive: true, min: 30 }),
  t({ id: "vault-token", description: "a HashiCorp Vault token", triggers: ["hvs.", "hvb."], caseSensitive: true, min: 24 }),
  t({ id: "terraform-token", description: "a Terraform Cloud token", triggers: [".atlasv1."], caseSensitive: true, body: charClass("A-Za-z0-9_=-"), min: 60 }),
  t({ id: "pulumi-token", description: "a Pulumi access token", triggers: ["pul-"], caseSensitive: true, body: HEX_LOWER, min: 40, max: 40 }),
  t({ id: "dynatrace-token", description: "a Dynatrace token", triggers: ["dt0c01."], caseSensitive: true, body: charClass("A-Za-z0-9."), min: 80 }),
  t({ id: "doppler-token", description: "a Doppler token", triggers: ["dp.st.", "dp.ct.", "dp.pt.", "dp.sa.", "dp.scim.", "dp.audit."], caseSensitive: true, body: charClass("A-Za-z0-9_."), min: 40 }),
  t({ id: "atlassian-token", description: "an Atlassian API token", triggers: ["ATATT3"], caseSensitive: true, body: charClass("A-Za-z0-9_=-"), min: 100 }),
  t({ id: "1password-token", description: "a 1Password service account token", triggers: ["ops_eyJ"], caseSensitive: true, body: B64STD_PAD, min: 100 }),

  // Source control and package registries
  t({ id: "github-token", description: "a GitHub token", triggers: ["ghp_", "gho_", "ghu_", "ghr_"], body: WORD, min: 36 }),
  t({ id: "github-token", description: "a GitHub token", triggers: ["ghs_"], body: GH_SERVER, min: 36 }),
  t({ id: "github-token", description: "a GitHub token", triggers: ["github_pat_"], body: WORD, min: 22 }),
  t({
    id: "gitlab-token",
    description: "a GitLab token",
    triggers: ["glpat-", "gldt-", "glrt-", "glrtr-", "glcbt-", "glptt-", "gloas-", "glsoat-", "glft-", "glimt-", "glagent-", "glwt-", "glffct-"],
    min: 20,
  }),
  t({ id: "grafana-token", description: "a Grafana token", triggers: ["glc_", "glsa_"], caseSensitive: true, body: charClass("A-Za-z0-9+/=_"), min: 32 }),
  t({ id: "npm-token", description: "an npm token", triggers: ["npm_"], body: ALNUM, rightWord: true, min: 36 }),
  t({ id: "pypi-token", description: "a PyPI token", triggers: ["pypi-AgE"], caseSensitive: true, min: 50 }),
  t({ id: "postman-key", description: "a Postman API key", triggers: ["PMAK-"], caseSensitive: true, body: charClass("a-f0-9-"), min: 59 }),

  // Messaging and SaaS
  t({ id: "slack-token", description: "a Slack token", triggers: ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-", "xoxe.xoxp-"], body: charClass("A-Za-z0-9-"), min: 10 }),
  t({ id: "slack-token", description: "a Slack token", triggers: ["xapp-"], body: charClass("A-Za-z0-9-"), min: 20 }),
  t({ id: "slack-webhook", description: "a Slack webhook URL", triggers: ["hooks.slack.com/services/", "hooks.slack.com/workflows/", "hooks.slack.com/triggers/"], body: SLACK_HOOK, min: 20 }),
  discordBot,
  telegram,
  t({ id: "stripe-key", description: "a Stripe secret key", triggers: ["sk_live_", "sk_test_", "rk_live_", "rk_test_", "sk-live-", "sk-test-", "rk-live-", "rk-test-"], body: ALNUM, min: 20 }),
  t({ id: "stripe-webhook-secret", description: "a Stripe webhook secret", triggers: ["whsec_"], min: 20 }),
  t({ id: "twilio-key", description: "a Twilio API key or account SID", triggers: withNext(["SK", "AC"], "0123456789abcdef"), caseSensitive: true, body: HEX_LOWER, min: 31, max: 31 }),
  t({
    id: "sendgrid-key",
    description: "a SendGrid API key",
    triggers: ["SG."],
    caseSensitive: true,
    body: charClass("A-Za-z0-9_.-"),
    min: 66,
    check: (s, _at, b, e) => /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}/.test(s.slice(b, Math.min(e, b + 80))),
  }),
  t({ id: "mailgun-key", description: "a Mailgun API key", triggers: ["key-"], body: ALNUM, min: 32, max: 32, left: WORD }),
  t({ id: "shopify-token", description: "a Shopify token", triggers: ["shpat_", "shpss_", "shpca_", "shppa_"], body: HEX, min: 32 }),
  t({ id: "newrelic-key", description: "a New Relic key", triggers: ["NRAK-", "NRJS-", "NRII-"], caseSensitive: true, body: UPPER_NUM, min: 27 }),
  t({ id: "linear-key", description: "a Linear API key", triggers: ["lin_api_", "lin_oauth_"], body: ALNUM, rightWord: true, min: 40 }),
  t({ id: "notion-key", description: "a Notion API key", triggers: ["ntn_"], body: ALNUM, rightWord: true, min: 40 }),
  t({ id: "sentry-token", description: "a Sentry auth token", triggers: ["sntrys_", "sntryu_"], body: charClass("A-Za-z0-9+/=_"), min: 40 }),
  t({ id: "databricks-token", description: "a Databricks token", triggers: ["dapi"], caseSensitive: true, body: HEX_LOWER, rightWord: true, min: 32, left: ALNUM }),
  t({ id: "age-secret-key", description: "an age secret key", triggers: ["AGE-SECRET-KEY-1"], caseSensitive: true, body: BECH32_UPPER, min: 58 }),
  t({ id: "crypto-private-key", description: "an extended (BIP-32) private key", triggers: ["xprv", "yprv", "zprv", "tprv"], caseSensitive: true, body: BASE58, min: 100, max: 108, left: ALNUM }),

  // Model and AI APIs
  // Model keys are refused from their first 10 characters (as pipelock does): a key sent in
  // fragments is refused at the first, wherever the rest goes. Stand-ins ("sk-ant-xxxx…") pass.
  t({ id: "anthropic-key", description: "an Anthropic API key", triggers: ["sk-ant-"], min: 10, left: TOKEN, check: notPlaceholder, model: ANTHROPIC }),
  t({
    id: "openrouter-key",
    description: "an OpenRouter API key",
    triggers: ["sk-or-v1-"],
    body: HEX,
    rightWord: true,
    min: 20,
    left: TOKEN,
    model: model("OpenRouter", ["openrouter.ai"], "Authorization", "Bearer ${OPENROUTER_API_KEY}"),
  }),
  t({ id: "openai-key", description: "an OpenAI API key", triggers: ["sk-proj-", "sk-svcacct-", "sk-admin-", "sk-None-"], min: 10, left: TOKEN, check: notPlaceholder, model: OPENAI }),
  // Legacy and compatible "sk-" keys: an unbroken alphanumeric run, so hyphenated words ("sk-loading-…") never match.
  t({ id: "openai-key", description: "an OpenAI API key", triggers: ["sk-"], body: ALNUM, min: 32, left: TOKEN, model: OPENAI }),
  t({
    id: "fireworks-key",
    description: "a Fireworks API key",
    triggers: ["fw_"],
    body: ALNUM,
    min: 22,
    max: 22,
    model: model("Fireworks", ["fireworks.ai"], "Authorization", "Bearer ${FIREWORKS_API_KEY}"),
  }),
  t({ id: "groq-key", description: "a Groq API key", triggers: ["gsk_"], body: ALNUM, rightWord: true, min: 48, model: model("Groq", ["groq.com"], "Authorization", "Bearer ${GROQ_API_KEY}") }),
  t({ id: "xai-key", description: "an xAI API key", triggers: ["xai-"], min: 80, model: model("xAI", ["x.ai"], "Authorization", "Bearer ${XAI_API_KEY}") }),
  t({
    id: "perplexity-key",
    description: "a Perplexity API key",
    triggers: ["pplx-"],
    body: ALNUM,
    rightWord: true,
    min: 20,
    model: model("Perplexity", ["perplexity.ai"], "Authorization", "Bearer ${PERPLEXITY_API_KEY}"),
  }),
  t({ id: "tavily-key", description: "a Tavily API key", triggers: ["tvly-"], body: ALNUM, rightWord: true, min: 20 }),
  t({ id: "together-key", description: "a Together AI key", triggers: ["tok_"], caseSensitive: true, body: charClass("a-z0-9"), rightWord: true, min: 40, left: ALNUM }),
  t({ id: "replicate-token", description: "a Replicate API token", triggers: ["r8_"], body: ALNUM, rightWord: true, min: 37, left: ALNUM }),
  t({
    id: "huggingface-token",
    description: "a Hugging Face token",
    triggers: ["hf_", "api_org_"],
    body: ALNUM,
    min: 34,
    max: 37,
    model: model("Hugging Face", ["huggingface.co"], "Authorization", "Bearer ${HF_TOKEN}"),
  }),
  t({ id: "pinecone-key", description: "a Pinecone API key", triggers: ["pcsk_"], min: 36 }),

  // Cryptocurrency keys
  wifKey,
  t({
    id: "ethereum-private-key",
    description: "an Ethereum private key",
    // 0x and 64 hex digits (256 bits), as pipelock's default: the same shape as a 32-byte hash written 0x….
    triggers: withNext(["0x"], "0123456789abcdef"),
    noNeedles: true,
    body: HEX,
    min: 63,
    max: 63,
  }),

  // Shapes that are secrets whoever issued them
  privateKey,
  jwt,
  dbUrl,
  envSecret,
  credentialParam,
];

/** Finding for content the scanner cannot read (fail closed). */
export const UNDECODABLE_RULE = "dlp-undecodable";

/** The literal value of an env var the firewall holds, matched exactly like a shape. */
export function canaryRule(env: string, value: string, ignoreCase = false): Rule {
  // A value whose letters are all of one case (hex keys, many vendor
  // tokens) loses nothing when its case is changed: any case spelling is it.
  const oneCase = value === value.toLowerCase() || value === value.toUpperCase();
  return {
    id: `canary:${env}`,
    description: `the value of ${env}`,
    triggers: [value],
    caseSensitive: !(ignoreCase || oneCase),
    verify: () => MATCH,
  };
}

/**
 * The base64 characters (standard and URL-safe alphabets) that encode only
 * the bytes given, for the bytes starting at each of the three byte offsets
 * modulo 3 of a longer encoded run: the characters shared with the bytes
 * before and after them depend on those, and are left out.
 */
export function base64Runs(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let a = 0; a < 3; a++) {
    const enc = Buffer.concat([Buffer.alloc(a), bytes]).toString("base64");
    const run = enc.slice(Math.ceil((8 * a) / 6), Math.floor((8 * (a + bytes.length)) / 6));
    out.push(run, run.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  return out;
}

/**
 * The rules for one canary: its value (see canaryRule) and, for a hex
 * value, the bytes it spells in base64 and base64url at each alignment (a
 * hex key is often sent as its raw bytes, and raw bytes travel as base64;
 * decoded, they are binary the text views cannot show).
 */
export function canaryRules(env: string, value: string, ignoreCase = false): Rule[] {
  const rules = [canaryRule(env, value, ignoreCase)];
  if (/^(?:[0-9a-fA-F]{2}){8,}$/.test(value)) {
    const spellings = new Set(base64Runs(Buffer.from(value, "hex")));
    rules.push({
      id: `canary:${env}`,
      description: `the value of ${env} (the bytes its hex spells, base64-encoded)`,
      triggers: [...spellings],
      caseSensitive: true,
      noNeedles: true,
      verify: () => MATCH,
    });
  }
  return rules;
}
