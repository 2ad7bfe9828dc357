// The trust the proxies use for connections they originate: public roots,
// plus the CA files a config names; a server signed by any other CA is refused.
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type SecureContext } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadUpstreamTrust } from "../../../../src/sidecars/proxy/certs.js";
import { createTestCa } from "../../../helpers/proxy/ca.js";

let port = 0;
let caFile = "";
const server = createServer();

beforeAll(async () => {
  const ca = await createTestCa("upstream trust test CA");
  const leaf = await ca.issue(["upstream.test"]);
  server.setSecureContext({ key: leaf.key, cert: leaf.cert });
  server.on("secureConnection", (s) => s.end());
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  port = (server.address() as { port: number }).port;
  caFile = join(mkdtempSync(join(tmpdir(), "bb-trust-")), "ca.pem");
  writeFileSync(caFile, ca.cert);
});
afterAll(() => server.close());

async function handshake(secureContext: SecureContext): Promise<string> {
  const socket = connect({ host: "127.0.0.1", port, servername: "upstream.test", secureContext });
  try {
    await once(socket, "secureConnect"); // rejects with the socket's error
    return "trusted";
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? "error";
  } finally {
    socket.destroy();
  }
}

describe("upstream trust", () => {
  it("with no CA files, trusts public roots only: a private CA's server is refused", async () => {
    expect(await handshake(await loadUpstreamTrust([]))).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
  });
  it("adds the named CA files to the public roots", async () => {
    expect(await handshake(await loadUpstreamTrust([caFile]))).toBe("trusted");
  });
});
