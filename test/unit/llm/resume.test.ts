// The loop's record of a run (RunJournal) and what it does with it: a
// resumed run replays the results of tool calls that completed, reports one
// that was in flight as interrupted (never runs it again), runs one that
// never started; a conversation with unanswered tool uses is repaired; a
// run answering a typed request replies through the `reply` tool, offered
// with tool_choice, its input checked against the result schema.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import {
  INTERRUPTED,
  repairConversation,
  REPLY_TOOL,
  type ReplySpec,
  type RunJournal,
} from "../../../kernel/llm/index.ts";
import type { ConversationMessage } from "../../../kernel/llm/providers/types.ts";
import type { StepRecord } from "../../../kernel/proc/store.ts";
import { startMessagesServer, type MessagesServer } from "../../fixtures/messages-server.ts";
import { FAST, makeHarness } from "./loop-harness.ts";

const KEY = "sk-ant-api03-TESTKEY-resume-0123456789abcdef";
let srv: MessagesServer;

beforeAll(async () => {
  srv = await startMessagesServer({ apiKey: KEY });
});
afterAll(async () => {
  await srv.stop();
});
beforeEach(() => {
  srv.reset();
  srv.setApiKey(KEY);
});

const env = () => ({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: srv.url });

function memoryJournal(turns: ConversationMessage[] = [], steps = new Map<string, StepRecord>()) {
  const journal: RunJournal = {
    append: (m) => void turns.push(m),
    step: (u) => steps.get(u),
    setStep: (u, s) => void steps.set(u, s),
  };
  return { journal, turns, steps };
}

function counting() {
  const hits: Record<string, number> = {};
  return {
    hits,
    tools: {
      touch: {
        input_schema: { type: "object", properties: { what: { type: "string" } }, required: ["what"] },
        run: (input: { what: string }) => {
          hits[input.what] = (hits[input.what] ?? 0) + 1;
          return `touched ${input.what}`;
        },
      },
    },
  };
}

describe("a run's record", () => {
  test("every message and every tool step is recorded as the run goes", async () => {
    const c = counting();
    const h = makeHarness({ env: env(), tools: c.tools, config: FAST });
    h.services.allowed.add("touch");
    srv.script([
      { content: [{ type: "tool_use", name: "touch", input: { what: "a" }, id: "toolu_a" }] },
      { text: "done", match: { contains: "touched a" } },
    ]);
    const j = memoryJournal();
    const r = await h.inference.run(h.agent(), { message: "go", journal: j.journal }, {});
    expect(r.response).toBe("done");
    expect(j.turns.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
    expect(j.steps.get("toolu_a")).toEqual({
      state: "done",
      result: { type: "tool_result", tool_use_id: "toolu_a", content: "touched a" },
    });
    expect(c.hits).toEqual({ a: 1 });
  });

  test("resumed: a completed call is replayed, one in flight is interrupted, one never started is run", async () => {
    const c = counting();
    const h = makeHarness({ env: env(), tools: c.tools, config: FAST });
    h.services.allowed.add("touch");
    const resumed: ConversationMessage[] = [
      { role: "user", content: "touch a, b and c" },
      {
        role: "assistant",
        content: [
          { type: "tool_use", id: "toolu_a", name: "touch", input: { what: "a" } },
          { type: "tool_use", id: "toolu_b", name: "touch", input: { what: "b" } },
          { type: "tool_use", id: "toolu_c", name: "touch", input: { what: "c" } },
        ],
      },
    ];
    const steps = new Map<string, StepRecord>([
      [
        "toolu_a",
        { state: "done", result: { type: "tool_result", tool_use_id: "toolu_a", content: "touched a (before)" } },
      ],
      ["toolu_b", { state: "started" }],
    ]);
    const j = memoryJournal([...resumed], steps);
    srv.script([{ text: "all three handled" }]);
    const r = await h.inference.run(h.agent(), { message: "touch a, b and c", resumed, journal: j.journal }, {});
    expect(r.response).toBe("all three handled");
    // a ran before the crash, b's outcome is unknown: neither runs again; c never started: it runs
    expect(c.hits).toEqual({ c: 1 });
    const sent = JSON.stringify(srv.requests[0]!.body.messages);
    expect(sent).toContain("touched a (before)");
    expect(sent).toContain("interrupted: outcome unknown");
    expect(sent).toContain("touched c");
    expect(INTERRUPTED).toContain("interrupted: outcome unknown");
    expect(j.steps.get("toolu_b")).toMatchObject({ state: "done", result: { is_error: true } });
  });

  test("a tool listed as reattachable is made again after a crash instead of reported interrupted", async () => {
    const c = counting();
    const h = makeHarness({ env: env(), tools: c.tools, config: FAST });
    h.services.allowed.add("touch");
    const resumed: ConversationMessage[] = [
      { role: "user", content: "touch a" },
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_a", name: "touch", input: { what: "a" } }] },
    ];
    const j = memoryJournal([...resumed], new Map([["toolu_a", { state: "started" } as StepRecord]]));
    srv.script([{ text: "ok" }]);
    await h.inference.run(
      h.agent(),
      { message: "touch a", resumed, journal: j.journal, reattach: new Set(["touch"]) },
      {},
    );
    expect(c.hits).toEqual({ a: 1 });
  });
});

describe("repairConversation", () => {
  test("tool uses left unanswered get an error result; answered ones are kept", () => {
    const msgs: ConversationMessage[] = [
      { role: "user", content: "hi" },
      {
        role: "assistant",
        content: [
          { type: "tool_use", id: "t1", name: "x", input: {} },
          { type: "tool_use", id: "t2", name: "x", input: {} },
        ],
      },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: "ok" }] },
      { role: "assistant", content: [{ type: "tool_use", id: "t3", name: "x", input: {} }] },
    ];
    const out = repairConversation(msgs);
    expect(out).toHaveLength(5);
    const second = out[2]!.content as { tool_use_id: string; is_error?: boolean }[];
    expect(second.map((b) => b.tool_use_id).sort()).toEqual(["t1", "t2"]);
    const last = out[4]!.content as { tool_use_id: string; is_error?: boolean }[];
    expect(last).toEqual([expect.objectContaining({ tool_use_id: "t3", is_error: true })]);
    expect(repairConversation(out)).toEqual(out);
  });
});

describe("a run that answers a typed request", () => {
  const reply: ReplySpec = {
    method: "lookup",
    description: "the value of a key",
    schema: { type: "object", properties: { value: { type: "string" } }, required: ["value"] },
    check: (v) => (typeof (v as { value?: unknown })?.value === "string" ? null : "result.value: expected a string"),
    unwrap: (v) => v,
  };

  test("the reply tool is offered with tool_choice any; a refused reply is corrected; the valid one is the result", async () => {
    const h = makeHarness({ env: env(), config: FAST });
    srv.script([
      { content: [{ type: "tool_use", name: REPLY_TOOL, input: { value: 42 } }] },
      {
        content: [{ type: "tool_use", name: REPLY_TOOL, input: { value: "forty-two" } }],
        match: { contains: "refused" },
      },
    ]);
    const r = await h.inference.run(h.agent({ maxTurns: 5 }), { message: "lookup k", reply }, {});
    expect(r.reply).toEqual({ value: "forty-two" });
    expect(r.stop_reason).toBe("reply");
    const first = srv.requests[0]!.body;
    expect(first.tool_choice).toEqual({ type: "any" });
    expect(first.tools.find((t: { name: string }) => t.name === REPLY_TOOL).input_schema).toEqual(reply.schema);
    expect(JSON.stringify(srv.requests[1]!.body.messages)).toContain("result.value: expected a string");
  });

  test("the last allowed turn forces the reply tool; no valid reply leaves reply_error", async () => {
    const h = makeHarness({ env: env(), config: FAST });
    srv.script([
      { content: [{ type: "tool_use", name: REPLY_TOOL, input: { value: 1 } }] },
      { content: [{ type: "tool_use", name: REPLY_TOOL, input: { value: 2 } }] },
    ]);
    const r = await h.inference.run(h.agent({ maxTurns: 2 }), { message: "lookup k", reply }, {});
    expect(r.reply).toBeUndefined();
    expect(r.reply_error).toBe("result.value: expected a string");
    expect(srv.requests[1]!.body.tool_choice).toEqual({ type: "tool", name: REPLY_TOOL });
  });
});
