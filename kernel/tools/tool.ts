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
import type { AgentServices } from "../services.ts";
import type { PrivateAreas, ResourceKind, Token } from "../caps/index.ts";

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
  limits: ToolLimits;
}

export interface ToolLimits {
  fileReadMaxBytes: number;
  webFetchMaxBytes: number;
  webFetchTimeoutMs: number;
  webFetchMaxRedirects: number;
}

export interface Tool<I = any> {
  name: string;
  description: string;
  input: z.ZodType<I>;
  run(ctx: ToolContext, input: I): Promise<unknown>;
}

export function defineTool<I>(tool: Tool<I>): Tool<I> {
  return tool;
}
