// `node /app/health.js <port>`: the containers' healthcheck. Docker runs it
// every second per sidecar, so it is a separate few-line bundle: starting the
// full proxy bundle for this cost ~70 MB and most of a core under load.
import { get } from "node:http";

const port = Number(process.argv[2]);
const fail = () => process.exit(1);
if (!Number.isInteger(port) || port < 1 || port > 65535) fail();
const req = get({ host: "127.0.0.1", port, path: "/health", timeout: 2_000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on("timeout", () => {
  req.destroy();
  fail();
});
req.on("error", fail);
