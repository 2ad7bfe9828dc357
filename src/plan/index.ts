export * from "./plan.js";
export * from "./slug.js";
export * from "./labels.js";
