// Why a start failed, in the services' own words. `compose up --wait` only
// says "container X exited (1)" or "is unhealthy"; the reason (an upstream's
// host key mismatch, a bad config) is in that container's last log lines.
import { compose, type ComposeProject } from "../engine/compose.js";
import { stripAnsi } from "./logs.js";

interface PsEntry {
  Service?: string;
  Name?: string;
  State?: string;
  Health?: string;
  ExitCode?: number;
}

/** Reduce a sidecar's JSON log line to its message; other lines stay as they are. */
export function logLineReason(line: string): { text: string; error: boolean } {
  const body = line.replace(/^\S+\s+\|\s?/, "").trim();
  try {
    const o = JSON.parse(body) as Record<string, unknown>;
    if (o && typeof o === "object") {
      const text = typeof o.msg === "string" ? o.msg : typeof o.message === "string" ? o.message : body;
      return { text, error: o.level === "error" || o.level === "fatal" || (typeof o.level === "number" && o.level >= 50) };
    }
  } catch {
    // not JSON
  }
  return { text: body, error: /error|fatal|failed/i.test(body) };
}

/** One line per failed service: "<container>: <its last error lines>", or undefined when none failed. */
export async function failedServiceDetail(p: ComposeProject): Promise<string | undefined> {
  const ps = await compose(p, ["ps", "-a", "--format", "json"], { timeout: 30_000, reject: false });
  if (ps.exitCode !== 0) return undefined;
  const entries = parsePs(ps.stdout).filter((e) => e.Service && (e.State === "exited" || e.State === "dead" || e.Health === "unhealthy"));
  const out: string[] = [];
  for (const e of entries) {
    const logs = await compose(p, ["logs", "--no-color", "--tail", "20", e.Service!], { timeout: 30_000, reject: false });
    const reasons = stripAnsi(logs.stdout).split("\n").filter((l) => l.trim()).map(logLineReason);
    const errors = reasons.filter((r) => r.error);
    const pick = (errors.length ? errors : reasons).slice(-3).map((r) => r.text);
    const state = e.State === "exited" ? `exited (${e.ExitCode ?? "?"})` : e.Health === "unhealthy" ? "unhealthy" : (e.State ?? "failed");
    out.push(`${e.Name ?? e.Service} ${state}${pick.length ? `: ${pick.join(" | ")}` : ""}`);
  }
  return out.length ? out.join("\n") : undefined;
}

function parsePs(stdout: string): PsEntry[] {
  const text = stdout.trim();
  if (!text) return [];
  // Compose prints a JSON array in some versions and JSON lines in others.
  if (text.startsWith("[")) return JSON.parse(text) as PsEntry[];
  return text.split("\n").flatMap((l) => {
    try {
      return [JSON.parse(l) as PsEntry];
    } catch {
      return [];
    }
  });
}
