// @peculiar/x509, ready to use: the Reflect metadata it needs is installed
// first and Node's WebCrypto is its crypto provider. Import x509 from here,
// never from the package directly.
import "./reflect-metadata.js";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
