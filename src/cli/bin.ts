// The `bottle` executable. The version check runs before anything else loads:
// on an old Node the rest would die with an error that names none of this.
import { nodeTooOld } from "../node-version.js";

const tooOld = nodeTooOld(process.versions.node);
if (tooOld) {
  process.stderr.write(`${tooOld}\n`);
  process.exit(1);
}
await import("./main.js");
