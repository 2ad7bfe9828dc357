// The sidecars' log lines, as the host reads them: one JSON object per line
// with ts, mode and event (sidecars/kit/log.ts writes them). The host counts
// reload events after a SIGHUP and parses the git gate's push records.
import { z } from "zod";

export const sidecarLogLineSchema = z.looseObject({ ts: z.string(), mode: z.string(), event: z.string() });

export const LOG_EVENTS = {
  /** A proxy took a new config after SIGHUP. */
  configReloaded: "config_reloaded",
  /** A proxy kept its old config: the new one did not validate. */
  configReloadRefused: "config_reload_refused",
  /** The git gate's record of one ref update of a push. */
  push: "push",
} as const;

/** How an event appears inside a log line (JSON.stringify of the event field). */
export const eventField = (event: string) => `"event":${JSON.stringify(event)}`;
