// Character-class tables for the hand-written scanners: one byte per ASCII
// code unit, so a membership test is an array load, never a regex. Anything
// at or above 128 is outside every class (secrets are ASCII).

export type CharClass = Uint8Array;

/** A class from a spec like "A-Za-z0-9_-" (a trailing or leading "-" is literal). */
export function charClass(spec: string): CharClass {
  const t = new Uint8Array(128);
  for (let i = 0; i < spec.length; i++) {
    const a = spec.charCodeAt(i);
    if (spec[i + 1] === "-" && i + 2 < spec.length) {
      const b = spec.charCodeAt(i + 2);
      for (let c = a; c <= b; c++) t[c] = 1;
      i += 2;
    } else t[a] = 1;
  }
  return t;
}

export function inClass(t: CharClass, c: number): boolean {
  return c < 128 && t[c] === 1;
}

export const ALNUM = charClass("A-Za-z0-9");
export const WORD = charClass("A-Za-z0-9_");
export const TOKEN = charClass("A-Za-z0-9_-");
export const B64_ANY = charClass("A-Za-z0-9+/_-");
export const HEX = charClass("0-9a-fA-F");

/** ASCII lower-casing table for every UTF-16 code unit (non-letters map to themselves). */
export const FOLD = (() => {
  const t = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = i >= 65 && i <= 90 ? i + 32 : i;
  return t;
})();

export function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11;
}
