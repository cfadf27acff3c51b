// What every provider speaks: the conversation in Messages API shape, one
// call in, one assistant message out. A provider never retries (the loop
// does, through the scheduler) and never sees the agent's budget.
import type { Usage } from "../../sched/index.ts";
import type { ToolDescription } from "../../services.ts";

export type TextBlock = { type: "text"; text: string };
export type ToolUseBlock = { type: "tool_use"; id: string; name: string; input: unknown; input_error?: string };
export type ToolResultBlock = { type: "tool_result"; tool_use_id: string; content: string; is_error?: boolean };
export type AssistantBlock = TextBlock | ToolUseBlock;

export type ConversationMessage =
  | { role: "user"; content: string | Array<TextBlock | ToolResultBlock> }
  | { role: "assistant"; content: AssistantBlock[] };

/**
 * Whether the model must call a tool: "auto" lets it choose, "any" requires
 * some tool, "tool" requires the named one. Sent only when tools are present.
 */
export type ToolChoice = { type: "auto" } | { type: "any" } | { type: "tool"; name: string };

export interface ChatRequest {
  model: string;
  system: string;
  messages: ConversationMessage[];
  tools: ToolDescription[];
  /** absent: nothing is sent (the provider's default, auto) */
  toolChoice?: ToolChoice | undefined;
  maxTokens: number;
  signal: AbortSignal;
  onText?: (text: string) => void;
}

export interface ChatResponse {
  content: AssistantBlock[];
  /** end_turn | tool_use | max_tokens | stop_sequence | refusal | pause_turn */
  stop_reason: string;
  usage: Usage;
  headers?: Headers | undefined;
}

export type ErrorKind =
  | "auth" // 401: key missing or rejected
  | "permission" // 403
  | "rate_limit" // 429
  | "overloaded" // 529 / overloaded_error
  | "server" // 5xx / api_error
  | "network" // connection refused, reset, cut-off stream
  | "timeout" // no headers / no event in time
  | "aborted" // the agent was stopped
  | "bad_request" // 400, 404, 413, 422
  | "other";

const RETRYABLE: ReadonlySet<ErrorKind> = new Set(["rate_limit", "overloaded", "server", "network", "timeout"]);

export class ProviderError extends Error {
  readonly retryable: boolean;
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly extra: {
      status?: number | undefined;
      headers?: Headers | undefined;
      /** tokens the provider reported before the failure (a cut-off stream) */
      partialUsage?: Usage | undefined;
      retryable?: boolean | undefined;
    } = {},
  ) {
    super(message);
    this.name = "ProviderError";
    this.retryable = extra.retryable ?? RETRYABLE.has(kind);
  }
  get status() {
    return this.extra.status;
  }
  get headers() {
    return this.extra.headers;
  }
}

export interface Provider {
  /** scheduler name: "anthropic" or "openai:<endpoint>" */
  readonly name: string;
  /** throws ProviderError("auth") when no key is configured and one is required */
  ready(): void;
  send(req: ChatRequest): Promise<ChatResponse>;
}

export function classifyStatus(status: number, type?: string | null): ErrorKind {
  if (type === "overloaded_error") return "overloaded";
  if (type === "rate_limit_error") return "rate_limit";
  if (status === 401) return "auth";
  if (status === 403) return "permission";
  if (status === 429) return "rate_limit";
  if (status === 529) return "overloaded";
  if (status === 408 || status === 409) return "server";
  if (status >= 500) return "server";
  if (status >= 400) return "bad_request";
  return "other";
}

/** honour x-should-retry like the SDK does */
export function shouldRetryHeader(h: Headers | undefined): boolean | undefined {
  const v = h?.get("x-should-retry");
  return v === "true" ? true : v === "false" ? false : undefined;
}

/** parse streamed tool input JSON */
export function parseToolInput(json: string): { input: unknown; error?: string } {
  if (json.trim() === "") return { input: {} };
  try {
    return { input: JSON.parse(json) };
  } catch (e) {
    return { input: {}, error: `the tool input was not valid JSON: ${(e as Error).message}` };
  }
}

/** an idle timer: fires `onIdle` when kick() is not called for ms */
export function idleTimer(ms: number, onIdle: () => void) {
  let t: ReturnType<typeof setTimeout> | null = setTimeout(onIdle, ms);
  return {
    kick() {
      if (t === null) return;
      clearTimeout(t);
      t = setTimeout(onIdle, ms);
    },
    stop() {
      if (t !== null) clearTimeout(t);
      t = null;
    },
  };
}
