// The agent loop: system prompt + message → model → for each tool_use the
// kernel's invokeTool (capability check, approval, the tool, audit) → a
// tool_result (denials and tool errors go back as is_error results and the
// loop goes on) → until end_turn, max_turns, the budget, or a stop.
//
// Every model call is one scheduler grant per attempt: reserve → send →
// settle, with retries (exponential backoff, full jitter, retry-after
// honoured, bounded in count and time) re-admitted through the scheduler.
import type { Logger } from "pino";
import { cut } from "../cut.ts";
import { ErrorCode, KernelError } from "../errors.ts";
import { SchedCancelled, type Grant, type Scheduler, type Usage } from "../sched/index.ts";
import type {
  AgentOutputEvent,
  AgentServices,
  AuditEventInput,
  RunResult,
  ToolCallRecord,
  ToolDescription,
} from "../services.ts";
import type { InferenceConfig } from "./config.ts";
import { bytesEstimate, incrementalEstimate } from "./estimate.ts";
import {
  ProviderError,
  type AssistantBlock,
  type ChatResponse,
  type ConversationMessage,
  type ToolResultBlock,
} from "./providers/types.ts";
import type { Route } from "./router.ts";
import { retryAfterMs } from "../sched/ratelimit.ts";

export interface LoopAgent {
  id: string;
  name: string;
  model: string;
  systemPrompt: string;
  maxTurns: number;
  signal: AbortSignal;
}

export interface LoopDeps {
  cfg: InferenceConfig;
  sched: Scheduler;
  services: AgentServices;
  audit: (e: AuditEventInput) => Promise<unknown>;
  log: Logger;
  scrub: (s: string) => string;
  /** for tests: deterministic jitter */
  random?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

class Stopped extends Error {}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** full-jitter exponential backoff: random in [base·2^(n-1)/2, base·2^(n-1)], capped */
export function backoffMs(attempt: number, base: number, max: number, random: () => number): number {
  const exp = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

export async function runLoop(
  deps: LoopDeps,
  agent: LoopAgent,
  route: Route,
  message: string,
  onOutput?: (e: AgentOutputEvent) => void,
): Promise<RunResult> {
  const { cfg, sched, services, log } = deps;
  const audit = async (e: AuditEventInput) => {
    try {
      await deps.audit(e);
    } catch (err) {
      log.error({ err: deps.scrub(String(err)), kind: e.kind }, "audit write failed");
    }
  };
  const emit = (e: AgentOutputEvent) => {
    if (!onOutput) return;
    try {
      onOutput(e);
    } catch (err) {
      log.warn({ err: String(err) }, "agent.output listener threw");
    }
  };
  const provider = route.provider;
  const usage: Usage = { input_tokens: 0, output_tokens: 0 };
  const toolCalls: ToolCallRecord[] = [];
  let turns = 0;
  let response = "";
  let stopReason = "error";
  const started = Date.now();

  await audit({
    kind: "run.start",
    agent_id: agent.id,
    model: agent.model,
    provider: provider.name,
    message_bytes: new TextEncoder().encode(message).length,
  });
  try {
    try {
      provider.ready();
    } catch (e) {
      const pe = e as ProviderError;
      await audit({
        kind: "inference.error",
        agent_id: agent.id,
        model: agent.model,
        provider: provider.name,
        error_kind: pe.kind,
        message: pe.message,
        attempt: 0,
      });
      throw new KernelError(ErrorCode.InferenceFailed, pe.message, {
        agent_id: agent.id,
        model: agent.model,
        provider: provider.name,
        kind: pe.kind,
      });
    }
    const tools: ToolDescription[] = services.listTools(agent.id);
    const messages: ConversationMessage[] = [{ role: "user", content: message }];
    let last: Usage | null = null;
    let added: ConversationMessage[] = [...messages];

    while (true) {
      if (agent.signal.aborted) {
        stopReason = "stopped";
        break;
      }
      if (turns >= agent.maxTurns) {
        stopReason = "max_turns";
        break;
      }
      const fromBytes = bytesEstimate(agent.systemPrompt, messages, tools);
      const inputEstimate = last ? Math.min(fromBytes, incrementalEstimate(last, added)) : fromBytes;
      let call: { resp: ChatResponse; grant: Grant };
      try {
        call = await callModel(deps, audit, agent, route, tools, messages, inputEstimate, (t) =>
          emit({ agent_id: agent.id, type: "text", text: t }),
        );
      } catch (e) {
        if (e instanceof KernelError && e.code === ErrorCode.BudgetExhausted) {
          if (turns === 0) throw e;
          stopReason = "budget_exhausted";
          break;
        }
        if (e instanceof Stopped || e instanceof SchedCancelled || agent.signal.aborted) {
          stopReason = "stopped";
          break;
        }
        throw e;
      }
      turns++;
      const { resp, grant } = call;
      usage.input_tokens += resp.usage.input_tokens;
      usage.output_tokens += resp.usage.output_tokens;
      last = resp.usage;
      emit({ agent_id: agent.id, type: "turn", turn: turns, usage: { ...resp.usage } });
      const text = resp.content
        .filter((b) => b.type === "text")
        .map((b) => (b as { text: string }).text)
        .join("");
      if (text) response = text;
      messages.push({ role: "assistant", content: resp.content });
      const uses = resp.content.filter(
        (b): b is Extract<AssistantBlock, { type: "tool_use" }> => b.type === "tool_use",
      );
      if (resp.stop_reason !== "tool_use" || uses.length === 0) {
        stopReason =
          resp.stop_reason === "max_tokens" && grant.maxTokens < cfg.default_max_tokens
            ? "budget_exhausted"
            : resp.stop_reason;
        break;
      }
      const results: ToolResultBlock[] = [];
      for (const u of uses) {
        if (agent.signal.aborted) break;
        emit({ agent_id: agent.id, type: "tool_use", tool: u.name, input: u.input, id: u.id });
        if (u.input_error) {
          const error = { code: ErrorCode.InvalidParams, message: u.input_error };
          toolCalls.push({ tool: u.name, input: u.input, ok: false, error });
          results.push({
            type: "tool_result",
            tool_use_id: u.id,
            content: `error ${error.code}: ${error.message}`,
            is_error: true,
          });
          emit({ agent_id: agent.id, type: "tool_result", tool: u.name, id: u.id, ok: false, error });
          continue;
        }
        try {
          const output = await services.invokeTool(agent.id, u.name, u.input, {
            via: "model",
            signal: agent.signal,
            onApprovalPending: (approvalId) =>
              emit({ agent_id: agent.id, type: "approval_pending", approval_id: approvalId, tool: u.name }),
          });
          const full = typeof output === "string" ? output : JSON.stringify(output ?? null);
          const content = cut(full, cfg.max_tool_result_bytes);
          const shown = content === full ? output : content;
          toolCalls.push({ tool: u.name, input: u.input, ok: true, output: shown });
          results.push({ type: "tool_result", tool_use_id: u.id, content });
          emit({ agent_id: agent.id, type: "tool_result", tool: u.name, id: u.id, ok: true, output: shown });
        } catch (e) {
          if (agent.signal.aborted) break;
          const error = {
            code: e instanceof KernelError ? e.code : ErrorCode.InternalError,
            message: deps.scrub(e instanceof Error ? e.message : String(e)),
          };
          toolCalls.push({ tool: u.name, input: u.input, ok: false, error });
          results.push({
            type: "tool_result",
            tool_use_id: u.id,
            content: `error ${error.code}: ${error.message}`,
            is_error: true,
          });
          emit({ agent_id: agent.id, type: "tool_result", tool: u.name, id: u.id, ok: false, error });
        }
      }
      if (agent.signal.aborted) {
        stopReason = "stopped";
        break;
      }
      const next: ConversationMessage = { role: "user", content: results };
      messages.push(next);
      added = [messages[messages.length - 2]!, next];
    }
  } catch (e) {
    stopReason = "error";
    throw e;
  } finally {
    await audit({
      kind: "run.end",
      agent_id: agent.id,
      model: agent.model,
      stop_reason: stopReason,
      turns,
      usage: { ...usage },
      tool_calls: toolCalls.length,
      duration_ms: Date.now() - started,
    });
  }
  return { agent_id: agent.id, response, stop_reason: stopReason, usage, tool_calls: toolCalls };
}

/** one model call: admitted, sent, settled; retried on transient failures */
async function callModel(
  deps: LoopDeps,
  audit: (e: AuditEventInput) => Promise<void>,
  agent: LoopAgent,
  route: Route,
  tools: ToolDescription[],
  messages: ConversationMessage[],
  inputEstimate: number,
  onText: (t: string) => void,
): Promise<{ resp: ChatResponse; grant: Grant }> {
  const { cfg, sched, log } = deps;
  const random = deps.random ?? Math.random;
  const sleep = deps.sleep ?? abortableSleep;
  const provider = route.provider;
  const firstAt = Date.now();
  for (let attempt = 1; ; attempt++) {
    // may throw -32004 (budget) or SchedCancelled (stopped)
    const grant = await sched.acquire({
      agentId: agent.id,
      provider: provider.name,
      inputTokens: inputEstimate,
      maxTokens: cfg.default_max_tokens,
      signal: agent.signal,
    });
    await audit({
      kind: "inference.request",
      agent_id: agent.id,
      model: agent.model,
      provider: provider.name,
      attempt,
      reserved: grant.reserved,
      max_tokens: grant.maxTokens,
      input_tokens_estimate: inputEstimate,
      queued_ms: grant.queuedMs,
    });
    const t0 = Date.now();
    try {
      const resp = await provider.send({
        model: route.model,
        system: agent.systemPrompt,
        messages,
        tools,
        maxTokens: grant.maxTokens,
        signal: agent.signal,
        onText,
      });
      grant.settle(resp.usage);
      sched.observe(provider.name, 200, resp.headers);
      const spent = resp.usage.input_tokens + resp.usage.output_tokens;
      if (spent > grant.reserved)
        log.warn({ agent_id: agent.id, reserved: grant.reserved, spent }, "a call used more tokens than it reserved");
      await audit({
        kind: "inference.usage",
        agent_id: agent.id,
        model: agent.model,
        provider: provider.name,
        input_tokens: resp.usage.input_tokens,
        output_tokens: resp.usage.output_tokens,
        reserved: grant.reserved,
        latency_ms: Date.now() - t0,
        attempt,
        stop_reason: resp.stop_reason,
      });
      return { resp, grant };
    } catch (e) {
      const pe =
        e instanceof ProviderError
          ? e
          : new ProviderError("other", deps.scrub(e instanceof Error ? e.message : String(e)), { retryable: false });
      grant.settle(pe.extra.partialUsage ?? null);
      if (pe.extra.partialUsage) {
        await audit({
          kind: "inference.usage",
          agent_id: agent.id,
          model: agent.model,
          provider: provider.name,
          input_tokens: pe.extra.partialUsage.input_tokens,
          output_tokens: pe.extra.partialUsage.output_tokens,
          reserved: grant.reserved,
          latency_ms: Date.now() - t0,
          attempt,
          partial: true,
        });
      }
      if (pe.kind === "aborted" || agent.signal.aborted) throw new Stopped();
      if (pe.headers) sched.observe(provider.name, pe.status, pe.headers);
      const elapsed = Date.now() - firstAt;
      const ra = retryAfterMs(pe.headers);
      const delay = Math.max(ra ?? 0, backoffMs(attempt, cfg.retry.base_delay_ms, cfg.retry.max_delay_ms, random));
      const failure = {
        agent_id: agent.id,
        model: agent.model,
        provider: provider.name,
        attempt,
        status: pe.status ?? null,
        error_kind: pe.kind,
      };
      const giveUp = !pe.retryable || attempt > route.maxRetries || elapsed + delay > cfg.retry.max_elapsed_ms;
      if (giveUp) {
        await audit({ kind: "inference.error", ...failure, message: pe.message });
        log.warn(
          { agent_id: agent.id, model: agent.model, attempt, status: pe.status, kind: pe.kind },
          "inference failed",
        );
        const why = pe.retryable ? ` (gave up after ${attempt} attempt${attempt > 1 ? "s" : ""})` : "";
        throw new KernelError(
          ErrorCode.InferenceFailed,
          pe.kind === "auth" ? pe.message : `inference failed: ${pe.message}${why}`,
          {
            agent_id: agent.id,
            model: agent.model,
            provider: provider.name,
            status: pe.status ?? null,
            kind: pe.kind,
            attempts: attempt,
          },
        );
      }
      await audit({ kind: "inference.retry", ...failure, delay_ms: delay, retry_after_ms: ra ?? null });
      log.info({ agent_id: agent.id, attempt, status: pe.status, kind: pe.kind, delay_ms: delay }, "inference retry");
      await sleep(delay, agent.signal);
      if (agent.signal.aborted) throw new Stopped();
    }
  }
}
