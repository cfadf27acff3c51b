// Anthropic through the real @anthropic-ai/sdk: the Messages API, streamed
// (stream: true, raw events accumulated here), with tools. The SDK's own
// retries are off (maxRetries: 0): retries go back through the scheduler so
// that each attempt is admitted, rate-limited and audited like any call.
//
// The SDK is loaded on the first send, not at boot: it is the largest
// library the kernel links (≈1.4 MiB of the idle RSS, bench/memory.ts), and
// an idle kernel never calls it. The key is still read (and registered as
// a secret) at boot by the router; only the client waits.
import type Anthropic from "@anthropic-ai/sdk";
import type { Logger } from "pino";
import {
  ProviderError,
  classifyStatus,
  idleTimer,
  parseToolInput,
  shouldRetryHeader,
  type AssistantBlock,
  type ChatRequest,
  type ChatResponse,
  type Provider,
  type ToolChoice,
} from "./types.ts";

export interface AnthropicOptions {
  /** null: no key configured; send() then fails with kind "auth" */
  apiKey: string | null;
  baseURL?: string | undefined;
  timeoutMs: number;
  log: Logger;
  /** replaces secrets in any text that leaves the provider */
  scrub: (s: string) => string;
  /** for tests: a custom fetch */
  fetch?: typeof fetch;
}

export const NO_KEY_MESSAGE =
  "no inference provider configured: set ANTHROPIC_API_KEY or inference.providers.anthropic.api_key_file";

type AnthropicSdk = typeof import("@anthropic-ai/sdk");
let sdkLoad: Promise<AnthropicSdk> | null = null;
/** the SDK module, evaluated once, on the first call that needs it */
function loadSdk(): Promise<AnthropicSdk> {
  return (sdkLoad ??= import("@anthropic-ai/sdk"));
}

/** the SDK's default when neither base_url nor $ANTHROPIC_BASE_URL is set (the router resolves both) */
const DEFAULT_BASE_URL = "https://api.anthropic.com";

export class AnthropicProvider implements Provider {
  readonly name = "anthropic";
  private client: Anthropic | null = null;
  /** the loaded SDK, for telling its errors apart; null until the first send */
  private sdk: AnthropicSdk | null = null;

  constructor(private readonly opts: AnthropicOptions) {}

  /** the client, built on the first send (a key is required: ready() checked it) */
  private async getClient(): Promise<Anthropic> {
    if (this.client) return this.client;
    const sdk = (this.sdk = await loadSdk());
    const log = this.opts.log;
    const scrub = this.opts.scrub;
    const fwd =
      (level: "warn" | "error" | "info" | "debug") =>
      (msg: string, ...rest: unknown[]) =>
        log[level]({ sdk: "anthropic", detail: rest.length ? scrub(safeString(rest)) : undefined }, scrub(String(msg)));
    this.client ??= new sdk.default({
      apiKey: this.opts.apiKey,
      authToken: null,
      baseURL: this.opts.baseURL ?? null,
      maxRetries: 0,
      timeout: this.opts.timeoutMs,
      logLevel: "warn",
      logger: { error: fwd("error"), warn: fwd("warn"), info: fwd("info"), debug: fwd("debug") },
      ...(this.opts.fetch ? { fetch: this.opts.fetch } : {}),
    });
    return this.client;
  }

  get baseURL(): string {
    return this.client?.baseURL ?? this.opts.baseURL ?? DEFAULT_BASE_URL;
  }

  ready(): void {
    if (!this.opts.apiKey) throw new ProviderError("auth", NO_KEY_MESSAGE, { retryable: false });
  }

  async send(req: ChatRequest): Promise<ChatResponse> {
    this.ready();
    if (req.signal.aborted) throw new ProviderError("aborted", "the agent was stopped", { retryable: false });
    let client: Anthropic;
    try {
      client = await this.getClient();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new ProviderError("other", this.opts.scrub(`the Anthropic SDK could not be loaded: ${msg}`), {
        retryable: false,
      });
    }
    const ctrl = new AbortController();
    let timedOut = false;
    const onAbort = () => ctrl.abort();
    if (req.signal.aborted) throw new ProviderError("aborted", "the agent was stopped", { retryable: false });
    req.signal.addEventListener("abort", onAbort, { once: true });
    const idle = idleTimer(this.opts.timeoutMs, () => {
      timedOut = true;
      ctrl.abort();
    });

    const content: Array<AssistantBlock & { json?: string }> = [];
    const usage = { input_tokens: 0, output_tokens: 0 };
    let stopReason: string | null = null;
    let sawStop = false;
    let headers: Headers | undefined;
    try {
      const params: Anthropic.MessageCreateParamsStreaming = {
        model: req.model,
        max_tokens: req.maxTokens,
        messages: req.messages as Anthropic.MessageParam[],
        stream: true,
      };
      if (req.system) params.system = req.system;
      if (req.tools.length)
        params.tools = req.tools.map((t) => ({
          name: t.name,
          description: t.description,
          input_schema: { type: "object", ...t.input_schema } as Anthropic.Tool.InputSchema,
        }));
      if (req.tools.length && req.toolChoice) params.tool_choice = anthropicToolChoice(req.toolChoice);
      const { data: stream, response } = await client.messages.create(params, { signal: ctrl.signal }).withResponse();
      headers = response.headers;
      idle.kick();
      for await (const ev of stream) {
        idle.kick();
        switch (ev.type) {
          case "message_start":
            usage.input_tokens = ev.message.usage.input_tokens ?? 0;
            usage.output_tokens = ev.message.usage.output_tokens ?? 0;
            break;
          case "content_block_start": {
            const b = ev.content_block;
            if (b.type === "text") {
              content[ev.index] = { type: "text", text: b.text ?? "" };
              if (b.text) req.onText?.(b.text);
            } else if (b.type === "tool_use")
              content[ev.index] = { type: "tool_use", id: b.id, name: b.name, input: {}, json: "" };
            break;
          }
          case "content_block_delta": {
            const blk = content[ev.index];
            if (!blk) break;
            if (ev.delta.type === "text_delta" && blk.type === "text") {
              blk.text += ev.delta.text;
              req.onText?.(ev.delta.text);
            } else if (ev.delta.type === "input_json_delta" && blk.type === "tool_use") {
              blk.json = (blk.json ?? "") + ev.delta.partial_json;
            }
            break;
          }
          case "message_delta":
            stopReason = ev.delta.stop_reason ?? stopReason;
            if (ev.usage) {
              if (typeof ev.usage.output_tokens === "number") usage.output_tokens = ev.usage.output_tokens;
              if (typeof (ev.usage as { input_tokens?: number | null }).input_tokens === "number")
                usage.input_tokens = (ev.usage as { input_tokens: number }).input_tokens;
            }
            break;
          case "message_stop":
            sawStop = true;
            break;
        }
      }
      if (!sawStop || !stopReason) {
        throw new ProviderError("network", "the response stream ended before message_stop", {
          partialUsage: { ...usage },
          headers,
        });
      }
      const blocks: AssistantBlock[] = [];
      for (const b of content) {
        if (!b) continue;
        if (b.type === "tool_use") {
          const parsed = parseToolInput(b.json ?? "");
          const out: AssistantBlock = { type: "tool_use", id: b.id, name: b.name, input: parsed.input };
          if (parsed.error) out.input_error = parsed.error;
          blocks.push(out);
        } else blocks.push({ type: "text", text: b.text });
      }
      return { content: blocks, stop_reason: stopReason, usage, headers };
    } catch (e) {
      throw this.toProviderError(e, { timedOut, aborted: req.signal.aborted, usage, headers });
    } finally {
      idle.stop();
      req.signal.removeEventListener("abort", onAbort);
    }
  }

  private toProviderError(
    e: unknown,
    ctx: {
      timedOut: boolean;
      aborted: boolean;
      usage: { input_tokens: number; output_tokens: number };
      headers?: Headers | undefined;
    },
  ): ProviderError {
    const partial = ctx.usage.input_tokens || ctx.usage.output_tokens ? { ...ctx.usage } : undefined;
    if (ctx.aborted)
      return new ProviderError("aborted", "the agent was stopped", { partialUsage: partial, retryable: false });
    if (ctx.timedOut)
      return new ProviderError("timeout", `no response within ${this.opts.timeoutMs} ms`, { partialUsage: partial });
    if (e instanceof ProviderError) return e;
    // the SDK is loaded: this runs only after getClient() succeeded
    const Anthropic = this.sdk!;
    if (e instanceof Anthropic.APIUserAbortError)
      return new ProviderError("aborted", "request aborted", { partialUsage: partial, retryable: false });
    if (e instanceof Anthropic.APIConnectionTimeoutError)
      return new ProviderError("timeout", `no response within ${this.opts.timeoutMs} ms`, { partialUsage: partial });
    if (e instanceof Anthropic.APIConnectionError) {
      const cause = (e as { cause?: Error }).cause?.message;
      return new ProviderError("network", this.opts.scrub(`connection error${cause ? `: ${cause}` : ""}`), {
        partialUsage: partial,
      });
    }
    if (e instanceof Anthropic.APIError) {
      const type = e.type ?? null;
      const status = e.status;
      const kind: ReturnType<typeof classifyStatus> = status
        ? classifyStatus(status, type)
        : type
          ? classifyStatus(500, type === "api_error" ? null : type)
          : "server";
      const apiMessage = e.apiMessage ?? type ?? "error";
      const message =
        kind === "auth"
          ? "API key rejected"
          : this.opts.scrub(`${status ? `HTTP ${status} ` : "stream error "}${type ?? ""}: ${apiMessage}`.trim());
      const retryable =
        kind === "auth" || kind === "permission" || kind === "bad_request"
          ? false
          : (shouldRetryHeader(e.headers) ?? undefined);
      return new ProviderError(kind, message, {
        status,
        headers: e.headers ?? ctx.headers,
        partialUsage: partial,
        retryable,
      });
    }
    // anything else while reading the body: a broken connection
    const msg = e instanceof Error ? e.message : String(e);
    return new ProviderError("network", this.opts.scrub(`stream failed: ${msg}`), {
      partialUsage: partial,
      headers: ctx.headers,
    });
  }
}

/** the Messages API's tool_choice: {type:"auto"} | {type:"any"} | {type:"tool", name} */
export function anthropicToolChoice(c: ToolChoice): Anthropic.ToolChoice {
  return c.type === "tool" ? { type: "tool", name: c.name } : { type: c.type };
}

function safeString(v: unknown): string {
  try {
    return JSON.stringify(v).slice(0, 2000);
  } catch {
    return String(v).slice(0, 2000);
  }
}
