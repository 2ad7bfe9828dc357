import { randomBytes } from "node:crypto";
import { quote } from "../contracts/escape.js";
import { BottleError } from "../errors.js";

/** SPEC §2: lowercase [a-z0-9-], 1–40 chars. No leading '-' so it never reads as a flag. */
export const SLUG_RE = /^[a-z0-9][a-z0-9-]{0,39}$/;

export function validateSlug(slug: unknown): string {
  if (typeof slug !== "string" || !SLUG_RE.test(slug)) {
    const shown = typeof slug === "string" ? quote(slug.length > 60 ? `${slug.slice(0, 57)}...` : slug) : typeof slug;
    throw new BottleError(
      "bad-input",
      `invalid slug ${shown}: expected 1-40 characters of lowercase letters, digits and '-', not starting with '-'`,
      'Example: "implementer-7f3a". Omit the slug to get "<profile>-<4 random hex>".',
    );
  }
  return slug;
}

export function defaultSlug(profile: string, random: () => string = () => randomBytes(2).toString("hex")): string {
  return validateSlug(`${profile}-${random()}`);
}
