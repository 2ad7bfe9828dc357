// The sidecars' log lines are built by hand on the hot path (the proxies log
// per connection); they must be the very text the plain spread made.
import { describe, expect, it } from "vitest";
import { formatEvent, isoNow } from "../../../../src/sidecars/kit/log.js";

const plain = (mode: string, event: string, fields: Record<string, unknown>, ts: string) => `${JSON.stringify({ ts, mode, event, ...fields })}\n`;

describe("formatEvent", () => {
  const cases: Array<Record<string, unknown>> = [
    {},
    { host: "localhost", port: 443, method: "CONNECT", decision: "allowed", rule: "allowlist", tls: "passthrough", status: 200, ms: 3 },
    { host: '"quoted"\n\\', nested: { a: [1, "two"] }, none: undefined, nil: null, flag: false },
    { message: "\u2028 é 😀 \u0001" },
    // A field named like one of ours: the spread's answer (the field wins, in our key's place).
    { event: "shadowed", ts: "then", x: 1 },
  ];
  for (const fields of cases) {
    it(`writes the same line as JSON.stringify of the spread: ${JSON.stringify(fields)}`, () => {
      const line = formatEvent("firewall", "connect", fields);
      const ts = (JSON.parse(line) as { ts: string }).ts;
      expect(line).toBe(plain("firewall", "connect", fields, "ts" in fields ? (fields.ts as string) : ts));
      if (!("ts" in fields)) expect(Math.abs(Date.parse(ts) - Date.now())).toBeLessThan(5_000);
    });
  }

  it("keeps each mode's and event's own names (they are remembered per pair)", () => {
    for (let round = 0; round < 2; round++)
      for (const [mode, event] of [
        ["firewall", "connect"],
        ["firewall", "tunnel_closed"],
        ["egress", "connect"],
        ['we"ird', "ev\\ent"],
      ] as const) {
        const line = formatEvent(mode, event, { n: round });
        const ts = (JSON.parse(line) as { ts: string }).ts;
        expect(line).toBe(plain(mode, event, { n: round }, ts));
      }
  });

  it("passes a custom stringify everything, as before", () => {
    const seen: unknown[] = [];
    const line = formatEvent("supervise", "note", { a: 1 }, (v) => {
      seen.push(v);
      return "X";
    });
    expect(line).toBe("X\n");
    expect(seen).toEqual([{ ts: expect.any(String), mode: "supervise", event: "note", a: 1 }]);
  });
});

describe("isoNow", () => {
  it("is toISOString for any millisecond, across second, day and year boundaries", () => {
    const starts = [Date.UTC(2026, 10, 30, 23, 59, 59, 990), Date.UTC(2025, 11, 31, 23, 59, 59, 0), 0, Date.UTC(2000, 1, 29, 12, 0, 0, 5)];
    for (const t0 of starts) for (let t = t0; t < t0 + 1_200; t += 7) expect(isoNow(t)).toBe(new Date(t).toISOString());
    // Back in time after a later second was cached.
    expect(isoNow(1_000)).toBe(new Date(1_000).toISOString());
    expect(isoNow(-1)).toBe(new Date(-1).toISOString());
  });
});
