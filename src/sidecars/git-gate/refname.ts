// Ref names judged by git's own rules (refs.c: check_refname_format), so the
// gate never forwards a name git itself would refuse: receive-pack checks
// names only after the pre-receive hook has run, and by then the hook has
// already pushed to the upstream. Works on bytes, as git does.

/**
 * Per byte, as in git's refname_disposition table: 0 ok, 1 end of component
 * ("/"), 2 "." (reject ".."), 3 "{" (reject "@{"), 4 never allowed (controls,
 * DEL, space, ~ ^ : ? [ \), 5 "*" (only in patterns). NUL is never allowed
 * here (in C it would silently end the name).
 */
const DISPOSITION = (() => {
  const d = new Uint8Array(256);
  for (let b = 0; b < 0x20; b++) d[b] = 4;
  d[0x7f] = 4;
  for (const c of " ~^:?[\\") d[c.charCodeAt(0)] = 4;
  d["/".charCodeAt(0)] = 1;
  d[".".charCodeAt(0)] = 2;
  d["{".charCodeAt(0)] = 3;
  d["*".charCodeAt(0)] = 5;
  return d;
})();

const DOT = 0x2e;
const AT = 0x40;
const LOCK = Buffer.from(".lock");

export interface RefFormatOptions {
  /** A name with a single component is fine (git: REFNAME_ALLOW_ONELEVEL). */
  allowOneLevel?: boolean;
  /** One "*" may appear (git: REFNAME_REFSPEC_PATTERN). */
  pattern?: boolean;
}

/** Why `name` is not a valid ref name by git's rules, or undefined when it is. */
export function refFormatError(name: string | Uint8Array, o: RefFormatOptions = {}): string | undefined {
  const b = typeof name === "string" ? Buffer.from(name, "utf8") : Buffer.from(name);
  if (b.length === 0) return "it is empty";
  if (b.length === 1 && b[0] === AT) return 'it is "@"';
  let starAllowed = o.pattern === true;
  let components = 0;
  let start = 0;
  for (;;) {
    // One component: [start, end).
    let end = start;
    let last = -1;
    for (; end < b.length; end++) {
      const ch = b[end]!;
      const disp = ch === 0 ? 4 : DISPOSITION[ch]!;
      if (disp === 1) break;
      if (disp === 2 && last === DOT) return 'it contains ".."';
      if (disp === 3 && last === AT) return 'it contains "@{"';
      if (disp === 4) return `it contains ${describeByte(ch)}`;
      if (disp === 5) {
        if (!starAllowed) return 'it contains "*"';
        starAllowed = false;
      }
      last = ch;
    }
    if (end === start) return start === 0 ? 'it starts with "/"' : end === b.length ? 'it ends with "/"' : 'it contains "//"';
    if (b[start] === DOT) return 'a component starts with "."';
    if (end - start >= LOCK.length && b.subarray(end - LOCK.length, end).equals(LOCK)) return 'a component ends with ".lock"';
    components++;
    if (end === b.length) {
      if (b[end - 1] === DOT) return 'it ends with "."';
      break;
    }
    start = end + 1;
    if (start === b.length) return 'it ends with "/"';
  }
  if (!o.allowOneLevel && components < 2) return "it has only one component";
  return undefined;
}

function describeByte(ch: number): string {
  if (ch === 0x20) return "a space";
  if (ch === 0x0a) return "a newline";
  if (ch === 0x09) return "a tab";
  if (ch < 0x20 || ch === 0x7f) return `a control character (0x${ch.toString(16).padStart(2, "0")})`;
  return `"${String.fromCharCode(ch)}"`;
}

/**
 * Whether receive-pack would accept `ref` as the name of a pushed ref: under
 * refs/, valid by git's rules after that prefix, and (except for a deletion)
 * at least two components below refs/ (as receive-pack's update() checks).
 * Stricter than git on one point: the name must be valid UTF-8.
 */
export function pushedRefError(ref: string | Uint8Array, isDelete: boolean): string | undefined {
  const b = typeof ref === "string" ? Buffer.from(ref, "utf8") : Buffer.from(ref);
  if (typeof ref !== "string" && !isUtf8(b)) return "it is not valid UTF-8";
  if (!b.subarray(0, 5).equals(Buffer.from("refs/"))) return 'it is not under "refs/"';
  return refFormatError(b.subarray(5), { allowOneLevel: isDelete });
}

export function isUtf8(b: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}
