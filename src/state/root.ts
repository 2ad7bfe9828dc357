// Where things live on the host.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import nodePath from "node:path";
import { fileURLToPath } from "node:url";

/** SPEC §2: BOTTLE_STATE_DIR, else $XDG_STATE_HOME/bot-bottle, else ~/.local/state/bot-bottle. */
export function stateRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BOTTLE_STATE_DIR) return nodePath.resolve(env.BOTTLE_STATE_DIR);
  if (env.XDG_STATE_HOME) return nodePath.join(nodePath.resolve(env.XDG_STATE_HOME), "bot-bottle");
  return nodePath.join(homedir(), ".local", "state", "bot-bottle");
}

let cachedRoot: string | undefined;

/**
 * The installed package's root (holds package.json and Dockerfile.*). Found by
 * walking up from this module, which works for both the bundle (dist/cli.js)
 * and the sources (src/core/paths.ts).
 */
export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = nodePath.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = nodePath.join(dir, "package.json");
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, "utf8")).name === "bot-bottle") return (cachedRoot = dir);
    const up = nodePath.dirname(dir);
    if (up === dir) throw new Error("cannot find the bot-bottle package root");
    dir = up;
  }
}
