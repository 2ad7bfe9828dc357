// `npm run bench [-- name ...]`: run the named benchmarks (default: all that
// need nothing beyond this repo) and print a table for each.
import { benchColdStart } from "./cold-start.js";
import { benchDensity } from "./density.js";
import { benchDlp } from "./dlp.js";
import { benchGitGate } from "./git-gate.js";
import { benchLogs, benchPool, benchScale, benchStart } from "./lifecycle.js";
import { benchRender } from "./render.js";
import { benchSupervise } from "./supervise.js";
import { benchSwarm } from "./swarm.js";
import { benchTasks } from "./tasks.js";

const BENCHES: Record<string, () => unknown> = {
  render: benchRender,
  "cold-start": benchColdStart,
  // Lifecycle on the real Docker engine (issue 4); run them by name.
  start: benchStart,
  // Warm-pool claim -> ready (issue 13); real Docker.
  pool: benchPool,
  scale: benchScale,
  logs: benchLogs,
  // Git gate push vs direct SSH push (issue 5); real Docker.
  "git-gate": benchGitGate,
  supervise: benchSupervise,
  // DLP scan throughput and memory (issue 9); no Docker needed.
  dlp: benchDlp,
  // Tasks: bottle_run vs docker exec -d, cursor reads, 100 at once (issue 12); real Docker.
  tasks: benchTasks,
  // 100 idle bottles: start, idle CPU and memory from cgroups, stop (issue 13); real Docker, heavy.
  density: benchDensity,
  // Bottles on a three-node DinD swarm vs compose; 30 bottles spread (issue 14); real Docker, heavy.
  swarm: benchSwarm,
};

/** What `npm run bench` runs with no names: nothing that needs Docker. */
const DEFAULT = ["render", "cold-start"];

const wanted = process.argv.slice(2);
const names = wanted.length ? wanted : DEFAULT;
for (const n of names) {
  const fn = BENCHES[n];
  if (!fn) {
    console.error(`unknown bench "${n}"; known: ${Object.keys(BENCHES).join(", ")}`);
    process.exit(2);
  }
  await fn();
}
