// `network.trust: [system]`: the host's CA store, for a network that re-signs
// outbound TLS with its own CA (installed in the host's store by its admins).
// The proxies verify upstreams against the public roots they ship with, so
// without this every allowed HTTPS request fails there.
import { promises as fs } from "node:fs";
import { BottleError } from "../errors.js";

/** Where distributions keep the bundle: Debian/Ubuntu/Alpine, Fedora/RHEL, macOS/BSD. */
export const SYSTEM_CA_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"] as const;

/** The first bundle that exists, as PEM text; a clear error when there is none or it holds no certificate. */
export async function readSystemCaBundle(candidates: readonly string[] = SYSTEM_CA_BUNDLES): Promise<string> {
  for (const file of candidates) {
    let text: string;
    try {
      text = await fs.readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw new BottleError("bad-input", `network.trust lists "system", but the host's CA bundle ${file} cannot be read: ${(err as Error).message}`);
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----"))
      throw new BottleError("bad-input", `network.trust lists "system", but the host's CA bundle ${file} holds no PEM certificate`, "List your network's CA file (PEM) in network.trust instead.");
    return text;
  }
  throw new BottleError(
    "bad-input",
    `network.trust lists "system", but this host has no CA bundle (looked for ${candidates.join(", ")})`,
    "List your network's CA file (PEM) in network.trust instead of system.",
  );
}
