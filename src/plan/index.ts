export * from "./plan.js";
export * from "./names.js";
export * from "./subnets.js";
export * from "./summary.js";
export * from "./policy-context.js";
export * from "./readiness.js";
