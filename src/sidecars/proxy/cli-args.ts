// Command line of the proxy bundle; kept apart from main.ts so it can be tested without starting a server.
import { ConfigError } from "./config-file.js";

export const USAGE = "usage: proxy.js firewall|egress --config <file> --port <n> | proxy.js health --port <n>";

export function parseArgs(argv: readonly string[]): { command: string; config?: string; port: number } {
  const [command, ...rest] = argv;
  const opts: Record<string, string> = {};
  for (let i = 0; i < rest.length; i += 2) {
    const key = rest[i];
    const value = rest[i + 1];
    if (!key?.startsWith("--") || value === undefined) throw new ConfigError(USAGE);
    opts[key.slice(2)] = value;
  }
  const port = Number(opts.port);
  if (!command || !Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(USAGE);
  if (command !== "health" && !opts.config) throw new ConfigError(USAGE);
  return { command, port, ...(opts.config ? { config: opts.config } : {}) };
}

