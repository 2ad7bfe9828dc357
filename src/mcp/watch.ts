// Push, not poll: clients that subscribe to bottle://{slug}/proposals get a
// resources/updated notification (and a log message) when the agent files a
// proposal; subscribers of bottle://{slug}/tasks/{task_id} get one when the
// task ends. The same tick withdraws expired grants.
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { ErrorCode, McpError, SubscribeRequestSchema, UnsubscribeRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { contextOf, expireGrants, proposalFiles, taskEnded } from "../bottles/index.js";
import { quote } from "../contracts/escape.js";
import { logger } from "../log.js";

const URI = /^bottle:\/\/([a-z0-9][a-z0-9-]{0,39})\/proposals$/;
const TASK_URI = /^bottle:\/\/([a-z0-9][a-z0-9-]{0,39})\/tasks\/([a-z0-9-]{1,64})$/;
const TICK_MS = 250;
/** Any of our resources (only proposals and tasks ever change in a way we announce). */
const OURS = /^bottle:\/\/[a-z0-9][a-z0-9-]{0,39}\/(logs|compose|metadata|proposals|tasks\/[a-z0-9-]{1,64})$/;
/** Subscriptions one session may hold: each proposals one costs a directory read per tick. */
export const MAX_SUBSCRIPTIONS = 1000;

export function watchProposals(server: McpServer): () => void {
  const subscribed = new Map<string, Set<string>>(); // uri -> proposal files seen
  const tasks = new Set<string>(); // task uris whose end is not yet announced
  const low = server.server;

  const seen = async (slug: string) => new Set(await proposalFiles(slug));

  low.setRequestHandler(SubscribeRequestSchema, async (req) => {
    if (!OURS.test(req.params.uri))
      throw new McpError(ErrorCode.InvalidParams, `not a bot-bottle resource: ${quote(req.params.uri.slice(0, 200))}; subscribe to bottle://{slug}/proposals or bottle://{slug}/tasks/{task_id}`);
    if (!subscribed.has(req.params.uri) && !tasks.has(req.params.uri) && subscribed.size + tasks.size >= MAX_SUBSCRIPTIONS)
      throw new McpError(ErrorCode.InvalidParams, `at most ${MAX_SUBSCRIPTIONS} subscriptions at once; unsubscribe from some first`);
    const m = URI.exec(req.params.uri);
    if (m) subscribed.set(req.params.uri, await seen(m[1]!));
    if (TASK_URI.test(req.params.uri)) tasks.add(req.params.uri);
    return {};
  });
  low.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscribed.delete(req.params.uri);
    tasks.delete(req.params.uri);
    return {};
  });

  let busy = false;
  let lastSweep = 0;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void (async () => {
      for (const [uri, before] of subscribed) {
        const slug = URI.exec(uri)![1]!;
        const now = await seen(slug);
        const fresh = [...now].filter((f) => !before.has(f));
        subscribed.set(uri, now);
        if (!fresh.length) continue;
        await low.sendResourceUpdated({ uri }).catch(() => {});
        await server
          .sendLoggingMessage({
            level: "notice",
            logger: "bot-bottle",
            data: `bottle ${slug} filed ${fresh.length} access request(s): ${fresh
              .slice(0, 20)
              .map((f) => f.replace(/\.json$/, ""))
              .join(", ")}${fresh.length > 20 ? ", …" : ""}; see bottle_proposals`,
          })
          .catch(() => {});
      }
      for (const uri of tasks) {
        const [, slug, id] = TASK_URI.exec(uri)!;
        // A task or bottle that does not exist (any more) is announced once too: the reader finds out why.
        const ended = await taskEnded(slug!, id!).catch(() => true);
        if (!ended) continue;
        tasks.delete(uri);
        await low.sendResourceUpdated({ uri }).catch(() => {});
      }
      if (Date.now() - lastSweep > 1000) {
        lastSweep = Date.now();
        // A busy bottle is left to the next tick (the CLI and the tools sweep too).
        const n = await expireGrants(contextOf(), { waitMs: 0 }).catch((err: Error) => {
          logger.warn({ err: err.message }, "expiring grants failed");
          return 0;
        });
        if (n) logger.info({ n }, "withdrew expired grants");
      }
    })().finally(() => {
      busy = false;
    });
  }, TICK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
