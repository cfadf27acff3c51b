// kernel/llm: inference providers and the agent execution loop, with every
// model call admitted by the scheduler (kernel/sched). See docs/inference.md.
import type pino from "pino";
import { REDACTED } from "../audit/index.ts";
import { ErrorCode, KernelError } from "../errors.ts";
import { Scheduler, type Clock, type Usage } from "../sched/index.ts";
import type { AgentOutputEvent, AgentServices, AuditEventInput, RunResult } from "../services.ts";
import { InferenceConfigSchema, type InferenceConfig } from "./config.ts";
import { runLoop, type RunInput } from "./loop.ts";
export {
  repairConversation,
  REPLY_TOOL,
  INTERRUPTED,
  type RunInput,
  type RunJournal,
  type ReplySpec,
  type RunMemory,
} from "./loop.ts";
import { Router } from "./router.ts";

export { InferenceConfigSchema, type InferenceConfig } from "./config.ts";
export type { AnthropicProviderConfig, OpenAICompatibleEndpoint, RetryConfig } from "./config.ts";
export { NO_KEY_MESSAGE } from "./providers/anthropic.ts";
export { Router } from "./router.ts";

export interface AgentRuntime {
  id: string;
  name: string;
  model: string;
  systemPrompt: string;
  parentId: string | null;
  budget?: { max_tokens: number; period: string /* "lifetime" or a duration like "1h" */ } | undefined;
  priority: number;
  weight: number;
  maxTurns: number;
  /** aborted when the agent is stopped */
  signal: AbortSignal;
  /** tokens used before this boot (a resumed persistent agent) */
  used?: Usage | undefined;
}

export interface InferenceDeps {
  services: AgentServices;
  audit: (e: AuditEventInput) => Promise<{ seq: number }>;
  /** call with every API key loaded, so the audit log redacts it */
  registerSecret: (value: string) => void;
  log: pino.Logger;
  /** process.env in host mode */
  env: Record<string, string | undefined>;
  configDir: string;
  /** for tests and benchmarks */
  clock?: Clock;
  fetch?: typeof fetch;
  random?: () => number;
}

export interface Inference {
  /** register an agent with the scheduler; a child's budget is carved out of its parent's: throws KernelError -32004 if the parent cannot cover it */
  onSpawn(agent: AgentRuntime): void;
  /** cancel its queued calls (in-flight ones are aborted by agent.signal); the unspent part of a child's budget returns to its parent */
  onStop(agentId: string): void;
  run(
    agent: AgentRuntime,
    input: RunInput | string,
    opts: { onOutput?: (e: AgentOutputEvent) => void },
  ): Promise<RunResult>;
  /** result of the `sched.status` RPC method */
  status(): unknown;
  /** tokens an agent has used, as the scheduler metered them (the one count; agent.status reads it; still known after it stopped) */
  usage(agentId: string): Usage | undefined;
}

export function createInference(cfgIn: InferenceConfig, deps: InferenceDeps): Inference {
  const cfg = InferenceConfigSchema.parse(cfgIn);
  const secrets = new Set<string>();
  const registerSecret = (s: string) => {
    if (!s) return;
    secrets.add(s);
    deps.registerSecret(s);
  };
  const scrub = (text: string) => {
    let out = text;
    for (const s of secrets) if (s.length >= 4) out = out.split(s).join(REDACTED);
    return out;
  };
  const log = deps.log.child({ subsystem: "inference" });
  const router = new Router(cfg, {
    env: deps.env,
    configDir: deps.configDir,
    log,
    registerSecret,
    scrub,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
  // load the Anthropic key at boot so it is registered as a secret before anything can print it
  router.anthropicProvider();
  const sched = new Scheduler(
    {
      max_concurrency: cfg.max_concurrency,
      aging_ms: cfg.aging_ms,
      min_output_tokens: cfg.min_output_tokens,
      providers: router.providerLimits(),
    },
    deps.clock,
  );

  const toSched = (a: AgentRuntime) => ({
    id: a.id,
    name: a.name,
    parentId: a.parentId,
    priority: a.priority,
    weight: a.weight,
    budget: a.budget,
    used: a.used,
  });

  return {
    onSpawn(agent) {
      try {
        sched.register(toSched(agent));
      } catch (e) {
        if (e instanceof KernelError) throw e;
        throw new KernelError(ErrorCode.InvalidParams, (e as Error).message, { agent_id: agent.id });
      }
    },
    onStop(agentId) {
      sched.unregister(agentId);
    },
    async run(agent, input, opts) {
      // the kernel registers agents at spawn; a run without it registers here
      if (!sched.has(agent.id) && !sched.usage(agent.id)) sched.register(toSched(agent));
      const route = router.resolve(agent.model);
      return runLoop(
        {
          cfg,
          sched,
          services: deps.services,
          audit: deps.audit,
          log,
          scrub,
          resolve: (model) => router.resolve(model),
          ...(deps.random ? { random: deps.random } : {}),
        },
        agent,
        route,
        input,
        opts.onOutput,
      );
    },
    status() {
      return sched.status();
    },
    usage(agentId) {
      const u = sched.usage(agentId);
      return u ? { input_tokens: u.input_tokens, output_tokens: u.output_tokens } : undefined;
    },
  };
}
