// AgentServices: the kernel's syscall surface. The RPC layer, the tools and
// the agent loop call these methods; nothing reaches into a subsystem's
// internals. Every method that acts is audited by its implementation.
import type { Usage } from "./sched/index.ts";

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
  | { agent_id: string; type: "tool_result"; tool: string; id: string; ok: boolean; output?: unknown; error?: { code: number; message: string } }
  | { agent_id: string; type: "approval_pending"; approval_id: string; tool: string }
  | { agent_id: string; type: "turn"; turn: number; usage: Usage };

export interface RunOptions {
  onOutput?: (event: AgentOutputEvent) => void;
}

export interface ToolDescription {
  name: string;
  description: string;
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
  kind: string;
  agent_id?: string | null;
  [field: string]: unknown;
}

export interface AgentServices {
  spawn(req: SpawnRequest, parentId?: string): Promise<SpawnResult>;
  stop(agentId: string): Promise<{ agent_id: string; state: AgentState }>;
  list(): AgentInfo[];
  status(agentId: string): AgentStatus;
  run(agentId: string, message: string, opts?: RunOptions): Promise<RunResult>;
  listTools(agentId?: string): ToolDescription[];
  /** capability check (tool level, counted), approval if required, the tool, audit */
  invokeTool(agentId: string, tool: string, input: unknown, opts: InvokeOptions): Promise<unknown>;
  sendMessage(fromAgentId: string, to: string, message: string): Promise<{ delivered: boolean; to: string }>;
  /** drains up to max messages from the agent's mailbox, oldest first */
  readMessages(agentId: string, max: number): { from: string; from_name: string; message: string; sent_at: string }[];
  listApprovals(): ApprovalInfo[];
  respondApproval(id: string, decision: "approve" | "deny", reason?: string): Promise<{ id: string; decision: string }>;
  /** durable: resolves once the record is on disk */
  audit(event: AuditEventInput): Promise<{ seq: number }>;
}
