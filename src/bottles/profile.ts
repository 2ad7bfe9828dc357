// manifest path -> loaded manifest -> profile: the first steps of render,
// start and doctor, in one place.
import { getProfile, loadManifest, manifestPath, type LoadedManifest, type Profile } from "../manifest/index.js";

export function loadProfile(env: NodeJS.ProcessEnv, name: string, manifest?: string, cwd?: string): { file: string; loaded: LoadedManifest; profile: Profile } {
  const file = manifestPath(manifest, env, cwd);
  const loaded = loadManifest(file);
  return { file, loaded, profile: getProfile(loaded, name) };
}
