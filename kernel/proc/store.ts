// The persistent agents' store: one bun:sqlite database on the data disk
// (<data>/state/agents.db, kernel-private like everything under <data> but
// files/). It holds what a persistent agent is across reboots: its identity
// and manifest, its state (failed, with the reason), its token usage, its
// inbox (messages, typed requests and notifications, each with its result),
// its conversation, and the steps of the run in progress (which tool calls
// started, which finished and with what result) from which a run is resumed
// after a crash.
//
// Durability: WAL with synchronous=FULL, so a statement that returned is on
// disk (the WAL is fsynced at every commit). Every method is one statement
// or one transaction. Calls are synchronous (bun:sqlite): each commit costs
// one fsync on the event loop, paid by persistent agents only.
//
// Bounds: a finished inbox item's result is kept for the last
// KEEP_RESULTS items per agent; the conversation is bounded by compaction
// (kernel/memory: past its context window's threshold, or past KEEP_TURNS
// messages, the oldest messages are archived in the memory store and
// summarised, then removed here: compactTurns); a stopped agent's rows are
// deleted.
import type { Database } from "bun:sqlite";
import { openStateDb } from "../sys/files.ts";
import type { ConversationMessage, ToolResultBlock } from "../llm/providers/types.ts";
import { MAX_MESSAGES } from "../memory/compact.ts";

export const KEEP_RESULTS = 1000;
export const KEEP_TURNS = MAX_MESSAGES;

export interface StoredAgent {
  id: string;
  name: string;
  /** the manifest's YAML text, re-parsed at boot */
  manifest: string;
  source: string;
  parent_id: string | null;
  created_at: string;
  state: "ready" | "failed";
  failure: { reason: string; at: string } | null;
  usage: { input_tokens: number; output_tokens: number };
  /** "autostart:<name>" for an agent the kernel started at boot (so the next boot resumes it instead of spawning another) */
  autostart: string | null;
}

export type InboxState = "queued" | "running" | "done" | "failed" | "cancelled";

export interface Sender {
  /** null: the operator */
  agent_id: string | null;
  name: string;
}

export type InboxBody =
  | { kind: "message"; text: string; from: Sender }
  | {
      kind: "request";
      method: string;
      params: unknown;
      from: Sender;
      /** agent ids from the outermost caller to the sender */
      chain: string[];
      /** epoch ms after which the caller no longer waits */
      deadline: number;
    }
  | { kind: "notify"; method: string; params: unknown; from: Sender; chain: string[] };

export interface InboxOutcome {
  response?: string;
  stop_reason?: string;
  /** a request's validated result */
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

export interface StoredItem {
  id: string;
  agent_id: string;
  body: InboxBody;
  state: InboxState;
  outcome: InboxOutcome | null;
  created_at: string;
}

/** a tool call of the run in progress: started (its outcome unknown until done) or done with its result */
export type StepRecord =
  { state: "approval"; approval_id: string } | { state: "started" } | { state: "done"; result: ToolResultBlock };

export class AgentStore {
  private readonly db: Database;
  private readonly q;

  constructor(readonly file: string) {
    this.db = openStateDb(file);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS agents (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, manifest TEXT NOT NULL, source TEXT NOT NULL,
        parent_id TEXT, created_at TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'ready', failure TEXT,
        input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0, autostart TEXT UNIQUE,
        archived INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS inbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, agent_id TEXT NOT NULL,
        body TEXT NOT NULL, state TEXT NOT NULL, outcome TEXT, created_at TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS inbox_agent ON inbox (agent_id, state, seq);
      CREATE TABLE IF NOT EXISTS turns (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, agent_id TEXT NOT NULL, item_id TEXT NOT NULL, message TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS turns_agent ON turns (agent_id, seq);
      CREATE TABLE IF NOT EXISTS steps (
        item_id TEXT NOT NULL, tool_use_id TEXT NOT NULL, step TEXT NOT NULL, PRIMARY KEY (item_id, tool_use_id));
    `);
    // a store from before compaction: the count of archived messages is new
    const cols = (this.db.query(`PRAGMA table_info(agents)`).all() as { name: string }[]).map((c) => c.name);
    if (!cols.includes("archived")) this.db.exec(`ALTER TABLE agents ADD COLUMN archived INTEGER NOT NULL DEFAULT 0`);
    const db = this.db;
    this.q = {
      addAgent: db.query(
        `INSERT INTO agents (id, name, manifest, source, parent_id, created_at, autostart)
         VALUES ($id, $name, $manifest, $source, $parent_id, $created_at, $autostart)`,
      ),
      agents: db.query(`SELECT * FROM agents ORDER BY created_at, id`),
      byAutostart: db.query(`SELECT id FROM agents WHERE autostart = $key`),
      setState: db.query(`UPDATE agents SET state = $state, failure = $failure WHERE id = $id`),
      setUsage: db.query(`UPDATE agents SET input_tokens = $i, output_tokens = $o WHERE id = $id`),
      delAgent: db.query(`DELETE FROM agents WHERE id = $id`),
      delInbox: db.query(`DELETE FROM inbox WHERE agent_id = $id`),
      delTurns: db.query(`DELETE FROM turns WHERE agent_id = $id`),
      enqueue: db.query(
        `INSERT INTO inbox (id, agent_id, body, state, created_at) VALUES ($id, $agent_id, $body, 'queued', $created_at)`,
      ),
      pendingItems: db.query(
        `SELECT * FROM inbox WHERE agent_id = $id AND state IN ('queued', 'running') ORDER BY seq`,
      ),
      item: db.query(`SELECT * FROM inbox WHERE id = $id`),
      setItem: db.query(`UPDATE inbox SET state = $state, outcome = $outcome WHERE id = $id`),
      pruneItems: db.query(
        `DELETE FROM inbox WHERE agent_id = $id AND state IN ('done', 'failed', 'cancelled') AND seq <= (
           SELECT seq FROM inbox WHERE agent_id = $id AND state IN ('done', 'failed', 'cancelled')
           ORDER BY seq DESC LIMIT 1 OFFSET ${KEEP_RESULTS})`,
      ),
      addTurn: db.query(`INSERT INTO turns (agent_id, item_id, message) VALUES ($agent_id, $item_id, $message)`),
      turns: db.query(`SELECT item_id, message FROM turns WHERE agent_id = $id ORDER BY seq`),
      headTurns: db.query(`SELECT seq, item_id FROM turns WHERE agent_id = $id ORDER BY seq LIMIT $n`),
      delTurnsUpTo: db.query(`DELETE FROM turns WHERE agent_id = $id AND seq <= $seq`),
      archived: db.query(`SELECT archived FROM agents WHERE id = $id`),
      addArchived: db.query(`UPDATE agents SET archived = archived + $n WHERE id = $id`),
      step: db.query(`SELECT step FROM steps WHERE item_id = $item_id AND tool_use_id = $tool_use_id`),
      setStep: db.query(
        `INSERT INTO steps (item_id, tool_use_id, step) VALUES ($item_id, $tool_use_id, $step)
         ON CONFLICT (item_id, tool_use_id) DO UPDATE SET step = excluded.step`,
      ),
      delSteps: db.query(`DELETE FROM steps WHERE item_id = $item_id`),
    };
  }

  close(): void {
    this.db.close();
  }

  // ---- agents ------------------------------------------------------------

  addAgent(a: Omit<StoredAgent, "state" | "failure" | "usage">): void {
    this.q.addAgent.run({
      id: a.id,
      name: a.name,
      manifest: a.manifest,
      source: a.source,
      parent_id: a.parent_id,
      created_at: a.created_at,
      autostart: a.autostart,
    });
  }

  agents(): StoredAgent[] {
    return (this.q.agents.all() as Record<string, any>[]).map((r) => ({
      id: r.id,
      name: r.name,
      manifest: r.manifest,
      source: r.source,
      parent_id: r.parent_id ?? null,
      created_at: r.created_at,
      state: r.state === "failed" ? "failed" : "ready",
      failure: r.failure ? JSON.parse(r.failure) : null,
      usage: { input_tokens: r.input_tokens, output_tokens: r.output_tokens },
      autostart: r.autostart ?? null,
    }));
  }

  autostarted(key: string): string | null {
    const r = this.q.byAutostart.get({ key }) as { id: string } | null;
    return r?.id ?? null;
  }

  setState(id: string, state: "ready" | "failed", failure: { reason: string; at: string } | null): void {
    this.q.setState.run({ id, state, failure: failure ? JSON.stringify(failure) : null });
  }

  setUsage(id: string, usage: { input_tokens: number; output_tokens: number }): void {
    this.q.setUsage.run({ id, i: usage.input_tokens, o: usage.output_tokens });
  }

  /** a stopped agent is forgotten: nothing of it is resumed */
  removeAgent(id: string): void {
    this.db.transaction(() => {
      for (const it of this.q.pendingItems.all({ id }) as { id: string }[]) this.q.delSteps.run({ item_id: it.id });
      this.q.delInbox.run({ id });
      this.q.delTurns.run({ id });
      this.q.delAgent.run({ id });
    })();
  }

  // ---- inbox -------------------------------------------------------------

  enqueue(item: { id: string; agent_id: string; body: InboxBody; created_at: string }): void {
    this.q.enqueue.run({
      id: item.id,
      agent_id: item.agent_id,
      body: JSON.stringify(item.body),
      created_at: item.created_at,
    });
  }

  /** queued and running items, oldest first */
  pending(agentId: string): StoredItem[] {
    return (this.q.pendingItems.all({ id: agentId }) as Record<string, any>[]).map(toItem);
  }

  item(id: string): StoredItem | null {
    const r = this.q.item.get({ id }) as Record<string, any> | null;
    return r ? toItem(r) : null;
  }

  setItem(id: string, state: InboxState, outcome: InboxOutcome | null = null): void {
    this.q.setItem.run({ id, state, outcome: outcome ? JSON.stringify(outcome) : null });
  }

  /** the item's result, its steps dropped, old results pruned: one transaction */
  finishItem(agentId: string, id: string, state: InboxState, outcome: InboxOutcome): void {
    this.db.transaction(() => {
      this.q.setItem.run({ id, state, outcome: JSON.stringify(outcome) });
      this.q.delSteps.run({ item_id: id });
      this.q.pruneItems.run({ id: agentId });
    })();
  }

  // ---- conversation and steps --------------------------------------------

  addTurn(agentId: string, itemId: string, message: ConversationMessage): void {
    this.q.addTurn.run({ agent_id: agentId, item_id: itemId, message: JSON.stringify(message) });
  }

  /** the whole conversation, oldest first, each message with the item it belongs to */
  turns(agentId: string): { item_id: string; message: ConversationMessage }[] {
    return (this.q.turns.all({ id: agentId }) as { item_id: string; message: string }[]).map((r) => ({
      item_id: r.item_id,
      message: JSON.parse(r.message),
    }));
  }

  /** the items of the oldest n messages, oldest first */
  headItems(agentId: string, n: number): string[] {
    return (this.q.headTurns.all({ id: agentId, n }) as { item_id: string }[]).map((r) => r.item_id);
  }

  /** messages archived by compaction so far: the ordinal of the oldest message still here */
  archived(agentId: string): number {
    return (this.q.archived.get({ id: agentId }) as { archived: number } | null)?.archived ?? 0;
  }

  /** compaction's second step: the oldest n messages removed and counted as archived, one transaction */
  compactTurns(agentId: string, n: number): void {
    this.db.transaction(() => {
      const head = this.q.headTurns.all({ id: agentId, n }) as { seq: number }[];
      if (head.length === 0) return;
      this.q.delTurnsUpTo.run({ id: agentId, seq: head[head.length - 1]!.seq });
      this.q.addArchived.run({ id: agentId, n: head.length });
    })();
  }

  step(itemId: string, toolUseId: string): StepRecord | undefined {
    const r = this.q.step.get({ item_id: itemId, tool_use_id: toolUseId }) as { step: string } | null;
    return r ? JSON.parse(r.step) : undefined;
  }

  setStep(itemId: string, toolUseId: string, step: StepRecord): void {
    this.q.setStep.run({ item_id: itemId, tool_use_id: toolUseId, step: JSON.stringify(step) });
  }
}

function toItem(r: Record<string, any>): StoredItem {
  return {
    id: r.id,
    agent_id: r.agent_id,
    body: JSON.parse(r.body),
    state: r.state,
    outcome: r.outcome ? JSON.parse(r.outcome) : null,
    created_at: r.created_at,
  };
}
