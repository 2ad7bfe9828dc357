// `npm run bench [-- name ...]`: run the named benchmarks (default: all that
// need nothing beyond this repo) and print a table for each.
import { benchColdStart } from "./cold-start.js";
import { benchRender } from "./render.js";

const BENCHES: Record<string, () => unknown> = {
  render: benchRender,
  "cold-start": benchColdStart,
};

const wanted = process.argv.slice(2);
const names = wanted.length ? wanted : Object.keys(BENCHES);
for (const n of names) {
  const fn = BENCHES[n];
  if (!fn) {
    console.error(`unknown bench "${n}"; known: ${Object.keys(BENCHES).join(", ")}`);
    process.exit(2);
  }
  await fn();
}
