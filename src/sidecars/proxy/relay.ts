// Moving one request/response pair between the client and an upstream
// ClientRequest: body in (buffered or streamed), response out, with the
// numbers the decision log needs.
import type { ClientRequest, IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { endToEndHeaders } from "./http-message.js";

export interface RelayOutcome {
  status?: number;
  /** Response body bytes sent to the client. */
  bytes: number;
  /** Error code when the exchange failed; the response may not have been sent. */
  error?: string;
  /** The upstream request's error object, when that is what failed. */
  cause?: Error;
}

/**
 * Bytes of request bodies held for scanning at once, over every connection
 * of the proxy: one agent opening many uploads must not take the sidecar
 * past its memory limit (each body is held whole until it is scanned).
 */
export class BodyBudget {
  #used = 0;
  constructor(public max: number) {}
  take(n: number): boolean {
    if (this.#used + n > this.max) return false;
    this.#used += n;
    return true;
  }
  give(n: number): void {
    this.#used = Math.max(0, this.#used - n);
  }
  get used(): number {
    return this.#used;
  }
}

/**
 * Whether the request has no body by its framing: HTTP/1.1 gives a request
 * without Content-Length and Transfer-Encoding a body of length zero (RFC
 * 9112 §6.3), and node's parser reads any bytes after its head as the next
 * request. Such a request needs no wait for its (empty) body: it can be
 * scanned and sent on in the same turn of the event loop.
 */
export function hasNoBody(req: IncomingMessage): boolean {
  return req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined;
}

/** The body of a request that has none (see hasNoBody). */
export const NO_BODY: Buffer = Buffer.alloc(0);

/**
 * The whole request body; "too-large" once it passes `max` bytes; "busy"
 * when holding it would pass the proxy's `budget`. What the body holds of
 * the budget is given back when `res` closes (the exchange is over).
 */
export function readBody(req: IncomingMessage, max: number, budget?: BodyBudget, res?: ServerResponse): Promise<Buffer | "too-large" | "busy"> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let held = 0;
    const release = () => {
      budget?.give(held);
      held = 0;
    };
    if (budget) (res ?? req).once("close", release);
    const stop = (why: "too-large" | "busy") => {
      req.off("data", onData);
      req.resume();
      chunks.length = 0;
      release();
      resolve(why);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > max) return stop("too-large");
      if (budget) {
        if (!budget.take(c.length)) return stop("busy");
        held += c.length;
      }
      chunks.push(c);
    };
    req.on("data", onData);
    req.once("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.once("error", (err) => {
      release();
      reject(err);
    });
  });
}

/** Rewrites a body chunk by chunk (same interface as BodyMasker). */
export interface ChunkMap {
  push(chunk: Buffer): Buffer;
  flush(): Buffer;
  /** The last chunk: everything that may be sent, nothing held back (push and flush in one). */
  end(chunk: Buffer): Buffer;
  /**
   * Set when the body must not be sent at all: the client gets this as a
   * 502 instead (the map holds a body it refuses back, so the response
   * head has not gone out yet).
   */
  readonly refusal?: string | undefined;
}

/** A stage error that refuses the response (the client gets `refusal` as a 502 when nothing was sent yet). */
interface RefusingError extends Error {
  refusal?: string;
}

/** A Content-Length header's value as a number, or undefined when absent or not plain digits. */
function declaredLength(v: string | string[] | undefined): number | undefined {
  return typeof v === "string" && /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}

/** How a relay may shape the response on its way to the client. */
export interface RelayOptions {
  /** Upstream silence (no byte either way) after which the exchange fails with 504. */
  idleTimeoutMs?: number;
}

/** The upstream's response head, as a transform sees it. */
export interface UpstreamHead {
  statusCode: number;
  statusMessage: string;
  /** Header values by lowercase name (arrays for repeated ones). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** The response head a transform sends instead of the upstream's. */
export interface ResponseShape {
  headers: string[];
  /** The reason phrase (the upstream's when absent). */
  statusMessage?: string;
}

/**
 * Replaces the response's end-to-end headers and body (egress masks echoed
 * credentials this way): either a per-chunk map, or a stream made from the
 * upstream body (`body()` gives it, for stream stages such as decoders).
 * `refusal` refuses the response: the client then gets it as a 502.
 */
export type ResponseTransform = (head: UpstreamHead, headers: string[], body: () => Readable) => (ResponseShape & ({ body: Readable } | { chunks: ChunkMap })) | { refusal: string };

// What node's ServerResponse refuses to write (it throws): a reason phrase
// or header value with a control character other than HTAB, a header name
// that is not a token. Parsers pass some of these (llhttp reads a reason
// phrase leniently), so an upstream's head is checked before it is relayed.
const UNWRITABLE_FIELD_CHAR = /[^\t\x20-\x7e\x80-\xff]/;
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * What in a response head node would refuse to write, or undefined when
 * it can be relayed. Checked before the head is written: a head node
 * throws on, thrown from a stream's listener, would take the sidecar down.
 */
export function unwritableHead(status: number, message: string, headers: readonly string[]): string | undefined {
  if (!Number.isInteger(status) || status < 100 || status > 999) return "status code";
  if (UNWRITABLE_FIELD_CHAR.test(message)) return "reason phrase";
  for (let i = 0; i < headers.length; i += 2) {
    if (!FIELD_NAME.test(headers[i]!)) return "header name";
    if (UNWRITABLE_FIELD_CHAR.test(headers[i + 1]!)) return "header value";
  }
  return undefined;
}

/**
 * Response headers never relayed for a 204: it has no content, and a
 * Content-Length on one (RFC 9110 §8.6: must not be sent) is a framing lie
 * a client that believes it would read the next response as this one's body.
 */
const NO_CONTENT_DROPPED: ReadonlySet<string> = new Set(["content-length"]);

/** The end-to-end headers of a response with this status, to relay. */
const responseHeaders = (status: number, raw: readonly string[]) => endToEndHeaders(raw, status === 204 ? NO_CONTENT_DROPPED : undefined);

/** The answer to a response whose head cannot be relayed (see unwritableHead). */
function badHead(res: ServerResponse, what: string): void {
  res.writeHead(502, "Bad Gateway", { "content-type": "text/plain; charset=utf-8", connection: "close" }).end(`bot-bottle proxy: the upstream's response has a ${what} that cannot be relayed\n`);
}

/** Node's http client: the firewall's requests and egress's plain HTTP, streamed through unchanged. */
export function relayResponse(req: IncomingMessage, res: ServerResponse, upstream: ClientRequest, body: Buffer | undefined, done: (o: RelayOutcome) => void, options: RelayOptions = {}): void {
  let finished = false;
  let bytes = 0;
  let status: number | undefined;
  const end = (error?: string, cause?: Error) => {
    if (finished) return;
    finished = true;
    done({ ...(status !== undefined ? { status } : {}), bytes, ...(error ? { error } : {}), ...(cause ? { cause } : {}) });
  };
  if (options.idleTimeoutMs) {
    upstream.setTimeout(options.idleTimeoutMs, () => upstream.destroy(Object.assign(new Error("upstream idle timeout"), { code: "ETIMEDOUT" })));
  }
  upstream.on("response", (upRes) => {
    status = upRes.statusCode ?? 502;
    const headers = responseHeaders(status, upRes.rawHeaders);
    const bad = unwritableHead(status, upRes.statusMessage ?? "", headers);
    if (bad) {
      status = 502;
      badHead(res, bad);
      end("bad response head");
      upRes.on("error", () => {});
      upstream.destroy();
      return;
    }
    // Registered before the pipe, so the head is written before the pipe writes or ends the body.
    let headWritten = false;
    const head = () => {
      if (headWritten) return;
      headWritten = true;
      res.writeHead(status!, upRes.statusMessage, headers);
    };
    upRes.once("data", head);
    upRes.once("end", head);
    upRes.on("data", (c: Buffer) => (bytes += c.length));
    upRes.on("error", () => {
      res.destroy();
      end("response aborted");
    });
    upRes.pipe(res);
    res.once("finish", () => end());
  });
  upstream.on("error", (err: NodeJS.ErrnoException) => {
    if (finished) return;
    if (res.headersSent) res.destroy();
    end(err.code ?? err.message, err);
  });
  res.once("close", () => {
    if (!res.writableFinished) {
      upstream.destroy();
      end("client closed");
    }
  });
  if (body !== undefined) upstream.end(body);
  else req.pipe(upstream);
}

/** A request relayDispatch sends: where, and the body already read and scanned. */
export interface DispatchedRequest {
  /** `https://host:port`: the pool the request goes to. */
  origin: string;
  method: string;
  /** Origin-form target. */
  path: string;
  /** Flat name/value pairs, Host included; no Content-Length (the body's length is sent). */
  headers: string[];
  body: Buffer;
}

/** undici's error codes in the words the proxies' logs and replies already use for node's. */
const UNDICI_CODES: Record<string, string> = {
  UND_ERR_HEADERS_TIMEOUT: "ETIMEDOUT",
  UND_ERR_BODY_TIMEOUT: "ETIMEDOUT",
  UND_ERR_CONNECT_TIMEOUT: "ETIMEDOUT",
  UND_ERR_SOCKET: "ECONNRESET",
  UND_ERR_CLOSED: "ECONNRESET",
  UND_ERR_DESTROYED: "ECONNRESET",
};

const latin1 = (v: Buffer | string) => (typeof v === "string" ? v : v.toString("latin1"));

/** What the upstream request is aborted with when the agent hangs up. */
const clientClosed = () => Object.assign(new Error("client closed"), { code: "ECONNRESET" });

/**
 * One request through an undici dispatcher (egress's routed leg), its
 * response relayed to `res`, optionally reshaped by `transform`. The head
 * goes out with the first bytes of the body (or its end), not before: until
 * then a transform may still refuse the response. The outcome is reported
 * once, as relayResponse does.
 */
export function relayDispatch(
  res: ServerResponse,
  dispatcher: Dispatcher,
  request: DispatchedRequest,
  done: (o: RelayOutcome) => void,
  options: RelayOptions & { transform?: ResponseTransform } = {},
): void {
  let finished = false;
  let bytes = 0;
  let status: number | undefined;
  let controller: Dispatcher.DispatchController | undefined;
  let clientGone = false;
  const end = (error?: string, cause?: Error) => {
    if (finished) return;
    finished = true;
    done({ ...(status !== undefined ? { status } : {}), bytes, ...(error ? { error } : {}), ...(cause ? { cause } : {}) });
  };
  // Where the body's events go once the head is known (see onResponseStart).
  let onChunk: (c: Buffer) => void = () => {};
  let onBodyEnd: () => void = () => {};
  let onBodyError: (err: Error) => void = () => {};
  let headWritten = false;
  /** Set once the response is refused (a 502 in its place). */
  let refusedResponse = false;

  const fail = (err: Error & { code?: string }) => {
    if (refusedResponse) return; // the abort of a refused response: the agent has its 502
    const code = err.code ? (UNDICI_CODES[err.code] ?? err.code) : err.message;
    if (status !== undefined) {
      // The response had begun: its body stream (if any) ends with the error.
      onBodyError(err);
      res.destroy();
      return end("response aborted");
    }
    end(code, err);
  };
  res.once("close", () => {
    if (res.writableFinished) return;
    clientGone = true;
    controller?.abort(clientClosed());
    end("client closed");
  });
  res.on("drain", () => controller?.resume());

  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (clientGone) c.abort(clientClosed());
    },
    onResponseStart(c, statusCode, parsed, statusMessage = "") {
      // Interim responses (102 Processing, 103 Early Hints) are not passed
      // on, as node's client did not: the final response follows on its own.
      // (undici fails an unsolicited 100 Continue as a bad response; egress
      // never sends Expect, so a conforming upstream sends none.)
      if (clientGone || statusCode < 200) return;
      status = statusCode;
      const raw = c.rawHeaders;
      let headers = responseHeaders(statusCode, Array.isArray(raw) ? raw.map(latin1) : []);
      let message = statusMessage;
      const length = declaredLength(parsed["content-length"]);
      const head = () => {
        if (headWritten) return;
        headWritten = true;
        res.writeHead(status!, message, headers);
      };
      const refuse = (refusal: string) => {
        refusedResponse = true;
        status = 502;
        res.writeHead(502, "Bad Gateway", { "content-type": "text/plain; charset=utf-8", connection: "close" }).end(`${refusal}\n`);
        end("response refused");
        c.abort(Object.assign(new Error("response refused"), { code: "ECONNRESET" }));
      };
      res.once("finish", () => end());
      // A head node would refuse to write (it throws, from inside undici's parser) is answered with a 502 instead.
      const bad = unwritableHead(statusCode, statusMessage, headers);
      if (bad) return refuse(`bot-bottle egress: the upstream's response has a ${bad} that cannot be relayed`);
      // The body as a stream, made only when a transform asks for one (decoders).
      const asStream = () => {
        const stream = new Readable({ read: () => c.resume() });
        onChunk = (chunk) => {
          if (!stream.push(chunk)) c.pause();
        };
        onBodyEnd = () => stream.push(null);
        onBodyError = (err) => stream.destroy(err);
        return stream;
      };
      const t = options.transform?.({ statusCode, statusMessage, headers: parsed }, headers, asStream);
      if (t && "refusal" in t) return refuse(t.refusal);
      if (t) {
        headers = t.headers;
        if (t.statusMessage !== undefined) message = t.statusMessage;
      }
      if (t && "body" in t) {
        const out = t.body;
        out.on("error", (err: RefusingError) => {
          if (err.refusal && !headWritten) return refuse(err.refusal);
          res.destroy();
          end("response aborted");
        });
        out.once("data", head);
        out.once("end", head);
        out.pipe(res);
        return;
      }
      // Chunk by chunk, without a stream stage: a per-chunk map (or none)
      // and the chunk that completes a body of declared length sent with
      // the end of the response, so head, body and end leave in one write
      // (one TLS record).
      const chunks = t?.chunks;
      const refused = () => {
        if (!chunks?.refusal) return false;
        if (headWritten) res.destroy();
        else refuse(chunks.refusal);
        return true;
      };
      let ended = false;
      onChunk = (chunk) => {
        if (ended) return;
        if (length !== undefined && bytes >= length) {
          ended = true;
          const last = chunks ? chunks.end(chunk) : chunk;
          if (refused()) return;
          head();
          res.end(last);
          return;
        }
        const out = chunks ? chunks.push(chunk) : chunk;
        if (refused()) return;
        if (!out.length) return;
        head();
        if (!res.write(out)) c.pause();
      };
      onBodyEnd = () => {
        if (ended) return;
        const rest = chunks ? chunks.flush() : undefined;
        if (refused()) return;
        head();
        if (rest?.length) res.end(rest);
        else res.end();
      };
    },
    onResponseData(_c, chunk) {
      bytes += chunk.length;
      onChunk(chunk);
    },
    onResponseEnd() {
      onBodyEnd();
    },
    onResponseError(_c, err) {
      fail(err);
    },
  };
  const idle = options.idleTimeoutMs;
  try {
    dispatcher.dispatch(
      { origin: request.origin, method: request.method, path: request.path, headers: request.headers, body: request.body, ...(idle ? { headersTimeout: idle, bodyTimeout: idle } : {}) },
      handler,
    );
  } catch (err) {
    fail(err as Error);
  }
}
