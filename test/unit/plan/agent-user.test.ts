// Profile `user`: who the agent runs as. `host` is the uid:gid of whoever
// starts the bottle (files in bind mounts stay theirs); a numeric uid:gid
// for images that expect a given user. Validated strictly: a name would
// depend on the image's /etc/passwd, and a typo must not run as root.
import { describe, expect, it } from "vitest";
import { BottleError } from "../../../src/errors.js";
import { parseManifest } from "../../../src/manifest/index.js";
import { renderCompose } from "../../../src/render/index.js";
import { HOME, planOf } from "../../fixtures/shapes.js";

const profile = (user?: string) => `version: 1
agents:
  t:
    image: x
${user === undefined ? "" : `    user: ${user}\n`}`;

function errorOf(fn: () => unknown): BottleError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BottleError);
    return err as BottleError;
  }
  throw new Error("expected an error");
}

describe("profile user", () => {
  it("host: the invoking user's uid:gid, on the agent only", () => {
    const plan = planOf(profile("host"), { hostUser: { uid: 1234, gid: 5678 } });
    expect(plan.agent.user).toBe("1234:5678");
    const s = renderCompose(plan).services;
    expect(s.agent!.user).toBe("1234:5678");
    expect(s.firewall!.user).toBe("1234:5678");
  });

  it("a numeric uid:gid as given, host user or not", () => {
    const plan = planOf(profile('"1000:100"'), { hostUser: { uid: 1234, gid: 5678 } });
    expect(plan.agent.user).toBe("1000:100");
    expect(renderCompose(plan).services.agent!.user).toBe("1000:100");
    expect(renderCompose(planOf(profile('"0:0"'))).services.agent!.user).toBe("0:0");
  });

  it("absent: the image's own user (no user key)", () => {
    const plan = planOf(profile());
    expect(plan.agent.user).toBeUndefined();
    expect(renderCompose(plan).services.agent!).not.toHaveProperty("user");
  });

  it.each(["root", '"1000"', '"1000:"', '":1000"', '"01:2"', '"-1:0"', '"1000:1000:1"', '"4294967295:0"', "1000", "Host", '"host:host"'])("refuses %s", (u) => {
    const e = errorOf(() => parseManifest(profile(u), "bottle.yaml", HOME));
    expect(e.code).toBe("manifest");
    expect(e.message).toMatch(/agents\.t\.user: expected (?:"host" or a numeric uid:gid like "1000:1000"|a uid and gid of at most 4294967294)/);
  });
});
