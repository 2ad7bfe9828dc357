// The real-tools integration test's pieces: the agent image (Debian's own
// curl, git, python3/pip/requests, nodejs/npm, plus Node 24), and the
// fixtures its stand-in upstream serves: a static file, a bare git repo, a
// wheel for a PyPI "simple" index and an npm tarball, all made here so the
// test knows every byte and hash. Archives are written by hand (stored zip,
// ustar) rather than with a dependency: each is a few dozen lines.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import nodePath from "node:path";
import { crc32, gzipSync } from "node:zlib";
import { docker } from "../../src/engine/run.js";

export const FIXTURES = nodePath.resolve(import.meta.dirname, "../fixtures/real-tools");
/** A stable tag: the image is rebuilt only when what it is built from changes (the label below). */
export const REAL_TOOLS_IMAGE = "bot-bottle-test/real-tools-agent:latest";
const SOURCE_LABEL = "dev.bot-bottle.test-source";

/** Hash of the Dockerfile and the local base images it starts from. */
async function imageSourceHash(): Promise<string> {
  const dockerfile = readFileSync(nodePath.join(FIXTURES, "Dockerfile"), "utf8");
  const h = createHash("sha256").update(dockerfile);
  for (const base of [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!)) {
    h.update((await docker(["image", "inspect", "--format", "{{.Id}}", base], { timeout: 30_000 })).stdout);
  }
  return h.digest("hex").slice(0, 16);
}

/** Build the agent image unless an image built from the same sources is there. Returns whether it built. */
export async function ensureRealToolsImage(): Promise<boolean> {
  const hash = await imageSourceHash();
  const have = await docker(["image", "inspect", "--format", `{{index .Config.Labels "${SOURCE_LABEL}"}}`, REAL_TOOLS_IMAGE], { reject: false, timeout: 30_000 });
  if (have.exitCode === 0 && have.stdout.trim() === hash) return false;
  const args = ["build", "--pull=false", "-q", "--label", `${SOURCE_LABEL}=${hash}`, "-t", REAL_TOOLS_IMAGE, "-f", nodePath.join(FIXTURES, "Dockerfile"), FIXTURES];
  await docker(args, { timeout: 1_200_000 });
  return true;
}

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** A zip archive with stored (uncompressed) entries, as a wheel may be. */
export function zipStored(entries: Array<{ name: string; data: Buffer }>): Buffer {
  const local: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const crc = crc32(e.data);
    const header = Buffer.alloc(30);
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(20, 4); // version needed
    header.writeUInt16LE(0x0800, 6); // UTF-8 names
    header.writeUInt16LE(0, 8); // stored
    header.writeUInt32LE(0, 10); // time/date: 1980-00-00
    header.writeUInt32LE(crc, 14);
    header.writeUInt32LE(e.data.length, 18);
    header.writeUInt32LE(e.data.length, 22);
    header.writeUInt16LE(name.length, 26);
    header.writeUInt16LE(0, 28);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    dir.writeUInt16LE(0x0314, 4); // made by: unix, 2.0
    dir.writeUInt16LE(20, 6);
    dir.writeUInt16LE(0x0800, 8);
    dir.writeUInt16LE(0, 10);
    dir.writeUInt32LE(0, 12);
    dir.writeUInt32LE(crc, 16);
    dir.writeUInt32LE(e.data.length, 20);
    dir.writeUInt32LE(e.data.length, 24);
    dir.writeUInt16LE(name.length, 28);
    dir.writeUInt32LE(0, 30); // extra and comment lengths
    dir.writeUInt32LE(0, 34); // disk number, internal attributes
    dir.writeUInt32LE((0o100644 << 16) >>> 0, 38); // external attributes: a regular file, 0644
    dir.writeUInt32LE(offset, 42);
    local.push(header, name, e.data);
    central.push(dir, name);
    offset += header.length + name.length + e.data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...local, cd, end]);
}

/** A gzipped ustar archive of regular files (what an npm tarball is). */
export function tarGz(entries: Array<{ name: string; data: Buffer }>): Buffer {
  const blocks: Buffer[] = [];
  const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, "0")}\0`;
  for (const e of entries) {
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100);
    h.write(octal(0o644, 8), 100);
    h.write(octal(0, 8), 108); // uid
    h.write(octal(0, 8), 116); // gid
    h.write(octal(e.data.length, 12), 124);
    h.write(octal(0, 12), 136); // mtime
    h.write("        ", 148); // checksum field counts as spaces
    h.write("0", 156); // regular file
    h.write("ustar\u000000", 257);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    blocks.push(h, e.data, Buffer.alloc((512 - (e.data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

/** A pure-Python wheel (PEP 427) whose module holds `value`. */
export function makeWheel(project: string, version: string, value: string): { file: string; data: Buffer } {
  const mod = project.replace(/-/g, "_");
  const info = `${mod}-${version}.dist-info`;
  const files: Array<{ name: string; data: Buffer }> = [
    { name: `${mod}/__init__.py`, data: Buffer.from(`VALUE = ${JSON.stringify(value)}\n`) },
    { name: `${info}/METADATA`, data: Buffer.from(`Metadata-Version: 2.1\nName: ${project}\nVersion: ${version}\nSummary: bot-bottle real-tools probe\n`) },
    { name: `${info}/WHEEL`, data: Buffer.from("Wheel-Version: 1.0\nGenerator: bot-bottle-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n") },
  ];
  const record = files.map((f) => `${f.name},sha256=${createHash("sha256").update(f.data).digest("base64url")},${f.data.length}`);
  files.push({ name: `${info}/RECORD`, data: Buffer.from(`${[...record, `${info}/RECORD,,`].join("\n")}\n`) });
  return { file: `${mod}-${version}-py3-none-any.whl`, data: zipStored(files) };
}

export interface StandInFixtures {
  root: string;
  hello: { path: string; body: string };
  wheel: { project: string; version: string; file: string; sha256: string; value: string };
  npm: { name: string; version: string; integrity: string; main: string };
  git: { repo: string; head: string; readme: string };
}

/** Write everything the stand-in serves under `root` (mounted read-only into it). */
export function writeStandInFixtures(root: string, cert: { certPem: string; keyPem: string }): StandInFixtures {
  for (const d of ["files", "pypi", "npm", "git"]) mkdirSync(nodePath.join(root, d), { recursive: true });
  writeFileSync(nodePath.join(root, "server.pem"), cert.certPem);
  writeFileSync(nodePath.join(root, "server.key"), cert.keyPem, { mode: 0o644 }); // a throwaway key the upstream container reads

  const hello = { path: "/files/hello.txt", body: "hello from the real-tools stand-in\n" };
  writeFileSync(nodePath.join(root, "files", "hello.txt"), hello.body);

  const value = "wheel-through-the-firewall";
  const w = makeWheel("bb-probe", "1.0.0", value);
  writeFileSync(nodePath.join(root, "pypi", w.file), w.data);

  const npmName = "bb-probe";
  const npmVersion = "1.2.3";
  const main = "module.exports = 'npm-through-the-firewall';\n";
  const pkg = { name: npmName, version: npmVersion, description: "bot-bottle real-tools probe", main: "index.js", license: "MIT" };
  const tgz = tarGz([
    { name: "package/package.json", data: Buffer.from(JSON.stringify(pkg, null, 2)) },
    { name: "package/index.js", data: Buffer.from(main) },
  ]);
  writeFileSync(nodePath.join(root, "npm", `${npmName}-${npmVersion}.tgz`), tgz);
  writeFileSync(nodePath.join(root, "npm", `${npmName}-${npmVersion}.json`), JSON.stringify(pkg));

  // A bare repo with one commit, made with this machine's git.
  const work = nodePath.join(root, "..", "git-work");
  const readme = "cloned over smart HTTP through the firewall\n";
  mkdirSync(work, { recursive: true });
  writeFileSync(nodePath.join(work, "README"), readme);
  const git = (cwd: string, ...args: string[]) =>
    execFileSync("git", ["-c", "user.name=bot-bottle test", "-c", "user.email=test@bot-bottle.invalid", "-c", "init.defaultBranch=main", ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] })
      .toString()
      .trim();
  git(work, "init", "-q");
  git(work, "add", "README");
  git(work, "commit", "-q", "-m", "probe");
  const repo = "probe.git";
  git(root, "clone", "-q", "--bare", work, nodePath.join(root, "git", repo));
  const head = git(work, "rev-parse", "HEAD");

  return {
    root,
    hello,
    wheel: { project: "bb-probe", version: "1.0.0", file: w.file, sha256: sha256(w.data), value },
    npm: { name: npmName, version: npmVersion, integrity: `sha512-${createHash("sha512").update(tgz).digest("base64")}`, main },
    git: { repo, head, readme },
  };
}

export interface StandInRequest {
  method: string;
  host: string;
  path: string;
  /** The peer's address: the firewall's, when the request came through it. */
  from: string;
  ua: string;
  status: number;
  /** The Git-Protocol header (git asks for version=2 over HTTP). */
  gitProtocol?: string;
}

/** What the stand-in logged: one record per request it answered. */
export async function standInRequests(container: string): Promise<StandInRequest[]> {
  const r = await docker(["logs", container], { timeout: 30_000 });
  return r.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as StandInRequest & { ready?: boolean })
    .filter((x) => !x.ready);
}
