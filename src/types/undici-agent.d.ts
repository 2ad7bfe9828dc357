// undici's dispatcher Agent by its own file (see createTunnelDispatcher): the
// same class the package's index exports, without the rest of the package.
declare module "undici/lib/dispatcher/agent.js" {
  import type { Agent } from "undici";
  const AgentClass: typeof Agent;
  export default AgentClass;
}
