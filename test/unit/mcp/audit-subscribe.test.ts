// resources/subscribe takes only our resource URIs, and a bounded number of
// them: every proposals subscription costs the server a directory read per tick.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "../../../src/mcp/server.js";
import { MAX_SUBSCRIPTIONS, watchProposals } from "../../../src/mcp/watch.js";

describe("resources/subscribe", () => {
  let client: Client;
  let stop: () => void;
  beforeAll(async () => {
    process.env.BOTTLE_STATE_DIR = nodePath.join(mkdtempSync(nodePath.join(tmpdir(), "bb-audit-sub-")), "state");
    const server = createServer();
    stop = watchProposals(server);
    const [a, b] = InMemoryTransport.createLinkedPair();
    client = new Client({ name: "audit", version: "0" });
    await Promise.all([server.connect(a), client.connect(b)]);
  });
  afterAll(async () => {
    stop?.();
    await client?.close();
  });
  const refusal = (uri: string) =>
    client.subscribeResource({ uri }).then(
      () => undefined,
      (e: unknown) => e as McpError,
    );

  it("refuses what is not one of our resources", async () => {
    for (const uri of ["https://example.test/x", "file:///etc/passwd", "bottle://UP/proposals", "bottle://a/../b/proposals", "bottle://a/secrets", "bottle://a/tasks/../../x"]) {
      const e = await refusal(uri);
      expect(e?.code, uri).toBe(-32602);
      expect(e?.message, uri).toMatch(/not a bot-bottle resource/);
    }
    for (const uri of ["bottle://a/proposals", "bottle://a/tasks/tabc-123456", "bottle://a/metadata"]) expect(await refusal(uri), uri).toBeUndefined();
  });

  it(`holds at most ${MAX_SUBSCRIPTIONS} at once; unsubscribing frees room, and re-subscribing one held is fine`, async () => {
    for (let i = 0; i < MAX_SUBSCRIPTIONS - 2; i++) await client.subscribeResource({ uri: `bottle://b${i}/proposals` });
    expect((await refusal("bottle://over/proposals"))?.message).toMatch(/at most 1000 subscriptions/);
    expect(await refusal("bottle://b0/proposals")).toBeUndefined();
    await client.unsubscribeResource({ uri: "bottle://b0/proposals" });
    expect(await refusal("bottle://over/proposals")).toBeUndefined();
  });
});
