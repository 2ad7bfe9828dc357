// The text every secret rule is matched against: what a reader (or a
// server) would take the characters to be, not how they were spelled.
// Secrets are ASCII, so anything that only changes how ASCII is *drawn* is
// undone: compatibility forms (fullwidth, ligatures, mathematical letters)
// by NFKC, look-alike letters from other scripts by a fold table, and
// characters that draw nothing (zero-width, bidi controls, tags, variation
// selectors, C0/C1 controls such as NUL) are dropped. Line breaks and tabs
// stay: they separate tokens, and the token scanners step over a single
// line break themselves where a token was wrapped.

/** Anything outside printable ASCII and the three whitespace controls. */
const NEEDS_WORK = /[^\t\n\r\x20-\x7e]/;
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * Controls (but not \t \n \r), format characters (zero-width, bidi, soft
 * hyphen, word joiner, BOM, the tags block), variation selectors, filler
 * characters and the exotic spaces used to split a key without a visible gap.
 */
// biome-ignore lint/suspicious/noMisleadingCharacterClass: every code point in the class is matched on its own, none combines with another
const INVISIBLE = /(?![\t\n\r])[\p{Cc}\p{Cf}\u115f\u1160\u3164\uffa0\ufe00-\ufe0f\u{e0100}-\u{e01ef}\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/gu;
const COMBINING = /\p{Mn}/u;
const COMBINING_ALL = /\p{Mn}/gu;

// Letters from other scripts that render like Latin ones (after NFKC, which
// already folds fullwidth and mathematical forms). Focused on what key
// prefixes are made of.
const CONFUSABLE_PAIRS: Array<[string, string]> = [
  // Cyrillic
  ["АВСЕНІЈКМОРЅТХУ", "ABCEHIJKMOPSTXY"],
  ["асеһіјкморѕтухԁԛԝн", "acehijkmopstyxdqwh"],
  ["ӏԌ", "lG"],
  // Greek
  ["ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX"],
  ["αβεικνορτυχ", "abeikvoptux"],
  // Armenian
  ["ՕՍհոռօսաց", "OShnnosag"],
  // Cherokee capitals
  ["ᎪᎢᏢᏚᎡᎳᏔᏞᎠᏴ", "AIPSEWTLDB"],
  // Latin letters with an integral stroke, and small capitals (NFKC keeps both)
  ["ØøĐđŁłĦħŦŧıȷ", "OoDdLlHhTtij"],
  ["ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ", "abcdefghijklmnoprstuvwyz"],
  // Dashes and low lines standing in for the separators keys use
  ["‐‑‒–—―−﹘﹣－‗", "----------_"],
];

const CONFUSABLES = new Map<string, string>();
for (const [from, to] of CONFUSABLE_PAIRS) {
  const f = [...from];
  const t = [...to];
  if (f.length !== t.length) throw new Error(`confusable table row ${from} / ${to} is uneven`);
  for (const [i, c] of f.entries()) CONFUSABLES.set(c, t[i]!);
}
// Negative squared and regional-indicator capitals read as Latin letters.
for (let i = 0; i < 26; i++) {
  const latin = String.fromCharCode(65 + i);
  CONFUSABLES.set(String.fromCodePoint(0x1f170 + i), latin);
  CONFUSABLES.set(String.fromCodePoint(0x1f1e6 + i), latin);
}
const CONFUSABLE_RE = new RegExp(`[${[...CONFUSABLES.keys()].join("")}]`, "gu");

/**
 * Normalise text for secret matching (see the top of this file). Cheap for
 * plain ASCII; text that is mostly ASCII (prose with an accent or a dash
 * here and there) is normalised a region at a time (see piecewise).
 */
export function normalizeForDlp(s: string): string {
  if (!NEEDS_WORK.test(s)) return s;
  return s.length > PIECEWISE_MIN ? piecewise(s) : normalizeWhole(s);
}

/** Shorter texts are normalised whole (the regions' bookkeeping would cost more). */
const PIECEWISE_MIN = 256;
/** Regions closer than this are normalised together (each call of normalizeWhole costs about a microsecond). */
const MERGE_GAP = 64;
/** Regions at most this long are remembered (prose repeats its accented words and dashes). */
const CACHE_KEY_MAX = 64;
const CACHE_ENTRIES = 4096;
const cache = new Map<string, string>();

/**
 * normalizeForDlp region by region: each run of characters needing work,
 * with the character before it (combining marks compose with their base:
 * "=" and U+0338 are "≠"), is normalised on its own and the printable ASCII
 * between the runs is kept as it is. The same as normalising the whole
 * text: every step is per character except NFKC's composition, and no
 * canonical composition has an ASCII character as its second part (checked
 * over all of Unicode), so a text may be cut before any ASCII character.
 * Mostly-ASCII text costs a read of each character and a cache look-up per region instead of seven
 * Unicode passes over all of it (and their copies of it).
 */
function piecewise(s: string): string {
  const parts: string[] = [];
  let kept = 0;
  let from = -1;
  let to = -1;
  const flush = () => {
    parts.push(s.slice(kept, from), region(s.slice(from, to)));
    kept = to;
  };
  // By character, not a global regex: its match objects (one per region)
  // were most of the garbage, and survived into V8's old generation.
  const n = s.length;
  for (let a = 0; a < n; ) {
    if (!needsWork(s.charCodeAt(a))) {
      a++;
      continue;
    }
    let b = a + 1;
    while (b < n && needsWork(s.charCodeAt(b))) b++;
    const start = a > 0 ? a - 1 : 0;
    if (from >= 0 && start - to < MERGE_GAP) to = b;
    else {
      if (from >= 0) flush();
      from = start;
      to = b;
    }
    a = b;
  }
  if (from >= 0) flush();
  parts.push(s.slice(kept));
  return parts.join("");
}

const needsWork = (c: number) => (c < 0x20 ? c !== 9 && c !== 10 && c !== 13 : c > 0x7e);

function region(r: string): string {
  if (r.length > CACHE_KEY_MAX) return normalizeWhole(r);
  let t = cache.get(r);
  if (t === undefined) {
    t = normalizeWhole(r);
    if (cache.size >= CACHE_ENTRIES) cache.clear();
    cache.set(r, t);
  }
  return t;
}

/** @internal normalizeForDlp in one go over the whole text (the definition piecewise must agree with). */
export function normalizeWhole(s: string): string {
  if (!NEEDS_WORK.test(s)) return s;
  let t = s.replace(INVISIBLE, "");
  if (!NON_ASCII.test(t)) return t;
  t = t.normalize("NFKC");
  t = t.replace(CONFUSABLE_RE, (c) => CONFUSABLES.get(c) ?? c);
  // Accents come off too ("ĕ" is "e" to a key parser that ignores marks).
  if (NON_ASCII.test(t)) {
    const d = t.normalize("NFD");
    if (COMBINING.test(d)) t = d.replace(COMBINING_ALL, "");
  }
  // NFKC can itself produce format characters from compatibility forms.
  return t.replace(INVISIBLE, "");
}
