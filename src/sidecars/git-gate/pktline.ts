// git's pkt-line framing (gitprotocol-common): four hex digits of length
// (including themselves), then the payload; "0000" is a flush, "0001" a
// delimiter and "0002" a response end (protocol v2). The gate's server reads
// the agent's push commands and receive-pack's report through this, so it
// knows every ref a push named and how git answered, whatever the hook did.

export const MAX_PKT_LEN = 65520;

export type Packet = { kind: "data"; payload: Buffer } | { kind: "flush" | "delim" | "end" };

export class PktLineError extends Error {}

/** One pkt-line (a string payload is UTF-8). */
export function encodePkt(payload: string | Buffer): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  if (body.length + 4 > MAX_PKT_LEN) throw new PktLineError(`pkt-line payload of ${body.length} bytes is too long`);
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, "0"), "ascii"), body]);
}

export const FLUSH_PKT = Buffer.from("0000", "ascii");

/**
 * Incremental parser: feed chunks as they arrive, take whole packets out.
 * Bytes past the last whole packet stay buffered (`pending`).
 */
export class PktReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
  }

  /** Bytes received but not yet taken as packets. */
  get pending(): Buffer {
    return this.buf;
  }

  get pendingLength(): number {
    return this.buf.length;
  }

  /** Take the buffered bytes out (for a stream that stops being pkt-lines). */
  takePending(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    return b;
  }

  /** The next whole packet and its raw bytes, or undefined until more bytes arrive. */
  next(): { packet: Packet; raw: Buffer } | undefined {
    if (this.buf.length < 4) return undefined;
    const head = this.buf.subarray(0, 4).toString("ascii");
    if (!/^[0-9a-f]{4}$/i.test(head)) throw new PktLineError(`bad pkt-line length ${JSON.stringify(head)}`);
    const len = parseInt(head, 16);
    let packet: Packet;
    let size: number;
    if (len < 4) {
      if (len === 3) throw new PktLineError("bad pkt-line length 0003");
      packet = { kind: len === 0 ? "flush" : len === 1 ? "delim" : "end" };
      size = 4;
    } else {
      if (len > MAX_PKT_LEN) throw new PktLineError(`pkt-line length ${len} is over ${MAX_PKT_LEN}`);
      if (this.buf.length < len) return undefined;
      packet = { kind: "data", payload: this.buf.subarray(4, len) };
      size = len;
    }
    const raw = this.buf.subarray(0, size);
    this.buf = this.buf.subarray(size);
    return { packet, raw };
  }
}

/** A text payload without its trailing newline (git's PACKET_READ_CHOMP_NEWLINE). */
export function chomp(payload: Buffer): Buffer {
  return payload.length && payload[payload.length - 1] === 0x0a ? payload.subarray(0, payload.length - 1) : payload;
}
