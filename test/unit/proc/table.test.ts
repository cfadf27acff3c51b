// kernel/proc/index.ts through ProcessTable's public API: lookups, the live
// count, and the bound on stopped agents, whose forgetting is told to the
// rest of the kernel (onForget) and to the agent's parent.
import { expect, test } from "bun:test";
import { ErrorCode } from "../../../kernel/errors.ts";
import { loadManifest } from "../../../kernel/manifest/index.ts";
import { AgentRecord, newAgentId, ProcessTable, type Agent } from "../../../kernel/proc/index.ts";

const manifest = loadManifest("name: worker\nmodel: claude-haiku-4-5-20251001\n");

function agent(over: Partial<Pick<Agent, "id" | "name" | "parentId" | "state" | "depth">> = {}): Agent {
  return new AgentRecord({
    id: over.id ?? newAgentId(),
    name: over.name ?? "worker",
    manifest,
    approvalRequired: new Set(),
    parentId: over.parentId ?? null,
    depth: over.depth ?? 0,
    state: over.state ?? "ready",
  });
}

test("agent ids are ag- and 16 hex digits, and differ", () => {
  const a = newAgentId();
  expect(a).toMatch(/^ag-[0-9a-f]{16}$/);
  expect(newAgentId()).not.toBe(a);
});

test("add, then get and find by id; byName finds live agents only", () => {
  const t = new ProcessTable();
  const a = agent();
  const b = agent({ name: "other" });
  t.add(a);
  t.add(b);
  expect(t.get(a.id)).toBe(a);
  expect(t.find(b.id)).toBe(b);
  expect(t.find("ag-unknown")).toBeUndefined();
  expect(t.byName("worker")).toEqual([a]);
  expect(t.all()).toEqual([a, b]);
  t.markStopped(a);
  expect(t.byName("worker")).toEqual([]);
  expect(t.get(a.id).state).toBe("stopped");
});

test("get of an unknown id is -32002", () => {
  const t = new ProcessTable();
  expect(() => t.get("ag-unknown")).toThrow(expect.objectContaining({ code: ErrorCode.NoSuchAgent }));
});

test("liveCount counts agents that are not stopped", () => {
  const t = new ProcessTable();
  const a = agent();
  const b = agent({ state: "running" });
  t.add(a);
  t.add(b);
  t.add(agent());
  expect(t.liveCount()).toBe(3);
  t.markStopped(a);
  t.markStopped(b);
  expect(t.liveCount()).toBe(1);
  expect(t.size()).toBe(3);
});

test("info is the agent as the wire shows it", () => {
  const t = new ProcessTable();
  const a = agent({ parentId: "ag-parent" });
  expect(t.info(a)).toEqual({
    agent_id: a.id,
    name: "worker",
    state: "ready",
    parent_id: "ag-parent",
    model: "claude-haiku-4-5-20251001",
  });
});

test("markStopped keeps the last N stopped agents and tells onForget of each one dropped, oldest first", () => {
  const forgotten: string[] = [];
  const t = new ProcessTable(2, (id) => forgotten.push(id));
  const live = agent();
  t.add(live);
  const stopped = [agent(), agent(), agent(), agent()];
  for (const a of stopped) t.add(a);
  for (const a of stopped) t.markStopped(a);
  expect(forgotten).toEqual([stopped[0]!.id, stopped[1]!.id]);
  expect(t.find(stopped[0]!.id)).toBeUndefined();
  expect(t.find(stopped[1]!.id)).toBeUndefined();
  expect(t.get(stopped[2]!.id).state).toBe("stopped");
  expect(t.get(stopped[3]!.id).state).toBe("stopped");
  // live agents are never forgotten
  expect(t.get(live.id)).toBe(live);
  expect(t.size()).toBe(3);
});

test("a forgotten agent is removed from its parent's children", () => {
  const t = new ProcessTable(1);
  const parent = agent({ name: "parent" });
  const c1 = agent({ parentId: parent.id, depth: 1 });
  const c2 = agent({ parentId: parent.id, depth: 1 });
  parent.children.add(c1.id).add(c2.id);
  for (const a of [parent, c1, c2]) t.add(a);
  t.markStopped(c1);
  expect([...parent.children]).toEqual([c1.id, c2.id]); // stopped, still kept
  t.markStopped(c2);
  expect([...parent.children]).toEqual([c2.id]); // c1 dropped past the bound
  expect(t.find(c1.id)).toBeUndefined();
});

test("liveCount stays exact over many stops past the bound, and a stopped agent stays stopped", () => {
  const forgotten: string[] = [];
  const t = new ProcessTable(3, (id) => forgotten.push(id));
  const live = [agent(), agent({ state: "running" })];
  for (const a of live) t.add(a);
  const order: string[] = [];
  for (let i = 0; i < 500; i++) {
    const a = agent();
    t.add(a);
    expect(t.liveCount()).toBe(3);
    t.markStopped(a);
    t.markStopped(a); // a second stop changes nothing
    order.push(a.id);
    // a worker that sets a state after an await finds the agent stopped: it stays stopped
    a.state = "restarting";
    expect(a.state as string).toBe("stopped");
    expect(t.liveCount()).toBe(2);
  }
  expect(t.size()).toBe(2 + 3);
  expect(forgotten).toEqual(order.slice(0, 497));
  expect(
    t
      .all()
      .slice(2)
      .map((a) => a.id),
  ).toEqual(order.slice(497));
});

test("abortWith aborts a controller in use now, and one first asked for after the stop", () => {
  const used = agent();
  const signal = used.abort.signal;
  let built = 0;
  used.abortWith(() => (built++, new Error("stopped")));
  expect(signal.aborted).toBe(true);
  expect((signal.reason as Error).message).toBe("stopped");
  expect(built).toBe(1);

  const idle = agent();
  idle.abortWith(() => (built++, new Error("stopped later")));
  expect(built).toBe(1); // nothing was waiting: no reason built yet
  expect(idle.abort.signal.aborted).toBe(true);
  expect((idle.abort.signal.reason as Error).message).toBe("stopped later");
  expect(idle.abort).toBe(idle.abort);
  expect(built).toBe(2);
});
