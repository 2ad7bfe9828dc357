// manifest path -> loaded manifest -> profile, and what a plan needs to know
// about this machine: the first steps of render, start and doctor, in one place
// (the plan itself is pure).
import { statSync } from "node:fs";
import { getProfile, loadManifest, manifestPath, type LoadedManifest, type Profile } from "../manifest/index.js";

export function loadProfile(env: NodeJS.ProcessEnv, name: string, manifest?: string, cwd?: string): { file: string; loaded: LoadedManifest; profile: Profile } {
  const file = manifestPath(manifest, env, cwd);
  const loaded = loadManifest(file);
  return { file, loaded, profile: getProfile(loaded, name) };
}

/** The user our sidecars run as: the host user, so they read the 0600 files we write. */
export const hostUser = () => ({ uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });

/** A profile's env_file is used only when it exists and is non-empty. */
export function envFileUsable(profile: Pick<Profile, "env_file">): boolean {
  if (!profile.env_file) return false;
  try {
    const st = statSync(profile.env_file);
    return st.isFile() && st.size > 0;
  } catch {
    return false;
  }
}
