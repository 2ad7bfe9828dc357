export * from "./plan.js";
export * from "./slug.js";
