// The JSON-RPC method table (ARCHITECTURE §5): one entry per method, its
// params schema and a handler that calls AgentServices. Nothing here holds
// state or reaches into a subsystem; it parses, validates and delegates.
// It is given AgentServices and the boot's facts, never the Kernel: the
// preconditions (and their error codes) are the interface's.
import { z } from "zod";
import type { ConfigReport } from "../config.ts";
import { NAMESPACE_NAME, NAMESPACE_RULE } from "../caps/index.ts";
import { MAX_MANIFEST_BYTES, manifestSource } from "../manifest/index.ts";
import { parseSince } from "../tools/memory_search.ts";
import type { AgentOutputEvent, AgentServices, McpForward } from "../services.ts";
import type { Method, MethodContext, MethodTable } from "./server.ts";
import { READ_ONLY_METHODS, type MethodName } from "./names.ts";
import type { SystemStats } from "../sys/stats.ts";
import type { McpService } from "../mcp/server.ts";
import type { InferenceSummary } from "../llm/router.ts";
import { LOG_TAIL_MAX, type LogReader } from "../sys/logs.ts";
import { capabilityDenied, invalidParams, KernelError, ErrorCode } from "../errors.ts";
import type { Upgrader } from "../sys/upgrade.ts";

export { METHOD_NAMES, READ_ONLY_METHODS, type MethodName } from "./names.ts";

export interface SystemFacts {
  version: string;
  bootId: string;
  mode: "host" | "init";
  startedAt: number;
  /** init mode: what the boot found (disks, persistence, RPC device, step times) */
  boot?: unknown;
  /** services.yaml: in effect, or refused and replaced by the defaults (init mode) */
  config: ConfigReport;
  /** poweroff/reboot (init) or exit (host); called once the reply has left the kernel (MethodContext.afterReply) */
  shutdown(action: "poweroff" | "reboot"): void;
  /** memory, the data disk, load, network, clock (system.stats) */
  stats(): SystemStats;
  /** the kernel's and init's log files (system.logs) */
  logs: LogReader;
  /** the dashboard's tokens and address (web.tokens); absent: no HTTP listener */
  web?: () => { operator: string; viewer: string; urls: string[] };
  /** the kernel as an MCP server: its clients' surfaces (mcp.*, for aaosctl mcp); absent: none */
  mcp?: McpService;
  /** the model providers and where their keys come from (system.info `inference`); absent: not reported */
  inference?: () => InferenceSummary;
  /** A/B upgrade and rollback (init mode); absent: host mode */
  upgrade?: Upgrader;
}

/** what config.apply changed since boot, per kernel (the operator's and the viewer's tables share it) */
interface ConfigSinceBoot {
  /** sections config.apply put in effect live */
  applied: Set<string>;
  /** sections kernel.yaml now holds that take effect at the next boot */
  at_reboot: string[];
  last_apply: { sha256: string; at: string } | null;
}
const configSince = new WeakMap<object, ConfigSinceBoot>();
function configSinceBoot(services: object): ConfigSinceBoot {
  let c = configSince.get(services);
  if (!c) configSince.set(services, (c = { applied: new Set(), at_reboot: [], last_apply: null }));
  return c;
}

/**
 * system.info `config`: what is in effect now. `source` is kernel.yaml once
 * the kernel booted from it or config.apply wrote it (its `at_reboot`
 * sections still have the boot's values); `boot_source`, `valid` and
 * `error` are the boot's.
 */
function configInEffect(boot: ConfigReport, since: ConfigSinceBoot) {
  return {
    ...boot,
    source: since.last_apply ? ("kernel.yaml" as const) : boot.source,
    boot_source: boot.source,
    applied: [...since.applied].sort(),
    at_reboot: since.at_reboot,
    last_apply: since.last_apply,
  };
}

/** an MCP protocol error (the SDK's) as the contract's error: the same code when the contract has it */
function asKernelError(e: unknown): unknown {
  if (e instanceof KernelError) return e;
  const code = (e as { code?: unknown })?.code;
  if (typeof code !== "number") return e;
  const known = (Object.values(ErrorCode) as number[]).includes(code);
  return new KernelError(
    known ? (code as ErrorCode) : ErrorCode.InvalidParams,
    (e as Error).message,
    (e as { data?: Record<string, unknown> }).data,
  );
}

const Empty = z.strictObject({});
const Namespace = z.string().regex(NAMESPACE_NAME, NAMESPACE_RULE);
/** whose memory: an agent's own, a shared namespace, both; neither: everything */
const MemoryScope = { agent_id: z.string().min(1).max(128).optional(), namespace: Namespace.optional() };
const AgentId = z.string().min(1).max(128);

/** system.upgrade: {url, sha256} (the appliance fetches it), or the bundle in base64 chunks {sha256, size, offset, data} */
const UpgradeParams = z
  .strictObject({
    sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "64 hex digits"),
    url: z.url({ protocol: /^https?$/ }).optional(),
    size: z.number().int().positive().optional(),
    offset: z.number().int().min(0).optional(),
    data: z.string().optional(),
    reboot: z.boolean().default(true),
  })
  .refine((p) => (p.url !== undefined) !== (p.size !== undefined && p.offset !== undefined && p.data !== undefined), {
    message: "give either url, or size, offset and data (a chunk of the bundle)",
  });

function upgraderOf(sys: SystemFacts): Upgrader {
  if (!sys.upgrade) throw new KernelError(ErrorCode.InvalidParams, "upgrades are for the appliance (init mode)");
  return sys.upgrade;
}

function method<S extends z.ZodType>(
  params: S,
  handler: (p: z.output<S>, ctx: MethodContext) => unknown,
  quick?: (raw: Record<string, unknown>) => z.output<S> | undefined,
) {
  return quick ? { params, handler, quick } : { params, handler };
}

const plainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** tool.invoke's params when they are exactly what its schema accepts as is (the hot path: no zod walk) */
function quickInvokeParams(raw: Record<string, unknown>) {
  for (const k of Object.keys(raw)) if (k !== "agent_id" && k !== "tool" && k !== "input") return undefined;
  const { agent_id, tool, input } = raw;
  if (typeof agent_id !== "string" || agent_id.length < 1 || agent_id.length > 128) return undefined;
  if (typeof tool !== "string" || tool.length < 1) return undefined;
  if (input !== undefined && !plainObject(input)) return undefined;
  return { agent_id, tool, input: input ?? {} };
}

const McpClientName = z.string().min(1).max(63);
/** what an MCP client's request carries on to an external server (McpForward): for aaosctl mcp */
const McpForwardParams = z
  .strictObject({
    client_capabilities: z.record(z.string(), z.unknown()).optional(),
    input_responses: z.record(z.string(), z.unknown()).optional(),
    request_state: z
      .string()
      .max(1024 * 1024)
      .optional(),
  })
  .optional();

function mcpForward(f: NonNullable<z.output<typeof McpForwardParams>>): McpForward {
  return {
    ...(f.client_capabilities ? { clientCapabilities: f.client_capabilities } : {}),
    ...(f.input_responses ? { inputResponses: f.input_responses } : {}),
    ...(f.request_state !== undefined ? { requestState: f.request_state } : {}),
  };
}

export function methodTable(services: AgentServices, sys: SystemFacts): MethodTable {
  /** each connection's mcp.call calls in flight, by call_id */
  const mcpCallsOf = new WeakMap<object, Map<string, AbortController>>();
  const mcpCalls = (conn: object) => {
    let m = mcpCallsOf.get(conn);
    if (!m) mcpCallsOf.set(conn, (m = new Map()));
    return m;
  };
  const mcpOf = (): McpService => {
    if (!sys.mcp) throw new KernelError(ErrorCode.MethodNotFound, "this kernel serves no MCP (kernel.yaml mcp:)");
    return sys.mcp;
  };
  /** each connection's events.subscribe topics */
  const subscriptions = new WeakMap<object, Set<string>>();
  const streamTo = (ctx: MethodContext) => (e: AgentOutputEvent) => {
    if (!ctx.conn.closed) ctx.conn.notify("agent.output", e);
  };
  return {
    "agent.spawn": method(manifestSource({}), (p) => services.spawn(p)),
    "agent.stop": method(z.strictObject({ agent_id: AgentId }), (p) => services.stop(p.agent_id)),
    "manifest.list": method(Empty, () => ({ manifests: services.listManifests() })),
    "manifest.put": method(
      z.strictObject({ name: z.string().min(1).max(128), yaml: z.string().max(MAX_MANIFEST_BYTES) }),
      (p) => services.putManifest(p.name, p.yaml),
    ),
    "manifest.delete": method(z.strictObject({ name: z.string().min(1).max(128) }), (p) =>
      services.deleteManifest(p.name),
    ),
    "config.get": method(Empty, () => services.getConfig()),
    "config.apply": method(z.strictObject({ yaml: z.string().max(1024 * 1024) }), async (p) => {
      const r = await services.applyConfig(p.yaml);
      const now = configSinceBoot(services);
      for (const sec of r.applied) now.applied.add(sec);
      // each apply compares the file with what is in effect: its at_reboot is all that waits
      now.at_reboot = r.at_reboot;
      now.last_apply = { sha256: r.sha256, at: new Date().toISOString() };
      return r;
    }),
    "secret.set": method(
      z.strictObject({ name: z.string().min(1).max(64), value: z.string().min(1).max(65_536) }),
      (p) => services.setSecret(p.name, p.value),
    ),
    "agent.list": method(z.strictObject({ details: z.boolean().default(false) }), (p) => {
      const agents = services.list();
      if (!p.details) return { agents };
      // what a dashboard shows per row, in one call instead of one agent.status per agent
      return {
        agents: agents.map((a) => {
          const st = services.status(a.agent_id);
          return {
            ...a,
            usage: st.usage,
            inbox: st.inbox,
            lifecycle: st.lifecycle,
            restarts: st.restarts,
            failure: st.failure,
          };
        }),
      };
    }),
    "agent.status": method(z.strictObject({ agent_id: AgentId }), (p) => services.status(p.agent_id)),
    "agent.run": method(z.strictObject({ agent_id: AgentId, message: z.string().min(1) }), (p, ctx) =>
      services.run(p.agent_id, p.message, { onOutput: streamTo(ctx) }),
    ),
    "agent.spawn_and_run": method(manifestSource({ message: z.string().min(1) }), async (p, ctx) => {
      const spawned = await services.spawn({ manifest: p.manifest, name: p.name });
      return services.run(spawned.agent_id, p.message, { onOutput: streamTo(ctx) });
    }),
    "agent.send": method(z.strictObject({ agent_id: AgentId, message: z.string().min(1) }), (p, ctx) =>
      services.send(p.agent_id, p.message, {
        onOutput: streamTo(ctx),
        onDone: (r) => {
          if (!ctx.conn.closed) ctx.conn.notify("agent.done", r);
        },
      }),
    ),
    "agent.result": method(z.strictObject({ agent_id: AgentId, message_id: z.string().min(1).max(128) }), (p) =>
      services.result(p.agent_id, p.message_id),
    ),
    "agent.call": method(
      z.strictObject({
        agent_id: AgentId,
        method: z.string().min(1).max(128),
        params: z.record(z.string(), z.unknown()).default({}),
        timeout_ms: z.number().int().min(1).max(86_400_000).optional(),
      }),
      async (p, ctx) => {
        // the operator's call is cancelled when its connection goes away
        const result = await services.call(null, {
          to: p.agent_id,
          method: p.method,
          params: p.params,
          ...(p.timeout_ms === undefined ? {} : { timeoutMs: p.timeout_ms }),
          signal: ctx.conn.signal,
        });
        return { result };
      },
    ),
    "agent.restart": method(z.strictObject({ agent_id: AgentId }), (p) => services.restart(p.agent_id)),
    "agent.rewind": method(
      z.strictObject({
        agent_id: AgentId,
        to_seq: z.number().int().min(0).optional(),
        include_children: z.boolean().default(true),
        dry_run: z.boolean().default(false),
        force: z.boolean().default(false),
      }),
      (p) =>
        services.rewind(p.agent_id, {
          ...(p.to_seq === undefined ? {} : { toSeq: p.to_seq }),
          includeChildren: p.include_children,
          dryRun: p.dry_run,
          force: p.force,
        }),
    ),
    "tool.list": method(z.strictObject({ agent_id: AgentId.optional() }), (p) => ({
      tools: services.listTools(p.agent_id),
    })),
    "tool.invoke": method(
      z.strictObject({
        agent_id: AgentId,
        tool: z.string().min(1),
        input: z.record(z.string(), z.unknown()).default({}),
      }),
      async (p, ctx) => {
        const output = await services.invokeTool(p.agent_id, p.tool, p.input, {
          via: "rpc",
          onApprovalPending: (id) =>
            ctx.conn.notify("agent.output", {
              agent_id: p.agent_id,
              type: "approval_pending",
              approval_id: id,
              tool: p.tool,
            }),
        });
        return { output };
      },
      quickInvokeParams,
    ),
    "approval.list": method(Empty, () => ({ approvals: services.listApprovals() })),
    "approval.respond": method(
      z.strictObject({
        id: z.string().min(1),
        decision: z.enum(["approve", "deny"]),
        reason: z.string().max(4096).optional(),
      }),
      (p) => services.respondApproval(p.id, p.decision, p.reason),
    ),
    "audit.query": method(
      z.strictObject({
        agent_id: z.string().optional(),
        kind: z.string().optional(),
        since_seq: z.number().int().min(0).optional(),
        limit: z.number().int().min(1).max(1000).optional(),
      }),
      (p) => services.queryAudit(p),
    ),
    "audit.verify": method(Empty, () => services.verifyAudit()),
    "sched.status": method(Empty, () => services.schedulerStatus()),
    "memory.search": method(
      z.strictObject({
        query: z.string().min(1).max(2000),
        k: z.number().int().min(1).max(100).default(10),
        tags: z.array(z.string().min(1).max(64)).max(16).optional(),
        since: z.string().min(1).max(64).optional(),
        ...MemoryScope,
      }),
      (p) =>
        services.memorySearch(null, {
          query: p.query,
          k: p.k,
          ...(p.tags ? { tags: p.tags } : {}),
          ...(p.since === undefined ? {} : { since: parseSince(p.since) }),
          ...(p.agent_id === undefined ? {} : { agent_id: p.agent_id }),
          ...(p.namespace === undefined ? {} : { namespace: p.namespace }),
        }),
    ),
    "memory.list": method(
      z.strictObject({
        ...MemoryScope,
        kind: z.enum(["note", "archive"]).optional(),
        after_seq: z.number().int().min(0).optional(),
        limit: z.number().int().min(1).max(1000).default(100),
      }),
      (p) => services.memoryList(p),
    ),
    "memory.export": method(z.strictObject({ ...MemoryScope, after_seq: z.number().int().min(0).optional() }), (p) =>
      services.memoryExport(p),
    ),
    "memory.delete": method(z.strictObject({ id: z.string().min(1).max(64) }), (p) =>
      services.memoryDelete(null, p.id),
    ),
    "memory.namespaces": method(Empty, () => services.memoryNamespaces()),
    "events.subscribe": method(
      z.strictObject({
        topics: z
          .array(z.enum(["audit", "agent.output"]))
          .min(1)
          .max(2),
      }),
      (p, ctx) => {
        const topics = [...new Set(p.topics)];
        let subscribed = subscriptions.get(ctx.conn);
        if (!subscribed) subscriptions.set(ctx.conn, (subscribed = new Set<string>()));
        const fresh = topics.filter((t) => !subscribed.has(t));
        if (fresh.length > 0 && !ctx.conn.closed) {
          const off = services.watch(fresh, (e) => {
            if (!ctx.conn.closed) ctx.conn.notify(e.method, e.params);
          });
          // the connection's end ends its subscription
          ctx.conn.signal.addEventListener("abort", off, { once: true });
          for (const t of fresh) subscribed.add(t);
        }
        return { topics: [...subscribed] };
      },
    ),
    "system.stats": method(Empty, () => sys.stats()),
    "system.logs": method(
      z.strictObject({
        source: z.enum(["kernel", "init"]).default("kernel"),
        tail: z.number().int().min(0).max(LOG_TAIL_MAX).default(100),
        since: z.string().min(1).max(64).optional(),
        follow: z.boolean().default(false),
      }),
      (p, ctx) => {
        const since = p.since === undefined ? undefined : parseSince(p.since);
        const r = sys.logs.read(p.source, { tail: p.tail, ...(since === undefined ? {} : { since }) });
        // the lines logged from here on, as system.log notifications, until the connection closes
        if (p.follow && !ctx.conn.closed)
          sys.logs.follow(
            p.source,
            r.offset,
            (lines) => {
              for (const line of lines) if (!ctx.conn.closed) ctx.conn.notify("system.log", { source: p.source, line });
            },
            ctx.conn.signal,
          );
        return { lines: r.lines, truncated: r.truncated, ...(p.follow ? { following: true } : {}) };
      },
    ),
    "fs.list": method(z.strictObject({ path: z.string().min(1).max(4096).default("/") }), (p) =>
      services.filesList(p.path),
    ),
    "fs.read": method(
      z.strictObject({
        path: z.string().min(1).max(4096),
        offset: z.number().int().min(0).default(0),
        length: z.number().int().min(0).optional(),
      }),
      (p) => services.filesRead(p.path, { offset: p.offset, ...(p.length === undefined ? {} : { length: p.length }) }),
    ),
    "web.tokens": method(Empty, async (_p, ctx) => {
      // the tokens go to the console's operator (serial line, unix socket, stdio), never over the web
      if (ctx.conn.transport === "websocket")
        throw capabilityDenied("web.tokens", "the console", "the dashboard's tokens are given on the console only");
      if (!sys.web)
        // JSON-RPC's "method not available": this kernel serves no dashboard
        throw new KernelError(
          ErrorCode.MethodNotFound,
          "the dashboard is off: kernel.yaml web.listen (or --listen http:HOST:PORT) turns it on",
        );
      await services.audit({ kind: "web.tokens", agent_id: null, transport: ctx.conn.transport });
      return sys.web();
    }),
    "mcp.clients": method(Empty, () => ({ clients: mcpOf().clients() })),
    "mcp.servers": method(Empty, () => ({ servers: mcpOf().servers() })),
    "mcp.surface": method(z.strictObject({ as: McpClientName }), async (p) => {
      const surface = mcpOf().surface(p.as);
      try {
        return { ...(await surface.list()), features: surface.features() };
      } catch (e) {
        throw asKernelError(e);
      }
    }),
    "mcp.call": method(
      z.strictObject({
        as: McpClientName,
        name: z.string().min(1).max(200),
        arguments: z.record(z.string(), z.unknown()).default({}),
        /** the caller's id for this call: its mcp.progress notifications carry it, mcp.cancel names it */
        call_id: z.string().min(1).max(100).optional(),
        forward: McpForwardParams,
      }),
      async (p, ctx) => {
        const calls = mcpCalls(ctx.conn);
        if (p.call_id !== undefined && calls.has(p.call_id))
          throw invalidParams(`call_id "${p.call_id}" is already in flight on this connection`);
        const stop = new AbortController();
        if (p.call_id !== undefined) calls.set(p.call_id, stop);
        const tag = { as: p.as, name: p.name, ...(p.call_id === undefined ? {} : { call_id: p.call_id }) };
        try {
          return await mcpOf()
            .surface(p.as)
            .call(p.name, p.arguments, {
              signal: AbortSignal.any([ctx.conn.signal, stop.signal]),
              onProgress: (message) => {
                if (!ctx.conn.closed) ctx.conn.notify("mcp.progress", { ...tag, message });
              },
              // the bridge answers its client with a task from here on (kernel/mcp/surface.ts)
              onApprovalPending: (id) => {
                if (!ctx.conn.closed) ctx.conn.notify("mcp.progress", { ...tag, approval_id: id });
              },
              ...(p.forward
                ? {
                    forward: {
                      ...mcpForward(p.forward),
                      // an external server's own progress: its numbers, for the bridge's client
                      onProgress: (pr: { progress: number; total?: number; message?: string }) => {
                        if (!ctx.conn.closed) ctx.conn.notify("mcp.progress", { ...tag, ...pr });
                      },
                    },
                  }
                : {}),
            });
        } finally {
          if (p.call_id !== undefined) calls.delete(p.call_id);
        }
      },
    ),
    "mcp.cancel": method(z.strictObject({ call_id: z.string().min(1).max(100) }), (p, ctx) => {
      // the client gave up (notifications/cancelled, tasks/cancel): the call stops, its approval is withdrawn
      const c = mcpCalls(ctx.conn).get(p.call_id);
      c?.abort(new KernelError(ErrorCode.AgentNotRunnable, "the MCP client cancelled the call"));
      return { call_id: p.call_id, cancelled: c !== undefined };
    }),
    "mcp.read": method(
      z.strictObject({ as: McpClientName, uri: z.string().min(1).max(4096), forward: McpForwardParams }),
      (p) =>
        mcpOf()
          .surface(p.as)
          .read(p.uri, p.forward && mcpForward(p.forward))
          .catch((e) => Promise.reject(asKernelError(e))),
    ),
    "mcp.prompt": method(
      z.strictObject({
        as: McpClientName,
        name: z.string().min(1).max(200),
        arguments: z.record(z.string(), z.string()).default({}),
        forward: McpForwardParams,
      }),
      (p) =>
        mcpOf()
          .surface(p.as)
          .prompt(p.name, p.arguments, p.forward && mcpForward(p.forward))
          .catch((e) => Promise.reject(asKernelError(e))),
    ),
    "mcp.complete": method(z.strictObject({ as: McpClientName, params: z.record(z.string(), z.unknown()) }), (p) =>
      mcpOf()
        .surface(p.as)
        .complete(p.params)
        .catch((e) => Promise.reject(asKernelError(e))),
    ),
    "system.ping": method(Empty, () => ({ pong: true, uptime_ms: Date.now() - sys.startedAt })),
    "system.info": method(Empty, () => {
      const counts = services.systemCounts();
      return {
        version: sys.version,
        boot_id: sys.bootId,
        mode: sys.mode,
        uptime_ms: Date.now() - sys.startedAt,
        pid: process.pid,
        agents: counts.agents,
        pending_approvals: counts.pending_approvals,
        audit_head: services.auditHead(),
        // non-null while the audit log cannot be written (a full data disk): reads answer, changes fail
        degraded: services.auditDegraded(),
        tools: counts.tools,
        config: configInEffect(sys.config, configSinceBoot(services)),
        ...(sys.inference ? { inference: sys.inference() } : {}),
        ...(sys.boot === undefined ? {} : { boot: sys.boot }),
        ...(sys.upgrade ? { upgrade: sys.upgrade.info() } : {}),
      };
    }),
    "system.upgrade": method(UpgradeParams, async (p, ctx) => {
      const u = upgraderOf(sys);
      const r = p.url !== undefined ? await u.fromUrl(p.url, p.sha256) : await u.chunk(p as Required<typeof p>);
      if ("received" in r) return r;
      if (p.reboot) ctx.afterReply(() => sys.shutdown("reboot"));
      return { ...r, rebooting: p.reboot };
    }),
    "system.rollback": method(z.strictObject({ reboot: z.boolean().default(true) }), async (p, ctx) => {
      const r = await upgraderOf(sys).rollback();
      if (p.reboot) ctx.afterReply(() => sys.shutdown("reboot"));
      return { ...r, rebooting: p.reboot };
    }),
    "system.shutdown": method(
      z.strictObject({ action: z.enum(["poweroff", "reboot"]).default("poweroff") }),
      async (p, ctx) => {
        await services.audit({ kind: "system.shutdown", agent_id: null, action: p.action });
        // the caller gets its answer before the listeners close
        ctx.afterReply(() => sys.shutdown(p.action));
        return { ok: true };
      },
    ),
  } satisfies Record<MethodName, Method>;
}

/** the table a dashboard viewer session gets: the read-only methods as they are, every other one refused (-32001) */
export function viewerTable(table: MethodTable): MethodTable {
  const out: MethodTable = {};
  for (const [name, m] of Object.entries(table)) {
    out[name] = READ_ONLY_METHODS.has(name as MethodName)
      ? m
      : {
          params: z.unknown(),
          handler: () => {
            throw capabilityDenied(name, "operator", `the viewer role is read-only: ${name} needs an operator session`);
          },
        };
  }
  return out;
}
