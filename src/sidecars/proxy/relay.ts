// Moving one request/response pair between the client and an upstream
// ClientRequest: body in (buffered or streamed), response out, with the
// numbers the decision log needs.
import type { ClientRequest, IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
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
function declaredLength(v: string | undefined): number | undefined {
  return v !== undefined && /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}

/** How a relay may shape the response on its way to the client. */
export interface RelayOptions {
  /** Upstream silence (no byte either way) after which the exchange fails with 504. */
  idleTimeoutMs?: number;
  /**
   * Replace the response's end-to-end headers and body stream (egress masks
   * echoed credentials this way). Return undefined to refuse the response:
   * the client then gets `refusal` as a 502.
   */
  transformResponse?: (upRes: IncomingMessage, headers: string[]) => (ResponseShape & ({ body: Readable } | { chunks: ChunkMap })) | { refusal: string };
}

/** The response head a transform sends instead of the upstream's. */
export interface ResponseShape {
  headers: string[];
  /** The reason phrase (the upstream's when absent). */
  statusMessage?: string;
}

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
    let headers = endToEndHeaders(upRes.rawHeaders);
    let out: Readable = upRes;
    let statusMessage = upRes.statusMessage;
    const refuse = (refusal: string) => {
      upRes.destroy();
      status = 502;
      res.writeHead(502, { "content-type": "text/plain; charset=utf-8", connection: "close" }).end(`${refusal}\n`);
      end("response refused");
    };
    // The head goes out with the first bytes of the body (or its end), not
    // before: until then a transform may still refuse the response.
    let headWritten = false;
    const head = () => {
      if (headWritten) return;
      headWritten = true;
      res.writeHead(status!, statusMessage, headers);
    };
    if (options.transformResponse) {
      const t = options.transformResponse(upRes, headers);
      if ("refusal" in t) return refuse(t.refusal);
      headers = t.headers;
      if (t.statusMessage !== undefined) statusMessage = t.statusMessage;
      if ("chunks" in t) {
        // A per-chunk rewrite, without a stream stage (it costs a fifth of
        // an injected request's throughput): pass each chunk on as it comes.
        const chunks = t.chunks;
        // A refusal comes before anything of the body went out (the map holds what it refuses).
        const refused = () => {
          if (!chunks.refusal) return false;
          if (headWritten) res.destroy();
          else refuse(chunks.refusal);
          return true;
        };
        // With a declared length the chunk that completes the body is known
        // when it arrives: it is masked and sent with the end of the
        // response, so head, body and end leave in one write (one TLS
        // record) instead of the body's tail following in a second.
        const length = declaredLength(upRes.headers["content-length"]);
        let ended = false;
        upRes.on("data", (c: Buffer) => {
          if (ended) return;
          bytes += c.length;
          if (length !== undefined && bytes >= length) {
            ended = true;
            const last = chunks.end(c);
            if (refused()) return;
            head();
            res.end(last);
            return;
          }
          const outChunk = chunks.push(c);
          if (refused()) return;
          if (!outChunk.length) return;
          head();
          if (!res.write(outChunk)) upRes.pause();
        });
        res.on("drain", () => upRes.resume());
        upRes.on("error", () => {
          res.destroy();
          end("response aborted");
        });
        upRes.on("end", () => {
          if (ended) return;
          const rest = chunks.flush();
          if (refused()) return;
          head();
          if (rest.length) res.end(rest);
          else res.end();
        });
        res.once("finish", () => end());
        return;
      }
      out = t.body;
      if (out !== upRes)
        out.on("error", (err: RefusingError) => {
          if (err.refusal && !headWritten) return refuse(err.refusal);
          res.destroy();
          end("response aborted");
        });
    }
    // Registered before the pipe, so the head is written before the pipe writes or ends the body.
    out.once("data", head);
    out.once("end", head);
    upRes.on("data", (c: Buffer) => (bytes += c.length));
    upRes.on("error", () => {
      res.destroy();
      end("response aborted");
    });
    out.pipe(res);
    res.once("finish", () => end());
  });
  upstream.on("error", (err: NodeJS.ErrnoException) => {
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
