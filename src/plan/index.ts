export * from "./plan.js";
export * from "./names.js";
