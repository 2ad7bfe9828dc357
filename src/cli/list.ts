import { parseArgs } from "node:util";
import { listBottles } from "../bottles/index.js";
import { EXIT, print, type Verb } from "./output.js";

export const listVerb: Verb = {
  name: "list",
  aliases: ["ls"],
  usage: "bottle list [--json]",
  async run(args) {
    const { values } = parseArgs({ args, options: { json: { type: "boolean", default: false } } });
    const bottles = await listBottles();
    const rows = bottles.map((b) => `${b.slug.padEnd(28)} ${b.state.padEnd(9)} ${b.profile.padEnd(16)} ${b.detail ?? b.containers.map((c) => c.service).join(",")}`);
    print(values.json, { bottles }, bottles.length ? [`${"SLUG".padEnd(28)} ${"STATE".padEnd(9)} ${"PROFILE".padEnd(16)} DETAIL`, ...rows].join("\n") : "no bottles");
    return EXIT.ok;
  },
};
