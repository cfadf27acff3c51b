// A built-in tool: a name, a zod input schema (shown as JSON Schema by
// tool.list), and a run function. The kernel has already checked the tool
// level (the agent holds `tool: NAME` or a resource capability implying it)
// and counted that token before run() is called. The resource level is the
// tool's job: it calls ctx.authorize() for every path or URL it touches,
// *before* touching it (web_fetch: on every redirect hop). Kernel-private
// state (ctx.privateAreas) is refused by authorize itself, whatever the grant;
// a tool consults privateAreas only for what authorize does not see (the
// entries of a listing, the file a replacing write builds beside its target).
import type { z } from "zod";
import type { AgentServices, McpForward } from "../services.ts";
import type { PrivateAreas, ResourceKind, Token } from "../caps/index.ts";
import type { Capture } from "../journal/index.ts";

export interface ToolContext {
  agentId: string;
  /**
   * throws KernelError -32001 unless a live token of the agent covers the
   * resource; returns that token (counted): the tool's authority for this
   * resource, whose grant a file tool opens beneath (tools/beneath.ts)
   */
  authorize(kind: ResourceKind, resource: string): Token;
  /**
   * the kernel-private paths carved out of every grant; authorize refuses
   * them (audited, -32001) before the capability check
   */
  privateAreas: PrivateAreas;
  services: AgentServices;
  /** aborted when the agent stops or the caller goes away */
  signal: AbortSignal;
  /** the caller's key for this call (the model's tool use): agent_call attaches to an earlier call with the same key */
  callKey?: string;
  /**
   * where a reversible tool records each change before it makes it (the
   * pre-image, the post-image): kernel/journal; bound to this agent and this
   * call's tool.call record
   */
  journal: Capture;
  limits: ToolLimits;
  /** fields added to this call's tool.result record (an MCP tool: the result's hash and size) */
  record(fields: Record<string, unknown>): void;
  /** an MCP client's call to an external server's tool: what it carries through (InvokeOptions.forward) */
  forward?: McpForward;
}

export interface ToolLimits {
  fileReadMaxBytes: number;
  webFetchMaxBytes: number;
  webFetchTimeoutMs: number;
  webFetchMaxRedirects: number;
}

/**
 * What running the tool does to the world (ARCHITECTURE §9), which decides
 * when its tool.call record must be durable:
 * - none: only reads, and changes nothing the kernel or anyone else can see;
 *   tool.call and tool.result are written in one group commit, after the run,
 *   both durable before the reply (a crash before then leaves no effect and
 *   no answer behind)
 * - reversible: changes something a pre-image can restore (the agent's files)
 * - irreversible: changes what cannot be taken back (the network, another
 *   agent, the kernel's tables)
 * A tool with an effect (reversible or irreversible) runs only after its
 * write-ahead tool.call is durable.
 */
export type ToolEffect = "none" | "reversible" | "irreversible";

export interface Tool<I = any> {
  name: string;
  description: string;
  effect: ToolEffect;
  input: z.ZodType<I>;
  run(ctx: ToolContext, input: I): Promise<unknown>;
  /** the input's JSON Schema as tool.list shows it (absent: converted from input) */
  inputSchema?: Record<string, unknown>;
  /** MCP tool annotations (an external server's, as it gave them) */
  annotations?: Record<string, unknown>;
  /** every call needs an approval, whatever the manifest says (kernel.yaml mcp.approve_destructive) */
  alwaysApprove?: boolean;
  /** fields every tool.call record of this tool carries (an MCP tool: its server and its own name) */
  auditFields?: Record<string, unknown>;
}

export function defineTool<I>(tool: Tool<I>): Tool<I> {
  return tool;
}
