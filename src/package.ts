// The package version is baked into sidecar image tags so a cached image is
// reused exactly when it was built from this version of the code.
import pkg from "../package.json" with { type: "json" };

export const PACKAGE_NAME: string = pkg.name;
export const PACKAGE_VERSION: string = pkg.version;
