import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { renderBottle, renderCompose, renderPipelockConfig } from "../../../src/render/index.js";
import { scalar, toYaml } from "../../../src/render/yaml.js";
import { planOf, SHAPES, type Shape } from "../../fixtures/shapes.js";

const roundTrip = (v: Record<string, unknown>) => {
  const text = toYaml(v);
  // Compose reads YAML 1.2; older tools read 1.1. Both must see the same data.
  expect(parse(text, { version: "1.2" })).toEqual(v);
  expect(parse(text, { version: "1.1" })).toEqual(v);
};

describe("YAML emitter", () => {
  it.each(Object.keys(SHAPES) as Shape[])("round-trips the %s compose file and pipelock config", (shape) => {
    const plan = planOf(shape, { hostUser: { uid: 0, gid: 0 } });
    roundTrip(JSON.parse(JSON.stringify(renderCompose(plan))));
    roundTrip(renderPipelockConfig(plan));
  });

  it("quotes every string a YAML reader could take for something else", () => {
    const tricky = [
      "0:0",
      "1000:1000",
      "yes",
      "No",
      "on",
      "OFF",
      "true",
      "null",
      "~",
      "",
      "3128",
      "1e3",
      "0x1f",
      ".inf",
      "- a",
      "a: b",
      "a #b",
      "#x",
      "*.npmjs.org",
      "&a",
      "!tag",
      "@at",
      "`x`",
      "{a}",
      "[a]",
      "a,b",
      "%x",
      "'q'",
      '"q"',
      "line\nbreak",
      "tab\tx",
      " lead",
      "trail ",
      "ünïcode",
      "12:30",
      "=",
      "<<",
      "-",
      "?",
      "a:",
    ];
    const v = Object.fromEntries(tricky.map((s, i) => [`k${i}`, s]));
    roundTrip({ ...v, list: tricky, nested: { deeper: [{ a: "yes", b: [] }, {}], empty: {} } });
    expect(scalar("0:0")).toBe('"0:0"');
    expect(scalar("local/busybox")).toBe("local/busybox");
  });

  it("keeps the compose file readable (block style, plain where safe)", () => {
    const yaml = renderBottle(planOf("minimal")).composeYaml;
    expect(yaml).toContain("\n    image: bot-bottle/egress:");
    expect(yaml).toContain("\n      - sleep\n      - infinity\n");
    expect(yaml).toContain("\n      - type: bind\n        source: /state/minimal-7f3a/trust\n");
  });
});
