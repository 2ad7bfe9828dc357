// The core API: what the adapters (mcp/, cli/) and the demo call. Slug in,
// typed result out; each result has one zod schema both adapters print.
export { cleanup, cleanupOutputSchema, cleanupText, type CleanupResult } from "./cleanup.js";
export { contextOf, type Ctx, type CtxInput } from "./context.js";
export { decide, inbox, PAGE_LIMITS, proposalFiles, type DecideResult, type InboxPage } from "./decide.js";
export { checkNode, checkStateRoot, reviewManifest, runDoctor, type Check, type ManifestReview } from "./doctor.js";
export { execInBottle, execOutputSchema, MAX_EXEC_TIMEOUT_MS, type ExecResult } from "./exec.js";
export { gitDecisionOutputSchema, formatGitDecisions, readGitDecisions } from "./git-log.js";
export { expireGrants } from "./grants.js";
export { bottleSlugs, openBottle, readBottleFile } from "./handle.js";
export { listBottles, listOutputSchema, type ListedBottle } from "./list.js";
export { bottleLogs, followBottleLogs, logsOutputSchema, MAX_TAIL, type LogResult } from "./logs.js";
export { decisionJson, formatDecision, formatInbox, inboxJson } from "./present.js";
export { renderOutput, renderOutputSchema, renderProfile, type RenderOutcome } from "./render.js";
export { poolBottles, startBottle, startOutput, startOutputSchema, stopRefills, type PoolOptions, type StartResult, type StartStep } from "./start.js";
export type { FillResult } from "./pool.js";
export {
  allTaskRefs,
  cancelOutputSchema,
  cancelTask,
  MAX_GRACE_S,
  MAX_READ_BYTES,
  MAX_TASK_TIMEOUT_S,
  MAX_WAIT_S,
  runOutputSchema,
  runTask,
  taskEnded,
  taskOutputSchema,
  taskDiskSchema,
  taskDiskText,
  taskDiskUsage,
  taskOutputText,
  taskStatus,
  taskText,
  type CancelResult,
  type RunResult,
  type TaskDisk,
  type TaskInfo,
  type TaskResult,
} from "./tasks.js";
export { stopBottle, stopOutputSchema, type StopResult } from "./stop.js";
export { warningText } from "../plan/credential-warnings.js";
export { safeJson } from "../contracts/escape.js";
