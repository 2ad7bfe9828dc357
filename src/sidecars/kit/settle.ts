// One memory-reducing garbage collection once a sidecar serves. Start-up
// (bundle evaluation, config parsing, CA and DLP tables) leaves V8's young
// generation grown to its maximum (16 MB of semi-spaces) and garbage in the
// old one; an idle process never collects again, so it would keep that
// memory for the bottle's whole life (a proxy idles at ~25 MB anonymous
// memory instead of ~18). V8 gives pages back only in a collection that is
// told to reduce memory, which `gc()` with the last-resort flavour is; its
// young generation can grow again under load, unlike with a smaller
// --max-semi-space-size, which cost the proxy a fifth more CPU per request.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

type Gc = (options: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;

/** The engine's gc(), without leaving it exposed: only a context made while the flag is on gets it. */
function engineGc(): Gc | undefined {
  setFlagsFromString("--expose-gc");
  try {
    return runInNewContext("gc") as Gc;
  } catch {
    return undefined;
  } finally {
    setFlagsFromString("--no-expose-gc");
  }
}

/** Collect with memory reduction after `delayMs` (a timer that never keeps the process alive); returns the timer. */
export function settleHeap(delayMs = 1_000): NodeJS.Timeout {
  return setTimeout(() => engineGc()?.({ type: "major", execution: "sync", flavor: "last-resort" }), delayMs).unref();
}
