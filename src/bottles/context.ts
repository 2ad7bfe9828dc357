// What every core function runs with: the environment, the engine and the
// state root. Adapters pass nothing (the process env and the compose engine);
// unit tests pass a FakeEngine and a temporary state root.
import { engineFor, type Engine, type ProjectRef } from "../engine/index.js";
import type { Metadata } from "../state/metadata.js";
import { stateRoot } from "../state/root.js";

export interface CtxInput {
  env?: NodeJS.ProcessEnv;
  engine?: Engine;
}

export interface Ctx {
  env: NodeJS.ProcessEnv;
  engine: Engine;
  root: string;
  now: () => Date;
}

export function contextOf(req: CtxInput = {}): Ctx {
  const env = req.env ?? process.env;
  return { env, engine: req.engine ?? engineFor(env), root: stateRoot(env), now: () => new Date() };
}

/**
 * The context with the engine of `kind`: the one it has when that is the
 * kind (or a test's fake, which stands in for every kind), else a new one
 * for the same environment. A bottle is driven by the engine that started it.
 */
export function withEngine(ctx: Ctx, kind: "compose" | "swarm" | undefined): Ctx {
  const want = kind ?? "compose";
  if (ctx.engine.kind === want || ctx.engine.kind === "fake") return ctx;
  return { ...ctx, engine: engineFor({ ...ctx.env, BOTTLE_ENGINE: want }) };
}

/** The engine project of a bottle, from its metadata. */
export const projectOf = (meta: Pick<Metadata, "slug" | "project" | "composeFile" | "instance">): ProjectRef => ({ slug: meta.instance ?? meta.slug, project: meta.project, file: meta.composeFile });

/** The bottle's name on the engine (its labels): the slug, or the pool name a claimed bottle keeps. */
export const instanceOf = (meta: Pick<Metadata, "slug" | "instance">): string => meta.instance ?? meta.slug;
