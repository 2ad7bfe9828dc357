// Tools are declared as data. The *kind* decides the annotations, so a tool
// that changes things cannot be labelled read-only by mistake, and one error
// boundary turns any throw into an `isError` result the model can act on.
import type { McpServer, RegisteredTool } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult, ServerNotification, ServerRequest, ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { z } from "zod";
import { toBottleError } from "../errors.js";
import { logger } from "../log.js";

export type ToolKind = "read" | "write" | "destructive";

export type ToolContext = RequestHandlerExtra<ServerRequest, ServerNotification>;

export interface ToolDefinition<I extends z.ZodObject, O extends z.ZodObject> {
  name: string;
  title: string;
  description: string;
  kind: ToolKind;
  /** Calling twice with the same input has no further effect. */
  idempotent?: boolean;
  input: I;
  output: O;
  handler: (args: z.output<I>, ctx: ToolContext) => Promise<{ structured: z.output<O>; text: string }>;
}

/** Tool calls under way: the server waits for them (aborted) before it exits. */
const running = new Set<Promise<unknown>>();

/**
 * Resolves once every tool call under way has returned (their requests are
 * aborted when the transport closes, so a start rolls back, an exec kills
 * what it ran), or after `ms`; returns how many were still running.
 */
export async function settleToolCalls(ms: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  await Promise.race([Promise.allSettled([...running]), late]);
  clearTimeout(timer);
  return running.size;
}

export function annotationsFor(kind: ToolKind, title: string, idempotent = false): ToolAnnotations {
  return {
    title,
    readOnlyHint: kind === "read",
    destructiveHint: kind === "destructive",
    idempotentHint: kind === "read" ? true : idempotent,
    // Bottles reach the network only through their own allowlist; the tools
    // themselves talk to the local Docker engine.
    openWorldHint: false,
  };
}

export function defineTool<I extends z.ZodObject, O extends z.ZodObject>(def: ToolDefinition<I, O>) {
  return (server: McpServer): RegisteredTool =>
    server.registerTool(
      def.name,
      {
        title: def.title,
        description: def.description,
        // Strict: a tool refuses fields it does not know, even one that takes none.
        inputSchema: def.input.strict(),
        outputSchema: def.output,
        annotations: annotationsFor(def.kind, def.title, def.idempotent),
      },
      (async (args: z.output<I>, ctx: ToolContext): Promise<CallToolResult> => {
        const call = def.handler(args, ctx);
        running.add(call);
        try {
          const { structured, text } = await call;
          return { content: [{ type: "text", text }], structuredContent: structured as Record<string, unknown> };
        } catch (err) {
          const e = toBottleError(err);
          // A call the client cancelled (or a closing server aborted) ends in whatever its abort threw: not a failure.
          if (ctx.signal.aborted) logger.info({ tool: def.name, err: e.message }, "tool call cancelled");
          else if (e.code === "internal") logger.error({ tool: def.name, err: e.message }, "tool failed");
          else logger.info({ tool: def.name, code: e.code }, "tool refused");
          return { isError: true, content: [{ type: "text", text: e.display }] };
        } finally {
          running.delete(call);
        }
      }) as never,
    );
}
