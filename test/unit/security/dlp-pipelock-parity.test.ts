// Parity with pipelock (the reference firewall): its DLP scanner tests
// (internal/scanner: dlp_secret_coverage_test.go, text_dlp_test.go,
// encoded_credential_test.go; internal/config/dlp_patterns.go) restated as
// requests to our firewall's scanner. Each positive is sent as a query
// value (as pipelock's URL tests send it) and as a request body (as its
// text tests scan it), and must be refused; each of pipelock's negatives
// (its false-positive guards) must pass both ways. The classes pipelock
// catches that we deliberately do not (PII: card numbers, IBANs, SSNs;
// public Google OAuth client ids; BIP-39 phrases) are listed at the end
// with the reason, as passing cases, so a change of mind is a visible one.
// Fixtures are assembled at runtime, as pipelock's are, so no literal
// key-shaped string sits in the repository.
import { describe, expect, it } from "vitest";
import { buildDlpPolicy, scanHostName, scanRequest, scanRequestAsync, type DlpPolicy } from "../../../src/sidecars/proxy/dlp.js";

const r = (s: string, n: number) => s.repeat(n);
const hex = (s: string) => Buffer.from(s).toString("hex");
const b64 = (s: string) => Buffer.from(s).toString("base64");
const b32 = (s: string, alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") => {
  let bits = "";
  for (const b of Buffer.from(s)) bits += b.toString(2).padStart(8, "0");
  let out = "";
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, "0"), 2)];
  return out + "=".repeat((8 - (out.length % 8)) % 8);
};
/** pipelock's mixCase: even positions lower, odd upper. */
const mixCase = (s: string) => [...s].map((c, i) => (i % 2 ? c.toUpperCase() : c.toLowerCase())).join("");
const sepHex = (s: string, sep: string) => hex(s).replace(/(..)(?!$)/g, `$1${sep}`);
const preHex = (s: string, pre: string) => hex(s).replace(/(..)/g, `${pre}$1`);

const AWS = `AKIA${"IOSFODNN7EXAMPLE"}`;
const GHP = `ghp_${"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"}`;
const ANT = (c: string) => `sk-ant-${r(c, 25)}`;
/** The Bitcoin wiki's uncompressed WIF test vector (valid Base58Check). */
const WIF = ["5HueCG", "U8rMjxEXxiPuD5BDku4MkFqe", "Zyd4dZ1jvhTVqvbTLvyTJ"].join("");
const AWS_SECRET = ["wJal", "rXUt", "nFEM", "I/K7", "MDEN", "G/bP", "xRfi", "CYEXAMPLEKEY"].join("");

const CANARY_ENV = "PIPELOCK_PARITY_SECRET";
const CANARY = "MyTopSecretEnvValue1234";
const { policy } = buildDlpPolicy({ enabled: true, canary_env: [CANARY_ENV], canary_exempt: [] }, { [CANARY_ENV]: CANARY });

function inUrl(p: DlpPolicy, value: string) {
  return scanRequest(p, { host: "evil.example", url: `/collect?x=${encodeURIComponent(value)}`, headers: [["Host", "evil.example"]] });
}
function inBody(p: DlpPolicy, value: string) {
  return scanRequest(p, {
    host: "evil.example",
    url: "/collect",
    headers: [
      ["Host", "evil.example"],
      ["Content-Type", "text/plain"],
    ],
    body: Buffer.from(value),
    contentType: "text/plain",
  });
}

/** pipelock's encodedCredentialForms (encoded_credential_test.go). */
function encodedForms(secret: string): Record<string, string> {
  const std = b32(secret);
  const raw = std.replace(/=+$/, "");
  const hstd = b32(secret, "0123456789ABCDEFGHIJKLMNOPQRSTUV");
  const hraw = hstd.replace(/=+$/, "");
  return {
    plain: secret,
    "hex lower": hex(secret),
    "hex upper": hex(secret).toUpperCase(),
    "base64 std": b64(secret),
    "base64 url": Buffer.from(secret)
      .toString("base64url")
      .padEnd(Math.ceil(secret.length / 3) * 4, "="),
    "base64 raw": b64(secret).replace(/=+$/, ""),
    "base64 raw url": Buffer.from(secret).toString("base64url"),
    "base64 nested": b64(b64(secret)),
    "base32 upper pad": std,
    "base32 upper nopad": raw,
    "base32 lower pad": std.toLowerCase(),
    "base32 lower nopad": raw.toLowerCase(),
    "base32 mixed pad": mixCase(std),
    "base32 mixed nopad": mixCase(raw),
    "base32hex upper pad": hstd,
    "base32hex upper nopad": hraw,
    "base32hex lower pad": hstd.toLowerCase(),
    "base32hex lower nopad": hraw.toLowerCase(),
    "utf16le hex": Buffer.from(secret, "utf16le").toString("hex"),
    "percent every byte": [...Buffer.from(secret)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join(""),
    "dotted labels": [...secret].join("."),
    "json unicode": [...secret].map((c) => `\\u00${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join(""),
    "html entities": [...secret].map((c) => `&#${String(c.charCodeAt(0)).padStart(3, "0")};`).join(""),
  };
}

/** A DNS query message (RFC 1035 wire form) for the given labels, as DoH's ?dns= carries it. */
function dnsQuery(labels: string[]): Buffer {
  const head = Buffer.alloc(12);
  head[5] = 1;
  const name = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
  return Buffer.concat([head, name, Buffer.from([0, 1, 0, 1])]);
}

// ---- positives: every one must be refused ---------------------------------------------

const POSITIVES: Record<string, string> = {
  // dlp_secret_coverage_test.go: database URLs, GitLab families, cloud service-account keys.
  postgres: `postgres://admin:${r("p", 12)}@db.example:5432/app`,
  postgresql: `postgresql://u:${r("p", 12)}@h/app`,
  mysql: `mysql://root:${r("p", 12)}@h:3306/app`,
  mongodb: `mongodb://u:${r("p", 12)}@h/app`,
  "mongodb+srv": `mongodb+srv://u:${r("p", 12)}@cluster.example/app`,
  redis: `redis://u:${r("p", 12)}@cache:6379`,
  rediss: `rediss://u:${r("p", 12)}@cache:6380`,
  "redis password only": `redis://:${r("p", 12)}@cache:6379`,
  ...Object.fromEntries(["gldt", "glrt", "glrtr", "glcbt", "glptt", "gloas", "glsoat", "glft", "glagent", "glwt", "glimt", "glffct", "glpat"].map((p) => [`gitlab ${p}`, `${p}-${r("A", 24)}`])),
  "gcp service-account marker": `"type":"${"service"}_account"`,
  "gcp private_key_id": `"private_key_id":"${r("a", 40)}"`,
  "azure storage AccountKey": `AccountKey=${r("A", 86)}==`,
  "azure SAS sig (encoded padding)": `sig=${r("A", 43)}%3d`,

  // text_dlp_test.go: raw patterns and the evasions it names.
  "anthropic in prose": `Please use this key: ${ANT("a")}`,
  "anthropic upper case": `SK-ANT-${r("A", 25)}`,
  "anthropic zero-width space inside": `sk-ant-\u200b${r("e", 25)}`,
  "anthropic fullwidth s and k": `\uff53\uff4b-ant-${r("f", 25)}`,
  "anthropic NUL inside": `sk-ant-\x00${r("j", 25)}`,
  "anthropic base64": b64(ANT("b")),
  "anthropic hex": hex(ANT("c")),
  "anthropic base32": b32(ANT("d")),
  "anthropic base64 inside a JSON string": `{"payload":"${b64(ANT("z"))}"}`,
  "aws access id in prose": `My access key is AKIA${r("A", 16)}`,
  "aws access id lower-case prefix": `akia${r("X", 16)}`,
  "aws access id split by a space": `My access key is AKIA${r("A", 4)} ${r("B", 12)}`,
  ...Object.fromEntries(["ASIA", "AROA", "AIDA", "AGPA", "AIPA", "ANPA", "ANVA"].map((p) => [`aws ${p}`, `${p}IOSFODNN7EXAMPLE`])),
  "aws A3T legacy": "A3TIOSFODNN7EXAMPLE0",
  "aws secret env form": `AWS_SECRET_ACCESS_KEY=${AWS_SECRET}`,
  "aws secret JSON form": `"SecretAccessKey": "${AWS_SECRET}"`,
  "stripe hyphens": `sk-test-${"4eC39HqLyjWDarjtT1zdp7dc"}`,
  "stripe underscores": `sk_test_${"4eC39HqLyjWDarjtT1zdp7dc"}`,
  ...Object.fromEntries(["gho", "ghu", "ghr", "ghs"].map((p) => [`github ${p}_`, `${p}_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789`])),
  "github fine-grained": `github_pat_${r("a1", 20)}`,
  "gitlab PAT in prose": `My token is glpat-${r("aB1cD2eF3gH4iJ5k", 2)}`,
  fireworks: `fw_${"aBcDeFgHiJkLmNoPqRsTuV"}`,
  "google api key": `AIza${"SyA1234567890abcdefghijklmnopqrstuv"}`,
  "google oauth secret": `GOCSPX-${"aBcDeFgHiJkLmNoPqRsTuVwXyZaB"}`,
  "google oauth token": `ya29.${r("a0Af", 8)}`,
  "slack app token": `xapp-${"1-A0B1C2D3E4-5678901234-abcdef0123456789"}`,
  "slack bot token": `xoxb-${r("1234567890", 2)}-abcdEFGH`,
  jwt: `eyJ${"hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"}.eyJ${"zdWIiOiIxMjM0NTY3ODkwIn0"}.${"dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"}`,
  "bitcoin WIF": `Send to this wallet using key ${WIF}`,
  "bitcoin WIF hex-encoded": hex(WIF),
  "extended private key": `Master key: xprv${r("A", 107)}`,
  "ethereum private key": `ETH key is 0x${r("ab", 32)}`,
  "ethereum private key base64": b64(`0x${r("cd", 32)}`),
  "hugging face": `My token is hf_${r("a", 37)}`,
  databricks: `My token is dapi${r("a", 35)}`,
  replicate: `My token is r8_${r("b", 40)}`,
  together: `My token is tok_${r("c", 40)}`,
  pinecone: `My token is pcsk_${r("d", 40)}`,
  groq: `My key is gsk_${r("aB1c", 12)}`,
  xai: `My key is xai-${r("abcdef12", 10)}`,
  "stripe webhook secret": `My secret is whsec_${r("aB1cD2eF3gH4iJ5k", 2)}`,
  "new relic": `My key is NRAK-${r("ABCDEF1234567", 3)}`,
  digitalocean: `My token is dop_v1_${r("a", 64)}`,
  vault: `My token is hvs.${r("e", 24)}`,
  vercel: `My token is vcp_${r("f", 30)}`,
  supabase: `My token is sb_secret_${r("a", 22)}_${r("b", 8)}`,
  "supabase ending hyphen": `My token is sb_secret_${r("a", 22)}_${r("b", 7)}-`,
  npm: `My token is npm_${r("h", 36)}`,
  pypi: `My token is pypi-AgE${r("A", 90)}`,
  linear: `My token is lin_api_${r("j", 45)}`,
  notion: `My token is ntn_${r("k", 45)}`,
  sentry: `My token is sntrys_${r("m", 45)}`,
  "openai project key": `sk-proj-${r("Ab3_", 8)}`,
  "openai service key": `sk-svcacct-${r("Ab3_", 8)}`,
  openrouter: `sk-or-v1-${r("0a", 16)}`,
  perplexity: `pplx-${r("Ab3", 8)}`,
  tavily: `tvly-${r("Ab3", 8)}`,
  twilio: `SK${r("0a", 16)}`,
  sendgrid: `SG.${r("a", 22)}.${r("b", 43)}`,
  mailgun: `key-${r("3ax6xnjp", 4)}`,
  // The first segment is base64 of the bot's decimal snowflake id, as in every real token.
  discord: `${Buffer.from("1234567890123456789").toString("base64url")}.${r("a", 6)}.${r("b", 27)}`,
  "discord mfa": `mfa.${r("c", 84)}`,
  "private key header": "-----BEGIN RSA PRIVATE KEY-----",
  "private key header upper": `-----BEGIN ${"RSA"} PRIVATE KEY-----`,
  "private key header lower": `${"-----begin rsa"} private key-----`,
  "openssh private key": "-----BEGIN OPENSSH PRIVATE KEY-----",
  "pgp private key block": "-----BEGIN PGP PRIVATE KEY BLOCK-----",
  "credential in URL (password=)": "?password=hunter2hunter2",
  "credential at line start": "token=abcd1234efgh",
  "env var secret": `STRIPE_SECRET_KEY=${r("z9", 8)}`,
  "env var password": `DB_PASSWORD=${r("q7", 8)}`,
  // Control characters, look-alikes and exotic spaces inside a key (text_dlp_test.go).
  ...Object.fromEntries(
    [
      ["NUL", "\x00"],
      ["backspace", "\x08"],
      ["tab", "\t"],
      ["newline", "\n"],
      ["carriage return", "\r"],
      ["vertical tab", "\x0b"],
      ["escape", "\x1b"],
      ["DEL", "\x7f"],
      ["NBSP", "\u00a0"],
      ["ideographic space", "\u3000"],
      ["Ogham space", "\u1680"],
      ["Mongolian vowel separator", "\u180e"],
      ["en space", "\u2002"],
      ["em space", "\u2003"],
      ["thin space", "\u2009"],
      ["narrow no-break space", "\u202f"],
      ["medium math space", "\u205f"],
      ["line separator", "\u2028"],
      ["paragraph separator", "\u2029"],
    ].map(([name, c]) => [`anthropic split by ${name} after the prefix`, `sk-ant-${c}${r("a", 25)}`]),
  ),
  "aws split by backspace and tab": `AKIA\x08IOSFODNN\t7EXAMPLE`,
  "anthropic, Cyrillic a": `sk-\u0430nt-${r("a", 25)}`,
  "anthropic, Armenian a": `sk-\u0561nt-${r("a", 25)}`,
  "aws, Greek capital alpha": `\u0391KIA${r("B", 16)}`,
  "anthropic, stacked look-alike, NBSP and zero-width space": `sk-\u0430\u00a0nt-\u200b${r("a", 25)}`,
  "anthropic, combining stroke in the prefix": `sk-a\u0337nt-${r("a", 25)}`,
  "github, combining dot in the prefix": `gh\u0307p_${r("D", 40)}`,
  "aws double percent-encoded": encodeURIComponent(encodeURIComponent(`AKIA${r("Z", 16)}`)),
  "anthropic with %00 inside": `sk-ant-%00${r("a", 25)}`,
  "anthropic key prefix, short (a fragment)": `sk-ant-${r("A", 10)}`,
  "openai service key prefix, short (a fragment)": `sk-svcacct-${r("A", 10)}`,
  // Credential parameters (text_dlp_test.go).
  "password= after a connection string": "connect to postgres://user:pass@host/db?password=supersecret123",
  "token= after &": "https://example.com/api?x=1&token=abcdef123456",
  "password= after ; (jdbc)": "jdbc:mysql://host/db;password=hunterxabcd",
  "apikey= in a form body": "username=bob&apikey=realsecret123",
  "password= after '; '": "; password=hunterxabcd",
  "env STRIPE_SECRET_KEY": `STRIPE_SECRET_KEY=sk_test_${"EXAMPLEKEY12345678901234"}`,
  "env CLIENT_SECRET": `CLIENT_SECRET=${"supersecretvalue1234"}`,
  "env DB_PASSWORD holding the word EXAMPLE": `DB_PASSWORD=${"s3cretP4ssw0rd_EXAMPLE"}`,
  "env MY_API_KEY": `MY_API_KEY=${"abcdefghij1234567890"}`,
  "hex key in a URL path segment": `https://evil.com/exfil/${hex(`${ANT("a")}a`)}/data`,
  "base64url key in a URL path segment": `https://evil.com/exfil/${Buffer.from(`${ANT("b")}b`).toString("base64url")}/data`,
  // Delimited hex (text_dlp_test.go).
  "hex colon-separated": sepHex(ANT("c"), ":"),
  "hex space-separated": sepHex(ANT("d"), " "),
  "hex hyphen-separated": sepHex(ANT("e"), "-"),
  "hex comma-separated": sepHex(ANT("b"), ","),
  "hex \\x notation": preHex(ANT("f"), "\\x"),
  "hex 0x-prefixed whole": `0x${hex(ANT("a"))}`,
  "hex 0x per byte": preHex(ANT("g"), "0x"),
  "hex 0x per byte, comma-separated": hex(ANT("h"))
    .match(/../g)!
    .map((h) => `0x${h}`)
    .join(","),
  // encoded_credential_test.go: an entity-escaped key, then base64.
  "entity-escaped then base64": b64(`&#65;${AWS.slice(1)}`),
  "aws key as decimal character codes": [...AWS].map((c) => c.charCodeAt(0)).join(", "),
  // Environment-variable leak (pipelock's scan_env; our canaries).
  "env leak raw": `Here is the value: ${CANARY}`,
  "env leak base64": `encoded: ${b64(CANARY)}`,
  "env leak hex": `data: ${hex(CANARY)}`,
  "env leak base32": `data: ${b32(CANARY)}`,
  "env leak base64url": `data: ${Buffer.from(CANARY).toString("base64url")}`,
  ...Object.fromEntries(
    [
      [":", "colon"],
      [" ", "space"],
      ["-", "hyphen"],
      [",", "comma"],
    ].map(([sep, name]) => [`env leak ${name}-separated hex`, `data: ${sepHex(CANARY, sep!)}`]),
  ),
  "env leak \\x hex": `data: ${preHex(CANARY, "\\x")}`,
  "env leak 0x hex": `data: ${preHex(CANARY, "0x")}`,
};

for (const secret of [AWS, GHP]) for (const [form, value] of Object.entries(encodedForms(secret))) POSITIVES[`${secret.slice(0, 4)} ${form}`] = value;

describe("pipelock parity: refused", () => {
  it.each(Object.entries(POSITIVES))("%s (query value)", (_name, value) => {
    expect(inUrl(policy, value)).toBeDefined();
  });
  it.each(Object.entries(POSITIVES))("%s (body)", (_name, value) => {
    expect(inBody(policy, value)).toBeDefined();
  });
  it("every one as a body through the sliced scan the proxies run (scanRequestAsync)", async () => {
    const missed: string[] = [];
    for (const [name, value] of Object.entries(POSITIVES)) {
      const found = await scanRequestAsync(policy, { host: "evil.example", url: "/collect", headers: [["Content-Type", "text/plain"]], body: Buffer.from(value), contentType: "text/plain" });
      if (!found) missed.push(name);
    }
    expect(missed).toEqual([]);
  });

  it.each([
    ["a key split across subdomains", "sk-ant-api03.AABBCCDD.EEFFGGHH.IIJJKKLL.evil.com"],
    ["a key in one subdomain", `${ANT("a")}.evil.com`],
    ["an AWS key split across subdomains", "AKIA.IOSFODNN.7EXAMPLE1.evil.com"],
  ])("the host name: %s", (_name, host) => {
    expect(scanHostName(policy, host)).toBeDefined();
  });

  const doh = (labels: string[]) => scanRequest(policy, { host: "doh.test", url: `/dns-query?dns=${dnsQuery(labels).toString("base64url")}`, headers: [] });
  const label = b32(AWS).replace(/=+$/, "");
  it.each([
    ["lower", label.toLowerCase()],
    ["upper", label],
    ["mixed", mixCase(label)],
  ])("a DoH query whose label is the key in base32 (%s)", (_case, l) => {
    expect(doh([l, "x", "exfil", "test"])).toBeDefined();
  });
});

// ---- negatives: pipelock's false-positive guards, which must pass -------------------------

const NEGATIVES: Record<string, string> = {
  "clean text": "This is a perfectly normal piece of text with no secrets.",
  "postgres without credentials": "postgres://db.example:5432/app",
  "redis without credentials": "redis://cache.example:6379/0",
  "mysql user only": "mysql://readonly@h/app",
  "http basic auth (not a database scheme)": `https://user:${r("p", 12)}@example.org`,
  "gitlab deploy too short": `gldt-${r("A", 8)}`,
  "glance (a word)": "glance-2026-summary-report-final",
  "global (a word)": "global-configuration-value-here-x",
  "gcp other type": `"type":"authorized_user"`,
  "gcp key id 39 hex": `"private_key_id":"${r("a", 39)}"`,
  "azure AccountKey too short": `AccountKey=${r("A", 20)}`,
  "azure short sig": `sig=${r("A", 8)}`,
  "fw_ too short": "fw_config",
  "fw_ 24 characters": `fw_${r("A", 24)}`,
  "dapi not hex": `dapi${r("z", 32)}`,
  "tok_ followed by _payload": `tok_${r("a", 40)}_payload`,
  "vcp_ followed by _payload": `vcp_${r("a", 24)}_payload`,
  "ntn_ followed by _payload": `ntn_${r("a", 40)}_payload`,
  "GOCSPX too short": "GOCSPX-short",
  "JWT segments too short": "eyJhbGci.eyJzdWI.abc",
  "google api key 34": `AIza${"SyA1234567890abcdefghijklmnopqrstu"}`,
  ASIAN_MARKETS: "ASIAN_MARKETS",
  "oauth client id, other domain": "123456789-abcdef.apps.example.com",
  "delimited hex of plain words": sepHex("hello world!", ":"),
  "aws key rot13 (pipelock's documented limit)": AWS.replace(/[A-Za-z]/g, (c) => String.fromCharCode(((c.toLowerCase().charCodeAt(0) - 97 + 13) % 26) + (c < "a" ? 65 : 97))),
  "aws key reversed (pipelock's documented limit)": [...AWS].reverse().join(""),
  "ethereum address (40 hex, not a key)": `0x${r("ab", 20)}`,
  "sha-256 digest without 0x": r("ab", 32),
  "bitcoin WIF with a bad checksum": `key ${WIF.slice(0, -1)}K`,
  "git commit id": "commit 3f786850e387550fdab836ed7e6dc881de23001b",
  "prose with dotted words": "e.g. see the docs, i.e. the manual, etc. and so on.",
  "token=yes (too short)": "set token=yes in the config",
  "MY_SECRET=true (too short)": "MY_SECRET=true",
  DB_PASSWORD_POLICY: "DB_PASSWORD_POLICY=must_be_strong",
  ACCESS_TOKEN_EXPIRY: "ACCESS_TOKEN_EXPIRY=3600secs",
  APP_TOKEN_BUCKET: "APP_TOKEN_BUCKET=abcdefghij",
  API_KEY_LENGTH: "API_KEY_LENGTH=1234567890",
  SECRET_ROTATION_DAYS: "SECRET_ROTATION_DAYS=365days_minimum",
  "env value that is a stand-in": "DB_PASSWORD=example_password",
  "luhn-failing number": "Reference number 4111111111111112 for your order",
  "a JSON array of small numbers": JSON.stringify({ samples: [72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33, 99, 112, 117, 50] }),
  ...Object.fromEntries(
    [
      "ep.Token = deps.getenv(killswitch.EnvAPIToken)",
      "user.Password = hashedValue",
      "cfg.APIKey = loadFromFile(path)",
      "session.Secret = base64Encode(raw)",
      `req.APIToken = "placeholder"`,
      "h.apiToken = opts.APIToken",
      "ep.Token = hunterxabcd",
      "req.APIKey = hunterxabcd",
      "MyStruct{Password: hunterxabcd}",
    ].map((line) => [`code: ${line}`, line]),
  ),
  "anthropic prefix in docs, placeholder": "keys look like sk-ant-xxxxxxxxxxxx",
  "anthropic prefix in docs, versioned placeholder": "the header is x-api-key: sk-ant-api03-xxxxxxxxxxxxxxxx",
  "openai prefix in docs, placeholder": "Authorization: Bearer sk-proj-your_key_here",
  // Deliberately not caught (see the README): PII and public identifiers, which pipelock's defaults flag.
  "credit card (Stripe's test number)": "4242 4242 4242 4242",
  IBAN: "GB82WEST12345698765432",
  "US SSN shape": "123-45-6789",
  // pipelock's looser Discord shape ([MN] + 23 of anything): a first segment that is no base64 of a decimal id is no bot token.
  "discord-like segments, no snowflake id": `M${r("T", 23)}.${r("a", 6)}.${r("b", 27)}`,
  "google oauth client id (public)": `123456789012${"-abcdefghij1234567890abcdefghij12"}.apps.googleusercontent.com`,
};

// path_query_split_test.go: a key split over the path and the query, escaped more than once.
describe("pipelock parity: the path-to-query seam", () => {
  const ant = ["sk-", "ant-api03-"].join("");
  const antTail = "AAAAABBBBBCCCCDDDDDDDDEEEEEE";
  const target = (url: string) => scanRequest(policy, { host: "evil.example", url, headers: [["Host", "evil.example"]] });
  it.each([
    ["anthropic", `/${ant}?x=${antTail}`],
    ["openai project", `/${"sk-"}proj-?x=AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHH`],
    ["aws", `/${"AKI"}A?x=IOSFODNN7EXAMPLQ`],
    ["github", `/${"ghp"}_?x=AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHHIIII`],
    ["slack", `/${"xox"}b-?x=1234567890-1234567890-AAAAAAAAAAAAAAAAAAAAAAAA`],
    ["extra parameter", `/${ant}?x=${antTail}&y=1`],
    ["prefix split across path segments", `/sk-ant-/api03-?x=${antTail}`],
    ["aws split across path segments", "/AK/IA?x=IOSFODNN7EXAMPLQ"],
    ["single-escaped prefix byte", `/%73k-ant-api03-?x=${antTail}`],
    ["double-escaped prefix byte", `/%2573k-ant-api03-?x=${antTail}`],
    ["double-escaped prefix pair", `/%2573%256b-ant-api03-?x=${antTail}`],
    ["double-escaped, extra parameter", `/%2573k-ant-api03-?x=${antTail}&y=1`],
    ["double-escaped aws prefix", "/%2541KIA?x=IOSFODNN7EXAMPLQ"],
    ["double-escaped github prefix", "/%2567hp_?x=AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHHIIII"],
    ["whole key in one query value", `/x?k=${ant}${antTail}`],
    ["halves across two query parameters", `/z?a=${ant}&b=${antTail}`],
    ["whole key in the path", `/${ant}${antTail}`],
  ])("refused: %s", (_name, url) => {
    expect(target(url)).toBeDefined();
  });
  it.each([
    ["rest id with field selection", "/v2/users/8842?fields=id,name,email&sort=asc"],
    ["signed url style request", "/bucket/report-2026-08.csv?Expires=1900000000&Signature=abc123def456ghi789jkl"],
    ["ordinary docs page", "/guides/getting-started?lang=en"],
    ["path with hyphens and a short param", "/v1/well-known-thing/sub-resource?page=2"],
  ])("passes: %s", (_name, url) => {
    expect(target(url)).toBeUndefined();
  });
});

describe("pipelock parity: known values (its secrets_file and scan_env; our canaries)", () => {
  const values = { A_SECRET: "MyFileSecretValue1234", B_SECRET: "ab~test-value-for-28-byte-wk", C_SECRET: "this-is-a-test-value-29-bytes" };
  const known = buildDlpPolicy({ enabled: true, canary_env: Object.keys(values), canary_exempt: [] }, values).policy;
  const forms: Record<string, string> = {
    raw: `Here is the secret: ${values.A_SECRET}`,
    base64: b64(values.A_SECRET),
    hex: hex(values.A_SECRET),
    base32: b32(values.A_SECRET),
    "base64url (differs from base64)": Buffer.from(values.B_SECRET).toString("base64url").padEnd(40, "="),
    "base64url unpadded": Buffer.from(values.B_SECRET).toString("base64url"),
    "base32 unpadded": b32(values.C_SECRET).replace(/=+$/, ""),
    // known_secret_encodings.go: decimal character codes, comma- and space-separated.
    "decimal codes, commas": [...values.A_SECRET].map((c) => c.charCodeAt(0)).join(","),
    "decimal codes, spaces": [...values.A_SECRET].map((c) => c.charCodeAt(0)).join(" "),
    "decimal codes, a JSON array": JSON.stringify([...values.A_SECRET].map((c) => c.charCodeAt(0))),
  };
  it.each(Object.entries(forms))("%s", (_name, value) => {
    expect(inUrl(known, value)).toMatchObject({ rule: expect.stringMatching(/^canary:/) });
    expect(inBody(known, value)).toMatchObject({ rule: expect.stringMatching(/^canary:/) });
  });
  it("text without them passes", () => {
    expect(inBody(known, "totally innocent text with no matching content")).toBeUndefined();
  });
});

describe("pipelock parity: passes", () => {
  it.each(Object.entries(NEGATIVES))("%s (query value)", (_name, value) => {
    expect(inUrl(policy, value)).toBeUndefined();
  });
  it.each(Object.entries(NEGATIVES))("%s (body)", (_name, value) => {
    expect(inBody(policy, value)).toBeUndefined();
  });

  it("an ordinary host name passes", () => {
    expect(scanHostName(policy, "www.google.com")).toBeUndefined();
  });

  it("a DoH query for an ordinary name in base32 passes", () => {
    for (const l of [b32("ordinary-lookup-name-value").replace(/=+$/, "")]) {
      for (const v of [l, l.toLowerCase(), mixCase(l)]) {
        expect(scanRequest(policy, { host: "doh.test", url: `/dns-query?dns=${dnsQuery([v, "x", "cache", "test"]).toString("base64url")}`, headers: [] })).toBeUndefined();
      }
    }
  });
});

describe("the new checks cost bounded time on adversarial bodies", () => {
  const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  const wifShaped = (i: number) => `5H${[...Array(49)].map((_, k) => B58[(i * 7 + k * 13) % 58]).join("")}`;

  it("a body dense with WIF-shaped strings (bad checksums) is refused quickly, not checksummed string by string", () => {
    const body = Array.from({ length: 200_000 }, (_, i) => wifShaped(i)).join(" ");
    const t0 = performance.now();
    expect(inBody(policy, body)).toMatchObject({ rule: "bitcoin-wif-key" });
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  it("a few WIF-shaped strings with bad checksums pass", () => {
    expect(inBody(policy, Array.from({ length: 20 }, (_, i) => wifShaped(i)).join("\n"))).toBeUndefined();
  });

  it("10 MB of one decimal code list scans in bounded time", () => {
    const body = "65,".repeat(3 * 1024 * 1024);
    const t0 = performance.now();
    expect(inBody(policy, body)).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it("10 MB of dotted single characters scans in bounded time", () => {
    const body = "a.b.c.d.e.f.g.h.i.j ".repeat(512 * 1024);
    const t0 = performance.now();
    expect(inBody(policy, body)).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});
