// Compaction inside one run (kernel/llm/loop.ts compact()): a long tool
// loop under one user message outgrows a small context window; the loop
// summarises the oldest messages through the scheduler, hands them to
// RunMemory.compacted, and goes on with a message list the API accepts;
// the summary reaches the system prompt; a failed summary is replaced by a
// mechanical one and the run still completes; a stop during the summary
// stops the run without compacting.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import type { RunMemory } from "../../../kernel/llm/index.ts";
import type { ConversationMessage } from "../../../kernel/llm/providers/types.ts";
import { memorySystemPrompt } from "../../../kernel/memory/compact.ts";
import { startMessagesServer, type MessagesServer, type Step } from "../../fixtures/messages-server.ts";
import { FAST, makeHarness } from "./loop-harness.ts";

const KEY = "sk-ant-api03-TESTKEY-compaction-0123456789abcdef";
const SUMMARY_SYSTEM = "running summary of an AI agent's conversation";
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
const BIG = "lorem ipsum dolor sit amet ".repeat(40); // ~1 KiB of tool output per call

function recordingMemory(window: number) {
  const calls: { n: number; archived: ConversationMessage[]; summary: string; summarized: boolean }[] = [];
  let summary: string | null = null;
  const memory: RunMemory = {
    window,
    threshold: 0.7,
    summarizationModel: "claude-haiku-4-5-20251001",
    system: (base) => memorySystemPrompt(base, [{ label: "persona", limit: 50, value: "pinned-persona" }], summary),
    summary: () => summary,
    compacted: async (n, archived, text, info) => {
      calls.push({ n, archived, summary: text, summarized: info.summarized });
      summary = text;
    },
  };
  return { memory, calls };
}

/** n tool calls in a row, then a final answer */
function toolLoop(n: number): Step[] {
  const steps: Step[] = [];
  for (let i = 0; i < n; i++)
    steps.push({ match: { system: "test agent" }, content: [{ type: "tool_use", name: "big", input: { i } }] });
  steps.push({ match: { system: "test agent" }, text: "all done" });
  return steps;
}

/** the message list is one the Messages API accepts: starts with user, alternates, every tool_result answers the tool_use before it */
function assertValid(messages: any[]) {
  expect(messages[0].role).toBe("user");
  for (let i = 1; i < messages.length; i++) expect(messages[i].role).not.toBe(messages[i - 1].role);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m.role !== "user" || !Array.isArray(m.content)) continue;
    const results = m.content.filter((b: any) => b.type === "tool_result").map((b: any) => b.tool_use_id);
    if (results.length === 0) continue;
    const uses = (messages[i - 1]?.content ?? []).filter((b: any) => b.type === "tool_use").map((b: any) => b.id);
    expect(uses.sort()).toEqual(results.sort());
  }
}

const tools = { big: { input_schema: { type: "object" }, run: () => BIG } };

describe("compaction in one run", () => {
  test("a long tool loop stays inside its window: summarised, archived, valid, the summary in the system prompt", async () => {
    const h = makeHarness({ config: FAST, env: env(), tools });
    h.services.allowed.add("big");
    const { memory, calls } = recordingMemory(3000);
    srv.script([{ match: { system: SUMMARY_SYSTEM }, text: "SUMMARY: the agent called big many times" }]);
    srv.script(toolLoop(12));
    const r = await h.inference.run(h.agent({ maxTurns: 20 }), { message: "go", memory }, {});
    expect(r.stop_reason).toBe("end_turn");
    expect(r.response).toBe("all done");
    expect(calls.length).toBeGreaterThan(0);
    expect(calls[0]!.summarized).toBe(true);
    expect(calls[0]!.summary).toBe("SUMMARY: the agent called big many times");
    // the archived part starts with the run's user message
    expect(calls[0]!.archived[0]).toEqual({ role: "user", content: "go" });
    const agentRequests = srv.requests.filter((q) => JSON.stringify(q.body.system).includes("test agent"));
    for (const q of agentRequests) {
      assertValid(q.body.messages);
      // under the window by the fixture's own count
      expect(Math.ceil(JSON.stringify(q.body).length / 4)).toBeLessThan(3000);
      expect(JSON.stringify(q.body.system)).toContain("pinned-persona");
    }
    // the latest summary (the fixture's default text after the scripted first one) is what the model sees
    const lastSystem = agentRequests[agentRequests.length - 1]!.body.system as string;
    expect(lastSystem).toContain(
      `<conversation_summary>\n${calls[calls.length - 1]!.summary}\n</conversation_summary>`,
    );
    // a later compaction is given the previous summary to merge
    expect(calls.length).toBeGreaterThan(1);
    const second = srv.requests.filter((q) => JSON.stringify(q.body.system).includes(SUMMARY_SYSTEM))[1]!;
    expect(JSON.stringify(second.body.messages)).toContain("SUMMARY: the agent called big many times");
    // the summary call went through the scheduler: inference records for it, no tools offered
    const summaryRequest = srv.requests.find((q) => JSON.stringify(q.body.system).includes(SUMMARY_SYSTEM))!;
    expect(summaryRequest.body.tools ?? []).toEqual([]);
    expect(JSON.stringify(summaryRequest.body.messages)).toContain("tool_use big");
    // its tokens are the agent's: in the run's usage
    const reported = srv.requests.length;
    expect(h.audit.filter((e) => e.kind === "inference.usage").length).toBe(reported);
  });

  test("a failed summary is replaced by a mechanical one and the run completes", async () => {
    const h = makeHarness({ config: { retry: { ...FAST.retry, max_retries: 0 } }, env: env(), tools });
    h.services.allowed.add("big");
    const { memory, calls } = recordingMemory(3000);
    srv.script([{ match: { system: SUMMARY_SYSTEM }, error: { status: 400, message: "no summaries today" } }]);
    srv.script([{ match: { system: SUMMARY_SYSTEM }, error: { status: 400, message: "no summaries today" } }]);
    srv.script(toolLoop(8));
    const r = await h.inference.run(h.agent({ maxTurns: 20 }), { message: "go", memory }, {});
    expect(r.stop_reason).toBe("end_turn");
    expect(calls.length).toBeGreaterThan(0);
    expect(calls[0]!.summarized).toBe(false);
    expect(calls[0]!.summary.length).toBeGreaterThan(0);
    expect(calls[0]!.summary).toContain("big");
  });

  test("a stop while the summary is pending stops the run; nothing is compacted", async () => {
    const h = makeHarness({ config: FAST, env: env(), tools });
    h.services.allowed.add("big");
    const { memory, calls } = recordingMemory(3000);
    srv.script([{ match: { system: SUMMARY_SYSTEM }, hang: true }]);
    srv.script(toolLoop(8));
    const a = h.agent({ maxTurns: 20 });
    const run = h.inference.run(a, { message: "go", memory }, {});
    const end = Date.now() + 10_000;
    while (!srv.requests.some((q) => q.outcome === "hang") && Date.now() < end) await Bun.sleep(10);
    a.controller.abort();
    const r = await run;
    expect(r.stop_reason).toBe("stopped");
    expect(calls.length).toBe(0);
  });
});
