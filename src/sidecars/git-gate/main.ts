// The git gate's entry point (bundled to /app/git-gate.js in Dockerfile.git-gate):
//   git-gate.js serve --config <file>   the server (git:// for the agent + startup fetch)
//   git-gate.js pre-receive             the hook git runs for every push
import { parseArgs } from "node:util";
import { GIT_GATE_CONFIG_PATH } from "../../contracts/mounts.js";
import { runPreReceive } from "./pre-receive.js";
import { serve } from "./serve.js";

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function main(argv: readonly string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (cmd === "serve") {
    const { values } = parseArgs({ args: [...rest], options: { config: { type: "string", default: GIT_GATE_CONFIG_PATH } } });
    await serve(values.config);
    return;
  }
  if (cmd === "pre-receive") {
    process.exitCode = await runPreReceive(await readStdin());
    return;
  }
  process.stderr.write("usage: git-gate.js serve [--config <file>] | pre-receive\n");
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`bot-bottle git-gate: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
