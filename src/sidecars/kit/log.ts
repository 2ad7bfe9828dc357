// The sidecars' log: one JSON object per line on stdout (SPEC §7), with the
// fields the host parses (contracts/log-line.ts: ts, mode, event). Callers
// pass names, hosts, rules and numbers only: never header values, bodies,
// paths or query strings, which is where secrets live.

export type LogFields = Record<string, unknown>;
export type EventLog = (event: string, fields?: LogFields) => void;

/**
 * Lines logged within a few milliseconds, written to stdout together. A busy
 * proxy logs a line or two per connection; stdout is a pipe (docker's log
 * driver), where every write is a blocking system call, so one write per
 * batch instead of one per line saves most of that cost. Order is kept, a
 * line waits at most FLUSH_MS (less once PENDING_MAX is reached), and
 * whatever is pending is written before the process exits.
 */
const FLUSH_MS = 10;
const PENDING_MAX = 256;

class LineBatcher {
  #pending: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #exitHooked = false;

  constructor(private readonly out: (text: string) => void) {}

  write(line: string): void {
    this.#pending.push(line);
    if (this.#pending.length >= PENDING_MAX) {
      this.flush();
      return;
    }
    if (this.#timer) return;
    this.#timer = setTimeout(() => this.flush(), FLUSH_MS);
    if (!this.#exitHooked) {
      this.#exitHooked = true;
      process.once("exit", () => this.flush());
    }
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0) return;
    const text = this.#pending.length === 1 ? this.#pending[0]! : this.#pending.join("");
    this.#pending = [];
    this.out(text);
  }
}

const stdoutLines = new LineBatcher((text) => process.stdout.write(text));

/** Write pending log lines now (before a deliberate process.exit, for instance). */
export function flushLog(): void {
  stdoutLines.flush();
}

/** One log line. `stringify` may escape more than JSON does (supervise logs agent text). */
export function formatEvent(mode: string, event: string, fields: LogFields = {}, stringify: (v: unknown) => string = JSON.stringify): string {
  // The proxies log a line or two per connection: the same text as the
  // spread below, without building a second object per line.
  if (stringify === JSON.stringify && !("ts" in fields || "mode" in fields || "event" in fields)) {
    const rest = JSON.stringify(fields);
    return `{"ts":"${isoNow()}"${modeAndEvent(mode, event)}${rest.length > 2 ? `,${rest.slice(1)}` : "}"}\n`;
  }
  return `${stringify({ ts: new Date().toISOString(), mode, event, ...fields })}\n`;
}

/** `,"mode":…,"event":…` per mode and event (a sidecar logs a handful of events, again and again). */
const modeAndEventText = new Map<string, Map<string, string>>();

function modeAndEvent(mode: string, event: string): string {
  let events = modeAndEventText.get(mode);
  if (!events) {
    events = new Map();
    modeAndEventText.set(mode, events);
  }
  let text = events.get(event);
  if (text === undefined) {
    text = `,"mode":${JSON.stringify(mode)},"event":${JSON.stringify(event)}`;
    // Bounded: an unusual caller with ever-new event names gets them built each time.
    if (events.size < 256) events.set(event, text);
  }
  return text;
}

let isoSecond = Number.NaN;
let isoPrefix = "";

/** new Date().toISOString(), with the part up to the second made once a second. */
export function isoNow(now = Date.now()): string {
  const ms = now % 1000;
  const second = now - ms;
  if (second !== isoSecond || ms < 0) {
    if (ms < 0) return new Date(now).toISOString();
    isoSecond = second;
    isoPrefix = new Date(second).toISOString().slice(0, 20);
  }
  return `${isoPrefix}${ms < 10 ? "00" : ms < 100 ? "0" : ""}${ms}Z`;
}

/** A logger for one sidecar; lines are batched onto stdout unless `write` says otherwise. */
export function createEventLog(mode: string, write: (line: string) => void = (l) => stdoutLines.write(l), stringify?: (v: unknown) => string): EventLog {
  return (event, fields = {}) => write(formatEvent(mode, event, fields, stringify));
}
