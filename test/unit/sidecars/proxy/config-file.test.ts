import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { egressConfigSchema } from "../../../../src/contracts/egress.js";
import { firewallConfigSchema } from "../../../../src/contracts/firewall.js";
import { parseProxyArgs } from "../../../../src/sidecars/proxy/cli-args.js";
import { ConfigError, loadConfigFile, ReloadableState } from "../../../../src/sidecars/proxy/config-file.js";

const firewall = {
  version: 1,
  allow: ["a.test"],
  allow_cidrs: ["10.214.1.0/24"],
  intercept: { enabled: false, ca_cert: "/x", ca_key: "/y", passthrough: [] },
  dlp: { enabled: true, canary_env: [], canary_exempt: [] },
};

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempFile(content: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "proxy-config-"));
  dirs.push(dir);
  const file = join(dir, "config.json");
  await writeFile(file, typeof content === "string" ? content : JSON.stringify(content));
  return file;
}

describe("loadConfigFile", () => {
  it("loads and validates a firewall config (defaults applied)", async () => {
    const cfg = await loadConfigFile(await tempFile(firewall), firewallConfigSchema);
    expect(cfg.allow).toEqual(["a.test"]);
    expect(cfg.upstream_ca_files).toEqual([]);
  });
  it("refuses unknown keys, bad CIDRs, bad JSON and missing files with the path of the problem", async () => {
    await expect(loadConfigFile(await tempFile({ ...firewall, extra: 1 }), firewallConfigSchema)).rejects.toThrow(/not a valid config/);
    await expect(loadConfigFile(await tempFile({ ...firewall, allow_cidrs: ["10.214.1.1/24"] }), firewallConfigSchema)).rejects.toThrow(/allow_cidrs\.0/);
    await expect(loadConfigFile(await tempFile("{nope"), firewallConfigSchema)).rejects.toThrow(/not valid JSON/);
    await expect(loadConfigFile("/nonexistent/config.json", firewallConfigSchema)).rejects.toThrow(ConfigError);
  });
  it("validates egress routes with the shared route schema", async () => {
    const egress = {
      version: 1,
      upstream_proxy: "http://fw:3128",
      ca_cert: "/c",
      ca_key: "/k",
      upstream_ca_files: [],
      routes: [{ name: "r", host: "api.test", path_prefix: "/", header: "Authorization", value: "Bearer literal" }],
    };
    await expect(loadConfigFile(await tempFile(egress), egressConfigSchema)).rejects.toThrow(/routes\.0\.value/);
  });
});

describe("ReloadableState", () => {
  it("swaps in a good config and keeps the old one when the new file is broken", async () => {
    const file = await tempFile(firewall);
    const results: Array<string | undefined> = [];
    const state = await ReloadableState.create(
      () => loadConfigFile(file, firewallConfigSchema),
      (err) => results.push(err?.message),
    );
    expect(state.current.allow).toEqual(["a.test"]);

    // Written by rename, as the host does.
    await writeFile(`${file}.tmp`, JSON.stringify({ ...firewall, allow: ["b.test"] }));
    await rename(`${file}.tmp`, file);
    await state.reload();
    expect(state.current.allow).toEqual(["b.test"]);

    await writeFile(`${file}.tmp`, JSON.stringify({ ...firewall, allow: ["not a host!"] }));
    await rename(`${file}.tmp`, file);
    await state.reload();
    expect(state.current.allow).toEqual(["b.test"]);
    expect(results[0]).toBeUndefined();
    expect(results[1]).toMatch(/allow\.0/);
  });
});

describe("parseProxyArgs", () => {
  it("accepts the commands compose renders", () => {
    expect(parseProxyArgs(["firewall", "--config", "/etc/c.json", "--port", "3128"])).toEqual({ command: "firewall", config: "/etc/c.json", port: 3128 });
    expect(parseProxyArgs(["egress", "--port=3129", "--config", "/etc/e.json"])).toEqual({ command: "egress", config: "/etc/e.json", port: 3129 });
  });
  it("refuses incomplete or unknown command lines", () => {
    expect(() => parseProxyArgs(["egress", "--port", "1"])).toThrow(/usage/);
    expect(() => parseProxyArgs(["firewall", "--config", "x", "--port", "0"])).toThrow(/usage/);
    expect(() => parseProxyArgs(["health", "--port", "3128"])).toThrow(/usage/);
    expect(() => parseProxyArgs(["firewall", "--config", "x", "--port", "1", "--bogus", "y"])).toThrow(/usage/);
    expect(() => parseProxyArgs([])).toThrow(/usage/);
  });
});
