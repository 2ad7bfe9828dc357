// Why a start failed, in the services' own words. `compose up --wait` only
// says "container X exited (1)" or "is unhealthy"; the reason (an upstream's
// host key mismatch, a bad config) is in that container's last log lines.
import type { Engine, ProjectRef } from "../engine/index.js";

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
export async function failedServiceDetail(engine: Engine, p: ProjectRef): Promise<string | undefined> {
  const failed = (await engine.ps(p)).filter((c) => c.state === "exited" || c.state === "dead" || c.health === "unhealthy");
  const out: string[] = [];
  for (const c of failed) {
    const logs = (await engine.logs(p, { service: c.service, tail: 20 })) ?? [];
    const reasons = logs.filter((l) => l.trim()).map(logLineReason);
    const errors = reasons.filter((r) => r.error);
    const pick = (errors.length ? errors : reasons).slice(-3).map((r) => r.text);
    const state = c.state === "exited" ? `exited (${c.exitCode ?? "?"})` : c.health === "unhealthy" ? "unhealthy" : c.state;
    out.push(`${c.name} ${state}${pick.length ? `: ${pick.join(" | ")}` : ""}`);
  }
  return out.length ? out.join("\n") : undefined;
}
