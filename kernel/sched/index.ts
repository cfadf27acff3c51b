// kernel/sched: the inference scheduler (admission, budgets, priorities, fair share).
export {
  Scheduler,
  SchedCancelled,
  DEFAULT_SCHED_CONFIG,
  type SchedConfig,
  type SchedAgent,
  type AcquireRequest,
  type Grant,
  type Usage,
} from "./scheduler.ts";
export { BudgetNode, headroom } from "./budget.ts";
export { ProviderLimiter, retryAfterMs, type ProviderLimitsConfig } from "./ratelimit.ts";
export { parsePeriod, isValidPeriod } from "./period.ts";
export { realClock, VirtualClock, type Clock } from "./clock.ts";
