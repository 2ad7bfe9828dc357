// Decision log: one JSON object per line on stdout (SPEC §7). Callers pass
// names, hosts, rules and numbers only: never header values, bodies, paths or
// query strings, which is where secrets live.

export type LogFields = Record<string, string | number | boolean | undefined>;
export type EventLog = (event: string, fields?: LogFields) => void;

export function createEventLog(mode: string, write: (line: string) => void = (l) => process.stdout.write(l)): EventLog {
  return (event, fields = {}) => {
    write(`${JSON.stringify({ ts: new Date().toISOString(), mode, event, ...fields })}\n`);
  };
}
