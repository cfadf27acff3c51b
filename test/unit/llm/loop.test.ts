// The agent loop and the Anthropic provider against the local Messages API
// server, through the unmodified SDK.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REDACTED } from "../../../kernel/audit/index.ts";
import { KernelError } from "../../../kernel/errors.ts";
import type { AgentOutputEvent } from "../../../kernel/services.ts";
import { startMessagesServer, type MessagesServer } from "../../fixtures/messages-server.ts";
import { FAST, makeHarness } from "./loop-harness.ts";

const KEY = "sk-ant-api03-TESTKEY-do-not-leak-0123456789abcdef";
let srv: MessagesServer;
let dir: string;

beforeAll(async () => {
  srv = await startMessagesServer({ apiKey: KEY });
  dir = mkdtempSync(join(tmpdir(), "aaos-llm-"));
});
afterAll(async () => {
  await srv.stop();
});
beforeEach(() => {
  srv.reset();
  srv.setApiKey(KEY);
});

const env = () => ({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: srv.url });

function fileTools() {
  return {
    file_write: {
      input_schema: {
        type: "object",
        properties: { path: { type: "string" }, content: { type: "string" } },
        required: ["path", "content"],
      },
      run: (input: { path: string; content: string }) => {
        writeFileSync(join(dir, input.path), input.content);
        return { written: input.content.length };
      },
    },
    file_read: {
      run: (input: { path: string }) => readFileSync(join(dir, input.path), "utf8"),
    },
  };
}

describe("agent loop through the SDK", () => {
  test("a two-turn tool run writes a file, streams its output, and audits every call", async () => {
    const h = makeHarness({ env: env(), tools: fileTools(), config: FAST });
    h.services.allowed.add("file_write");
    srv.script([
      {
        content: [
          { type: "text", text: "I will write the file now." },
          { type: "tool_use", name: "file_write", input: { path: "out.txt", content: "hello aaOS" } },
        ],
        usage: { input_tokens: 120, output_tokens: 40 },
      },
      {
        text: "Done: wrote out.txt.",
        usage: { input_tokens: 200, output_tokens: 10 },
        match: { contains: "tool_result" },
      },
    ]);
    const a = h.agent();
    const events: AgentOutputEvent[] = [];
    const r = await h.inference.run(a, "write hello aaOS to out.txt", { onOutput: (e) => events.push(e) });
    expect(r.stop_reason).toBe("end_turn");
    expect(r.response).toBe("Done: wrote out.txt.");
    expect(r.usage).toEqual({ input_tokens: 320, output_tokens: 50 });
    expect(r.tool_calls).toEqual([
      { tool: "file_write", input: { path: "out.txt", content: "hello aaOS" }, ok: true, output: { written: 10 } },
    ]);
    expect(readFileSync(join(dir, "out.txt"), "utf8")).toBe("hello aaOS");
    expect(h.services.invocations[0]!.via).toBe("model");

    // the wire: tools offered, the key sent, the tool_result returned in turn 2
    expect(srv.requests.length).toBe(2);
    const [first, second] = srv.requests;
    expect(first!.body.stream).toBe(true);
    expect(first!.body.system).toBe("You are a test agent.");
    expect(first!.body.tools.map((t: any) => t.name)).toEqual(["file_write"]);
    expect(first!.body.model).toBe("claude-haiku-4-5-20251001");
    const last = second!.body.messages.at(-1);
    expect(last.role).toBe("user");
    expect(last.content[0].type).toBe("tool_result");
    expect(last.content[0].tool_use_id).toBe(second!.body.messages[1].content[1].id);
    expect(JSON.parse(last.content[0].content)).toEqual({ written: 10 });

    // streamed notifications
    const text = events
      .filter((e) => e.type === "text")
      .map((e) => (e as any).text)
      .join("");
    expect(text).toBe("I will write the file now.Done: wrote out.txt.");
    expect(events.filter((e) => e.type !== "text").map((e) => e.type)).toEqual([
      "turn",
      "tool_use",
      "tool_result",
      "turn",
    ]);
    expect(events.every((e) => e.agent_id === a.id)).toBe(true);

    const kinds = h.audit.map((e) => e.kind);
    expect(kinds).toEqual([
      "run.start",
      "inference.request",
      "inference.usage",
      "inference.request",
      "inference.usage",
      "run.end",
    ]);
    const u = h.audit.find((e) => e.kind === "inference.usage")!;
    expect(u).toMatchObject({
      agent_id: a.id,
      model: "claude-haiku-4-5-20251001",
      input_tokens: 120,
      output_tokens: 40,
      attempt: 1,
    });
    expect(typeof u.latency_ms).toBe("number");
    expect(u.reserved as number).toBeGreaterThanOrEqual(160);
    expect(h.audit.at(-1)).toMatchObject({
      kind: "run.end",
      stop_reason: "end_turn",
      turns: 2,
      usage: { input_tokens: 320, output_tokens: 50 },
    });
  });

  test("a denied tool goes back to the model as an is_error result and the loop goes on", async () => {
    const h = makeHarness({ env: env(), tools: fileTools(), config: FAST });
    // file_write is not allowed
    srv.script([
      { content: [{ type: "tool_use", name: "file_write", input: { path: "x", content: "y" } }] },
      { text: "I was not allowed to write.", match: { contains: "is_error" } },
    ]);
    const r = await h.inference.run(h.agent(), "write", {});
    expect(r.stop_reason).toBe("end_turn");
    expect(r.response).toBe("I was not allowed to write.");
    expect(r.tool_calls[0]!.ok).toBe(false);
    expect(r.tool_calls[0]!.error!.code).toBe(-32001);
    const result = srv.requests[1]!.body.messages.at(-1).content[0];
    expect(result.is_error).toBe(true);
    expect(result.content).toContain("-32001");
  });

  test("a tool that throws and a tool_use with broken input are is_error results too", async () => {
    const h = makeHarness({
      env: env(),
      tools: {
        boom: {
          run: () => {
            throw new Error("disk on fire");
          },
        },
      },
      config: FAST,
    });
    h.services.allowed.add("boom");
    srv.script([
      {
        content: [
          { type: "tool_use", name: "boom", input: {} },
          { type: "tool_use", name: "boom", input: { a: 1 } },
        ],
      },
      { text: "ok" },
    ]);
    const r = await h.inference.run(h.agent(), "go", {});
    expect(r.tool_calls.map((c) => c.ok)).toEqual([false, false]);
    expect(r.tool_calls[0]!.error!.message).toBe("disk on fire");
    const results = srv.requests[1]!.body.messages.at(-1).content;
    expect(results.length).toBe(2);
    expect(results.every((x: any) => x.is_error)).toBe(true);
  });

  test("approval in the middle of a run: the run waits, the caller is told, approval continues it", async () => {
    const h = makeHarness({ env: env(), tools: fileTools(), config: FAST });
    h.services.allowed.add("file_write");
    h.services.approvalRequired.add("file_write");
    srv.script([
      { content: [{ type: "tool_use", name: "file_write", input: { path: "approved.txt", content: "yes" } }] },
      {
        content: [{ type: "tool_use", name: "file_write", input: { path: "denied.txt", content: "no" } }],
        match: { contains: "written" },
      },
      { text: "one written, one denied", match: { contains: "-32003" } },
    ]);
    const events: AgentOutputEvent[] = [];
    const run = h.inference.run(h.agent(), "write twice", { onOutput: (e) => events.push(e) });
    const a1 = await h.services.nextApprovalRequest();
    expect(events.some((e) => e.type === "approval_pending" && e.approval_id === a1.id)).toBe(true);
    a1.respond("approve");
    const a2 = await h.services.nextApprovalRequest();
    a2.respond("deny");
    const r = await run;
    expect(r.response).toBe("one written, one denied");
    expect(r.tool_calls.map((c) => c.ok)).toEqual([true, false]);
    expect(r.tool_calls[1]!.error!.code).toBe(-32003);
    expect(readFileSync(join(dir, "approved.txt"), "utf8")).toBe("yes");
  });

  test("max_turns ends a run that keeps calling tools", async () => {
    const h = makeHarness({ env: env(), tools: fileTools(), config: FAST });
    h.services.allowed.add("file_read");
    writeFileSync(join(dir, "r.txt"), "data");
    const step = { content: [{ type: "tool_use" as const, name: "file_read", input: { path: "r.txt" } }] };
    srv.script([step, step, step]);
    const r = await h.inference.run(h.agent({ maxTurns: 2 }), "loop", {});
    expect(r.stop_reason).toBe("max_turns");
    expect(srv.requests.length).toBe(2);
    expect(r.tool_calls.length).toBe(2);
  });
});

describe("retries", () => {
  test("a 429 storm: retried with retry-after honoured, then success; the provider is paused for everyone", async () => {
    const h = makeHarness({ env: env(), config: FAST });
    srv.script([
      { error: { status: 429, retry_after: 1 } },
      { error: { status: 429, retry_after: 0 } },
      { error: { status: 529 } },
      { error: { status: 500 } },
      { text: "finally" },
    ]);
    const t0 = Date.now();
    const r = await h.inference.run(h.agent(), "hi", {});
    expect(r.response).toBe("finally");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    const retries = h.audit.filter((e) => e.kind === "inference.retry");
    expect(retries.map((e) => e.status)).toEqual([429, 429, 529, 500]);
    expect(retries[0]!.delay_ms as number).toBeGreaterThanOrEqual(1000);
    expect(retries[0]!.retry_after_ms).toBe(1000);
    expect(h.audit.filter((e) => e.kind === "inference.request").map((e) => e.attempt)).toEqual([1, 2, 3, 4, 5]);
    const st = h.inference.status() as any;
    expect(st.limits.providers.anthropic.tightenings).toBeGreaterThanOrEqual(1);
  });

  test("retries are bounded: a storm longer than max_retries fails with -32006 and an inference.error record", async () => {
    const h = makeHarness({ env: env(), config: { retry: { ...FAST.retry, max_retries: 2 } } });
    srv.script(Array.from({ length: 5 }, () => ({ error: { status: 429, retry_after: 0 } })));
    const e = await h.inference.run(h.agent(), "hi", {}).catch((x) => x);
    expect(e).toBeInstanceOf(KernelError);
    expect(e.code).toBe(-32006);
    expect(e.message).toContain("429");
    expect(e.data.attempts).toBe(3);
    expect(srv.requests.length).toBe(3);
    expect(h.audit.filter((x) => x.kind === "inference.error").length).toBe(1);
    expect(h.audit.at(-1)).toMatchObject({ kind: "run.end", stop_reason: "error" });
  });

  test("retries are bounded in time too: a retry-after beyond max_elapsed_ms gives up at once", async () => {
    const h = makeHarness({ env: env(), config: { retry: { ...FAST.retry, max_elapsed_ms: 500 } } });
    srv.script([{ error: { status: 429, retry_after: 30 } }]);
    const t0 = Date.now();
    const e = await h.inference.run(h.agent(), "hi", {}).catch((x) => x);
    expect(e.code).toBe(-32006);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test("a cut-off stream and an overloaded error mid-stream are retried; partial usage is charged", async () => {
    const h = makeHarness({ env: env(), config: FAST });
    srv.script([
      { text: "partial answer that will be cut", cut_after: 4 },
      { text: "x", stream_error: { type: "overloaded_error" } },
      { text: "whole answer" },
    ]);
    const r = await h.inference.run(h.agent(), "hi", {});
    expect(r.response).toBe("whole answer");
    const kinds = h.audit.filter((e) => e.kind === "inference.retry").map((e) => e.error_kind);
    expect(kinds).toEqual(["network", "overloaded"]);
    const partial = h.audit.filter((e) => e.kind === "inference.usage" && e.partial);
    expect(partial.length).toBe(2);
  });

  test("a request timeout: no response in time fails the attempt; a slow but live stream is fine", async () => {
    const h = makeHarness({
      env: env(),
      config: { ...FAST, request_timeout_ms: 300, retry: { ...FAST.retry, max_retries: 1 } },
    });
    srv.script([
      { text: "late", delay_ms: 2000 },
      { text: "late again", delay_ms: 2000 },
    ]);
    const e = await h.inference.run(h.agent(), "hi", {}).catch((x) => x);
    expect(e.code).toBe(-32006);
    expect(e.data.kind).toBe("timeout");
    expect(e.data.attempts).toBe(2);
    srv.script([{ text: "a slow stream of many small pieces of text", chunk_delay_ms: 50 }]);
    const r = await h.inference.run(h.agent(), "hi", {});
    expect(r.response).toBe("a slow stream of many small pieces of text");
  });
});

describe("stop, budgets, keys", () => {
  test("stop during a call aborts it and the run ends with stop_reason stopped", async () => {
    const h = makeHarness({ env: env(), config: FAST });
    srv.script([{ hang: true }]);
    const a = h.agent();
    const run = h.inference.run(a, "hi", {});
    while (srv.requests.length === 0) await Bun.sleep(5);
    const t0 = Date.now();
    a.controller.abort();
    h.inference.onStop(a.id);
    const r = await run;
    expect(r.stop_reason).toBe("stopped");
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(h.audit.at(-1)).toMatchObject({ kind: "run.end", stop_reason: "stopped" });
    expect(h.audit.some((e) => e.kind === "inference.error")).toBe(false);
  });

  test("stop while waiting for a retry ends the run at once", async () => {
    const h = makeHarness({ env: env(), config: { retry: { ...FAST.retry, max_elapsed_ms: 300_000 } } });
    srv.script([{ error: { status: 429, retry_after: 60 } }]);
    const a = h.agent();
    const run = h.inference.run(a, "hi", {});
    while (!h.audit.some((e) => e.kind === "inference.retry")) await Bun.sleep(5);
    a.controller.abort();
    h.inference.onStop(a.id);
    expect((await run).stop_reason).toBe("stopped");
  });

  test("a budget that runs out mid-run ends it with budget_exhausted and a normal result", async () => {
    const h = makeHarness({ env: env(), tools: fileTools(), config: FAST });
    h.services.allowed.add("file_read");
    writeFileSync(join(dir, "r.txt"), "data");
    srv.script([
      {
        content: [{ type: "tool_use", name: "file_read", input: { path: "r.txt" } }],
        usage: { input_tokens: 1500, output_tokens: 1400 },
      },
      { text: "never sent" },
    ]);
    const a = h.agent({ budget: { max_tokens: 3000, period: "lifetime" } });
    const r = await h.inference.run(a, "read", {});
    expect(r.stop_reason).toBe("budget_exhausted");
    expect(r.usage).toEqual({ input_tokens: 1500, output_tokens: 1400 });
    expect(srv.requests.length).toBe(1);
    // the call could reserve at most the budget
    expect(srv.requests[0]!.body.max_tokens).toBeLessThan(3000);
    const st = h.inference.status() as any;
    const me = st.agents.find((x: any) => x.agent_id === a.id);
    expect(me.budget.used).toBe(2900);
    expect(me.budget.used).toBeLessThanOrEqual(me.budget.max_tokens);
    srv.reset();
    // a budget exhausted before the first call: -32004
    const e = await h.inference.run(a, "again", {}).catch((x) => x);
    expect(e).toBeInstanceOf(KernelError);
    expect(e.code).toBe(-32004);
  });

  test("a child's budget is carved out of its parent's", () => {
    const h = makeHarness({ env: env() });
    const p = h.agent({ budget: { max_tokens: 10_000, period: "1h" } });
    h.agent({ parentId: p.id, budget: { max_tokens: 8_000, period: "1h" } });
    let err: unknown;
    try {
      h.agent({ parentId: p.id, budget: { max_tokens: 5_000, period: "1h" } });
    } catch (e) {
      err = e;
    }
    expect((err as KernelError).code).toBe(-32004);
  });

  test("no key: a clear -32006 and an inference.error record, no request sent", async () => {
    const h = makeHarness({ env: { ANTHROPIC_BASE_URL: srv.url } });
    const e = await h.inference.run(h.agent(), "hi", {}).catch((x) => x);
    expect(e).toBeInstanceOf(KernelError);
    expect(e.code).toBe(-32006);
    expect(e.message).toBe(
      "no inference provider configured: set ANTHROPIC_API_KEY or inference.providers.anthropic.api_key_file",
    );
    expect(h.audit.some((x) => x.kind === "inference.error")).toBe(true);
    expect(srv.requests.length).toBe(0);
  });

  test("a rejected key: -32006 'API key rejected', not retried, key nowhere", async () => {
    const h = makeHarness({ env: env(), config: FAST });
    srv.setApiKey("some-other-key");
    const e = await h.inference.run(h.agent(), "hi", {}).catch((x) => x);
    expect(e.code).toBe(-32006);
    expect(e.message).toBe("API key rejected");
    expect(srv.requests.length).toBe(1);
    expect(JSON.stringify({ m: e.message, d: e.data })).not.toContain(KEY);
  });

  test("the key from api_key_file (relative to the config dir) wins over the environment, and is registered as a secret", async () => {
    const cfgDir = mkdtempSync(join(tmpdir(), "aaos-cfg-"));
    writeFileSync(join(cfgDir, "anthropic.key"), KEY + "\n");
    const h = makeHarness({
      env: { ANTHROPIC_API_KEY: "env-key-that-is-wrong", ANTHROPIC_BASE_URL: "http://127.0.0.1:1" },
      configDir: cfgDir,
      config: { ...FAST, providers: { anthropic: { api_key_file: "anthropic.key", base_url: srv.url } } },
    });
    srv.script([{ text: "from file" }]);
    const r = await h.inference.run(h.agent(), "hi", {});
    expect(r.response).toBe("from file");
    expect(h.secrets).toContain(KEY);
    expect(srv.requests[0]!.headers.authorization ?? srv.requests[0]!.headers["x-api-key"]).toContain(KEY);
  });

  test("the key is absent from every log line, audit record, result and error", async () => {
    const h = makeHarness({ env: env(), tools: fileTools(), config: FAST });
    h.services.allowed.add("file_write");
    srv.script([
      { error: { status: 429, retry_after: 0 } },
      { content: [{ type: "tool_use", name: "file_write", input: { path: "k.txt", content: "k" } }] },
      { text: "done" },
    ]);
    const events: AgentOutputEvent[] = [];
    const r = await h.inference.run(h.agent(), "hi", { onOutput: (e) => events.push(e) });
    srv.setApiKey("another");
    const e = await h.inference.run(h.agent(), "hi", {}).catch((x) => x);
    const everything = JSON.stringify({
      logs: h.logLines,
      audit: h.audit,
      r,
      events,
      e: { m: e.message, d: e.data },
      status: h.inference.status(),
    });
    expect(h.logLines.length).toBeGreaterThan(0);
    expect(everything).not.toContain(KEY);
    expect(everything).not.toContain(KEY.slice(10, 30));
    expect(h.secrets).toEqual([KEY]);
  });

  test("a tool error quoting the key reaches the model with the audit log's marker in its place", async () => {
    const h = makeHarness({
      env: env(),
      tools: {
        leaky: {
          run: () => {
            throw new Error(`bad key ${KEY}`);
          },
        },
      },
      config: FAST,
    });
    h.services.allowed.add("leaky");
    srv.script([{ content: [{ type: "tool_use", name: "leaky", input: {} }] }, { text: "done" }]);
    const r = await h.inference.run(h.agent(), "hi", {});
    expect(r.tool_calls[0]!.error!.message).toBe(`bad key ${REDACTED}`);
  });
});
