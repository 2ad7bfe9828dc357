// Benchmark upstream: HTTPS on loopback, 1 KB responses (or /bytes/<n>).
// Runs as its own process so the load generator does not steal its event loop.
//   node bench/proxy/upstream.ts <port> <cert> <key>
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

const [port, cert, key] = process.argv.slice(2);
const kilobyte = Buffer.alloc(1024, "x");
const sized = new Map<number, Buffer>();

createServer({ cert: readFileSync(cert!), key: readFileSync(key!), keepAliveTimeout: 60_000 }, (req, res) => {
  req.resume();
  const n = Number(/^\/bytes\/(\d+)$/.exec(req.url ?? "")?.[1] ?? 0);
  let body: Buffer = kilobyte;
  if (n) {
    body = sized.get(n) ?? Buffer.alloc(n, "y");
    sized.set(n, body);
  }
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length, "x-saw-authorization": req.headers.authorization ? "yes" : "no" });
  res.end(body);
}).listen(Number(port), "127.0.0.1", () => process.stdout.write("ready\n"));
