// The persistent agents' store (bun:sqlite) and the supervisor's arithmetic:
// what survives closing and reopening the database, what a finished item
// leaves, how the kept conversation is pruned and repaired, the backoff.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PRUNED, repairConversation } from "../../../kernel/llm/loop.ts";
import type { ConversationMessage } from "../../../kernel/llm/providers/types.ts";
import { AgentStore, KEEP_TURNS } from "../../../kernel/proc/store.ts";
import { Supervisor } from "../../../kernel/proc/supervisor.ts";

const dirs: string[] = [];
function fresh(): string {
  const d = mkdtempSync(join(tmpdir(), "aaos-store-"));
  dirs.push(d);
  return join(d, "state", "agents.db");
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const agent = (id: string, autostart: string | null = null) => ({
  id,
  name: "keeper",
  manifest: "name: keeper\nmodel: m\n",
  source: "manifest",
  parent_id: null,
  created_at: new Date().toISOString(),
  autostart,
});
const from = { agent_id: null, name: "operator" };

describe("AgentStore", () => {
  test("an agent, its state, usage, inbox, conversation and steps survive a reopen", () => {
    const file = fresh();
    let s = new AgentStore(file);
    s.addAgent(agent("ag-1", "autostart:keeper"));
    s.setUsage("ag-1", { input_tokens: 7, output_tokens: 3 });
    s.setState("ag-1", "failed", { reason: "boom", at: "2026-01-01T00:00:00.000Z" });
    s.enqueue({ id: "msg-1", agent_id: "ag-1", body: { kind: "message", text: "hi", from }, created_at: "t1" });
    s.enqueue({ id: "msg-2", agent_id: "ag-1", body: { kind: "message", text: "again", from }, created_at: "t2" });
    s.setItem("msg-1", "running");
    s.addTurn("ag-1", "msg-1", { role: "user", content: "hi" });
    s.setStep("msg-1", "tu-1", { state: "started" });
    s.setStep("msg-1", "tu-1", {
      state: "done",
      result: { type: "tool_result", tool_use_id: "tu-1", content: "ok" },
    });
    s.setStep("msg-1", "tu-2", { state: "approval", approval_id: "apr-1" });
    s.close();

    s = new AgentStore(file);
    const [a] = s.agents();
    expect(a).toMatchObject({
      id: "ag-1",
      state: "failed",
      failure: { reason: "boom" },
      usage: { input_tokens: 7, output_tokens: 3 },
      autostart: "autostart:keeper",
    });
    expect(s.autostarted("autostart:keeper")).toBe("ag-1");
    expect(s.autostarted("autostart:other")).toBeNull();
    expect(s.pending("ag-1").map((i) => [i.id, i.state])).toEqual([
      ["msg-1", "running"],
      ["msg-2", "queued"],
    ]);
    expect(s.turns("ag-1")).toEqual([{ item_id: "msg-1", message: { role: "user", content: "hi" } }]);
    expect(s.step("msg-1", "tu-1")).toMatchObject({ state: "done" });
    expect(s.step("msg-1", "tu-2")).toEqual({ state: "approval", approval_id: "apr-1" });
    expect(s.step("msg-1", "tu-3")).toBeUndefined();

    // finishing drops the item's steps and keeps its outcome for agent.result
    s.finishItem("ag-1", "msg-1", "done", { response: "hello", stop_reason: "end_turn" });
    expect(s.step("msg-1", "tu-1")).toBeUndefined();
    expect(s.item("msg-1")).toMatchObject({ state: "done", outcome: { response: "hello" } });
    expect(s.pending("ag-1").map((i) => i.id)).toEqual(["msg-2"]);
    // the conversation is kept across items
    expect(s.turns("ag-1").length).toBe(1);

    // a stopped agent is forgotten entirely
    s.removeAgent("ag-1");
    expect(s.agents()).toEqual([]);
    expect(s.pending("ag-1")).toEqual([]);
    expect(s.turns("ag-1")).toEqual([]);
    expect(s.autostarted("autostart:keeper")).toBeNull();
    s.close();
  });

  test("one autostart key, one agent", () => {
    const s = new AgentStore(fresh());
    s.addAgent(agent("ag-1", "autostart:keeper"));
    expect(() => s.addAgent(agent("ag-2", "autostart:keeper"))).toThrow();
    s.close();
  });

  test("finishing an item keeps the conversation; compactTurns removes the oldest messages and counts them", () => {
    const file = fresh();
    const s = new AgentStore(file);
    s.addAgent(agent("ag-1"));
    s.addTurn("ag-1", "msg-0", { role: "user", content: "start" });
    for (let i = 0; i < KEEP_TURNS; i++) {
      s.addTurn("ag-1", "msg-0", {
        role: "assistant",
        content: [{ type: "tool_use", id: `tu-${i}`, name: "echo", input: {} }],
      });
      s.addTurn("ag-1", "msg-0", {
        role: "user",
        content: [{ type: "tool_result", tool_use_id: `tu-${i}`, content: "x" }],
      });
    }
    s.enqueue({ id: "msg-0", agent_id: "ag-1", body: { kind: "message", text: "start", from }, created_at: "t" });
    s.finishItem("ag-1", "msg-0", "done", { response: "done" });
    s.addTurn("ag-1", "msg-1", { role: "user", content: "next" });
    // nothing is dropped by finishing: compaction (kernel/memory) archives before anything goes
    expect(s.turns("ag-1").length).toBe(2 * KEEP_TURNS + 2);
    expect(s.archived("ag-1")).toBe(0);
    expect(s.headItems("ag-1", 2)).toEqual(["msg-0", "msg-0"]);
    s.compactTurns("ag-1", 2 * KEEP_TURNS);
    const kept = s.turns("ag-1");
    expect(kept.map((t) => t.item_id)).toEqual(["msg-0", "msg-1"]);
    expect(kept[0]!.message).toMatchObject({ role: "user", content: [{ type: "tool_result" }] });
    expect(s.archived("ag-1")).toBe(2 * KEEP_TURNS);
    s.close();
    // durable: a reopened store says the same
    const again = new AgentStore(file);
    expect(again.archived("ag-1")).toBe(2 * KEEP_TURNS);
    expect(again.turns("ag-1").length).toBe(2);
    again.compactTurns("ag-1", 10);
    expect(again.turns("ag-1").length).toBe(0);
    expect(again.archived("ag-1")).toBe(2 * KEEP_TURNS + 2);
    again.close();
  });
});

describe("repairConversation", () => {
  test("leading tool results whose tool_use was pruned are dropped; it starts with a user message", () => {
    const msgs: ConversationMessage[] = [
      { role: "user", content: [{ type: "tool_result", tool_use_id: "gone", content: "x" }] },
      { role: "assistant", content: [{ type: "text", text: "ok" }] },
      { role: "user", content: "next" },
      { role: "assistant", content: [{ type: "text", text: "fine" }] },
    ];
    expect(repairConversation(msgs)).toEqual([{ role: "user", content: PRUNED }, ...msgs.slice(1)]);
    expect(repairConversation(msgs.slice(2))).toEqual(msgs.slice(2));
    expect(repairConversation(msgs.slice(0, 1))).toEqual([]);
    expect(repairConversation([])).toEqual([]);
  });
});

describe("Supervisor backoff", () => {
  test("doubles from the base and is capped", () => {
    const sv = new Supervisor({} as never, {
      backoffBaseMs: 50,
      backoffMaxMs: 200,
      crashLoopFailures: 3,
      crashLoopWindowMs: 60_000,
    });
    expect([1, 2, 3, 4, 10].map((n) => sv.backoffMs(n))).toEqual([50, 100, 200, 200, 200]);
  });
});
