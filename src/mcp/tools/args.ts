// Arguments several tools share.
import { z } from "zod";

export const slugArg = z.string().min(1).max(200).describe("Bottle slug, e.g. implementer-7f3a.");
