// Read, parse and validate a manifest. Every error names the file, the YAML
// path (and line when known) and what was expected, so a user can fix it
// without reading our source.
import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import nodePath from "node:path";
import { LineCounter, parseDocument, isMap, isSeq, type Document } from "yaml";
import { quote } from "../contracts/escape.js";
import type { core as zcore } from "zod";
import { BottleError } from "../errors.js";
import { manifestSchema, TRUST_SYSTEM, type Manifest, type Profile } from "./schema.js";

export const DEFAULT_MANIFEST = "bottle.yaml";
/** Far above any real manifest; a bigger file is not one. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface LoadedManifest {
  /** Absolute path of the file it came from. */
  file: string;
  manifest: Manifest;
}

/** Where the manifest is: an explicit path, else BOTTLE_MANIFEST, else ./bottle.yaml. */
export function manifestPath(explicit?: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return nodePath.resolve(cwd, explicit ?? env.BOTTLE_MANIFEST ?? DEFAULT_MANIFEST);
}

/**
 * Parsed manifests by file identity. A server renders the same manifest over
 * and over; re-parsing it costs more than everything else in a render. Any
 * change to the file (size, mtime in ns, inode) misses the cache.
 */
const cache = new Map<string, { key: string; manifest: Manifest }>();

export function loadManifest(file: string, home = homedir()): LoadedManifest {
  let text: string;
  let key: string | undefined;
  try {
    const st = statSync(file, { bigint: true });
    key = `${st.size}:${st.mtimeNs}:${st.ino}:${home}`;
    const hit = cache.get(file);
    if (hit?.key === key) return { file, manifest: hit.manifest };
    // A device or FIFO (/dev/zero, /dev/stdin) would block the process forever or fill its memory.
    if (!st.isFile() && !st.isDirectory()) throw Object.assign(new Error("not a regular file"), { code: "ENOTFILE" });
    if (st.size > MAX_MANIFEST_BYTES) throw Object.assign(new Error("too big"), { code: "ETOOBIG" });
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTFILE" || code === "ETOOBIG")
      throw new BottleError(
        "manifest",
        `${file}: ${code === "ENOTFILE" ? "not a regular file" : `over ${MAX_MANIFEST_BYTES} bytes`}, expected a YAML file`,
        "Pass the path of your bottle.yaml (--manifest / BOTTLE_MANIFEST).",
      );
    const why = code === "ENOENT" ? "file not found" : code === "EISDIR" ? "is a directory, expected a YAML file" : `cannot read (${code ?? String(err)})`;
    throw new BottleError("manifest", `${file}: ${why}`, "Create a bottle.yaml (see the README's manifest example) or pass --manifest / set BOTTLE_MANIFEST.");
  }
  const manifest = parseManifest(text, file, home);
  if (cache.size > 64) cache.clear();
  cache.set(file, { key, manifest });
  return { file, manifest };
}

/** Parse manifest text; `file` is used for messages and to resolve relative paths. */
export function parseManifest(text: string, file: string, home = homedir()): Manifest {
  const name = displayName(file);
  if (text.trim() === "") throw new BottleError("manifest", `${name}: the file is empty; expected a manifest with "version: 1" and "agents:"`);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const pos = lineCounter.linePos(yamlError.pos[0]);
    const where = `:${pos.line}:${pos.col}`;
    const what = yamlError.code === "DUPLICATE_KEY" ? `duplicate key: ${firstLine(yamlError.message)}` : `YAML syntax error: ${firstLine(yamlError.message)}`;
    throw new BottleError("manifest", `${name}${where}: ${what}`);
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    // Not the text itself: the path may name any readable file (a key, a .env), and this message goes to the caller.
    throw new BottleError("manifest", `${name}: expected a mapping with "version: 1" and "agents:", got ${typeof raw === "string" ? "plain text" : describe(raw)}`);
  }
  const result = manifestSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    const lines = result.error.issues.slice(0, 10).map((issue) => formatIssue(name, doc, lineCounter, raw, issue));
    const more = result.error.issues.length > 10 ? `\n(and ${result.error.issues.length - 10} more)` : "";
    throw new BottleError("manifest", lines.join("\n") + more);
  }
  return resolvePaths(result.data, nodePath.dirname(nodePath.resolve(file)), home);
}

function formatIssue(name: string, doc: Document, lc: LineCounter, raw: unknown, issue: zcore.$ZodIssue): string {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  const where = `${name}${lineOf(doc, lc, path)}: ${yamlPath(path) || "(top level)"}`;
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((k) => `${where}: unknown key "${k}"`).join("\n");
    case "invalid_type":
      if (issue.input === undefined) return `${where}: missing; expected ${issue.expected}`;
      return `${where}: expected ${issue.expected}, got ${describe(issue.input)}`;
    case "invalid_key":
      return `${where}: bad key: ${issue.issues[0]?.message ?? issue.message}`;
    default: {
      const value = valueAt(raw, path);
      if (value === undefined) return `${where}: missing; ${issue.message}`;
      return issue.message.startsWith("expected") ? `${where}: ${issue.message}, got ${describe(value)}` : `${where}: ${issue.message}`;
    }
  }
}

/** `agents.implementer.egress.routes[0].host` */
export function yamlPath(path: ReadonlyArray<string | number>): string {
  return path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), "");
}

function lineOf(doc: Document, lc: LineCounter, path: Array<string | number>): string {
  for (let n = path.length; n > 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    const parent = n > 1 ? doc.getIn(path.slice(0, n - 1), true) : doc.contents;
    if ((isMap(parent) || isSeq(parent) || n === 1) && node?.range) {
      const pos = lc.linePos(node.range[0]);
      return `:${pos.line}`;
    }
  }
  return "";
}

function valueAt(raw: unknown, path: Array<string | number>): unknown {
  let cur: unknown = raw;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  return `${typeof v} ${String(v)}`;
}

function firstLine(s: string): string {
  return s.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

function displayName(file: string): string {
  const rel = nodePath.relative(process.cwd(), file);
  return rel && !rel.startsWith("..") && !nodePath.isAbsolute(rel) ? rel : file;
}

/** `~` is the host user's home; relative paths are relative to the manifest's folder. */
export function resolveHostPath(p: string, baseDir: string, home: string): string {
  if (p === "~") return home;
  if (p.startsWith("~/")) return nodePath.join(home, p.slice(2));
  return nodePath.resolve(baseDir, p);
}

/** A known_hosts value is a path unless it looks like a host key line. */
export function isHostKeyLine(s: string): boolean {
  return /\s(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-\S+)\s+[A-Za-z0-9+/=]+/.test(s);
}

function resolvePaths(m: Manifest, baseDir: string, home: string): Manifest {
  const r = (p: string) => resolveHostPath(p, baseDir, home);
  const agents: Record<string, Profile> = {};
  for (const [name, p] of Object.entries(m.agents)) {
    agents[name] = {
      ...p,
      build: p.build && { context: r(p.build.context), dockerfile: p.build.dockerfile },
      env_file: p.env_file && r(p.env_file),
      network: { ...p.network, trust: p.network.trust.map((t) => (t === TRUST_SYSTEM ? t : r(t))) },
      git: {
        upstreams: p.git.upstreams.map((u) => ({
          ...u,
          identity_file: r(u.identity_file),
          known_hosts: isHostKeyLine(u.known_hosts) ? u.known_hosts : r(u.known_hosts),
        })),
      },
    };
  }
  return { ...m, agents };
}

/** Look up a profile, or say which ones exist. */
export function getProfile(loaded: LoadedManifest, profile: string): Profile {
  const p = Object.hasOwn(loaded.manifest.agents, profile) ? loaded.manifest.agents[profile] : undefined;
  if (!p) {
    const known = Object.keys(loaded.manifest.agents);
    throw new BottleError("unknown-profile", `unknown profile ${quote(profile)} in ${displayName(loaded.file)}`, `Known profiles: ${known.join(", ")}.`);
  }
  return p;
}
