// Decision log: one JSON object per line on the gate's stdout (SPEC §7).
// The server process owns stdout; pre-receive hooks run under receive-pack,
// whose output goes to the pushing client, so they send their lines to the
// server over a unix socket and the server prints them. Fields are refs,
// shas, rule names and numbers: never file contents or matched secrets.
import { createConnection, createServer, type Server } from "node:net";
import { createEventLog as kitEventLog, formatEvent as kitFormatEvent, type EventLog, type LogFields } from "../kit/log.js";

export type { EventLog, LogFields };

export const formatEvent = (event: string, fields: LogFields = {}): string => kitFormatEvent("git-gate", event, fields);

/** Unbatched: the server's lines (and the hooks' lines it relays) go out as they come. */
export const createEventLog = (write: (line: string) => void = (l) => process.stdout.write(l)): EventLog => kitEventLog("git-gate", write);

/** The server side: print every complete line a hook sends. */
export function listenForHookLogs(socketPath: string, write: (line: string) => void): Promise<Server> {
  const server = createServer((conn) => {
    let carry = "";
    conn.setEncoding("utf8");
    conn.on("data", (chunk: string) => {
      const parts = (carry + chunk).split("\n");
      carry = parts.pop() ?? "";
      for (const p of parts) if (p.trim()) write(`${p}\n`);
    });
    conn.on("end", () => {
      if (carry.trim()) write(`${carry}\n`);
    });
    conn.on("error", () => {});
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve(server));
  });
}

/** The hook side: deliver lines to the server; false if it is not there. */
export function sendHookLogs(socketPath: string, lines: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = createConnection(socketPath);
    const timer = setTimeout(() => conn.destroy(), 5_000);
    conn.once("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
    conn.once("connect", () => conn.end(lines.join("")));
    conn.once("close", (hadError) => {
      clearTimeout(timer);
      resolve(!hadError);
    });
  });
}
