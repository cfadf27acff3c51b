// The OpenAI-compatible provider and model routing, against the fixture's
// /v1/chat/completions route.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KernelError } from "../../../kernel/errors.ts";
import { InferenceConfigSchema } from "../../../kernel/llm/index.ts";
import type { AgentOutputEvent } from "../../../kernel/services.ts";
import { startMessagesServer, type MessagesServer } from "../../fixtures/messages-server.ts";
import { FAST, makeHarness } from "./loop-harness.ts";

let srv: MessagesServer;
beforeAll(async () => {
  srv = await startMessagesServer();
});
afterAll(() => srv.stop());
beforeEach(() => {
  srv.reset();
  srv.setApiKey(null);
});

const config = () => ({
  ...FAST,
  providers: { openai_compatible: [{ name: "local", base_url: `${srv.url}/v1`, models: ["llama-3.1-8b"] }] },
});

describe("OpenAI-compatible provider", () => {
  test("a two-turn tool run through openai:<endpoint>/<model>", async () => {
    const calls: unknown[] = [];
    const h = makeHarness({
      config: config(),
      tools: {
        echo: {
          run: (i: unknown) => {
            calls.push(i);
            return { echoed: i };
          },
        },
      },
    });
    h.services.allowed.add("echo");
    srv.script([
      {
        match: { route: "chat" },
        content: [
          { type: "text", text: "calling echo" },
          { type: "tool_use", name: "echo", input: { say: "hi" } },
        ],
        usage: { input_tokens: 50, output_tokens: 20 },
      },
      {
        match: { route: "chat", contains: "echoed" },
        text: "echo said hi",
        usage: { input_tokens: 90, output_tokens: 5 },
      },
    ]);
    const events: AgentOutputEvent[] = [];
    const r = await h.inference.run(h.agent({ model: "openai:local/qwen2.5-7b" }), "echo hi", {
      onOutput: (e) => events.push(e),
    });
    expect(r.stop_reason).toBe("end_turn");
    expect(r.response).toBe("echo said hi");
    expect(r.usage).toEqual({ input_tokens: 140, output_tokens: 25 });
    expect(calls).toEqual([{ say: "hi" }]);
    expect(srv.requests.map((q) => q.route)).toEqual(["chat", "chat"]);
    const body1 = srv.requests[0]!.body;
    expect(body1.model).toBe("qwen2.5-7b");
    expect(body1.stream).toBe(true);
    expect(body1.messages[0]).toEqual({ role: "system", content: "You are a test agent." });
    expect(body1.tools[0].function.name).toBe("echo");
    const msgs2 = srv.requests[1]!.body.messages;
    expect(msgs2.at(-2).role).toBe("assistant");
    expect(msgs2.at(-2).tool_calls[0].function.name).toBe("echo");
    expect(msgs2.at(-1)).toMatchObject({ role: "tool", tool_call_id: msgs2.at(-2).tool_calls[0].id });
    expect(
      events
        .filter((e) => e.type === "text")
        .map((e) => (e as any).text)
        .join(""),
    ).toBe("calling echoecho said hi");
    expect(h.audit.find((e) => e.kind === "inference.usage")!.provider).toBe("openai:local");
  });

  test("a model listed under an endpoint's models goes there without a prefix", async () => {
    const h = makeHarness({ config: config() });
    srv.script([{ match: { route: "chat" }, text: "from llama" }]);
    const r = await h.inference.run(h.agent({ model: "llama-3.1-8b" }), "hi", {});
    expect(r.response).toBe("from llama");
    expect(srv.requests[0]!.body.model).toBe("llama-3.1-8b");
  });

  test("an unknown endpoint is a clear -32006", async () => {
    const h = makeHarness({ config: config() });
    const e = await h.inference.run(h.agent({ model: "openai:nowhere/x" }), "hi", {}).catch((x) => x);
    expect(e).toBeInstanceOf(KernelError);
    expect(e.code).toBe(-32006);
    expect(e.message).toContain("nowhere");
  });

  test("429 and 500 are retried; a key file sends a Bearer key; a wrong one is 'API key rejected'", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aaos-oa-"));
    writeFileSync(join(dir, "local.key"), "local-secret-key\n");
    const cfg = config();
    (cfg.providers.openai_compatible[0] as any).api_key_file = join(dir, "local.key");
    const h = makeHarness({ config: cfg });
    srv.setApiKey("local-secret-key");
    srv.script([
      { match: { route: "chat" }, error: { status: 429, retry_after: 0 } },
      { match: { route: "chat" }, error: { status: 500 } },
      { match: { route: "chat" }, text: "ok" },
    ]);
    const r = await h.inference.run(h.agent({ model: "openai:local/m" }), "hi", {});
    expect(r.response).toBe("ok");
    expect(srv.requests.every((q) => q.headers.authorization === "Bearer local-secret-key")).toBe(true);
    expect(h.secrets).toContain("local-secret-key");
    srv.setApiKey("different");
    const e = await h.inference.run(h.agent({ model: "openai:local/m" }), "hi", {}).catch((x) => x);
    expect(e.code).toBe(-32006);
    expect(e.message).toBe("API key rejected");
    expect(JSON.stringify(h.logLines) + JSON.stringify(h.audit)).not.toContain("local-secret-key");
  });

  test("a cut-off chat stream is retried", async () => {
    const h = makeHarness({ config: config() });
    srv.script([
      { match: { route: "chat" }, text: "this one breaks off in the middle", cut_after: 2 },
      { match: { route: "chat" }, text: "this one is whole" },
    ]);
    const r = await h.inference.run(h.agent({ model: "openai:local/m" }), "hi", {});
    expect(r.response).toBe("this one is whole");
    expect(h.audit.filter((e) => e.kind === "inference.retry").length).toBe(1);
  });
});

describe("config", () => {
  test("all fields are optional, unknown ones are refused", () => {
    const c = InferenceConfigSchema.parse(undefined);
    expect(c.max_concurrency).toBe(4);
    expect(c.providers.anthropic).toEqual({});
    expect(c.providers.openai_compatible).toEqual([]);
    expect(c.retry.max_retries).toBe(4);
    expect(InferenceConfigSchema.safeParse({ max_concurency: 3 }).success).toBe(false);
    expect(
      InferenceConfigSchema.safeParse({ providers: { openai_compatible: [{ name: "a", base_url: "ftp://x" }] } })
        .success,
    ).toBe(false);
    expect(
      InferenceConfigSchema.safeParse({
        providers: {
          openai_compatible: [
            { name: "a", base_url: "http://x/v1" },
            { name: "a", base_url: "http://y/v1" },
          ],
        },
      }).success,
    ).toBe(false);
  });
});
