// The proxy sidecar's entry point (bundled to /app/proxy.js in Dockerfile.egress):
//   proxy.js firewall --config <file> --port <n>
//   proxy.js egress   --config <file> --port <n>
import { LOG_EVENTS } from "../../contracts/log-line.js";
import { parseProxyArgs } from "./cli-args.js";
import { ReloadableState } from "./config-file.js";
import type { ProxyLimitsConfig } from "../../contracts/proxy-limits.js";
import { buildEgressState, createEgress, type EgressState } from "./egress.js";
import { buildFirewallState, createFirewall, type FirewallState } from "./firewall.js";
import { createEventLog, flushLog } from "../kit/log.js";
import { signalReady } from "../kit/ready.js";
import { toProxyLimits, type ProxyServer } from "./proxy-server.js";

// Node's default action for SIGHUP is to exit, and the host may reload us
// while we are still starting (an approval right after start). Take the
// signal over before anything else runs; a reload asked for before the first
// config is loaded is done once it is.
let hangupPending = false;
let onHangup = () => {
  hangupPending = true;
};
process.on("SIGHUP", () => onHangup());

async function serve(mode: "firewall" | "egress", configFile: string, port: number): Promise<void> {
  const log = createEventLog(mode);
  let proxy: ProxyServer<unknown> | undefined;
  // The ready file also counts reloads, so the host sees one land without reading logs.
  const reloads = { reloads: 0, refused: 0 };
  let listening = false;
  const onReload = (limits: () => ProxyLimitsConfig) => (err?: Error) => {
    if (err) {
      reloads.refused++;
      if (listening) signalReady(reloads);
      return log(LOG_EVENTS.configReloadRefused, { file: configFile, message: err.message });
    }
    proxy?.setLimits(toProxyLimits(limits()));
    reloads.reloads++;
    if (listening) signalReady(reloads);
    log(LOG_EVENTS.configReloaded, { file: configFile });
  };
  if (mode === "firewall") {
    const state: ReloadableState<FirewallState> = await ReloadableState.create(
      () => buildFirewallState(configFile, process.env, log),
      onReload(() => state.current.config.limits),
    );
    proxy = createFirewall(state, log) as ProxyServer<unknown>;
    onHangup = () => void state.reload();
  } else {
    const state: ReloadableState<EgressState> = await ReloadableState.create(
      () => buildEgressState(configFile, process.env),
      onReload(() => state.current.config.limits),
    );
    proxy = createEgress(state, log) as ProxyServer<unknown>;
    onHangup = () => void state.reload();
  }
  if (hangupPending) onHangup();
  await proxy.listen(port);
  log("listening", { port });
  listening = true;
  signalReady(reloads);
  // No settleHeap() here (supervise and the git gate have it): measured with
  // `npm run bench:proxy` on a quiet machine, the proxies served a quarter
  // fewer injected requests after that collection (5.2-5.4x mitmproxy with
  // it, 6.8x without; 0.23-0.28 vs 0.20 ms of CPU per request), for ~4 MB.
  const stop = () => {
    log("stopping", {});
    void proxy.close();
    // Open tunnels must not hold the container past compose's grace period.
    setTimeout(() => process.exit(0), 500).unref();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

async function main(argv: readonly string[]): Promise<number> {
  const args = parseProxyArgs(argv);
  await serve(args.command, args.config, args.port);
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    // Startup failures (bad config, unreadable CA) go out as one JSON line and a non-zero exit.
    const message = err instanceof Error ? err.message : String(err);
    flushLog();
    process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), event: "fatal", message })}\n`);
    process.exit(2);
  },
);
