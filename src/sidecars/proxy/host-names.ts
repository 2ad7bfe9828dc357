// Every host name a request gives us (CONNECT target, absolute-form URL,
// Host header) is scanned for secrets before any DNS lookup, in both
// proxies: a name is data that leaves in the resolver's query, so
// `ghp_….exfil.test` must be refused before it is resolved (SPEC §10 #9).
import { parseHost } from "../../security/address.js";
import { scanHostName, scanRequest, type DlpFinding, type DlpPolicy } from "./dlp.js";

/** The first finding in any of the names given (undefined entries skipped). */
export function scanHostNames(policy: DlpPolicy, names: ReadonlyArray<string | undefined>): DlpFinding | undefined {
  for (const n of names) {
    if (!n) continue;
    const f = scanHostName(policy, n);
    if (f) return f;
  }
  return undefined;
}

/** The first value of a header in a flat raw list (lowercase `name`). */
export function headerValue(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) return raw[i + 1];
  return undefined;
}

/**
 * The DLP verdict on a CONNECT head: its target and Host header as names
 * (before any lookup carries them out), then the head as a request (target
 * and every header). `host` is the target's host as the client wrote it.
 *
 * Agents open the same tunnels again and again with the same head, so the
 * verdict is remembered per policy (a reload builds a new one), keyed by the
 * exact host, target and header list: a pure function of those and the
 * policy, so a remembered verdict is exactly the scan's. Heads whose key
 * would be ambiguous (a piece holding the separator) or long are scanned
 * every time.
 */
export function scanConnectHead(policy: DlpPolicy, host: string, url: string, rawHeaders: readonly string[]): DlpFinding | undefined {
  if (!policy.enabled) return undefined;
  const key = connectKey(host, url, rawHeaders);
  if (key === undefined) return scanConnectHeadNow(policy, host, url, rawHeaders);
  let memo = connectVerdicts.get(policy);
  if (!memo) {
    memo = new Map();
    connectVerdicts.set(policy, memo);
  }
  const hit = memo.get(key);
  if (hit !== undefined) return hit ?? undefined;
  const verdict = scanConnectHeadNow(policy, host, url, rawHeaders);
  if (memo.size >= MAX_REMEMBERED_HEADS) memo.clear();
  memo.set(key, verdict ?? null);
  return verdict;
}

const connectVerdicts = new WeakMap<DlpPolicy, Map<string, DlpFinding | null>>();
const MAX_REMEMBERED_HEADS = 512;
const MAX_HEAD_KEY = 2048;

function scanConnectHeadNow(policy: DlpPolicy, host: string, url: string, rawHeaders: readonly string[]): DlpFinding | undefined {
  const inName = scanHostNames(policy, [host, headerValue(rawHeaders, "host")]);
  if (inName) return inName;
  const headers: Array<[string, string]> = [];
  for (let i = 0; i < rawHeaders.length; i += 2) headers.push([rawHeaders[i]!, rawHeaders[i + 1]!]);
  return scanRequest(policy, { host: parseHost(host).name, url, headers });
}

/** host, target and headers joined by LF (none of them may hold one), or undefined. */
function connectKey(host: string, url: string, rawHeaders: readonly string[]): string | undefined {
  if (host.includes("\n") || url.includes("\n")) return undefined;
  let key = `${host}\n${url}`;
  for (const piece of rawHeaders) {
    if (piece.includes("\n")) return undefined;
    key += `\n${piece}`;
  }
  return key.length > MAX_HEAD_KEY ? undefined : key;
}
