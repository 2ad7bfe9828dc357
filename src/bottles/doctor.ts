// `bottle doctor`: is this machine ready to run bottles? Each check says ok or
// what is wrong and how to fix it.
import { constants, existsSync, promises as fs } from "node:fs";
import nodePath from "node:path";
import type { Engine } from "../engine/index.js";
import { toBottleError } from "../errors.js";
import { getProfile, loadManifest, manifestPath, type BottleEngineKind } from "../manifest/index.js";
import { MIN_NODE_MAJOR, nodeTooOld } from "../node-version.js";
import { packageRoot } from "../package.js";
import { credentialInput, credentialWarnings, type CredentialWarning } from "../plan/credential-warnings.js";
import { resolvePlan } from "../plan/index.js";
import { stateRoot } from "../state/root.js";
import { contextOf, withEngine, type CtxInput } from "./context.js";
import { hostUser } from "./profile.js";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export interface DoctorOptions extends CtxInput {
  /** Engines the manifest's profiles run on (reviewManifest): each is checked, beside BOTTLE_ENGINE's. */
  engines?: readonly BottleEngineKind[];
}

export async function runDoctor(o: DoctorOptions = {}): Promise<Check[]> {
  const ctx = contextOf(o);
  const others = [...new Set(o.engines ?? [])].map((kind) => withEngine(ctx, kind).engine).filter((e) => e !== ctx.engine);
  const [engineChecks, stateCheck, isolation, ...more] = await Promise.all([ctx.engine.checks(), checkStateRoot(ctx.root), checkHostIsolation(ctx.engine), ...others.map((e) => e.checks())]);
  return [checkNode(process.versions.node), ...engineChecks, ...more.flat(), stateCheck, isolation];
}

export function checkNode(version: string): Check {
  const tooOld = nodeTooOld(version);
  return tooOld ? { name: "node", ok: false, detail: `Node.js ${version} is too old (need ${MIN_NODE_MAJOR} or newer)`, fix: tooOld } : { name: "node", ok: true, detail: `Node.js ${version}` };
}

export async function checkStateRoot(root: string): Promise<Check> {
  try {
    const st = await fs.stat(root);
    if (!st.isDirectory()) return { name: "state", ok: false, detail: `${root} is not a directory`, fix: `Remove it or set BOTTLE_STATE_DIR to another folder.` };
    const mode = st.mode & 0o777;
    await fs.access(root, constants.W_OK);
    if (mode & 0o077) return { name: "state", ok: false, detail: `${root} has mode ${mode.toString(8)}; other users can read bottle state`, fix: `chmod 700 ${root}` };
    return { name: "state", ok: true, detail: `${root} (mode 700)` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      // Not created yet is fine if the nearest existing ancestor is
      // writable: start creates the missing folders (the last one 0700).
      let parent = nodePath.dirname(root);
      while (parent !== nodePath.dirname(parent) && !(await exists(parent))) parent = nodePath.dirname(parent);
      try {
        await fs.access(parent, constants.W_OK);
        return { name: "state", ok: true, detail: `${root} will be created (mode 700) on first start` };
      } catch {
        return { name: "state", ok: false, detail: `cannot create ${root}: ${parent} is not writable`, fix: `Create it (mkdir -p -m 700 ${root}) or set BOTTLE_STATE_DIR.` };
      }
    }
    return { name: "state", ok: false, detail: `${root}: ${code ?? String(err)}`, fix: `Fix permissions (chmod 700 ${root}) or set BOTTLE_STATE_DIR.` };
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

/** SPEC §10 #2: can bottles reach ports the Docker host binds on 0.0.0.0? */
export async function checkHostIsolation(engine: Engine): Promise<Check> {
  const s = await engine.isolation();
  return s.supported
    ? { name: "host", ok: true, detail: `agents cannot reach host ports: ${s.reason}` }
    : {
        name: "host",
        ok: false,
        detail: `agents can reach ports the Docker host binds on 0.0.0.0 through their network's gateway: ${s.reason}`,
        fix: "Run bot-bottle as root on the engine's host (it then adds `iptables -I INPUT -i <bridge> -j REJECT` per bottle), or bind host services to 127.0.0.1 only.",
      };
}

export interface ManifestReview {
  file: string;
  /** False when the manifest cannot be read or is invalid. */
  ok: boolean;
  detail: string;
  fix?: string;
  /** Per profile: settings that will not work as meant (they do not make doctor fail). */
  warnings: Array<CredentialWarning & { profile: string }>;
  /** The engines its profiles run on (profile engine, else defaults.engine, else BOTTLE_ENGINE, else compose). */
  engines: BottleEngineKind[];
}

/**
 * The manifest a start would use (--manifest, else BOTTLE_MANIFEST, else
 * ./bottle.yaml): does it load, and what in its profiles will not work as
 * meant? Undefined when none was named and ./bottle.yaml does not exist.
 */
export function reviewManifest(o: { manifest?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): ManifestReview | undefined {
  const env = o.env ?? process.env;
  const file = manifestPath(o.manifest, env, o.cwd);
  if (o.manifest === undefined && env.BOTTLE_MANIFEST === undefined && !existsSync(file)) return undefined;
  try {
    const loaded = loadManifest(file);
    const profiles = Object.keys(loaded.manifest.agents);
    const warnings = profiles.flatMap((name) => {
      // The same plan a render or start resolves, so the warnings match theirs.
      const plan = resolvePlan({
        profileName: name,
        profile: getProfile(loaded, name),
        defaultFirewall: loaded.manifest.defaults.firewall,
        slug: `${name}-0000`,
        stateRoot: stateRoot(env),
        packageRoot: packageRoot(),
        hostUser: hostUser(),
      });
      return credentialWarnings(credentialInput(plan)).map((w) => ({ profile: name, ...w }));
    });
    const fallback: BottleEngineKind = loaded.manifest.defaults.engine ?? (env.BOTTLE_ENGINE === "swarm" ? "swarm" : "compose");
    const engines = [...new Set(profiles.map((name) => getProfile(loaded, name).engine ?? fallback))];
    return { file, ok: true, detail: `${file} is valid (${profiles.length === 1 ? "profile" : "profiles"} ${profiles.join(", ")})`, warnings, engines };
  } catch (err) {
    const e = toBottleError(err);
    return { file, ok: false, detail: e.message, fix: e.hint ?? "Fix the manifest as the message says (the README's Manifest section shows every key).", warnings: [], engines: [] };
  }
}
