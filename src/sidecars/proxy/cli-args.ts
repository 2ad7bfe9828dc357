// Command line of the proxy bundle (what compose renders); kept apart from
// main.ts so it can be tested without starting a server.
import { parseArgs } from "node:util";
import { ConfigError } from "./config-file.js";

export const USAGE = "usage: proxy.js firewall|egress --config <file> --port <n>";

export function parseProxyArgs(argv: readonly string[]): { command: "firewall" | "egress"; config: string; port: number } {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch {
    throw new ConfigError(USAGE);
  }
  const [command, ...extra] = parsed.positionals;
  const port = Number(parsed.values.port);
  if ((command !== "firewall" && command !== "egress") || extra.length || !parsed.values.config || !Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(USAGE);
  return { command, config: parsed.values.config, port };
}

const parse = (argv: readonly string[]) => parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: { config: { type: "string" }, port: { type: "string" } } });
