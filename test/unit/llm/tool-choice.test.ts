// tool_choice through both providers: the real @anthropic-ai/sdk (Messages
// API) and the chat-completions client, against the fixture server. What
// reaches the wire is read back from the server's recorded request bodies.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import pino from "pino";
import { AnthropicProvider } from "../../../kernel/llm/providers/anthropic.ts";
import { OpenAICompatibleProvider } from "../../../kernel/llm/providers/openai.ts";
import type { ChatRequest, Provider, ToolChoice } from "../../../kernel/llm/providers/types.ts";
import type { ToolDescription } from "../../../kernel/services.ts";
import { startMessagesServer, type MessagesServer } from "../../fixtures/messages-server.ts";

let srv: MessagesServer;
beforeAll(async () => {
  srv = await startMessagesServer();
});
afterAll(() => srv.stop());
beforeEach(() => {
  srv.reset();
  srv.setApiKey(null);
});

const log = pino({ level: "silent" });
const scrub = (s: string) => s;

const anthropic = (): Provider =>
  new AnthropicProvider({ apiKey: "sk-test", baseURL: srv.url, timeoutMs: 5_000, log, scrub });
const openai = (): Provider =>
  new OpenAICompatibleProvider({ endpoint: "local", baseURL: `${srv.url}/v1`, apiKey: null, timeoutMs: 5_000, scrub });

const tool = (name: string): ToolDescription => ({
  name,
  description: `the ${name} tool`,
  effect: "none",
  input_schema: { type: "object", properties: { x: { type: "string" } } },
});

function request(extra: Partial<ChatRequest> = {}): ChatRequest {
  return {
    model: "m",
    system: "sys",
    messages: [{ role: "user", content: "hi" }],
    tools: [tool("echo"), tool("reply")],
    maxTokens: 256,
    signal: new AbortController().signal,
    ...extra,
  };
}

async function sentBody(p: Provider, extra: Partial<ChatRequest> = {}): Promise<any> {
  const before = srv.requests.length;
  await p.send(request(extra));
  expect(srv.requests.length).toBe(before + 1);
  return srv.requests.at(-1)!.body;
}

const cases: Array<{
  choice: ToolChoice;
  anthropic: unknown;
  openai: unknown;
}> = [
  { choice: { type: "any" }, anthropic: { type: "any" }, openai: "required" },
  {
    choice: { type: "tool", name: "reply" },
    anthropic: { type: "tool", name: "reply" },
    openai: { type: "function", function: { name: "reply" } },
  },
  { choice: { type: "auto" }, anthropic: { type: "auto" }, openai: "auto" },
];

describe("tool_choice: Anthropic (real SDK)", () => {
  for (const c of cases)
    test(`${JSON.stringify(c.choice)} is sent as ${JSON.stringify(c.anthropic)}`, async () => {
      const body = await sentBody(anthropic(), { toolChoice: c.choice });
      expect(srv.requests.at(-1)!.route).toBe("messages");
      expect(body.tool_choice).toEqual(c.anthropic);
      expect(body.tools.map((t: any) => t.name)).toEqual(["echo", "reply"]);
    });

  test("absent when not asked", async () => {
    const body = await sentBody(anthropic());
    expect(body.tools).toHaveLength(2);
    expect("tool_choice" in body).toBe(false);
  });

  test("absent when there are no tools, even if asked", async () => {
    const body = await sentBody(anthropic(), { tools: [], toolChoice: { type: "any" } });
    expect("tools" in body).toBe(false);
    expect("tool_choice" in body).toBe(false);
  });

  test("a step can match on the forced tool", async () => {
    srv.script([
      { match: { tool_choice: "reply" }, content: [{ type: "tool_use", name: "reply", input: { x: "forced" } }] },
      { match: { tool_choice: "any" }, content: [{ type: "tool_use", name: "echo", input: { x: "any" } }] },
    ]);
    const p = anthropic();
    const plain = await p.send(request());
    expect(plain.content).toEqual([{ type: "text", text: "Hello from the fixture server." }]);
    const any = await p.send(request({ toolChoice: { type: "any" } }));
    expect(any.stop_reason).toBe("tool_use");
    expect(any.content[0]).toMatchObject({ type: "tool_use", name: "echo", input: { x: "any" } });
    const forced = await p.send(request({ toolChoice: { type: "tool", name: "reply" } }));
    expect(forced.content[0]).toMatchObject({ type: "tool_use", name: "reply", input: { x: "forced" } });
    expect(srv.pending()).toBe(0);
  });
});

describe("tool_choice: OpenAI-compatible chat completions", () => {
  for (const c of cases)
    test(`${JSON.stringify(c.choice)} is sent as ${JSON.stringify(c.openai)}`, async () => {
      const body = await sentBody(openai(), { toolChoice: c.choice });
      expect(srv.requests.at(-1)!.route).toBe("chat");
      expect(body.tool_choice).toEqual(c.openai);
      expect(body.tools.map((t: any) => t.function.name)).toEqual(["echo", "reply"]);
    });

  test("absent when not asked", async () => {
    const body = await sentBody(openai());
    expect(body.tools).toHaveLength(2);
    expect("tool_choice" in body).toBe(false);
  });

  test("absent when there are no tools, even if asked", async () => {
    const body = await sentBody(openai(), { tools: [], toolChoice: { type: "tool", name: "reply" } });
    expect("tools" in body).toBe(false);
    expect("tool_choice" in body).toBe(false);
  });

  test("a step can match on the forced tool (required reads as any)", async () => {
    srv.script([
      {
        match: { route: "chat", tool_choice: "reply" },
        content: [{ type: "tool_use", name: "reply", input: { x: "forced" } }],
      },
      { match: { route: "chat", tool_choice: "any" }, content: [{ type: "tool_use", name: "echo", input: {} }] },
    ]);
    const p = openai();
    const any = await p.send(request({ toolChoice: { type: "any" } }));
    expect(any.content[0]).toMatchObject({ type: "tool_use", name: "echo" });
    const forced = await p.send(request({ toolChoice: { type: "tool", name: "reply" } }));
    expect(forced.stop_reason).toBe("tool_use");
    expect(forced.content[0]).toMatchObject({ type: "tool_use", name: "reply", input: { x: "forced" } });
    expect(srv.pending()).toBe(0);
  });
});
