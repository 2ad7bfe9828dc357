// A small block-style YAML emitter for the JSON-shaped objects we render
// (maps, lists, strings, numbers, booleans). The `yaml` package stringifies
// a full compose file in ~2 ms, which alone would blow the render budget;
// this does it in microseconds. Anything a YAML 1.1 or 1.2 reader could take
// for a non-string (yes, on, 0:0, 1e3, ~, …) is double-quoted, and quoting
// uses JSON escapes, which YAML's double-quoted style accepts verbatim.
// Round-trip tests parse the output with the `yaml` package.

type Json = string | number | boolean | null | undefined | Json[] | { [k: string]: Json };

const PLAIN_SAFE = /^(?:[A-Za-z_/.]|--?[A-Za-z])[A-Za-z0-9_./@+=-]*(?:[ :][A-Za-z0-9_./@+=-]+)*$/;
const AMBIGUOUS = /^(?:y|n|yes|no|on|off|true|false|null|~|[-+]?\.?\d.*|\.inf|\.nan|<<|=)$/i;

export function scalar(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : JSON.stringify(String(v));
  if (typeof v === "boolean") return v ? "true" : "false";
  // ": " and " #" would start a mapping or a comment inside a plain scalar.
  if (PLAIN_SAFE.test(v) && !AMBIGUOUS.test(v) && !v.includes(": ") && !v.endsWith(":")) return v;
  return JSON.stringify(v);
}

function key(k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(k) && !AMBIGUOUS.test(k) ? k : JSON.stringify(k);
}

function isEmptyContainer(v: Json): boolean {
  return Array.isArray(v) ? v.length === 0 : typeof v === "object" && v !== null && Object.keys(v).length === 0;
}

function emit(v: Json, indent: string, out: string[]): void {
  if (Array.isArray(v)) {
    for (const item of v) {
      if (typeof item === "object" && item !== null && !isEmptyContainer(item)) {
        // "- " followed by the first line of the nested block.
        const nested: string[] = [];
        emit(item, `${indent}  `, nested);
        out.push(`${indent}- ${nested[0]!.slice(indent.length + 2)}`, ...nested.slice(1));
      } else out.push(`${indent}- ${inline(item)}`);
    }
    return;
  }
  for (const [k, val] of Object.entries(v as Record<string, Json>)) {
    if (val === undefined) continue;
    if (typeof val === "object" && val !== null && !isEmptyContainer(val)) {
      out.push(`${indent}${key(k)}:`);
      emit(val, `${indent}  `, out);
    } else out.push(`${indent}${key(k)}: ${inline(val)}`);
  }
}

function inline(v: Json): string {
  if (Array.isArray(v)) return "[]";
  if (typeof v === "object" && v !== null) return "{}";
  return scalar(v);
}

export function toYaml(value: Record<string, unknown>): string {
  const out: string[] = [];
  emit(value as Json, "", out);
  return `${out.join("\n")}\n`;
}
