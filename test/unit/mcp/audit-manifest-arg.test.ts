// The `manifest` argument of bottle_render / bottle_start names any path the
// server can read. A device or FIFO must not hang or exhaust the server, and
// a file that is not a manifest (a .env, a key) must not be echoed back.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_MANIFEST_BYTES } from "../../../src/manifest/load.js";
import { createServer } from "../../../src/mcp/server.js";

const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-audit-manifest-"));
const SECRET = "ghp_auditManifestArg000000000000000000000";

describe("bottle_render/bottle_start manifest argument", () => {
  let client: Client;
  const text = (r: unknown) => (r as { content: Array<{ text: string }> }).content[0]!.text;
  beforeAll(async () => {
    process.env.BOTTLE_STATE_DIR = nodePath.join(dir, "state");
    const server = createServer();
    const [a, b] = InMemoryTransport.createLinkedPair();
    client = new Client({ name: "audit", version: "0" });
    await Promise.all([server.connect(a), client.connect(b)]);
  });
  afterAll(async () => client?.close());

  it("refuses a character device at once instead of reading it forever", async () => {
    for (const name of ["bottle_render", "bottle_start"]) {
      const t0 = Date.now();
      const r = await client.callTool({ name, arguments: { profile: "a", manifest: "/dev/zero" } });
      expect(r.isError, name).toBe(true);
      expect(text(r)).toContain("/dev/zero: not a regular file");
      expect(Date.now() - t0).toBeLessThan(2_000);
    }
  });

  it("refuses a FIFO (which would block the whole server until someone writes to it)", async () => {
    const fifo = nodePath.join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const r = await client.callTool({ name: "bottle_render", arguments: { profile: "a", manifest: fifo } });
    expect(r.isError).toBe(true);
    expect(text(r)).toContain("not a regular file");
  });

  it("refuses a file far bigger than any manifest", async () => {
    const big = nodePath.join(dir, "big.yaml");
    writeFileSync(big, `# ${"x".repeat(MAX_MANIFEST_BYTES)}\n`);
    const r = await client.callTool({ name: "bottle_render", arguments: { profile: "a", manifest: big } });
    expect(r.isError).toBe(true);
    expect(text(r)).toContain(`over ${MAX_MANIFEST_BYTES} bytes`);
  });

  it("does not echo the content of a file that is not a manifest", async () => {
    for (const content of [`GITHUB_TOKEN=${SECRET}\n`, `${SECRET}\n`, `export GITHUB_TOKEN=${SECRET}\nOTHER=1\n`]) {
      const f = nodePath.join(dir, "creds.env");
      writeFileSync(f, content);
      const r = await client.callTool({ name: "bottle_render", arguments: { profile: "a", manifest: f } });
      expect(r.isError).toBe(true);
      expect(text(r)).toContain('expected a mapping with "version: 1" and "agents:", got plain text');
      expect(JSON.stringify(r)).not.toContain(SECRET);
      expect(JSON.stringify(r)).not.toContain(SECRET.slice(0, 12));
    }
  });

  it("the server still answers afterwards", async () => {
    const r = await client.callTool({ name: "bottle_list", arguments: {} });
    expect(r.isError).toBeFalsy();
  });
});
