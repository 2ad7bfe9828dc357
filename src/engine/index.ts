// Which engine runs bottles. One today; the interface is the seam for more.
import { BottleError } from "../errors.js";
import { ComposeEngine } from "./compose.js";
import type { Engine } from "./engine.js";
import { SwarmEngine } from "./swarm.js";

export * from "./engine.js";
export { ComposeEngine } from "./compose.js";
export { SwarmEngine } from "./swarm.js";

export function engineFor(env: NodeJS.ProcessEnv = process.env): Engine {
  const kind = env.BOTTLE_ENGINE ?? "compose";
  if (kind === "compose") return new ComposeEngine(env);
  if (kind === "swarm") return new SwarmEngine(env);
  throw new BottleError("bad-input", `unknown engine "${kind}" in BOTTLE_ENGINE`, "Known engines: compose, swarm.");
}
