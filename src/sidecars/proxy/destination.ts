// The firewall's destination check: allowlist, then SSRF. A name is resolved
// once, every answer is classified, and the caller dials the exact address
// that passed, so a second DNS answer can never swap in a private address.
import { lookup } from "node:dns/promises";
import { parseAddress, parseHost, refusalForAddress, type ParsedCidr } from "../../security/address.js";
import { isAllowed, type Allowlist } from "../../security/allowlist.js";

export type Resolver = (name: string) => Promise<string[]>;

export const systemResolver: Resolver = async (name) => (await lookup(name, { all: true, order: "ipv4first" })).map((a) => a.address);

/**
 * Remember answers for a few seconds: a busy agent opens many connections to
 * the same hosts, and getaddrinfo runs on libuv's small thread pool. Safe for
 * SSRF because the cached answer is checked and dialed like a fresh one.
 */
export function cachingResolver(resolve: Resolver, ttlMs = 5_000, maxEntries = 1_000): Resolver {
  const cache = new Map<string, { expires: number; answers: Promise<string[]> }>();
  return (name) => {
    const now = Date.now();
    const hit = cache.get(name);
    if (hit && hit.expires > now) return hit.answers;
    if (cache.size >= maxEntries) cache.clear();
    const answers = resolve(name);
    cache.set(name, { expires: now + ttlMs, answers });
    // Failures are not remembered: the next request asks again.
    answers.catch(() => cache.delete(name));
    return answers;
  };
}

export interface DestinationPolicy {
  allow: Allowlist;
  allowCidrs: ParsedCidr[];
  resolve: Resolver;
}

/** One resolved answer, classified: its canonical form and why it is refused (undefined: may be dialed). */
interface AnswerVerdict {
  address: string;
  blocked: string | undefined;
}

/**
 * Verdicts for resolver answers, per allowCidrs list (a reload builds a new
 * list, so a new cache). A pure function of the address text and the list,
 * remembered because the same few answers come back for every connection.
 */
const answerVerdicts = new WeakMap<readonly ParsedCidr[], Map<string, AnswerVerdict | null>>();
const MAX_REMEMBERED_ANSWERS = 1_000;

function classifyAnswer(answer: string, allowCidrs: readonly ParsedCidr[]): AnswerVerdict | null {
  let verdicts = answerVerdicts.get(allowCidrs);
  if (!verdicts) {
    verdicts = new Map();
    answerVerdicts.set(allowCidrs, verdicts);
  }
  let v = verdicts.get(answer);
  if (v !== undefined) return v;
  const parsed = parseAddress(answer);
  v = parsed ? { address: parsed.toString(), blocked: refusalForAddress(parsed, allowCidrs) } : null;
  if (verdicts.size >= MAX_REMEMBERED_ANSWERS) verdicts.clear();
  verdicts.set(answer, v);
  return v;
}

export type Destination = { ok: true; host: string; address: string } | { ok: false; status: 403 | 502; rule: "allowlist" | "ssrf" | "dns"; host: string; reason: string };

/**
 * parseHost per host text, remembered: agents CONNECT to the same few hosts
 * again and again, and the parse tries every IP spelling first. A pure
 * function of the text; the results are only read.
 */
const parsedHosts = new Map<string, Readonly<ReturnType<typeof parseHost>>>();
const MAX_REMEMBERED_HOSTS = 1_000;

function parsedHost(raw: string): Readonly<ReturnType<typeof parseHost>> {
  let p = parsedHosts.get(raw);
  if (p) return p;
  p = parseHost(raw);
  if (parsedHosts.size >= MAX_REMEMBERED_HOSTS) parsedHosts.clear();
  parsedHosts.set(raw, p);
  return p;
}

/**
 * Answers of resolver promises that have fulfilled. A caching resolver hands
 * out the same promise for a name while it is fresh, so a destination whose
 * answers are already in is checked in the caller's own turn, without
 * waiting for a promise that has nothing left to wait for.
 */
const fulfilled = new WeakMap<Promise<string[]>, string[]>();

/**
 * Allowlist, then SSRF. A Destination straight away when the answer needs
 * no wait (an IP literal, a refused name, answers already in), else a
 * promise of it.
 */
export function checkDestination(policy: DestinationPolicy, rawHost: string): Destination | Promise<Destination> {
  const { name, address } = parsedHost(rawHost);
  if (address) {
    // IP literals: the address check comes first so every spelling of a
    // blocked address is reported as what it is.
    const blocked = refusalForAddress(address, policy.allowCidrs);
    if (blocked) return { ok: false, status: 403, rule: "ssrf", host: name, reason: `"${rawHost}" is the ${blocked} address ${name}` };
    if (!isAllowed(policy.allow, name)) return { ok: false, status: 403, rule: "allowlist", host: name, reason: `host "${name}" is not in the allowlist` };
    return { ok: true, host: name, address: name };
  }
  if (!isAllowed(policy.allow, name)) return { ok: false, status: 403, rule: "allowlist", host: name, reason: `host "${name}" is not in the allowlist` };
  let pending: Promise<string[]>;
  try {
    pending = policy.resolve(name);
  } catch (err) {
    return unresolved(name, err);
  }
  const answers = fulfilled.get(pending);
  if (answers) return judgeAnswers(policy, name, answers);
  return pending.then(
    (a) => {
      fulfilled.set(pending, a);
      return judgeAnswers(policy, name, a);
    },
    (err: unknown) => unresolved(name, err),
  );
}

function unresolved(name: string, err: unknown): Destination {
  return { ok: false, status: 502, rule: "dns", host: name, reason: `cannot resolve host "${name}" (${(err as NodeJS.ErrnoException)?.code ?? "error"})` };
}

/** The first answer that may be dialed, or why none may. */
function judgeAnswers(policy: DestinationPolicy, name: string, answers: readonly string[]): Destination {
  let firstRefusal: string | undefined;
  for (const a of answers) {
    const v = classifyAnswer(a, policy.allowCidrs);
    if (!v) continue;
    if (!v.blocked) return { ok: true, host: name, address: v.address };
    firstRefusal ??= `host "${name}" resolves to the ${v.blocked} address ${v.address}`;
  }
  return { ok: false, status: 403, rule: "ssrf", host: name, reason: firstRefusal ?? `host "${name}" has no usable address` };
}
