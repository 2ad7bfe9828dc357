// Every host name a request gives us (CONNECT target, absolute-form URL,
// Host header) is scanned for secrets before any DNS lookup, in both
// proxies: a name is data that leaves in the resolver's query, so
// `ghp_….exfil.test` must be refused before it is resolved (SPEC §10 #9).
import { scanHostName, type DlpFinding, type DlpPolicy } from "./dlp.js";

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
