import { parseArgs } from "node:util";
import { reviewManifest, runDoctor, warningText } from "../bottles/index.js";
import { EXIT, indent, type Verb } from "./output.js";

export const doctorVerb: Verb = {
  name: "doctor",
  usage:
    "bottle doctor [--manifest FILE] [--json]\n                                    check Node, Docker, Compose v2, the state dir and the manifest\n                                    (if one is named or ./bottle.yaml exists)",
  async run(args) {
    const { values } = parseArgs({ args, options: { manifest: { type: "string", short: "m" }, json: { type: "boolean", default: false } } });
    const manifest = reviewManifest(values.manifest ? { manifest: values.manifest } : {});
    const checks = await runDoctor({ engines: manifest?.engines ?? [] });
    const ok = checks.every((c) => c.ok) && (manifest?.ok ?? true);
    if (values.json) process.stdout.write(`${JSON.stringify({ ok, checks, ...(manifest ? { manifest } : {}) }, null, 2)}\n`);
    else {
      for (const c of manifest ? [...checks, { name: "manifest", ok: manifest.ok, detail: manifest.detail, ...(manifest.fix ? { fix: manifest.fix } : {}) }] : checks) {
        process.stdout.write(`${c.ok ? "ok     " : "problem"}  ${c.name.padEnd(8)} ${c.detail}\n`);
        if (!c.ok && c.fix) process.stdout.write(`         ${"".padEnd(8)} fix: ${c.fix}\n`);
      }
      for (const w of manifest?.warnings ?? []) process.stdout.write(`warning  ${"manifest".padEnd(8)} ${indent(`profile "${w.profile}": ${warningText(w)}`, 18)}\n`);
    }
    return ok ? EXIT.ok : EXIT.failed;
  },
};
