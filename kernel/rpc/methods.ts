// The JSON-RPC method table (ARCHITECTURE §5): one entry per method, its
// params schema and a handler that calls AgentServices. Nothing here holds
// state or reaches into a subsystem; it parses, validates and delegates.
import { z } from "zod";
import type { AuditLog } from "../audit/index.ts";
import type { Kernel } from "../kernel.ts";
import { manifestSource } from "../manifest/index.ts";
import type { AgentOutputEvent } from "../services.ts";
import type { MethodContext, MethodTable } from "./server.ts";

export interface SystemFacts {
  version: string;
  bootId: string;
  mode: "host" | "init";
  startedAt: number;
  /** init mode: what the boot found (disks, persistence, RPC device, step times) */
  boot?: unknown;
  /** poweroff/reboot (init) or exit (host); called after the reply is written */
  shutdown(action: "poweroff" | "reboot"): void;
}

const Empty = z.strictObject({});
const AgentId = z.string().min(1).max(128);

function method<S extends z.ZodType>(params: S, handler: (p: z.output<S>, ctx: MethodContext) => unknown) {
  return { params, handler };
}

export function methodTable(kernel: Kernel, audit: AuditLog, sys: SystemFacts): MethodTable {
  const streamTo = (ctx: MethodContext) => (e: AgentOutputEvent) => {
    if (!ctx.conn.closed) ctx.conn.notify("agent.output", e);
  };
  return {
    "agent.spawn": method(manifestSource({}), (p) => kernel.spawn(p)),
    "agent.stop": method(z.strictObject({ agent_id: AgentId }), (p) => kernel.stop(p.agent_id)),
    "manifest.list": method(Empty, () => ({ manifests: kernel.listManifests() })),
    "agent.list": method(Empty, () => ({ agents: kernel.list() })),
    "agent.status": method(z.strictObject({ agent_id: AgentId }), (p) => kernel.status(p.agent_id)),
    "agent.run": method(z.strictObject({ agent_id: AgentId, message: z.string().min(1) }), (p, ctx) =>
      kernel.run(p.agent_id, p.message, { onOutput: streamTo(ctx) }),
    ),
    "agent.spawn_and_run": method(manifestSource({ message: z.string().min(1) }), async (p, ctx) => {
      const spawned = await kernel.spawn({ manifest: p.manifest, name: p.name });
      return kernel.run(spawned.agent_id, p.message, { onOutput: streamTo(ctx) });
    }),
    "tool.list": method(z.strictObject({ agent_id: AgentId.optional() }), (p) => ({ tools: kernel.listTools(p.agent_id) })),
    "tool.invoke": method(z.strictObject({ agent_id: AgentId, tool: z.string().min(1), input: z.record(z.string(), z.unknown()).default({}) }), async (p, ctx) => {
      const output = await kernel.invokeTool(p.agent_id, p.tool, p.input, {
        via: "rpc",
        onApprovalPending: (id) => ctx.conn.notify("agent.output", { agent_id: p.agent_id, type: "approval_pending", approval_id: id, tool: p.tool }),
      });
      return { output };
    }),
    "approval.list": method(Empty, () => ({ approvals: kernel.listApprovals() })),
    "approval.respond": method(
      z.strictObject({ id: z.string().min(1), decision: z.enum(["approve", "deny"]), reason: z.string().max(4096).optional() }),
      (p) => kernel.respondApproval(p.id, p.decision, p.reason),
    ),
    "audit.query": method(
      z.strictObject({
        agent_id: z.string().optional(),
        kind: z.string().optional(),
        since_seq: z.number().int().min(0).optional(),
        limit: z.number().int().min(1).max(1000).optional(),
      }),
      (p) => audit.query(p),
    ),
    "audit.verify": method(Empty, () => audit.verify()),
    "sched.status": method(Empty, () => kernel.inferenceStatus),
    "system.ping": method(Empty, () => ({ pong: true, uptime_ms: Date.now() - sys.startedAt })),
    "system.info": method(Empty, () => ({
      version: sys.version,
      boot_id: sys.bootId,
      mode: sys.mode,
      uptime_ms: Date.now() - sys.startedAt,
      pid: process.pid,
      agents: kernel.procs.liveCount(),
      pending_approvals: kernel.listApprovals().length,
      audit_head: audit.head(),
      // non-null while the audit log cannot be written (a full data disk): reads answer, changes fail
      degraded: audit.degraded(),
      tools: kernel.tools.describeAll().map((t) => t.name),
      ...(sys.boot === undefined ? {} : { boot: sys.boot }),
    })),
    "system.shutdown": method(z.strictObject({ action: z.enum(["poweroff", "reboot"]).default("poweroff") }), async (p) => {
      await kernel.audit({ kind: "system.shutdown", agent_id: null, action: p.action });
      // after this reply is on the wire
      setTimeout(() => sys.shutdown(p.action), 50);
      return { ok: true };
    }),
  };
}
