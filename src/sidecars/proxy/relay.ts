// Moving one request/response pair between the client and an upstream
// ClientRequest: body in (buffered or streamed), response out, with the
// numbers the decision log needs.
import type { ClientRequest, IncomingMessage, ServerResponse } from "node:http";
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

/** The whole request body, or "too-large" once it passes `max` bytes. */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer | "too-large"> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.off("data", onData);
        req.resume();
        return resolve("too-large");
      }
      chunks.push(c);
    };
    req.on("data", onData);
    req.once("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

export function relayResponse(req: IncomingMessage, res: ServerResponse, upstream: ClientRequest, body: Buffer | undefined, done: (o: RelayOutcome) => void): void {
  let finished = false;
  let bytes = 0;
  let status: number | undefined;
  const end = (error?: string, cause?: Error) => {
    if (finished) return;
    finished = true;
    done({ ...(status !== undefined ? { status } : {}), bytes, ...(error ? { error } : {}), ...(cause ? { cause } : {}) });
  };
  upstream.on("response", (upRes) => {
    status = upRes.statusCode ?? 502;
    res.writeHead(status, upRes.statusMessage, endToEndHeaders(upRes.rawHeaders));
    upRes.on("data", (c: Buffer) => (bytes += c.length));
    upRes.on("error", () => {
      res.destroy();
      end("response aborted");
    });
    upRes.pipe(res);
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
