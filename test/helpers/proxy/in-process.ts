// The firewall and egress proxies in-process on loopback, as the unit tests
// drive them: write the config file, build the state the way the sidecar's
// entry point does, listen on an ephemeral port.
import { writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { createEventLog } from "../../../src/sidecars/kit/log.js";
import { ReloadableState } from "../../../src/sidecars/proxy/config-file.js";
import type { Resolver } from "../../../src/sidecars/proxy/destination.js";
import { buildEgressState, createEgress, type EgressState } from "../../../src/sidecars/proxy/egress.js";
import { buildFirewallState, createFirewall, type FirewallState } from "../../../src/sidecars/proxy/firewall.js";
import type { ProxyServer } from "../../../src/sidecars/proxy/proxy-server.js";

export interface RunningProxy<S> {
  proxy: ProxyServer<unknown>;
  /** http://127.0.0.1:<port>, to use as HTTP(S)_PROXY. */
  url: string;
  state: ReloadableState<S>;
}

interface Options {
  /** The sidecar's environment (credentials, canaries). */
  env: NodeJS.ProcessEnv;
  /** Every decision-log line is pushed here. */
  logs: string[];
  onReload?: (err?: Error) => void;
}

async function listen<S>(proxy: ProxyServer<unknown>, state: ReloadableState<S>): Promise<RunningProxy<S>> {
  await proxy.listen(0, "127.0.0.1");
  return { proxy, state, url: `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}` };
}

export async function startFirewall(file: string, config: object, o: Options & { resolve: Resolver }): Promise<RunningProxy<FirewallState>> {
  await writeFile(file, JSON.stringify(config));
  const log = createEventLog("firewall", (l) => o.logs.push(l));
  const state = await ReloadableState.create(() => buildFirewallState(file, o.env, log, o.resolve), o.onReload ?? (() => {}));
  return listen(createFirewall(state, log) as ProxyServer<unknown>, state);
}

export async function startEgress(file: string, config: object, o: Options): Promise<RunningProxy<EgressState>> {
  await writeFile(file, JSON.stringify(config));
  const log = createEventLog("egress", (l) => o.logs.push(l));
  const state = await ReloadableState.create(() => buildEgressState(file, o.env), o.onReload ?? (() => {}));
  return listen(createEgress(state, log, o.env) as ProxyServer<unknown>, state);
}
