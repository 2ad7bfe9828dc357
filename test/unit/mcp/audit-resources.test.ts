// Resource reads the caller can fix answer with the MCP code that says so
// (-32002 resource not found, -32602 invalid params) and our hint, not as a
// -32603 internal error; the session goes on.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "../../../src/mcp/server.js";

describe("resource read errors", () => {
  let client: Client;
  beforeAll(async () => {
    process.env.BOTTLE_STATE_DIR = nodePath.join(mkdtempSync(nodePath.join(tmpdir(), "bb-audit-res-")), "state");
    const server = createServer();
    const [a, b] = InMemoryTransport.createLinkedPair();
    client = new Client({ name: "audit", version: "0" });
    await Promise.all([server.connect(a), client.connect(b)]);
  });
  afterAll(async () => client?.close());

  const failure = (uri: string) =>
    client.readResource({ uri }).then(
      () => undefined,
      (e: unknown) => e as McpError,
    );

  it("an unknown bottle or task is 'resource not found' with the way forward", async () => {
    for (const uri of ["bottle://no-such/metadata", "bottle://no-such/logs", "bottle://no-such/compose", "bottle://no-such/proposals", "bottle://no-such/tasks/tabc-123456"]) {
      const e = await failure(uri);
      expect(e, uri).toBeInstanceOf(McpError);
      expect(e!.code, uri).toBe(-32002);
      expect(e!.message, uri).toContain('no bottle "no-such"');
      expect(e!.message, uri).toContain("bottle_start");
    }
  });

  it("a malformed slug or task id is 'invalid params'", async () => {
    for (const uri of ["bottle://a_b/metadata", "bottle://a..b/tasks/tabc-123456", "bottle://%E2%80%AEx/logs"]) {
      const e = await failure(uri);
      expect(e!.code, uri).toBe(-32602);
      expect(e!.message, uri).toMatch(/invalid (slug|task id)/);
    }
    expect((await client.listResources()).resources).toEqual([]);
  });
});
