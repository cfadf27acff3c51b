// AgentServices: the kernel's syscall surface. The RPC layer, the tools and
// the agent loop call these methods; nothing reaches into a subsystem's
// internals. Every method that acts is audited by its implementation.
import type { AuditEventKind, AuditQuery, AuditRecord, AuditVerifyResult } from "./audit/index.ts";
import type { Usage } from "./sched/index.ts";
import type { ToolEffect } from "./tools/index.ts";
import type { RewindResult } from "./journal/rewind.ts";

/**
 * ready: waiting for work; running: a run or an inbox item in progress;
 * restarting: a failed run waits out its backoff (restart: on-failure, always);
 * failed: not restarted (restart: never, or a crash loop), with the reason in
 * agent.status `failure`, until agent.restart; stopped: gone, tokens revoked.
 */
export type AgentState = "ready" | "running" | "restarting" | "failed" | "stopped";

export interface AgentInfo {
  agent_id: string;
  name: string;
  state: AgentState;
  parent_id: string | null;
  model: string;
}

export interface AgentStatus extends AgentInfo {
  capabilities: string[];
  usage: Usage;
  children: string[];
  lifecycle: "persistent" | "session" | "ephemeral";
  restart: "never" | "on-failure" | "always";
  /** queued items (messages, requests, notifications) and the one being worked on */
  inbox: { depth: number; current: string | null };
  /** why it is failed or last failed: null when it never failed */
  failure: { reason: string; at: string } | null;
  /** restarts since spawn (or the last agent.restart) */
  restarts: number;
  /** the methods it serves (manifest serves:) */
  serves: string[];
}

/** a method a live agent serves that the asking agent may call (AgentServices.reachable) */
export interface ReachableMethod {
  agent_id: string;
  /** the serving agent's manifest name: what a call names in `to` */
  agent: string;
  method: string;
  description: string;
  /** the JSON Schemas of the manifest's serves: entry */
  params: object;
  result: object;
}

/** what agent.result and the agent.done notification say about one inbox item */
export interface InboxResult {
  agent_id: string;
  message_id: string;
  state: "queued" | "running" | "done" | "failed" | "cancelled";
  response?: string;
  stop_reason?: string;
  /** a request's validated result */
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

export interface CallRequest {
  /** id or manifest name of the agent that serves the method */
  to: string;
  method: string;
  params: unknown;
  /** at most this long (bounded by ipc.call_timeout and the caller's own deadline) */
  timeoutMs?: number;
  /** the caller's key for this call (agent_call: the tool use): a second call with the same key attaches to the first */
  key?: string;
  signal?: AbortSignal;
}

export interface SpawnRequest {
  /** YAML text of a manifest */
  manifest?: string;
  /** name of a manifest under <config>/manifests */
  name?: string;
}

export interface SpawnResult {
  agent_id: string;
  name: string;
  capabilities: string[];
}

export interface ToolCallRecord {
  tool: string;
  input: unknown;
  ok: boolean;
  output?: unknown;
  error?: { code: number; message: string };
}

export interface RunResult {
  agent_id: string;
  response: string;
  stop_reason: string;
  usage: Usage;
  tool_calls: ToolCallRecord[];
  /** a run answering a typed request: the result the model replied, valid against the method's schema */
  reply?: unknown;
  /** a run answering a typed request that ended without a valid reply: why the last one was refused */
  reply_error?: string;
}

/** Streamed to the caller of agent.run (and agent.send, with message_id) as `agent.output` notifications. */
export type AgentOutputEvent = { message_id?: string } & (
  | { agent_id: string; type: "text"; text: string }
  | { agent_id: string; type: "tool_use"; tool: string; input: unknown; id: string }
  | {
      agent_id: string;
      type: "tool_result";
      tool: string;
      id: string;
      ok: boolean;
      output?: unknown;
      error?: { code: number; message: string };
    }
  | { agent_id: string; type: "approval_pending"; approval_id: string; tool: string }
  | { agent_id: string; type: "turn"; turn: number; usage: Usage }
);

export interface RunOptions {
  onOutput?: (event: AgentOutputEvent) => void;
}

export interface ToolDescription {
  name: string;
  description: string;
  /** what running it does (kernel/tools/tool.ts ToolEffect): none, reversible or irreversible */
  effect: ToolEffect;
  input_schema: Record<string, unknown>;
  /** an MCP server's tool: the annotations it gave (readOnlyHint, destructiveHint, …) */
  annotations?: Record<string, unknown>;
}

export interface InvokeOptions {
  /** who asked: the operator over RPC, the agent's model, or an MCP client (a principal) */
  via: "rpc" | "model" | "mcp";
  /** an MCP client's name (kernel.yaml mcp.clients), in the call's audit records */
  client?: string;
  /** an MCP client's call to an external server's tool: what it carries through to that server */
  forward?: McpForward;
  /** aborted when the caller goes away; the agent's own stop aborts too */
  signal?: AbortSignal;
  /** told when the call starts waiting for a human */
  onApprovalPending?: (approvalId: string) => void;
  /** a restored approval (same id after a restart) this call waits on instead of asking again */
  approvalId?: string;
  /** called once every check has passed, right before the tool runs (a persistent agent records the step durably) */
  beforeRun?: () => void;
  /** the caller's key for this call, given to the tool (agent_call attaches to an earlier call with the same key) */
  callKey?: string;
}

/**
 * What an MCP client's tools/call carries through the kernel to an external
 * server's tool (an upstream gateway principal): its declared capabilities,
 * a multi-round-trip retry's inputResponses and requestState (2026-07-28),
 * and a way back for the server's progress notifications.
 */
export interface McpForward {
  clientCapabilities?: unknown;
  inputResponses?: unknown;
  requestState?: string;
  onProgress?: (p: { progress: number; total?: number; message?: string }) => void;
}

export interface ApprovalInfo {
  id: string;
  agent_id: string;
  tool: string;
  input: unknown;
  requested_at: string;
}

export interface AuditEventInput {
  /** one of kernel/audit/kinds.ts, each listed in docs/api.md (audit.* are the log's own) */
  kind: AuditEventKind;
  agent_id?: string | null;
  [field: string]: unknown;
}

export interface ManifestInfo {
  name: string;
  /** the file under <config>/manifests (source config) or <data>/state/manifests (source data) */
  file: string;
  /** config: the config partition's manifests/; data: put with manifest.put, on the data disk */
  source: "config" | "data";
  /** a data-disk manifest hiding a config one of the same name */
  overrides?: true;
  valid: boolean;
  error?: string;
}

/** what manifest.put answers */
export interface ManifestPutResult {
  name: string;
  source: "data";
  /** it hides a config-partition manifest of the same name */
  overrides: boolean;
  /** state/manifests/NAME.yaml, under the data directory */
  file: string;
  sha256: string;
}

/** what manifest.delete answers: source is what a spawn by that name finds now (null: nothing) */
export interface ManifestDeleteResult {
  name: string;
  deleted: true;
  source: "config" | null;
}

/** what config.apply answers: the changed top-level sections of kernel.yaml, in effect now or at the next boot */
export interface ConfigApplyResult {
  applied: string[];
  at_reboot: string[];
  path: string;
  sha256: string;
}

/** what system.info counts */
export interface SystemCounts {
  /** agents that are not stopped */
  agents: number;
  pending_approvals: number;
  /** every built-in tool, in registry order */
  tools: string[];
}

/** a memory record as the API shows it (kernel/memory) */
export interface MemoryRecordInfo {
  id: string;
  seq: number;
  /** a shared namespace; null: an agent's own memory (owner names the agent) */
  namespace: string | null;
  owner: string | null;
  /** who wrote it (null: the kernel or the operator) */
  agent_id: string | null;
  /** note: stored by memory_store; archive: a conversation message moved out of the context window */
  kind: "note" | "archive";
  text: string;
  tags: string[];
  created_at: string;
  bytes: number;
  sha256: string;
  /** search results only */
  score?: number;
}

export interface MemorySearchRequest {
  query: string;
  k: number;
  tags?: string[];
  /** epoch ms: records created at or after */
  since?: number;
  /** a shared namespace */
  namespace?: string;
  /** the operator only: this agent's own memory */
  agent_id?: string;
}

export interface MemoryScope {
  agent_id?: string | undefined;
  namespace?: string | undefined;
}

/** told to every front end as it happens (the RPC layer broadcasts it as a notification) */
export type KernelEvent = { method: "approval.requested"; params: ApprovalInfo };

/** what a front end may watch (events.subscribe): every new audit record, every agent's run output */
export type WatchTopic = "audit" | "agent.output";

export type WatchEvent =
  { method: "audit.record"; params: AuditRecord } | { method: "agent.output"; params: AgentOutputEvent };

/**
 * The one door: every front end (RPC, and whatever comes later) and every
 * tool calls these methods and nothing else of the kernel. Each method's
 * precondition is written on it, with the error code a caller gets when it
 * does not hold; every method that acts is audited durably before it
 * answers, and answers -32603 (nothing changed) when its record cannot be
 * written. Methods marked "any time" have no precondition.
 */
export interface AgentServices {
  /**
   * Exactly one of manifest or name (-32602); the manifest valid, or a file
   * of that name under <config>/manifests (-32005); fewer than
   * limits.max_agents agents live (-32008). With parentId: the parent exists
   * (-32002), is not stopped (-32008), lists the child in spawn_child, is
   * within the depth and children limits, and covers every capability the
   * child asks for (-32001, audited); a budget it cannot carve out (-32004).
   */
  spawn(req: SpawnRequest, parentId?: string): Promise<SpawnResult>;
  /** The agent exists (-32002). Stopping a stopped agent answers its state again; children are stopped first. */
  stop(agentId: string): Promise<{ agent_id: string; state: AgentState }>;
  /** Any time: the agents in the table, stopped ones included until forgotten. */
  list(): AgentInfo[];
  /** The agent exists (-32002; the last 1,000 stopped agents are kept). */
  status(agentId: string): AgentStatus;
  /**
   * The agent exists (-32002), is not stopped and not already running
   * (-32008); an inference provider is configured (-32006).
   */
  run(agentId: string, message: string, opts?: RunOptions): Promise<RunResult>;
  /** Any time without agentId (every tool); with it, the agent exists (-32002): what it may call (none once stopped). */
  listTools(agentId?: string): ToolDescription[];
  /**
   * The agent exists (-32002) and is not stopped (-32008); it holds the
   * tool (-32001, audited, checked before the input); the input is valid
   * (-32602); an approval it needs is granted (-32003). Then the tool: one
   * with an effect runs after tool.call is durable; an effect-none one runs
   * once tool.call is appended, and both records are durable (one group
   * commit) before the reply. Either record failing rejects (-32603).
   */
  invokeTool(agentId: string, tool: string, input: unknown, opts: InvokeOptions): Promise<unknown>;
  /**
   * The sender exists (-32002); the recipient (id or name) is a live agent
   * (-32002) the sender may message (-32001) with room in its mailbox (-32008).
   */
  sendMessage(fromAgentId: string, to: string, message: string): Promise<{ delivered: boolean; to: string }>;
  /** The agent exists (-32002). Drains up to max messages from its mailbox, oldest first. */
  readMessages(agentId: string, max: number): { from: string; from_name: string; message: string; sent_at: string }[];
  /** Any time: the approvals waiting for a human. */
  listApprovals(): ApprovalInfo[];
  /** The approval is pending and not being decided (-32007). Answers once approval.decided is durable. */
  respondApproval(id: string, decision: "approve" | "deny", reason?: string): Promise<{ id: string; decision: string }>;
  /** Any time: the manifests of <data>/state/manifests over <config>/manifests, each checked as spawn would check it. */
  listManifests(): ManifestInfo[];
  /**
   * The operator only. A manifest name (-32602); the YAML valid as a spawn
   * checks it, its name: the given name (-32005, positioned; nothing
   * written). Audited (manifest.put, durable first), then written
   * atomically to <data>/state/manifests/NAME.yaml: a spawn by name finds it
   * from now on, over a config-partition manifest of the same name.
   */
  putManifest(name: string, yaml: string): Promise<ManifestPutResult>;
  /** The operator only. A manifest put with putManifest (-32602 otherwise, also for one only in the config partition). Audited (manifest.delete). */
  deleteManifest(name: string): Promise<ManifestDeleteResult>;
  /** Any time: kernel.yaml as text (absent: the defaults rendered as YAML). Holds key file names, never a key. */
  getConfig(): { yaml: string; source: "kernel.yaml" | "defaults"; path: string };
  /**
   * The operator only. The YAML valid as boot checks it (-32602 with line
   * and column; nothing written). Audited (config.apply), written
   * atomically to <config>/kernel.yaml; the changed sections the kernel
   * reads at use time take effect now, the others at the next boot.
   */
  applyConfig(yaml: string): Promise<ConfigApplyResult>;
  /**
   * The operator only. A secret name (-32602). The value is registered for
   * redaction, secret.set is audited (name and bytes only), then the value
   * written to <config>/secrets/NAME (0600, atomic). Never returned by any method.
   */
  setSecret(name: string, value: string): Promise<{ name: string; bytes: number; file: string }>;
  /** Any time; durable: resolves once the record is on disk, rejects while the log cannot be written. */
  audit(event: AuditEventInput): Promise<{ seq: number }>;
  /** Any time, degraded too: answers from what is durable. */
  queryAudit(q: AuditQuery): Promise<{ events: AuditRecord[]; next_seq: number }>;
  /** Any time: walks the hash chain (ARCHITECTURE §5 audit.verify). */
  verifyAudit(): Promise<AuditVerifyResult>;
  /** Any time: the last durable record. */
  auditHead(): { seq: number; hash: string };
  /** Any time: null, or why the audit log cannot be written (a full data disk): reads answer, changes fail. */
  auditDegraded(): { reason: string; since: string } | null;
  /** Any time: the inference scheduler's queue and agents (sched.status; `configured: false` without a provider). */
  schedulerStatus(): unknown;
  /** Any time: live agents, pending approvals, tool names. */
  systemCounts(): SystemCounts;
  /**
   * The agent exists (-32002), is not stopped (-32008), its inbox has room
   * (-32008, limits.max_inbox); an inference provider is configured
   * (-32006). Queues the message (durable for a persistent agent) and
   * answers its id at once; the agent takes its inbox one item at a time.
   * onOutput is told the run's events, then onDone its outcome.
   */
  send(
    agentId: string,
    message: string,
    opts?: { onOutput?: (e: AgentOutputEvent) => void; onDone?: (r: InboxResult) => void },
  ): Promise<{ agent_id: string; message_id: string }>;
  /** The agent exists (-32002); the item is one of its last 1,000 (-32602 otherwise). */
  result(agentId: string, messageId: string): InboxResult;
  /**
   * A typed call. from: the calling agent (null: the operator). The caller
   * holds `call: AGENT.METHOD` (-32001, audited); the recipient is a live
   * agent (-32002/-32008) that serves the method (-32601); the params fit
   * its schema (-32602, never delivered); its inbox has room (-32008); the
   * call would not close a cycle of waiting agents (-32008, the cycle
   * named). Answers the recipient's result, valid against the method's
   * result schema (-32603 when the model's reply was not), or -32009 when
   * the deadline passes first (the request is cancelled).
   */
  call(from: string | null, req: CallRequest): Promise<unknown>;
  /** As call, one-way: queued and answered at once with its id; nobody waits for a result. */
  notify(from: string | null, req: CallRequest): Promise<{ delivered: true; message_id: string }>;
  /** The agent exists (-32002) and is failed (-32008 otherwise): back to ready, its inbox resumes. */
  restart(agentId: string): Promise<{ agent_id: string; state: AgentState }>;
  /**
   * Memory (docs/memory.md). agentId: the calling agent, which exists (-32002)
   * and is not stopped (-32008); without a namespace its own memory. A named
   * namespace was authorised by the caller (the memory tools check
   * memory_write / memory_read with ctx.authorize first). The text fits
   * memory.max_record_bytes (-32602) and the quota (-32010). Answers once
   * memory.store is durable; if it cannot be written nothing is kept (-32603).
   */
  memoryStore(
    agentId: string,
    req: { text: string; tags: string[]; namespace?: string },
  ): Promise<{ id: string; namespace: string | null; bytes: number; sha256: string }>;
  /**
   * agentId as memoryStore; null: the operator, who reaches every namespace
   * (agent_id and namespace narrow it; neither: everything).
   */
  memorySearch(agentId: string | null, req: MemorySearchRequest): Promise<{ results: MemoryRecordInfo[] }>;
  /** The record exists and is in the caller's reach: its own or a shared one (-32602 otherwise; another agent's is never shown). */
  memoryRecord(agentId: string | null, id: string): MemoryRecordInfo;
  /** As memoryRecord; a shared namespace's record was authorised by the caller (memory_write). Answers once memory.delete is durable. */
  memoryDelete(agentId: string | null, id: string): Promise<{ id: string; deleted: true }>;
  /** The agent has a pinned block of that label (-32602) and the value fits its limit (-32602). Audited (memory.block). */
  memoryBlockUpdate(
    agentId: string,
    label: string,
    value: string,
  ): Promise<{ label: string; chars: number; limit: number }>;
  /** Any time (the operator): records oldest first, after after_seq, at most limit (≤ 1000). */
  memoryList(req: MemoryScope & { kind?: "note" | "archive"; after_seq?: number; limit: number }): {
    records: MemoryRecordInfo[];
    next_seq: number | null;
  };
  /** Any time (the operator): records as JSONL, at most 512 KiB a page; next_seq null on the last page. */
  memoryExport(req: MemoryScope & { after_seq?: number }): { jsonl: string; records: number; next_seq: number | null };
  /** Any time (the operator): every namespace with records, its use and its quota. */
  memoryNamespaces(): {
    namespaces: {
      namespace: string | null;
      owner: string | null;
      records: number;
      bytes: number;
      quota: { records: number; bytes: number };
    }[];
  };
  /**
   * The operator's view of the agents' area of the data disk (<data>/files;
   * path relative to it, "/" its root). The path is a directory beneath it
   * reached with no symlink and no `..` out (-32001), existing (-32602), not
   * kernel-private (-32001). At most 10,000 entries (truncated). Audited
   * (fs.list) before the reply; refusals too.
   */
  filesList(path: string): Promise<import("./fs.ts").FsListResult>;
  /**
   * As filesList, a regular file with one hard link (-32602, -32001): at
   * most tools.file_read_max_bytes from offset (length: fewer). Audited
   * (fs.read, with the bytes read) before the reply; refusals too.
   */
  filesRead(path: string, opts: { offset: number; length?: number }): Promise<import("./fs.ts").FsReadResult>;
  /**
   * Any time: listener is told, from now on, every audit record once it is
   * durable (topic "audit") and every agent's run output (topic
   * "agent.output"); call the result to stop.
   */
  watch(topics: readonly WatchTopic[], listener: (event: WatchEvent) => void): () => void;
  /**
   * Puts back what the agent (and, include_children, its descendants)
   * changed after the audit record to_seq (default: since it was spawned),
   * newest first. The agent is known (-32002: in the table, or in the
   * journal) and, unless a dry run, neither it nor a descendant is running
   * (-32008). A path changed since by someone else is a conflict, left alone
   * unless force. Audited: agent.rewind (durable before the first change)
   * and agent.rewound; every restoration is journaled, so the rewind can be
   * undone with to_seq = its audit_seq - 1.
   */
  rewind(
    agentId: string,
    opts: { toSeq?: number; includeChildren?: boolean; dryRun?: boolean; force?: boolean },
  ): Promise<RewindResult & { audit_seq: number | null }>;
  /**
   * The agent exists (-32002): what it may reach besides its tools (an MCP
   * principal's tools/list): each method of a live agent it holds `call:` for
   * (one per manifest name: a call by name reaches the first), and the
   * manifests its spawn_child lists. Nothing is counted.
   */
  reachable(agentId: string): { methods: ReachableMethod[]; spawn_child: string[] };
  /** Any time: listener is told every KernelEvent from now on; call the result to stop. */
  subscribe(listener: (event: KernelEvent) => void): () => void;
}
