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
import { modelTools } from "./toolnames.ts";
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
  type ToolChoice,
  type ToolResultBlock,
} from "./providers/types.ts";
import type { StepRecord } from "../proc/store.ts";
import {
  BYTES_PER_TOKEN,
  chooseCut,
  estimateTokens,
  fallbackSummary,
  MAX_MESSAGES,
  renderMessage,
  summaryPrompt,
} from "../memory/compact.ts";
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
  /** the route of another model (the summarisation model of a compaction); absent: the run's own route */
  resolve?: (model: string) => Route;
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

/** what the loop keeps durable for a persistent agent, so that a run can be resumed after a crash */
export interface RunJournal {
  /** a message of this run, made durable before the loop goes on */
  append(m: ConversationMessage): void;
  step(toolUseId: string): StepRecord | undefined;
  /** durable when it returns: "started" is written before the tool runs */
  setStep(toolUseId: string, s: StepRecord): void;
}

/** a run that answers a typed request: the model answers through the synthetic tool `reply` */
export interface ReplySpec {
  /** the served method, for the tool's description */
  method: string;
  description: string;
  /** the method's result schema: the reply tool's input schema */
  schema: Record<string, unknown>;
  /** null when the value fits the schema, else why not (naming the field) */
  check(value: unknown): string | null;
  /** the result from the reply tool's input (a non-object result travels as {result}) */
  unwrap(value: unknown): unknown;
}

/**
 * The conversation's memory (kernel/memory): its context window, the system
 * prompt with the pinned blocks and the summary, and where a compaction is
 * kept. Without it a run is never compacted.
 */
export interface RunMemory {
  /** the model's context window, in tokens */
  window: number;
  /** compact when a request would pass threshold × window */
  threshold: number;
  summarizationModel: string;
  /** the system prompt for the next model call: the manifest's, the pinned blocks, the summary */
  system(base: string): string;
  summary(): string | null;
  /**
   * the oldest n messages of the conversation (history first, then this
   * run's) are archived and replaced by summary; durable when it resolves
   */
  compacted(n: number, archived: ConversationMessage[], summary: string, info: CompactionInfo): Promise<void>;
}

export interface CompactionInfo {
  /** false: the summarisation call failed and a mechanical summary stands in (error says why) */
  summarized: boolean;
  error?: string;
  tokensBefore: number;
  tokensAfter: number;
  window: number;
}

/** the transcript a summarisation call is given is cut to this many characters (its newest part) */
const MAX_TRANSCRIPT_CHARS = 400_000;

export interface RunInput {
  /** the new user message (when resuming, the first message of `resumed` already holds it) */
  message: string;
  /** the conversation before this message (a persistent agent), oldest first */
  history?: ConversationMessage[];
  /** resuming: this run's messages so far, the user message first */
  resumed?: ConversationMessage[];
  journal?: RunJournal;
  reply?: ReplySpec;
  /** the inbox item this run answers: in run.start/run.end and every agent.output */
  itemId?: string;
  /** tools re-run after a crash instead of reported as interrupted (idempotent by their call key) */
  reattach?: ReadonlySet<string>;
  /** aborts this run only (the agent's own stop aborts agent.signal) */
  signal?: AbortSignal;
  /** context window management: compaction, pinned blocks, the summary */
  memory?: RunMemory;
}

export const REPLY_TOOL = "reply";
export const INTERRUPTED =
  "interrupted: outcome unknown (the kernel stopped while this tool call was running; it was not run again)";

export const PRUNED = "(the earlier conversation was pruned)";

/** the text blocks of a reply, joined */
function textOf(content: AssistantBlock[]): string {
  return content
    .filter((b) => b.type === "text")
    .map((b) => (b as { text: string }).text)
    .join("");
}

/** a user message of tool results: a cut there would separate them from their tool_use */
function cutsAnswer(m: ConversationMessage): boolean {
  return m.role === "user" && hasToolResult(m);
}

function hasToolResult(m: ConversationMessage): boolean {
  return Array.isArray(m.content) && m.content.some((b) => b.type === "tool_result");
}

/**
 * A conversation the model will accept: every assistant tool_use answered
 * by a tool_result in the next message (a run that stopped in the middle of
 * its tools leaves them unanswered; they are answered as interrupted).
 */
export function repairConversation(msgs: ConversationMessage[]): ConversationMessage[] {
  // a kept conversation is pruned from its oldest end (kernel/proc/store.ts KEEP_TURNS): tool results
  // whose tool_use was pruned are dropped, and it starts with a user message, as the API requires
  let start = 0;
  while (start < msgs.length && msgs[start]!.role === "user" && hasToolResult(msgs[start]!)) start++;
  if (start > 0) msgs = msgs.slice(start);
  if (msgs[0]?.role === "assistant") msgs = [{ role: "user", content: PRUNED }, ...msgs];
  const out: ConversationMessage[] = [];
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i]!;
    out.push(m);
    if (m.role !== "assistant") continue;
    const uses = m.content.filter((b) => b.type === "tool_use") as Extract<AssistantBlock, { type: "tool_use" }>[];
    if (uses.length === 0) continue;
    const next = msgs[i + 1];
    const answered = new Set(
      next?.role === "user" && Array.isArray(next.content)
        ? next.content.filter((b) => b.type === "tool_result").map((b) => (b as ToolResultBlock).tool_use_id)
        : [],
    );
    const missing = uses.filter((u) => !answered.has(u.id));
    if (missing.length === 0) continue;
    const fill: ToolResultBlock[] = missing.map((u) => ({
      type: "tool_result",
      tool_use_id: u.id,
      content: "not run: the run ended before this tool call",
      is_error: true,
    }));
    if (answered.size > 0 && next && next.role === "user" && Array.isArray(next.content)) {
      msgs = [...msgs];
      msgs[i + 1] = { role: "user", content: [...fill, ...next.content] };
    } else out.push({ role: "user", content: fill });
  }
  return out;
}

export async function runLoop(
  deps: LoopDeps,
  agent: LoopAgent,
  route: Route,
  input: RunInput | string,
  onOutput?: (e: AgentOutputEvent) => void,
): Promise<RunResult> {
  const run: RunInput = typeof input === "string" ? { message: input } : input;
  const { message, journal, reply } = run;
  const itemId = run.itemId;
  const tag = itemId === undefined ? {} : { message_id: itemId };
  const signal = run.signal ? AbortSignal.any([agent.signal, run.signal]) : agent.signal;
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
      onOutput(itemId === undefined ? e : { ...e, ...tag });
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
  let replied: { value: unknown } | null = null;
  let replyError: string | null = null;
  const started = Date.now();
  const loopAgent = { ...agent, signal };

  await audit({
    kind: "run.start",
    agent_id: agent.id,
    model: agent.model,
    provider: provider.name,
    message_bytes: new TextEncoder().encode(message).length,
    ...tag,
    ...(run.resumed?.length ? { resumed: true } : {}),
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
    const own: ConversationMessage[] = [...(run.resumed ?? [])];
    if (own.length === 0) {
      const first: ConversationMessage = { role: "user", content: message };
      journal?.append(first);
      own.push(first);
    }
    turns = own.filter((m) => m.role === "assistant").length;
    // conv: the conversation as it is stored (history, then this run's messages); messages: what the
    // model is sent (conv repaired); both grow together, and a compaction cuts conv and rebuilds messages
    let conv: ConversationMessage[] = [...(run.history ?? []), ...own];
    // (this run's own messages are not repaired: a resumed run answers its last tool calls itself)
    let messages: ConversationMessage[] = [...repairConversation(run.history ?? []), ...own];
    const push = (m: ConversationMessage) => {
      conv.push(m);
      messages.push(m);
    };
    const mem = run.memory;
    const agentTools: ToolDescription[] = services.listTools(agent.id);
    const all: ToolDescription[] = reply
      ? [
          ...agentTools,
          {
            name: REPLY_TOOL,
            description: `Answer the request ${reply.method} with its result (${reply.description}). Call this exactly once, when you have the answer.`,
            effect: "none",
            input_schema: reply.schema,
          },
        ]
      : agentTools;
    // the model sees names its API accepts (mcp.S.T is mcp__S__T); a tool_use is mapped back before anything else
    const named = modelTools(all);
    const tools = named.tools;
    let last: Usage | null = null;
    let added: ConversationMessage[] = [...messages];

    /** the tool calls of the last assistant message: replayed, reported as interrupted, or run */
    const answerTools = async (uses: Extract<AssistantBlock, { type: "tool_use" }>[]): Promise<void> => {
      const results: ToolResultBlock[] = [];
      /** a tool call that failed (or never ran): recorded, told to the watchers, its result block for the model */
      const failed = (u: { id: string; name: string; input: unknown }, error: { code: number; message: string }) => {
        toolCalls.push({ tool: u.name, input: u.input, ok: false, error });
        emit({ agent_id: agent.id, type: "tool_result", tool: u.name, id: u.id, ok: false, error });
        const block: ToolResultBlock = {
          type: "tool_result",
          tool_use_id: u.id,
          content: `error ${error.code}: ${error.message}`,
          is_error: true,
        };
        return block;
      };
      for (const use of uses) {
        const u = { ...use, name: named.kernelName(use.name) };
        if (signal.aborted) break;
        if (reply && u.name === REPLY_TOOL) {
          if (replied) {
            results.push({ type: "tool_result", tool_use_id: u.id, content: "already answered", is_error: true });
            continue;
          }
          const why = reply.check(u.input);
          if (why === null) {
            replied = { value: reply.unwrap(u.input) };
            results.push({ type: "tool_result", tool_use_id: u.id, content: "reply sent" });
          } else {
            replyError = why;
            results.push({
              type: "tool_result",
              tool_use_id: u.id,
              content: `error: the reply was refused, it does not match the result schema of ${reply.method}: ${why}`,
              is_error: true,
            });
          }
          continue;
        }
        if (replied) {
          results.push({
            type: "tool_result",
            tool_use_id: u.id,
            content: "not run: the reply ended this request",
            is_error: true,
          });
          continue;
        }
        const prior = journal?.step(u.id);
        if (prior?.state === "done") {
          // completed before a crash: its recorded result goes back to the model, the tool is not run again
          results.push(prior.result);
          continue;
        }
        emit({ agent_id: agent.id, type: "tool_use", tool: u.name, input: u.input, id: u.id });
        if (prior?.state === "started" && !run.reattach?.has(u.name)) {
          const block = failed(u, { code: ErrorCode.InternalError, message: INTERRUPTED });
          journal?.setStep(u.id, { state: "done", result: block });
          results.push(block);
          continue;
        }
        let block: ToolResultBlock;
        if (u.input_error) {
          block = failed(u, { code: ErrorCode.InvalidParams, message: u.input_error });
        } else {
          try {
            const output = await services.invokeTool(agent.id, u.name, u.input, {
              via: "model",
              signal,
              callKey: `${itemId ?? "run"}:${u.id}`,
              ...(prior?.state === "approval" ? { approvalId: prior.approval_id } : {}),
              onApprovalPending: (approvalId) => {
                journal?.setStep(u.id, { state: "approval", approval_id: approvalId });
                emit({ agent_id: agent.id, type: "approval_pending", approval_id: approvalId, tool: u.name });
              },
              ...(journal ? { beforeRun: () => journal.setStep(u.id, { state: "started" }) } : {}),
            });
            const full = typeof output === "string" ? output : JSON.stringify(output ?? null);
            const content = cut(full, cfg.max_tool_result_bytes);
            const shown = content === full ? output : content;
            toolCalls.push({ tool: u.name, input: u.input, ok: true, output: shown });
            block = { type: "tool_result", tool_use_id: u.id, content };
            emit({ agent_id: agent.id, type: "tool_result", tool: u.name, id: u.id, ok: true, output: shown });
          } catch (e) {
            if (signal.aborted) break;
            block = failed(u, {
              code: e instanceof KernelError ? e.code : ErrorCode.InternalError,
              message: deps.scrub(e instanceof Error ? e.message : String(e)),
            });
          }
        }
        journal?.setStep(u.id, { state: "done", result: block });
        results.push(block);
      }
      if (signal.aborted) return;
      const next: ConversationMessage = { role: "user", content: results };
      journal?.append(next);
      push(next);
      added = [messages[messages.length - 2]!, next];
    };

    /**
     * Before a model call: past threshold × window (the last reply's usage plus what was added
     * since; before the first reply, an estimate from bytes) or past MAX_MESSAGES, the oldest
     * messages are summarised (a model call charged to this agent, through the scheduler) and
     * archived, and the rest is kept. A failed summary is replaced by a mechanical one: a run
     * never fails because its history outgrew the window.
     */
    const compact = async (system: string): Promise<"stopped" | "compacted" | void> => {
      if (!mem) return;
      const size =
        last !== null
          ? last.input_tokens + last.output_tokens + estimateTokens("", added.slice(1), [])
          : estimateTokens(system, messages, tools);
      const limit = mem.threshold * mem.window;
      if (size <= limit && conv.length <= MAX_MESSAGES) return;
      const overhead = estimateTokens(system, [], tools);
      let n = chooseCut(conv, Math.max(0, Math.floor(limit / 2) - overhead));
      if (conv.length > MAX_MESSAGES) {
        // keep at most half the message bound, cut at a valid place
        let i = Math.max(n ?? 1, conv.length - MAX_MESSAGES / 2);
        while (i < conv.length - 1 && cutsAnswer(conv[i]!)) i++;
        if (!cutsAnswer(conv[i]!) && i < conv.length) n = Math.max(n ?? 0, i);
      }
      if (n === null || n <= 0) return;
      const archived = conv.slice(0, n);
      const previous = mem.summary();
      let summary: string;
      let summarized = true;
      let error: string | undefined;
      try {
        summary = await summarise(previous, archived);
      } catch (e) {
        if (e instanceof Stopped || e instanceof SchedCancelled || signal.aborted) return "stopped";
        summarized = false;
        error = deps.scrub(e instanceof Error ? e.message : String(e));
        log.warn({ agent_id: agent.id, err: error }, "the compaction's summary failed; a mechanical summary stands in");
        summary = fallbackSummary(previous, archived);
      }
      const kept = conv.slice(n);
      const tokensAfter = estimateTokens(mem.system(agent.systemPrompt), repairConversation(kept), tools);
      await mem.compacted(n, archived, summary, {
        summarized,
        ...(error === undefined ? {} : { error }),
        tokensBefore: size,
        tokensAfter,
        window: mem.window,
      });
      conv = kept;
      messages = repairConversation(conv);
      last = null;
      added = [...messages];
      return "compacted";
    };

    /** one summarisation call: the archived messages (and the previous summary) in, a summary out */
    const summarise = async (previous: string | null, archived: ConversationMessage[]): Promise<string> => {
      let transcript = archived.map((m) => renderMessage(m)).join("\n\n");
      const cap = Math.min(MAX_TRANSCRIPT_CHARS, Math.floor(mem!.window * BYTES_PER_TOKEN * 0.5));
      if (transcript.length > cap)
        transcript = `[the oldest part of this transcript was cut]\n${transcript.slice(transcript.length - cap)}`;
      const p = summaryPrompt(previous, transcript);
      const sRoute =
        mem!.summarizationModel === agent.model || !deps.resolve ? route : deps.resolve(mem!.summarizationModel);
      const sMessages: ConversationMessage[] = [{ role: "user", content: p.user }];
      const { resp } = await callModel(
        deps,
        audit,
        { ...loopAgent, model: mem!.summarizationModel, systemPrompt: p.system },
        sRoute,
        [],
        sMessages,
        bytesEstimate(p.system, sMessages, []),
        undefined,
        () => {},
      );
      usage.input_tokens += resp.usage.input_tokens;
      usage.output_tokens += resp.usage.output_tokens;
      const text = textOf(resp.content).trim();
      if (!text) throw new Error("the summarisation model answered no text");
      return text;
    };

    // resuming after the model asked for tools: answer them before the next model call
    const tail = messages[messages.length - 1];
    if (tail?.role === "assistant") {
      const uses = tail.content.filter(
        (b): b is Extract<AssistantBlock, { type: "tool_use" }> => b.type === "tool_use",
      );
      if (uses.length > 0) await answerTools(uses);
    }

    while (true) {
      if (signal.aborted) {
        stopReason = "stopped";
        break;
      }
      if (replied) {
        stopReason = "reply";
        break;
      }
      if (turns >= agent.maxTurns) {
        stopReason = "max_turns";
        break;
      }
      // the system prompt with the blocks and the summary, read once per model call (again after a compaction)
      let system = mem ? mem.system(agent.systemPrompt) : agent.systemPrompt;
      if (mem) {
        const cut = await compact(system);
        if (cut === "stopped") {
          stopReason = "stopped";
          break;
        }
        if (cut === "compacted") system = mem.system(agent.systemPrompt);
      }
      const fromBytes = bytesEstimate(system, messages, tools);
      const inputEstimate = last ? Math.min(fromBytes, incrementalEstimate(last, added)) : fromBytes;
      const toolChoice: ToolChoice | undefined = reply
        ? turns + 1 >= agent.maxTurns
          ? { type: "tool", name: REPLY_TOOL }
          : { type: "any" }
        : undefined;
      let call: { resp: ChatResponse; grant: Grant };
      try {
        call = await callModel(
          deps,
          audit,
          system === agent.systemPrompt ? loopAgent : { ...loopAgent, systemPrompt: system },
          route,
          tools,
          messages,
          inputEstimate,
          toolChoice,
          (t) => emit({ agent_id: agent.id, type: "text", text: t }),
        );
      } catch (e) {
        if (e instanceof KernelError && e.code === ErrorCode.BudgetExhausted) {
          if (turns === 0) throw e;
          stopReason = "budget_exhausted";
          break;
        }
        if (e instanceof Stopped || e instanceof SchedCancelled || signal.aborted) {
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
      const text = textOf(resp.content);
      if (text) response = text;
      const said: ConversationMessage = { role: "assistant", content: resp.content };
      journal?.append(said);
      push(said);
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
      await answerTools(uses);
      if (signal.aborted) {
        stopReason = "stopped";
        break;
      }
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
      ...tag,
    });
  }
  const result: RunResult = { agent_id: agent.id, response, stop_reason: stopReason, usage, tool_calls: toolCalls };
  if (reply) {
    const r = replied as { value: unknown } | null;
    if (r) result.reply = r.value;
    else if (replyError !== null) result.reply_error = replyError;
  }
  return result;
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
  toolChoice: ToolChoice | undefined,
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
        ...(toolChoice ? { toolChoice } : {}),
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
