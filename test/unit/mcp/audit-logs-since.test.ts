// bottle_logs `since`: one meaning whether the bottle runs (docker's
// --since) or was stopped (the saved compose.log), and a value that is
// neither a time nor a duration is refused instead of matching nothing.
import { writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { bottleLogs } from "../../../src/bottles/logs.js";
import { startBottle } from "../../../src/bottles/start.js";
import { stopBottle } from "../../../src/bottles/stop.js";
import { layoutOf } from "../../../src/state/layout.js";
import { world } from "../bottles/fixture.js";

describe("bottle_logs since", () => {
  it("a duration filters a stopped bottle's saved log too", async () => {
    const w = world();
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    await stopBottle("web-1", w.ctx);
    const old = new Date(Date.now() - 3_600_000).toISOString();
    const recent = new Date(Date.now() - 60_000).toISOString();
    writeFileSync(layoutOf(w.root, "web-1").composeLog, `bottle-firewall-web-1  | ${old} old line\nbottle-firewall-web-1  | ${recent} recent line\n`);
    const all = await bottleLogs({ ...w.ctx, slug: "web-1" });
    expect(all.lines).toHaveLength(2);
    const r = await bottleLogs({ ...w.ctx, slug: "web-1", since: "10m" });
    expect(r.source).toBe("file");
    expect(r.lines).toEqual([`bottle-firewall-web-1  | ${recent} recent line`]);
    expect((await bottleLogs({ ...w.ctx, slug: "web-1", since: old.slice(0, 10) })).lines).toHaveLength(2);
  });

  it("a value that is neither a time nor a duration is refused, running or stopped", async () => {
    const w = world();
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    for (const since of ["not a time", "--help", "../../etc/passwd", "1", "10 minutes", "$(id)"]) {
      await expect(bottleLogs({ ...w.ctx, slug: "web-1", since }), since).rejects.toThrow(/since must be an RFC 3339 time or a duration like 10m/);
    }
    await stopBottle("web-1", w.ctx);
    await expect(bottleLogs({ ...w.ctx, slug: "web-1", since: "yesterday" })).rejects.toThrow(/since must be/);
  });

  it("a running bottle's engine gets the same instant as an RFC 3339 time", async () => {
    const w = world();
    await startBottle({ ...w.ctx, profile: "web", slug: "web-1" });
    const t0 = Date.now();
    await bottleLogs({ ...w.ctx, slug: "web-1", since: "5m" });
    const call = w.engine.calls.filter((c) => c.op === "logs").at(-1)!;
    const since = (call.args[1] as { since?: string }).since!;
    expect(since).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(Math.abs(Date.parse(since) - (t0 - 300_000))).toBeLessThan(5_000);
  });
});
