// Resources: bottle://{slug}/logs | compose | metadata | proposals, listed
// from the state root, with slug completion; bottle://{slug}/tasks/{task_id}
// is a task's output (subscribe to hear when it ends: watch.ts).
import { type McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { allTaskRefs, bottleLogs, bottleSlugs, inbox, inboxJson, readBottleFile, safeJson, taskOutputText } from "../bottles/index.js";
import { toBottleError } from "../errors.js";

type Kind = "logs" | "compose" | "metadata" | "proposals";

/** MCP's code for a resource that does not exist (the spec's "Resource not found"). */
export const RESOURCE_NOT_FOUND = -32002;

/**
 * A read the caller can fix (unknown bottle or task, bad slug) answers with
 * that error's code and hint, not as a -32603 "internal error".
 */
async function answer<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    const e = toBottleError(err);
    if (e.code === "internal") throw err;
    throw new McpError(e.code === "unknown-slug" ? RESOURCE_NOT_FOUND : ErrorCode.InvalidParams, e.display);
  }
}

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
      async (uri, vars) => answer(async () => ({ contents: [{ uri: uri.href, mimeType, text: await read(kind, String(vars.slug)) }] })),
    );
  }
  server.registerResource(
    "bottle-task",
    new ResourceTemplate("bottle://{slug}/tasks/{task_id}", {
      list: async () => ({
        resources: (await allTaskRefs()).map(({ slug, taskId }) => ({ uri: `bottle://${slug}/tasks/${taskId}`, name: `${slug} task ${taskId}`, mimeType: "text/plain" })),
      }),
      complete: {
        slug: async (value) => bottleSlugs().filter((s) => s.startsWith(value)),
        task_id: async (value, context) => {
          const slug = context?.arguments?.slug;
          return (await allTaskRefs()).filter((t) => (slug === undefined || t.slug === slug) && t.taskId.startsWith(value)).map((t) => t.taskId);
        },
      },
    }),
    {
      title: "Bottle task output",
      description: "A task's output (stdout and stderr together, the newest 1 MiB). Subscribe to be notified when the task ends; bottle_task reads it by cursor.",
      mimeType: "text/plain",
    },
    async (uri, vars) => answer(async () => ({ contents: [{ uri: uri.href, mimeType: "text/plain", text: await taskOutputText(String(vars.slug), String(vars.task_id)) }] })),
  );
}
