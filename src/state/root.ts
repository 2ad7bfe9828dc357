// Where bottle state lives on the host.
import { promises as fs } from "node:fs";
import { homedir } from "node:os";
import nodePath from "node:path";

/** SPEC §2: BOTTLE_STATE_DIR, else $XDG_STATE_HOME/bot-bottle, else ~/.local/state/bot-bottle. */
export function stateRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BOTTLE_STATE_DIR) return nodePath.resolve(env.BOTTLE_STATE_DIR);
  if (env.XDG_STATE_HOME) return nodePath.join(nodePath.resolve(env.XDG_STATE_HOME), "bot-bottle");
  return nodePath.join(homedir(), ".local", "state", "bot-bottle");
}

/** Create the state root if needed: 0700, other users never read bottle state. */
export async function ensureRoot(root: string): Promise<void> {
  await fs.mkdir(root, { recursive: true, mode: 0o700 });
}
