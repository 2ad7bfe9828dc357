// The git gate's content scan on a real repository: pushed objects are
// streamed through the firewall's scanner (bounded memory for any blob
// size), with its decodings, and across blob boundaries.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { newObjects, scanObjects } from "../../../../src/sidecars/git-gate/scan.js";
import { SECRET_SAMPLES } from "../../../helpers/proxy/secret-samples.js";

const ROOT = resolve(import.meta.dirname, "../../../..");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A bare repo and an unreferenced commit holding `files` (as a pre-receive hook sees a push). */
function pushLike(files: Record<string, Buffer | string>): { env: NodeJS.ProcessEnv; tip: string } {
  const dir = mkdtempSync(join(tmpdir(), "gate-scan-"));
  dirs.push(dir);
  const env = { ...process.env, GIT_DIR: dir, GIT_AUTHOR_NAME: "a", GIT_AUTHOR_EMAIL: "a@x.test", GIT_COMMITTER_NAME: "a", GIT_COMMITTER_EMAIL: "a@x.test" };
  execFileSync("git", ["init", "-q", "--bare", dir], { env });
  const entries = Object.entries(files).map(([name, content]) => {
    const file = join(dir, "tmp-blob");
    writeFileSync(file, content);
    const sha = execFileSync("git", ["hash-object", "-w", file], { env, encoding: "utf8" }).trim();
    return `100644 blob ${sha}\t${name}`;
  });
  const tree = execFileSync("git", ["mktree"], { env, input: `${entries.join("\n")}\n`, encoding: "utf8" }).trim();
  const tip = execFileSync("git", ["commit-tree", tree, "-m", "push"], { env, encoding: "utf8" }).trim();
  return { env, tip };
}

const scan = async (files: Record<string, Buffer | string>) => {
  const { env, tip } = pushLike(files);
  return scanObjects(await newObjects([tip], env), env);
};

describe("git gate content scan", () => {
  const token = SECRET_SAMPLES["github-token"]!;

  it("finds a token in wrapped base64, after binary bytes, in hex and in UTF-16, naming the file", async () => {
    const r = await scan({
      "a.pem": Buffer.from(`x ${token} y`.repeat(3))
        .toString("base64")
        .replace(/(.{76})/g, "$1\n"),
      "b.bin": Buffer.from(Buffer.concat([Buffer.from(token), Buffer.from([0xff, 0x00, 0x81, 0xfe, 0x9a, 0x10, 0x00, 0xc3])]).toString("base64")),
      "c.hex": Buffer.from(token).toString("hex"),
      "d.txt": Buffer.from(`\ufeffkey = ${token}\r\n`, "utf16le"),
      "clean.md": "# Hello\n\nNothing secret here.\n",
    });
    const byPath = Object.fromEntries(r.findings.map((f) => [f.path, f.encoding]));
    expect(byPath).toMatchObject({ "a.pem": "base64", "b.bin": "base64", "c.hex": "hex" });
    expect(byPath["d.txt"]).toBeDefined();
    expect(byPath["clean.md"]).toBeUndefined();
    expect(JSON.stringify(r)).not.toContain(token);
  });

  it("finds a token split across two files", async () => {
    const r = await scan({ "part1.txt": `config value: ${token.slice(0, 15)}`, "part2.txt": `${token.slice(15)} end` });
    expect(r.findings.map((f) => f.path)).toContain("part1.txt + part2.txt");
  });

  it("scans many small files in batches and still names the one holding a token", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`f${String(i).padStart(3, "0")}.ts`] = `export const v${i} = ${i}; // ordinary code\n`.repeat(20);
    files["f150.ts"] = `export const key = "${token}";\n`;
    const r = await scan(files);
    expect(r.objects).toBeGreaterThan(300);
    const paths = r.findings.map((f) => f.path);
    expect(paths).toContain("f150.ts");
    // Boundary scans with its neighbours may name the pair; never another file alone.
    for (const p of paths) expect(p).toContain("f150.ts");
    expect(JSON.stringify(r)).not.toContain(token);
  });

  it("finds a token spread over three tiny files of one batch", async () => {
    const r = await scan({ "a1.txt": token.slice(0, 10), "a2.txt": token.slice(10, 22), "a3.txt": token.slice(22) });
    expect(r.findings.length).toBeGreaterThan(0);
    expect(r.findings[0]!.rule).toBe("github-token");
  });

  it("streams a 60 MB blob of '+' in bounded memory", () => {
    // In a child process, so the peak RSS is the scan's own.
    const script = `
      import { writeFileSync } from "node:fs";
      const { newObjects, scanObjects } = await import(${JSON.stringify(join(ROOT, "src/sidecars/git-gate/scan.ts"))});
      const env = { ...process.env };
      const r = await scanObjects(await newObjects([process.argv[1]], env), env);
      process.stdout.write(JSON.stringify({ findings: r.findings.length, bytes: r.bytes, unscannable: r.unscannable ?? null, rssMiB: Math.round(process.resourceUsage().maxRSS / 1024) }));
    `;
    const { env, tip } = pushLike({ "big.txt": Buffer.alloc(60 * 1024 * 1024, "+"), "small.txt": "hi\n" });
    const out = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, tip], { env, cwd: ROOT, encoding: "utf8", timeout: 120_000 });
    expect(out.status, out.stderr).toBe(0);
    const r = JSON.parse(out.stdout) as { findings: number; bytes: number; unscannable: string | null; rssMiB: number };
    expect(r).toMatchObject({ findings: 0, unscannable: null });
    expect(r.bytes).toBeGreaterThan(60 * 1024 * 1024);
    expect(r.rssMiB).toBeLessThan(256);
  }, 120_000);
});
