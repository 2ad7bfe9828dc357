// The demo's stand-in for an outside API, run in its own container on this
// machine. HTTPS on 443 with a certificate from the demo's own CA. It never
// echoes credentials: it only says whether the expected one arrived.
import { createServer } from "node:https";
import { readFileSync } from "node:fs";

const expected = `Bearer ${process.env.DEMO_TOKEN}`;
const server = createServer({ cert: readFileSync("/demo/server.pem"), key: readFileSync("/demo/server.key") }, (req, res) => {
  const auth = req.headers.authorization;
  const body = {
    upstream: "demo",
    host: req.headers.host,
    path: req.url,
    authorization: auth === undefined ? "none" : auth === expected ? "the demo token (injected by egress)" : "some other value",
  };
  console.log(JSON.stringify({ method: req.method, ...body }));
  res.writeHead(200, { "content-type": "application/json" }).end(`${JSON.stringify(body)}\n`);
});
server.listen(443, () => console.log("demo upstream listening on 443"));
