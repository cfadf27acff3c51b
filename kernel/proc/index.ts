// The agent process table. An agent is a kernel-managed process: an id, a
// manifest, a state, a parent, and an AbortController whose signal reaches
// everything the agent has in flight (inference, approvals, tools), so stop
// is immediate. Invariant: a stopped agent holds no live tokens (the kernel
// revokes them in the same step that sets the state).
import { randomBytes } from "node:crypto";
import { noSuchAgent } from "../errors.ts";
import type { Manifest } from "../manifest/index.ts";
import type { AgentInfo, AgentState, AgentOutputEvent, InboxResult } from "../services.ts";
import type { ConversationMessage } from "../llm/providers/types.ts";
import type { InboxBody, InboxOutcome, StepRecord } from "./store.ts";

/** one message, typed request or notification waiting in (or taken from) an agent's inbox */
export interface InboxItem {
  readonly id: string;
  readonly body: InboxBody;
  readonly created_at: string;
  state: "queued" | "running" | "done" | "failed" | "cancelled";
  outcome: InboxOutcome | null;
  /** aborts this item's run only (a timed-out or cancelled call), not the agent */
  readonly abort: AbortController;
  /** told the run's events and its end (agent.send's connection, a waiting caller) */
  readonly watchers: { onOutput?: (e: AgentOutputEvent) => void; onDone?: (r: InboxResult) => void }[];
  /** a run without a store (a session agent): its messages and steps, so a retry resumes instead of re-running tools */
  memory?: {
    turns: ConversationMessage[];
    steps: Map<string, StepRecord>;
    /** messages of this run archived by compaction, and the summary that replaced them */
    archived?: number;
    summary?: string | null;
  };
  /** agent.run: its caller sees a failure itself (restart: never leaves the agent ready) */
  readonly sync?: boolean;
}

export interface Agent {
  readonly id: string;
  readonly name: string;
  /** shared, deep-frozen, by every agent spawned from the same text (kernel/manifest ManifestCache) */
  readonly manifest: Manifest;
  /** approval_required after inheritance: a child keeps every approval its parent needs; never changed, so shared */
  readonly approvalRequired: ReadonlySet<string>;
  readonly parentId: string | null;
  readonly depth: number;
  state: AgentState;
  /** ids of the agents it spawned (stopped ones too, until forgotten) */
  readonly children: Set<string>;
  /** one per agent, built the first time anything asks for it (or its signal), so idle agents carry none */
  readonly abort: AbortController;
  /** the stop's abort of `abort`; the reason is built only if a controller exists or is asked for later */
  abortWith(reason: () => unknown): void;
  readonly mailbox: { from: string; from_name: string; message: string; sent_at: string }[];
  /** queued items, oldest first; `current` is the one being worked on */
  readonly inbox: InboxItem[];
  current: InboxItem | null;
  /** the last finished items of an agent without a store (agent.result), bounded */
  readonly results: Map<string, InboxResult>;
  failure: { reason: string; at: string } | null;
  restarts: number;
  /** epoch ms of failures inside the crash-loop window */
  failures: number[];
  /** the agent this one's run is waiting on in a typed call (the wait-for graph deadlock refusal walks) */
  waitingOn: string | null;
  /** a worker is taking the inbox */
  pumping: boolean;
}

/** the process table's record of one agent */
export class AgentRecord implements Agent {
  readonly id: string;
  readonly name: string;
  readonly manifest: Manifest;
  readonly approvalRequired: ReadonlySet<string>;
  readonly parentId: string | null;
  readonly depth: number;
  #state: AgentState = "ready";
  readonly children = new Set<string>();
  readonly mailbox: Agent["mailbox"] = [];
  readonly inbox: InboxItem[] = [];
  current: InboxItem | null = null;
  readonly results = new Map<string, InboxResult>();
  failure: { reason: string; at: string } | null = null;
  restarts = 0;
  failures: number[] = [];
  waitingOn: string | null = null;
  pumping = false;
  #abort: AbortController | null = null;
  /** the stop's reason, for a controller first asked for after the stop */
  #stopReason: (() => unknown) | null = null;

  constructor(
    f: Pick<Agent, "id" | "name" | "manifest" | "approvalRequired" | "parentId" | "depth"> & { state?: AgentState },
  ) {
    this.id = f.id;
    this.name = f.name;
    this.manifest = f.manifest;
    this.approvalRequired = f.approvalRequired;
    this.parentId = f.parentId;
    this.depth = f.depth;
    if (f.state) this.#state = f.state;
  }

  /**
   * stopped is terminal: a worker that set running, restarting or failed
   * after an await (the agent stopped meanwhile) leaves it stopped, so the
   * process table's count of live agents stays exact
   */
  get state(): AgentState {
    return this.#state;
  }
  set state(s: AgentState) {
    if (this.#state !== "stopped") this.#state = s;
  }

  /** the same controller every time: whatever took its signal is aborted by the one stop */
  get abort(): AbortController {
    if (this.#abort) return this.#abort;
    this.#abort = new AbortController();
    if (this.#stopReason) this.#abort.abort(this.#stopReason());
    return this.#abort;
  }

  /**
   * The stop's abort. Nothing can be waiting on a controller nobody asked
   * for: then the reason is built only if one is asked for later (already
   * aborted), so a stop of an idle agent builds no Error.
   */
  abortWith(reason: () => unknown): void {
    if (this.#abort) this.#abort.abort(reason());
    else this.#stopReason ??= reason;
  }
}

export const MAILBOX_LIMIT = 256;
/** finished items an agent without a store keeps for agent.result */
export const RESULTS_LIMIT = 100;

export function newAgentId(): string {
  return "ag-" + randomBytes(8).toString("hex");
}

export class ProcessTable {
  private agents = new Map<string, Agent>();
  /** ids of the stopped agents still in the table, oldest stop first, from stoppedHead on */
  private stoppedOrder: string[] = [];
  private stoppedHead = 0;
  /** entries of `agents` in state stopped (stopped is terminal, and only markStopped sets it) */
  private stoppedCount = 0;

  /**
   * keepStopped: how many stopped agents stay visible to status. onForget is
   * told of each agent dropped past that bound, so every other per-agent
   * structure (tokens, scheduler usage) is bounded the same way.
   */
  constructor(
    private readonly keepStopped = 1000,
    private readonly onForget: (agentId: string) => void = () => {},
  ) {}

  add(agent: Agent): void {
    const was = this.agents.get(agent.id);
    if (was?.state === "stopped") this.stoppedCount--;
    if (agent.state === "stopped") this.stoppedCount++;
    this.agents.set(agent.id, agent);
  }

  get(id: string): Agent {
    const a = this.agents.get(id);
    if (!a) throw noSuchAgent(id);
    return a;
  }

  find(id: string): Agent | undefined {
    return this.agents.get(id);
  }

  /** live agents with this manifest name */
  byName(name: string): Agent[] {
    return [...this.agents.values()].filter((a) => a.name === name && a.state !== "stopped");
  }

  /** agents in the table, stopped ones included (for bound tests) */
  size(): number {
    return this.agents.size;
  }

  all(): Agent[] {
    return [...this.agents.values()];
  }

  /** agents not stopped: O(1), read by every spawn (the table keeps up to keepStopped stopped ones) */
  liveCount(): number {
    return this.agents.size - this.stoppedCount;
  }

  /** keep the last `keepStopped` stopped agents visible to status; forget older ones */
  markStopped(agent: Agent): void {
    if (agent.state === "stopped") return;
    agent.state = "stopped";
    if (this.agents.get(agent.id) === agent) this.stoppedCount++;
    this.stoppedOrder.push(agent.id);
    while (this.stoppedOrder.length - this.stoppedHead > this.keepStopped) {
      const old = this.stoppedOrder[this.stoppedHead++]!;
      const a = this.agents.get(old);
      if (a && a.state === "stopped") {
        this.agents.delete(old);
        this.stoppedCount--;
        if (a.parentId) this.agents.get(a.parentId)?.children.delete(old);
        this.onForget(old);
      }
    }
    // the queue's consumed head is dropped in one copy once it is as long as what is left (amortised O(1))
    if (this.stoppedHead > 64 && this.stoppedHead * 2 >= this.stoppedOrder.length) {
      this.stoppedOrder = this.stoppedOrder.slice(this.stoppedHead);
      this.stoppedHead = 0;
    }
  }

  info(a: Agent): AgentInfo {
    return { agent_id: a.id, name: a.name, state: a.state, parent_id: a.parentId, model: a.manifest.model };
  }
}
