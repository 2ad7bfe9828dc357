// A closing server aborts the tool calls under way and waits for them to
// undo what they started before the process exits (runStdioServer).
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { describe, expect, it, vi } from "vitest";
import { logger } from "../../../src/log.js";
import { z } from "zod";
import { defineTool, settleToolCalls } from "../../../src/mcp/define-tool.js";

function slowUndo(undoMs: number, log: string[]) {
  return defineTool({
    name: "slow_undo",
    title: "Slow undo",
    description: "Waits until aborted, then takes undoMs to undo.",
    kind: "write",
    input: z.object({}),
    output: z.object({ ok: z.boolean() }),
    handler: async (_args, ctx) => {
      log.push("started");
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
      log.push("aborted");
      await new Promise((r) => setTimeout(r, undoMs));
      log.push("undone");
      throw new Error("cancelled");
    },
  });
}

async function connected(undoMs: number, log: string[]) {
  const server = new McpServer({ name: "t", version: "0" });
  slowUndo(undoMs, log)(server);
  const [a, b] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "c", version: "0" });
  await Promise.all([server.connect(a), client.connect(b)]);
  void client.callTool({ name: "slow_undo", arguments: {} }).catch(() => {});
  while (!log.includes("started")) await new Promise((r) => setTimeout(r, 5));
  return server;
}

describe("settleToolCalls", () => {
  it("resolves once every aborted call has finished undoing", async () => {
    const log: string[] = [];
    const server = await connected(300, log);
    await server.close();
    expect(log).toEqual(["started", "aborted"]);
    const t0 = Date.now();
    expect(await settleToolCalls(5_000)).toBe(0);
    expect(log).toEqual(["started", "aborted", "undone"]);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it("gives up after its deadline and says how many are still running", async () => {
    const log: string[] = [];
    const server = await connected(1_000, log);
    await server.close();
    expect(await settleToolCalls(50)).toBe(1);
    expect(await settleToolCalls(5_000)).toBe(0);
  });

  it("an aborted call is logged as cancelled, not as a tool failure", async () => {
    const error = vi.spyOn(logger, "error");
    const info = vi.spyOn(logger, "info");
    const log: string[] = [];
    const server = await connected(10, log);
    await server.close();
    await settleToolCalls(5_000);
    expect(error).not.toHaveBeenCalled();
    expect(info).toHaveBeenCalledWith({ tool: "slow_undo", err: "cancelled" }, "tool call cancelled");
    error.mockRestore();
    info.mockRestore();
  });

  it("returns at once when nothing runs", async () => {
    const t0 = Date.now();
    expect(await settleToolCalls(5_000)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(100);
  });
});
