// What the approval policy knows about a bottle: which credential egress
// sends where (the profile's own routes, never a grant's), the private ranges
// the firewall lets through, and which sidecars exist.
import { credentialBindings, type AssessContext } from "../security/access-policy.js";
import type { Plan } from "./plan.js";

export function policyContext(plan: Plan): AssessContext {
  const routes = (plan.egress?.routes ?? []).filter((r) => r.grantId === undefined).map((r) => ({ host: r.host, port: r.port, path_prefix: r.pathPrefix, value: r.valueTemplate }));
  return { bindings: credentialBindings(routes, plan.egress?.credentialHosts), allowCidrs: plan.firewall.allowCidrs, egress: !!plan.egress, gitGate: !!plan.gitGate };
}
