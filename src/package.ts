// The package version is baked into sidecar image tags so a cached image is
// reused exactly when it was built from this version of the code.
import { existsSync, readFileSync } from "node:fs";
import nodePath from "node:path";
import { fileURLToPath } from "node:url";
import pkg from "../package.json" with { type: "json" };

export const PACKAGE_VERSION: string = pkg.version;

let cachedRoot: string | undefined;

/**
 * The installed package's root (holds package.json and Dockerfile.*). Found by
 * walking up from this module, which works for both the bundle (dist/cli.js)
 * and the sources (src/package.ts).
 */
export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = nodePath.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = nodePath.join(dir, "package.json");
    if (existsSync(file) && JSON.parse(readFileSync(file, "utf8")).name === "bot-bottle") {
      cachedRoot = dir;
      return dir;
    }
    const up = nodePath.dirname(dir);
    if (up === dir) throw new Error("cannot find the bot-bottle package root");
    dir = up;
  }
}
