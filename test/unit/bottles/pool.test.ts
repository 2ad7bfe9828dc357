// The warm pool against the fake engine: fill, claim (fresh CAs and configs,
// reload instead of restart, nothing carried over), refusals, credentials.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { execInBottle } from "../../../src/bottles/exec.js";
import { listBottles } from "../../../src/bottles/list.js";
import { forgetPoolFingerprints } from "../../../src/bottles/pool.js";
import { poolBottles, startBottle } from "../../../src/bottles/start.js";
import { stopBottle } from "../../../src/bottles/stop.js";
import type { BottleError } from "../../../src/errors.js";
import { layoutOf } from "../../../src/state/layout.js";
import { readMetadata } from "../../../src/state/metadata.js";
import { MANIFEST, world } from "./fixture.js";

const WARM = `${MANIFEST}  warm:
    image: bottle-agent:latest
    pool: 2
    network:
      allow: [example.test]
    egress:
      routes:
        - host: api.example.test
          header: Authorization
          value: "Bearer \${WARM_TOKEN}"
`;

function warmWorld() {
  const w = world(WARM);
  w.env.WARM_TOKEN = "token-one";
  return w;
}

const ups = (w: ReturnType<typeof world>) => w.engine.calls.filter((c) => c.op === "up").length;

describe("warm pool", () => {
  it("fills to the profile's size with pooled bottles nobody can exec into, and drains to 0", async () => {
    const w = warmWorld();
    const r = await poolBottles({ ...w.ctx, profile: "warm" });
    expect(r.started).toHaveLength(2);
    expect(r.waiting).toBe(2);
    const listed = await listBottles(w.ctx);
    expect(listed.map((b) => b.state)).toEqual(["pooled", "pooled"]);
    const err = (await execInBottle(r.started[0]!, ["true"], w.ctx).catch((e: unknown) => e)) as BottleError;
    expect(err.message).toMatch(/waiting in the warm pool/);
    // A second fill adds nothing.
    expect((await poolBottles({ ...w.ctx, profile: "warm" })).started).toEqual([]);
    const drained = await poolBottles({ ...w.ctx, profile: "warm", size: 0 });
    expect(drained.stopped.sort()).toEqual([...r.started].sort());
    expect(drained.waiting).toBe(0);
    expect(w.engine.projects.size).toBe(0);
  });

  it("a start claims a pooled bottle: its own slug, fresh CAs and configs, proxies reloaded, nothing restarted or carried over", async () => {
    const w = warmWorld();
    const [first] = (await poolBottles({ ...w.ctx, profile: "warm", size: 1 })).started;
    const pooled = layoutOf(w.root, first!);
    const poolCa = readFileSync(pooled.firewallCaCert, "utf8");
    const poolEgressCa = readFileSync(pooled.egressCaCert, "utf8");
    const upsBefore = ups(w);

    const r = await startBottle({ ...w.ctx, profile: "warm", slug: "mine" });
    expect(r.metadata).toMatchObject({ slug: "mine", state: "running", instance: first });
    expect(r.metadata.pooled).toBeUndefined();
    expect(ups(w)).toBe(upsBefore); // claimed, not started
    const mine = layoutOf(w.root, "mine");
    expect(existsSync(pooled.stateDir)).toBe(false);
    // Fresh CAs, and the agent's bundle trusts the new ones, not the pool's.
    const ca = readFileSync(mine.firewallCaCert, "utf8");
    expect(ca).not.toBe(poolCa);
    expect(readFileSync(mine.egressCaCert, "utf8")).not.toBe(poolEgressCa);
    const bundle = readFileSync(mine.trustBundle, "utf8");
    expect(bundle).toContain(ca.trim());
    expect(bundle).not.toContain(poolCa.trim());
    // Configs and compose file name the new state dir only.
    for (const f of [mine.firewallConfigFile, mine.egressConfigFile, mine.composeFile, mine.planInputFile]) expect(readFileSync(f, "utf8")).not.toContain(`/${first}/`);
    // The proxies were told to reload (no restart).
    expect(
      w.engine.signals
        .filter((s) => s.sig === "HUP")
        .map((s) => s.service)
        .sort(),
    ).toEqual(["egress", "firewall"]);
    // It is an ordinary bottle now: exec works, list shows it running with its containers, stop removes them.
    expect((await execInBottle("mine", ["echo", "hi"], w.ctx)).exitCode).toBe(0);
    const listed = (await listBottles(w.ctx)).find((b) => b.slug === "mine");
    expect(listed?.state).toBe("running");
    expect(listed?.containers.length).toBe(3);
    await stopBottle("mine", w.ctx);
    expect(w.engine.projects.size).toBe(0);
    expect(readMetadata(mine)?.state).toBe("stopped");
  });

  it("a long-lived caller's start (refillPool) tops the pool up again in the background", async () => {
    const w = warmWorld();
    await poolBottles({ ...w.ctx, profile: "warm", size: 2 });
    const r = await startBottle({ ...w.ctx, profile: "warm", slug: "mine", refillPool: true });
    expect(r.metadata.instance).toMatch(/^pool-/);
    for (let i = 0; i < 100 && (await listBottles(w.ctx)).filter((b) => b.state === "pooled").length < 2; i++) await new Promise((res) => setTimeout(res, 20));
    expect((await listBottles(w.ctx)).filter((b) => b.state === "pooled")).toHaveLength(2);
  });

  it("starts cold when the pool is empty, and when the claimer's credentials differ from the pool's", async () => {
    const w = warmWorld();
    await startBottle({ ...w.ctx, profile: "warm", slug: "cold-1" });
    expect(ups(w)).toBe(1);
    await poolBottles({ ...w.ctx, profile: "warm", size: 1 });
    w.env.WARM_TOKEN = "token-two";
    const r = await startBottle({ ...w.ctx, profile: "warm", slug: "cold-2" });
    expect(r.metadata.instance).toBeUndefined();
    expect(ups(w)).toBe(3);
    // Another process never knows the pool's credentials: it starts cold too.
    w.env.WARM_TOKEN = "token-one";
    forgetPoolFingerprints();
    expect((await startBottle({ ...w.ctx, profile: "warm", slug: "cold-3" })).metadata.instance).toBeUndefined();
  });

  it("a fill stops bottles pooled from an older version of the profile; a start never claims them", async () => {
    const w = warmWorld();
    const [old] = (await poolBottles({ ...w.ctx, profile: "warm", size: 1 })).started;
    writeFileSync(w.file, WARM.replace("allow: [example.test]", "allow: [example.test, other.test]"));
    const r = await startBottle({ ...w.ctx, profile: "warm", slug: "fresh" });
    expect(r.metadata.instance).toBeUndefined(); // cold: the pooled one is from the old profile
    const filled = await poolBottles({ ...w.ctx, profile: "warm", size: 1 });
    expect(filled.stopped).toEqual([old]);
    expect(filled.started).toHaveLength(1);
    expect(existsSync(layoutOf(w.root, old!).stateDir)).toBe(false);
  });

  it("refuses the pool's slugs to users, and a pool for the pipelock firewall", async () => {
    const w = warmWorld();
    const err = (await startBottle({ ...w.ctx, profile: "warm", slug: "pool-0123456789ab" }).catch((e: unknown) => e)) as BottleError;
    expect(err.message).toMatch(/reserved for the warm pool/);
    const p = world(`${MANIFEST}  piped:\n    image: bottle-agent:latest\n    firewall: pipelock\n    network:\n      allow: [example.test]\n`);
    await expect(poolBottles({ ...p.ctx, profile: "piped", size: 1 })).rejects.toThrow(/needs the builtin firewall/);
  });
});
