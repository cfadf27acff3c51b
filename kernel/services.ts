// AgentServices: the kernel's syscall surface. The RPC layer, the tools and
// the agent loop call these methods; nothing reaches into a subsystem's
// internals. Every method that acts is audited by its implementation.
import type { AuditEventKind, AuditQuery, AuditRecord, AuditVerifyResult } from "./audit/index.ts";
import type { Usage } from "./sched/index.ts";
import type { ToolEffect } from "./tools/index.ts";

export type AgentState = "ready" | "running" | "stopped";

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
}

/** Streamed to the caller of agent.run as `agent.output` notifications. */
export type AgentOutputEvent =
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
  | { agent_id: string; type: "turn"; turn: number; usage: Usage };

export interface RunOptions {
  onOutput?: (event: AgentOutputEvent) => void;
}

export interface ToolDescription {
  name: string;
  description: string;
  /** what running it does (kernel/tools/tool.ts ToolEffect): none, reversible or irreversible */
  effect: ToolEffect;
  input_schema: Record<string, unknown>;
}

export interface InvokeOptions {
  /** who asked: the operator over RPC, or the agent's model */
  via: "rpc" | "model";
  /** aborted when the caller goes away; the agent's own stop aborts too */
  signal?: AbortSignal;
  /** told when the call starts waiting for a human */
  onApprovalPending?: (approvalId: string) => void;
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
  /** the file under <config>/manifests */
  file: string;
  valid: boolean;
  error?: string;
}

/** what system.info counts */
export interface SystemCounts {
  /** agents that are not stopped */
  agents: number;
  pending_approvals: number;
  /** every built-in tool, in registry order */
  tools: string[];
}

/** told to every front end as it happens (the RPC layer broadcasts it as a notification) */
export type KernelEvent = { method: "approval.requested"; params: ApprovalInfo };

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
  /** Any time: the manifests under <config>/manifests, each checked as spawn would check it. */
  listManifests(): ManifestInfo[];
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
  /** Any time: listener is told every KernelEvent from now on; call the result to stop. */
  subscribe(listener: (event: KernelEvent) => void): () => void;
}
