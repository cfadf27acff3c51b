// One MCP principal's surface as an MCP server: a low-level server of the
// official v2 SDK whose handlers answer from a Surface. The kernel's /mcp
// (kernel/mcp/server.ts, a Surface on AgentServices) and `aaosctl mcp`
// (cli/mcp.ts, a Surface on the RPC line) both serve through this one
// builder, so the two transports cannot drift apart. The SDK speaks the
// protocol (2026-07-28, and 2025-11-25 for older clients); nothing here does.
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { ProtocolError, Server } from "@modelcontextprotocol/server";
import { ErrorCode, KernelError } from "../errors.ts";
import type { McpForward } from "../services.ts";

/** one principal's MCP surface, in MCP wire shapes (tools/list entries, CallToolResult, …) */
export interface Surface {
  /** what the principal's server declares: prompts and completions exist only with an upstream gateway */
  features(): { prompts: boolean; completions: boolean };
  /** a call that runs an agent (agent_run, a served method): a task at once for a client that takes tasks */
  long?(name: string): boolean;
  list(): Promise<{ tools: any[]; resources: any[]; resourceTemplates: any[]; prompts: any[]; upstream: boolean }>;
  call(
    name: string,
    args: Record<string, unknown>,
    opts: {
      signal?: AbortSignal;
      onProgress?: (message: string) => void;
      /** the call now waits for a human: it may become a task */
      onApprovalPending?: (approvalId: string) => void;
      /** what the client's call carries on to an external server's tool (capabilities, a retry's answers, progress) */
      forward?: McpForward;
    },
  ): Promise<any>;
  /** forward: what the client's request carries on to an upstream server (capabilities, a retry's answers) */
  read(uri: string, forward?: McpForward): Promise<any>;
  prompt(name: string, args: Record<string, string>, forward?: McpForward): Promise<any>;
  complete(params: any): Promise<any>;
}

export { runsAnAgent } from "./names.ts";

/** the 2026-07-28 tasks extension (SEP-2663) */
export const TASKS_EXTENSION = "io.modelcontextprotocol/tasks";
/** a finished task is kept this long for tasks/get */
const TASK_TTL_MS = 60 * 60 * 1000;
/** at most this many tasks per principal; the oldest finished one makes room */
const MAX_TASKS = 100;

type TaskStatus = "working" | "completed" | "failed" | "cancelled";

interface TaskEntry {
  taskId: string;
  status: TaskStatus;
  statusMessage?: string;
  createdAt: string;
  lastUpdatedAt: string;
  ttlMs: number;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
  controller: AbortController;
  done: Promise<void>;
}

/**
 * One principal's tasks: a tools/call that waits for a human's approval is
 * answered at once with a task (2026-07-28: the tasks extension, the server
 * deciding; 2025-11-25: when the client asks with params.task), and the
 * client polls tasks/get; the HTTP exchange that asked is never held. Owned
 * by whoever outlives one server instance: the kernel's McpService per
 * principal (HTTP is stateless), or the aaosctl mcp process (stdio).
 */
export class TaskStore {
  private readonly tasks = new Map<string, TaskEntry>();

  /** runs the call as a task: it is no longer tied to the request that started it */
  start(run: Promise<unknown>, controller: AbortController, statusMessage: string): TaskEntry {
    this.sweep();
    const now = new Date().toISOString();
    const t: TaskEntry = {
      taskId: `task-${randomUUID()}`,
      status: "working",
      statusMessage,
      createdAt: now,
      lastUpdatedAt: now,
      ttlMs: TASK_TTL_MS,
      controller,
      done: Promise.resolve(),
    };
    const settle = (status: TaskStatus, fields: Partial<TaskEntry>) => {
      if (t.status !== "working") return;
      Object.assign(t, { status, lastUpdatedAt: new Date().toISOString(), ...fields });
      delete t.statusMessage;
    };
    t.done = run.then(
      (result) => settle("completed", { result }),
      (e) => {
        const err = protocolError(e);
        settle("failed", { error: { code: err.code, message: err.message } });
      },
    );
    this.tasks.set(t.taskId, t);
    return t;
  }

  get(taskId: unknown): TaskEntry {
    const t = typeof taskId === "string" ? this.tasks.get(taskId) : undefined;
    if (!t) throw new ProtocolError(-32602, `no task "${String(taskId)}" (unknown, or expired)`);
    return t;
  }

  cancel(taskId: unknown): TaskEntry {
    const t = this.get(taskId);
    if (t.status === "working") {
      Object.assign(t, { status: "cancelled", lastUpdatedAt: new Date().toISOString() });
      delete t.statusMessage;
      t.controller.abort(new KernelError(ErrorCode.AgentNotRunnable, "the MCP client cancelled the task"));
    }
    return t;
  }

  /** expired finished tasks go; past MAX_TASKS the oldest finished ones go too */
  private sweep(): void {
    const now = Date.now();
    for (const [id, t] of this.tasks)
      if (t.status !== "working" && now - Date.parse(t.lastUpdatedAt) > t.ttlMs) this.tasks.delete(id);
    if (this.tasks.size < MAX_TASKS) return;
    for (const [id, t] of this.tasks) {
      if (this.tasks.size < MAX_TASKS) break;
      if (t.status !== "working") this.tasks.delete(id);
    }
    if (this.tasks.size >= MAX_TASKS)
      throw new ProtocolError(-32603, `${MAX_TASKS} tasks are still waiting; decide their approvals first`);
  }
}

/** a task as 2026-07-28 shows it (flat, DetailedTask on tasks/get) */
function modernTask(t: TaskEntry, detailed: boolean): Record<string, unknown> {
  return {
    taskId: t.taskId,
    status: t.status,
    ...(t.statusMessage ? { statusMessage: t.statusMessage } : {}),
    createdAt: t.createdAt,
    lastUpdatedAt: t.lastUpdatedAt,
    ttlMs: t.ttlMs,
    ...(detailed && t.status === "completed" ? { result: t.result } : {}),
    ...(detailed && t.status === "failed" ? { error: t.error } : {}),
  };
}

/** a kernel error (code, message) as the SDK's protocol error, so the client sees the same code and text */
export function protocolError(e: unknown): ProtocolError {
  if (e instanceof ProtocolError) return e;
  const code = typeof (e as { code?: unknown })?.code === "number" ? (e as { code: number }).code : -32603;
  return new ProtocolError(code, (e as Error)?.message ?? String(e), (e as { data?: unknown })?.data);
}

async function guarded<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw protocolError(e);
  }
}

/** what a 2026-07-28 request carries on to an upstream server: the client's capabilities, a retry's answers */
function forwardOf(req: { params: object }, ctx: any): McpForward {
  const params = req.params as { inputResponses?: unknown; requestState?: unknown };
  const requestState = ctx.mcpReq.requestState?.() ?? params.requestState;
  const inputResponses = ctx.mcpReq.inputResponses ?? params.inputResponses;
  return {
    clientCapabilities: ctx.mcpReq.envelope?.["io.modelcontextprotocol/clientCapabilities"],
    ...(inputResponses !== undefined ? { inputResponses } : {}),
    ...(typeof requestState === "string" ? { requestState } : {}),
  };
}

/** the tasks extension was declared by this request's client (the 2026-07-28 per-request envelope) */
function tasksDeclared(ctx: { mcpReq: { envelope?: Record<string, any> } }): boolean {
  const caps = ctx.mcpReq.envelope?.["io.modelcontextprotocol/clientCapabilities"];
  return caps?.extensions?.[TASKS_EXTENSION] !== undefined;
}

const TaskIdParams = z.looseObject({ taskId: z.string() });
const AnyResult = z.looseObject({});

/**
 * a low-level v2 SDK Server answering tools/*, resources/*, prompts/*,
 * completion/* from the surface, and tasks/* from the principal's tasks
 */
export function buildMcpServer(
  surface: Surface,
  info: { name: string; version: string },
  tasks: TaskStore,
  era: "legacy" | "modern" = "modern",
): Server {
  const f = surface.features();
  const legacy = era === "legacy";
  const server = new Server(info, {
    capabilities: {
      tools: {},
      resources: {},
      logging: {},
      ...(f.prompts ? { prompts: {} } : {}),
      ...(f.completions ? { completions: {} } : {}),
      // 2026-07-28: the tasks extension (the v2 SDK has no 2025-11-25 task runtime: a 2025 call waits)
      ...(legacy ? {} : { extensions: { [TASKS_EXTENSION]: {} } }),
    } as Record<string, unknown>,
    instructions:
      "aaOS: the tools, agents and resources this principal's capabilities allow. A call that needs a human's approval waits for the operator (as a task when the client supports tasks).",
  });
  server.setRequestHandler("tools/list", () =>
    guarded(async () => {
      return { tools: (await surface.list()).tools };
    }),
  );
  const onCall = (req: { params: { name: string; arguments?: unknown; task?: unknown } }, ctx: any) =>
    guarded(async () => {
      const token = ctx.mcpReq._meta?.progressToken;
      const asTask = ctx.mcpReq.envelope !== undefined && tasksDeclared(ctx);
      let n = 0;
      let detached = false;
      const onProgress = (message: string) => {
        if (detached) return;
        void ctx.mcpReq.log("info", message, "aaos").catch(() => {});
        if (token !== undefined)
          void ctx.mcpReq
            .notify({ method: "notifications/progress", params: { progressToken: token, progress: ++n, message } })
            .catch(() => {});
      };
      // the call's own signal: a task outlives the request that started it
      const controller = new AbortController();
      const onAbort = () => {
        if (!detached)
          controller.abort(new KernelError(ErrorCode.AgentNotRunnable, "the MCP client cancelled the call"));
      };
      ctx.mcpReq.signal.addEventListener("abort", onAbort, { once: true });
      let approval: (id: string) => void = () => {};
      const pending = new Promise<string>((r) => (approval = r));
      const forward: McpForward = {
        ...forwardOf(req, ctx),
        // a server's own progress, its numbers kept (they must grow), to this request's progress token
        onProgress: (p) => {
          if (detached || token === undefined) return;
          n = Math.max(n, p.progress);
          void ctx.mcpReq
            .notify({ method: "notifications/progress", params: { progressToken: token, ...p } })
            .catch(() => {});
        },
      };
      const run = surface.call(req.params.name, (req.params.arguments ?? {}) as Record<string, unknown>, {
        signal: controller.signal,
        onProgress,
        onApprovalPending: approval,
        forward,
      });
      try {
        if (!asTask) return await run;
        if (surface.long?.(req.params.name)) {
          detached = true;
          return { resultType: "task", ...modernTask(tasks.start(run, controller, "running"), false) } as never;
        }
        const first = await Promise.race([run.then((r) => ({ r })), pending.then((id) => ({ id }))]);
        if ("r" in first) return first.r;
        detached = true;
        const t = tasks.start(run, controller, `waiting for approval ${first.id}: the operator decides`);
        return { resultType: "task", ...modernTask(t, false) } as never;
      } finally {
        ctx.mcpReq.signal.removeEventListener("abort", onAbort);
      }
    });
  server.setRequestHandler("tools/call", (req, ctx) => onCall(req, ctx) as never);
  // tasks/* (the 2026 extension, gated on the client declaring it); a 2025 client has no tasks here
  const gate = (ctx: { mcpReq: { envelope?: Record<string, any> } }) => {
    if (ctx.mcpReq.envelope === undefined)
      throw new ProtocolError(-32601, "tasks are served on 2026-07-28 only (the tasks extension)");
    if (!tasksDeclared(ctx))
      throw new ProtocolError(-32021, `the client did not declare the ${TASKS_EXTENSION} extension`, {
        requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } },
      });
  };
  const custom = server.setRequestHandler.bind(server) as unknown as (
    method: string,
    schemas: { params: z.ZodType; result: z.ZodType },
    handler: (params: any, ctx: any) => Promise<unknown>,
  ) => void;
  custom("tasks/get", { params: TaskIdParams, result: AnyResult }, (p, ctx) =>
    guarded(async () => {
      gate(ctx);
      return modernTask(tasks.get(p.taskId), true);
    }),
  );
  // this kernel's tasks wait for a human, never for the client's input: an update is acknowledged, nothing more
  custom("tasks/update", { params: TaskIdParams, result: AnyResult }, (p, ctx) =>
    guarded(async () => {
      gate(ctx);
      tasks.get(p.taskId);
      return {};
    }),
  );
  custom("tasks/cancel", { params: TaskIdParams, result: AnyResult }, (p, ctx) =>
    guarded(async () => {
      gate(ctx);
      tasks.cancel(p.taskId);
      return {};
    }),
  );
  server.setRequestHandler("resources/list", () =>
    guarded(async () => ({ resources: (await surface.list()).resources })),
  );
  server.setRequestHandler("resources/templates/list", () =>
    guarded(async () => ({ resourceTemplates: (await surface.list()).resourceTemplates })),
  );
  server.setRequestHandler("resources/read", (req, ctx) =>
    guarded(() => surface.read(req.params.uri, forwardOf(req, ctx))),
  );
  if (f.prompts) {
    server.setRequestHandler("prompts/list", () => guarded(async () => ({ prompts: (await surface.list()).prompts })));
    server.setRequestHandler("prompts/get", (req, ctx) =>
      guarded(() =>
        surface.prompt(req.params.name, (req.params.arguments ?? {}) as Record<string, string>, forwardOf(req, ctx)),
      ),
    );
  }
  if (f.completions)
    server.setRequestHandler("completion/complete", (req) => guarded(() => surface.complete(req.params)));
  // a 2025 client may set a log level; the kernel's messages are few and always sent
  server.setRequestHandler("logging/setLevel", () => ({}));
  return server;
}
