// Which Node.js bot-bottle needs, and what to tell someone who has an older
// one. Imports nothing: the CLI checks the version before loading anything
// that would fail on an old Node (execa needs Set.prototype.union, Node 22+).

export const MIN_NODE_MAJOR = 22;

export const nodeMajor = (version: string) => Number(version.replace(/^v/, "").split(".")[0]);

export function nodeTooOld(version: string): string | undefined {
  if (nodeMajor(version) >= MIN_NODE_MAJOR) return undefined;
  return `bottle needs Node.js ${MIN_NODE_MAJOR} or newer; this is Node.js ${version.replace(/^v?/, "v")}. Install Node.js 22 or 24 (from nodejs.org, \`nvm install 24\`, or your package manager), then run \`bottle doctor\`.`;
}
