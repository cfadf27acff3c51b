// OpenAI-compatible chat completions (vLLM, llama.cpp's llama-server,
// Ollama, LM Studio, ...): POST {base_url}/chat/completions, streamed (SSE),
// with function tools. The conversation is kept in Messages API shape and
// translated here.
import {
  ProviderError,
  classifyStatus,
  idleTimer,
  parseToolInput,
  shouldRetryHeader,
  type AssistantBlock,
  type ChatRequest,
  type ChatResponse,
  type ConversationMessage,
  type Provider,
  type ToolChoice,
} from "./types.ts";

export interface OpenAIOptions {
  endpoint: string;
  baseURL: string;
  apiKey: string | null;
  timeoutMs: number;
  scrub: (s: string) => string;
  fetch?: typeof fetch;
}

type OAMessage =
  | { role: "system" | "user"; content: string }
  | {
      role: "assistant";
      content: string | null;
      tool_calls?: Array<{ id: string; type: "function"; function: { name: string; arguments: string } }>;
    }
  | { role: "tool"; tool_call_id: string; content: string };

export function toOpenAIMessages(system: string, messages: ConversationMessage[]): OAMessage[] {
  const out: OAMessage[] = [];
  if (system) out.push({ role: "system", content: system });
  for (const m of messages) {
    if (m.role === "user") {
      if (typeof m.content === "string") {
        out.push({ role: "user", content: m.content });
        continue;
      }
      const texts: string[] = [];
      for (const b of m.content) {
        if (b.type === "tool_result")
          out.push({
            role: "tool",
            tool_call_id: b.tool_use_id,
            content: b.is_error ? `ERROR: ${b.content}` : b.content,
          });
        else texts.push(b.text);
      }
      if (texts.length) out.push({ role: "user", content: texts.join("\n") });
    } else {
      const text = m.content
        .filter((b) => b.type === "text")
        .map((b) => (b as { text: string }).text)
        .join("");
      const calls = m.content.filter((b) => b.type === "tool_use") as Array<{
        id: string;
        name: string;
        input: unknown;
      }>;
      out.push({
        role: "assistant",
        content: text.length ? text : null,
        ...(calls.length
          ? {
              tool_calls: calls.map((c) => ({
                id: c.id,
                type: "function" as const,
                function: { name: c.name, arguments: JSON.stringify(c.input ?? {}) },
              })),
            }
          : {}),
      });
    }
  }
  return out;
}

/** chat completions' tool_choice: "auto" | "required" | {type:"function", function:{name}} */
export function openAIToolChoice(
  c: ToolChoice,
): "auto" | "required" | { type: "function"; function: { name: string } } {
  if (c.type === "tool") return { type: "function", function: { name: c.name } };
  return c.type === "any" ? "required" : "auto";
}

const STOP: Record<string, string> = {
  stop: "end_turn",
  tool_calls: "tool_use",
  function_call: "tool_use",
  length: "max_tokens",
  content_filter: "refusal",
};

export class OpenAICompatibleProvider implements Provider {
  readonly name: string;
  constructor(private readonly opts: OpenAIOptions) {
    this.name = `openai:${opts.endpoint}`;
  }

  ready(): void {}

  async send(req: ChatRequest): Promise<ChatResponse> {
    if (req.signal.aborted) throw new ProviderError("aborted", "the agent was stopped", { retryable: false });
    const ctrl = new AbortController();
    let timedOut = false;
    const onAbort = () => ctrl.abort();
    req.signal.addEventListener("abort", onAbort, { once: true });
    const idle = idleTimer(this.opts.timeoutMs, () => {
      timedOut = true;
      ctrl.abort();
    });
    const f = this.opts.fetch ?? fetch;
    const url = this.opts.baseURL.replace(/\/+$/, "") + "/chat/completions";
    const body: Record<string, unknown> = {
      model: req.model,
      messages: toOpenAIMessages(req.system, req.messages),
      max_tokens: req.maxTokens,
      stream: true,
      stream_options: { include_usage: true },
    };
    if (req.tools.length)
      body.tools = req.tools.map((t) => ({
        type: "function",
        function: { name: t.name, description: t.description, parameters: { type: "object", ...t.input_schema } },
      }));
    if (req.tools.length && req.toolChoice) body.tool_choice = openAIToolChoice(req.toolChoice);
    const headers: Record<string, string> = { "content-type": "application/json", accept: "text/event-stream" };
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;

    let text = "";
    const calls = new Map<number, { id: string; name: string; args: string }>();
    let finish: string | null = null;
    let usage: { input_tokens: number; output_tokens: number } | null = null;
    let resHeaders: Headers | undefined;
    try {
      let res: Response;
      try {
        res = await f(url, { method: "POST", headers, body: JSON.stringify(body), signal: ctrl.signal });
      } catch (e) {
        throw this.netError(e, timedOut, req.signal.aborted);
      }
      resHeaders = res.headers;
      idle.kick();
      if (!res.ok) {
        const raw = await res.text().catch(() => "");
        let msg = raw.slice(0, 500);
        let type: string | null = null;
        try {
          const j = JSON.parse(raw);
          msg = String(j?.error?.message ?? j?.message ?? msg);
          type = j?.error?.type ?? null;
        } catch {}
        const kind = classifyStatus(
          res.status,
          type === "overloaded_error" || type === "rate_limit_error" ? type : null,
        );
        throw new ProviderError(
          kind,
          kind === "auth" ? "API key rejected" : this.opts.scrub(`HTTP ${res.status}: ${msg}`),
          {
            status: res.status,
            headers: res.headers,
            retryable:
              kind === "auth" || kind === "bad_request" || kind === "permission"
                ? false
                : shouldRetryHeader(res.headers),
          },
        );
      }
      if (!res.body) throw new ProviderError("network", "empty response body", { headers: res.headers });
      const ctype = res.headers.get("content-type") ?? "";
      if (!ctype.includes("text/event-stream")) {
        // a server that ignored stream: true
        const j = (await res.json()) as any;
        const msg = j?.choices?.[0]?.message ?? {};
        text = msg.content ?? "";
        if (text) req.onText?.(text);
        (msg.tool_calls ?? []).forEach((c: any, i: number) =>
          calls.set(i, { id: c.id, name: c.function?.name, args: c.function?.arguments ?? "" }),
        );
        finish = j?.choices?.[0]?.finish_reason ?? "stop";
        if (j?.usage)
          usage = { input_tokens: j.usage.prompt_tokens ?? 0, output_tokens: j.usage.completion_tokens ?? 0 };
      } else {
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        let done = false;
        while (!done) {
          let chunk: { done: boolean; value?: Uint8Array | undefined };
          try {
            chunk = await reader.read();
          } catch (e) {
            throw this.netError(e, timedOut, req.signal.aborted);
          }
          if (chunk.done) break;
          idle.kick();
          buf += dec.decode(chunk.value!, { stream: true });
          let i: number;
          while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
            const event = buf.slice(0, i);
            buf = buf.slice(i).replace(/^\r?\n\r?\n/, "");
            for (const line of event.split(/\r?\n/)) {
              if (!line.startsWith("data:")) continue;
              const data = line.slice(5).trim();
              if (data === "[DONE]") {
                done = true;
                break;
              }
              let j: any;
              try {
                j = JSON.parse(data);
              } catch {
                continue;
              }
              if (j.error)
                throw new ProviderError("server", this.opts.scrub(`stream error: ${j.error.message ?? "unknown"}`), {
                  headers: res.headers,
                });
              if (j.usage)
                usage = { input_tokens: j.usage.prompt_tokens ?? 0, output_tokens: j.usage.completion_tokens ?? 0 };
              const choice = j.choices?.[0];
              if (!choice) continue;
              const d = choice.delta ?? {};
              if (typeof d.content === "string" && d.content.length) {
                text += d.content;
                req.onText?.(d.content);
              }
              for (const tc of d.tool_calls ?? []) {
                const idx = typeof tc.index === "number" ? tc.index : calls.size;
                const cur = calls.get(idx) ?? { id: "", name: "", args: "" };
                if (tc.id) cur.id = tc.id;
                if (tc.function?.name) cur.name += tc.function.name;
                if (tc.function?.arguments) cur.args += tc.function.arguments;
                calls.set(idx, cur);
              }
              if (choice.finish_reason) finish = choice.finish_reason;
            }
            if (done) break;
          }
        }
        if (!finish)
          throw new ProviderError("network", "the response stream ended before a finish_reason", {
            headers: res.headers,
          });
      }
      const content: AssistantBlock[] = [];
      if (text) content.push({ type: "text", text });
      for (const [i, c] of [...calls.entries()].sort((a, b) => a[0] - b[0])) {
        const parsed = parseToolInput(c.args);
        const blk: AssistantBlock = { type: "tool_use", id: c.id || `call_${i}`, name: c.name, input: parsed.input };
        if (parsed.error) blk.input_error = parsed.error;
        content.push(blk);
      }
      let stop = STOP[finish ?? "stop"] ?? "end_turn";
      if (stop === "end_turn" && calls.size) stop = "tool_use";
      if (!usage) {
        // a server that reports no usage: charge an upper-bound guess so budgets stay honest
        const bytes = new TextEncoder().encode(JSON.stringify(body)).length;
        const out = new TextEncoder().encode(text + [...calls.values()].map((c) => c.name + c.args).join("")).length;
        usage = { input_tokens: bytes, output_tokens: Math.min(req.maxTokens, out) };
      }
      return { content, stop_reason: stop, usage, headers: resHeaders };
    } catch (e) {
      if (e instanceof ProviderError) {
        if (req.signal.aborted) throw new ProviderError("aborted", "the agent was stopped", { retryable: false });
        if (timedOut && e.kind === "network")
          throw new ProviderError("timeout", `no response within ${this.opts.timeoutMs} ms`);
        throw e;
      }
      throw this.netError(e, timedOut, req.signal.aborted);
    } finally {
      idle.stop();
      req.signal.removeEventListener("abort", onAbort);
    }
  }

  private netError(e: unknown, timedOut: boolean, aborted: boolean): ProviderError {
    if (aborted) return new ProviderError("aborted", "the agent was stopped", { retryable: false });
    if (timedOut) return new ProviderError("timeout", `no response within ${this.opts.timeoutMs} ms`);
    return new ProviderError(
      "network",
      this.opts.scrub(`connection error: ${e instanceof Error ? e.message : String(e)}`),
    );
  }
}
