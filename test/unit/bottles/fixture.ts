// A state root and a manifest on disk for lifecycle tests against the fake engine.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import nodePath from "node:path";
import { FakeEngine } from "../../../src/engine/fake.js";

export const MANIFEST = `
version: 1
agents:
  web:
    image: bottle-agent:latest
    network:
      allow: [api.anthropic.com]
    egress:
      routes:
        - host: api.github.com
          path_prefix: /repos/acme/
          header: Authorization
          value: "Bearer \${GITHUB_TOKEN}"
    git:
      upstreams:
        - name: app
          url: git@github.com:acme/app.git
          identity_file: ./id
          known_hosts: "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    supervise: true
  broken:
    image: bottle-agent:latest
    network:
      trust: [./no-such-ca.pem]
`;

export function world(manifest = MANIFEST) {
  const dir = mkdtempSync(nodePath.join(tmpdir(), "bb-fake-"));
  const file = nodePath.join(dir, "bottle.yaml");
  writeFileSync(file, manifest);
  writeFileSync(nodePath.join(dir, "id"), "not a key\n", { mode: 0o600 });
  const root = nodePath.join(dir, "state");
  const engine = new FakeEngine();
  const env: NodeJS.ProcessEnv = { BOTTLE_STATE_DIR: root, BOTTLE_MANIFEST: file };
  return { dir, file, root, engine, env, ctx: { env, engine } };
}
