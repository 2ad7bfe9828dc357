// Resources: bottle://{slug}/logs | compose | metadata, listed from the state
// root, with slug completion.
import { type McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { bottleLogs, bottleSlugs, inbox, inboxJson, readBottleFile, safeJson } from "../bottles/index.js";

type Kind = "logs" | "compose" | "metadata" | "proposals";

const KINDS: Record<Kind, { mimeType: string; description: string }> = {
  logs: { mimeType: "text/plain", description: "The last 500 log lines of every service (live while running, saved after stop)." },
  compose: { mimeType: "application/yaml", description: "The bottle's rendered docker-compose.yml (no secret values)." },
  metadata: { mimeType: "application/json", description: "The bottle's metadata.json: state, services, networks, subnets." },
  proposals: { mimeType: "application/json", description: "The agent's access requests and their decisions. Subscribe to be notified when one arrives." },
};

async function read(kind: Kind, slug: string): Promise<string> {
  switch (kind) {
    case "logs":
      return (await bottleLogs({ slug, tail: 500 })).lines.join("\n");
    case "compose":
    case "metadata":
      return readBottleFile(slug, kind);
    case "proposals":
      return safeJson(inboxJson(await inbox({ slug, includeDecided: true })), 2);
  }
}

export function registerResources(server: McpServer): void {
  for (const kind of Object.keys(KINDS) as Kind[]) {
    const { mimeType, description } = KINDS[kind];
    server.registerResource(
      `bottle-${kind}`,
      new ResourceTemplate(`bottle://{slug}/${kind}`, {
        list: async () => ({
          resources: bottleSlugs().map((slug) => ({ uri: `bottle://${slug}/${kind}`, name: `${slug} ${kind}`, mimeType })),
        }),
        complete: { slug: async (value) => bottleSlugs().filter((s) => s.startsWith(value)) },
      }),
      { title: `Bottle ${kind}`, description, mimeType },
      async (uri, vars) => ({ contents: [{ uri: uri.href, mimeType, text: await read(kind, String(vars.slug)) }] }),
    );
  }
}
