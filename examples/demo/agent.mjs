// Runs inside the demo bottle's agent (fed on stdin to `node -`). It speaks
// to the proxy in $HTTPS_PROXY the way any HTTPS client does: CONNECT, then
// TLS trusting $NODE_EXTRA_CA_CERTS (the bottle's CAs).
import { request } from "node:http";
import { connect } from "node:tls";

const proxy = new URL(process.env.HTTPS_PROXY);

function get(url) {
  const u = new URL(url);
  return new Promise((resolve) => {
    // agent: false: this speaks to the proxy itself (NODE_USE_ENV_PROXY would send it through the proxy again).
    const req = request({ agent: false, host: proxy.hostname, port: proxy.port, method: "CONNECT", path: `${u.hostname}:443` });
    req.on("connect", (res, socket, head) => {
      if (res.statusCode !== 200) {
        let body = head.toString();
        socket.on("data", (d) => (body += d));
        socket.on("end", () => resolve({ status: res.statusCode, body: body.trim() || res.statusMessage }));
        setTimeout(() => resolve({ status: res.statusCode, body: body.trim() || res.statusMessage }), 1000);
        return;
      }
      const tls = connect({ socket, servername: u.hostname }, () => {
        tls.write(`GET ${u.pathname} HTTP/1.0\r\nHost: ${u.hostname}\r\nConnection: close\r\n\r\n`);
      });
      let raw = "";
      tls.on("data", (d) => (raw += d));
      tls.on("end", () => {
        const [head, ...rest] = raw.split("\r\n\r\n");
        resolve({ status: Number(head.split(" ")[1]), body: rest.join("\r\n\r\n").trim() });
      });
      tls.on("error", (e) => resolve({ status: 0, body: e.message }));
    });
    req.on("error", (e) => resolve({ status: 0, body: e.message }));
    req.end();
  });
}

const show = (label, r) => console.log(`${label}\n  -> ${r.status} ${r.body}\n`);
show("1. allowed host (https://allowed.demo.test/hello):", await get("https://allowed.demo.test/hello"));
show("2. host not on the allowlist (https://blocked.demo.test/):", await get("https://blocked.demo.test/"));
show("3. routed API (https://api.demo.test/v1/whoami), credential injected by egress:", await get("https://api.demo.test/v1/whoami"));
const leaked = Object.entries(process.env).filter(([k]) => k.includes("DEMO_TOKEN"));
console.log(`4. the agent's environment holds ${leaked.length} demo-token variables`);
