// External MCP servers (kernel.yaml mcp.servers, docs/mcp.md): the kernel
// connects to each with the official v2 client SDK (2026-07-28 through
// server/discover, falling back to the 2025-11-25 initialize per the spec's
// rule), and registers each of its tools as the kernel tool mcp.SERVER.TOOL.
// An agent reaches one only through AgentServices.invokeTool, like any tool:
// `tool: mcp.S.T` or `tool: mcp.S.*` checked first (the server is never
// contacted for a denied call), the write-ahead tool.call durable, then the
// call, size-capped and time-limited. A server that goes away is reported
// (mcp.server) and reconnected with backoff; its tools stay registered, and
// a call meanwhile is a clear error naming it.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { Logger } from "pino";
import { z } from "zod";
import type { Client } from "@modelcontextprotocol/client";
import type { McpConfig, McpServerConfig } from "../config.ts";
import { ErrorCode, KernelError } from "../errors.ts";
import { parseDuration } from "../manifest/index.ts";
import { MCP_TOOL_NAME } from "../caps/index.ts";
import type { AuditEventInput, McpForward } from "../services.ts";
import type { Tool, ToolContext } from "../tools/index.ts";

/** where the kernel's tools live: the registry adds and removes a server's tools */
export interface ToolSink {
  register(t: Tool): void;
  unregister(name: string): void;
}

export interface McpServersOptions {
  config: McpConfig;
  configDir: string;
  mode: "host" | "init";
  version: string;
  tools: ToolSink;
  audit(e: AuditEventInput): Promise<unknown>;
  registerSecret(s: string): void;
  log: Logger;
  /** backoff between reconnects (tests shorten it) */
  backoffMs?: { base: number; max: number };
}

export type ServerState = "connecting" | "connected" | "down";

export interface ServerStatus {
  name: string;
  transport: "http" | "stdio";
  target: string;
  state: ServerState;
  error?: string;
  /** the kernel names of its tools */
  tools: string[];
  /** the negotiated protocol revision */
  protocol?: string;
  since: string;
  /** when down: the next reconnect attempt */
  retry_at?: string;
}

/** an MCP tool as tools/list gives it */
interface WireTool {
  name: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

/**
 * The client SDK, loaded at the first connection to a configured server: a
 * kernel.yaml without mcp.servers never evaluates it (about 19 MiB of idle
 * RSS in the compiled kernel, bench/memory.ts). A load that fails marks the
 * server down with the reason, as a failed connection does.
 */
type ClientSdk = typeof import("@modelcontextprotocol/client") & {
  StdioClientTransport: typeof import("@modelcontextprotocol/client/stdio").StdioClientTransport;
};
let clientSdk: ClientSdk | null = null;
let clientSdkLoad: Promise<ClientSdk> | null = null;
function loadClientSdk(): Promise<ClientSdk> {
  clientSdkLoad ??= Promise.all([
    import("@modelcontextprotocol/client"),
    import("@modelcontextprotocol/client/stdio"),
  ]).then(
    ([sdk, stdio]) => (clientSdk = { ...sdk, StdioClientTransport: stdio.StdioClientTransport }),
    (e) => {
      clientSdkLoad = null;
      throw new Error(`the MCP client SDK did not load: ${messageOf(e)}`);
    },
  );
  return clientSdkLoad;
}

/** at most this many tools per server are registered */
const MAX_TOOLS = 1000;

class ServerConn {
  client: Client | null = null;
  state: ServerState = "connecting";
  error: string | undefined;
  since = new Date().toISOString();
  tools = new Map<string, WireTool>();
  protocol: string | undefined;
  attempts = 0;
  retryAt: number | null = null;
  timer: ReturnType<typeof setTimeout> | null = null;
  connecting: Promise<void> | null = null;
  closed = false;
  /** a call failing with this generation marks it down once */
  generation = 0;

  constructor(
    readonly name: string,
    readonly cfg: McpServerConfig,
  ) {}

  get transport(): "http" | "stdio" {
    return this.cfg.url !== undefined ? "http" : "stdio";
  }
  get target(): string {
    return this.cfg.url ?? this.cfg.command!.join(" ");
  }
  get timeoutMs(): number {
    return parseDuration(this.cfg.timeout)!;
  }
}

/** a JSON Schema as a zod validator; one zod cannot convert accepts any object (the server validates too) */
function inputValidator(schema: Record<string, unknown>): z.ZodType {
  try {
    return z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch {
    return z.record(z.string(), z.unknown());
  }
}

function messageOf(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}

/** the server did not answer at all (as opposed to answering with an error) */
function isConnectionError(e: unknown): boolean {
  const m = messageOf(e).toLowerCase();
  const code = (e as { code?: unknown })?.code;
  return (
    e instanceof TypeError ||
    code === "ECONNREFUSED" ||
    code === "ConnectionRefused" ||
    /connect|closed|refused|unable to|socket|fetch failed|network|econn/.test(m)
  );
}

/**
 * What an MCP client's request carries on to an external server (2026-07-28
 * only): its declared capabilities, and a multi-round-trip retry's
 * inputResponses and requestState, so the server can ask that client for
 * input (an input_required result goes back to it as it is).
 */
export function forwardedParams(forward: McpForward | undefined, modern: boolean): Record<string, unknown> {
  if (!forward || !modern) return {};
  return {
    ...(forward.clientCapabilities !== undefined
      ? { _meta: { "io.modelcontextprotocol/clientCapabilities": forward.clientCapabilities } }
      : {}),
    ...(forward.inputResponses !== undefined ? { inputResponses: forward.inputResponses } : {}),
    ...(forward.requestState !== undefined ? { requestState: forward.requestState } : {}),
  };
}

export class McpServers {
  private readonly conns = new Map<string, ServerConn>();
  private readonly base: number;
  private readonly max: number;

  constructor(private readonly opts: McpServersOptions) {
    this.base = opts.backoffMs?.base ?? 1000;
    this.max = opts.backoffMs?.max ?? 60_000;
    for (const [name, cfg] of Object.entries(opts.config.servers)) this.conns.set(name, new ServerConn(name, cfg));
  }

  /** the configured server names (a manifest may grant mcp.NAME.* before NAME answered) */
  names(): string[] {
    return [...this.conns.keys()];
  }

  /** connect to every server in the background; boot does not wait for them */
  start(): void {
    for (const c of this.conns.values()) void this.connect(c);
  }

  /** resolves once every server has been tried once (connected or down) */
  async settled(): Promise<void> {
    await Promise.all([...this.conns.values()].map((c) => c.connecting ?? Promise.resolve()));
  }

  status(): ServerStatus[] {
    return [...this.conns.values()].map((c) => ({
      name: c.name,
      transport: c.transport,
      target: c.target,
      state: c.state,
      ...(c.error === undefined ? {} : { error: c.error }),
      tools: [...c.tools.keys()].map((t) => `mcp.${c.name}.${t}`),
      ...(c.protocol === undefined ? {} : { protocol: c.protocol }),
      since: c.since,
      ...(c.state === "down" && c.retryAt !== null ? { retry_at: new Date(c.retryAt).toISOString() } : {}),
    }));
  }

  /** the connected client of a server (an upstream gateway principal reads its resources and prompts) */
  clientOf(server: string): Client {
    const c = this.conns.get(server);
    if (!c)
      throw new KernelError(ErrorCode.InvalidParams, `no MCP server named "${server}" in kernel.yaml mcp.servers`);
    if (c.state !== "connected" || !c.client) throw this.unreachable(c);
    return c.client;
  }

  /** the tools of a server as it lists them (wire shapes), for an upstream gateway principal */
  wireTools(server: string): WireTool[] {
    return [...(this.conns.get(server)?.tools.values() ?? [])];
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.conns.values()].map(async (c) => {
        c.closed = true;
        if (c.timer) clearTimeout(c.timer);
        await c.client?.close().catch(() => {});
      }),
    );
  }

  private unreachable(c: ServerConn): KernelError {
    const retry =
      c.retryAt !== null
        ? `; the kernel reconnects in ${Math.max(0, Math.ceil((c.retryAt - Date.now()) / 1000))} s`
        : "";
    const why = c.state === "connecting" ? "still connecting" : (c.error ?? "down");
    return new KernelError(ErrorCode.InternalError, `MCP server "${c.name}" is unreachable: ${why}${retry}`, {
      server: c.name,
      state: c.state,
    });
  }

  private headers(c: ServerConn): Record<string, string> {
    if (!c.cfg.token_file) return {};
    const file = isAbsolute(c.cfg.token_file) ? c.cfg.token_file : join(this.opts.configDir, c.cfg.token_file);
    const token = readFileSync(file, "utf8").trim();
    if (!token) throw new Error(`the token file ${c.cfg.token_file} is empty`);
    this.opts.registerSecret(token);
    return { authorization: `Bearer ${token}` };
  }

  private connect(c: ServerConn): Promise<void> {
    if (c.connecting) return c.connecting;
    c.connecting = this.tryConnect(c).finally(() => {
      c.connecting = null;
    });
    return c.connecting;
  }

  private async tryConnect(c: ServerConn): Promise<void> {
    if (c.closed) return;
    if (c.transport === "stdio" && this.opts.mode === "init") {
      this.markDown(c, "a stdio server (command:) needs host mode: the appliance has no programs to run", false);
      return;
    }
    c.retryAt = null;
    let client: Client | null = null;
    try {
      const { Client, StreamableHTTPClientTransport, StdioClientTransport } = await loadClientSdk();
      if (c.closed) return;
      client = new Client(
        { name: "aaos", version: this.opts.version },
        {
          versionNegotiation: { mode: "auto" },
          listChanged: {
            tools: {
              onChanged: (err, tools) => {
                if (err || !tools) return;
                if (this.conns.get(c.name)?.client === client) this.setTools(c, tools as WireTool[], true);
              },
            },
          },
        },
      );
      const transport =
        c.transport === "http"
          ? new StreamableHTTPClientTransport(new URL(c.cfg.url!), { requestInit: { headers: this.headers(c) } })
          : new StdioClientTransport({
              command: c.cfg.command![0]!,
              args: c.cfg.command!.slice(1),
              stderr: "ignore",
            });
      await client.connect(transport, { timeout: c.timeoutMs });
      const { tools } = await client.listTools(undefined, { timeout: c.timeoutMs, cache: "refresh" } as never);
      if (c.closed) {
        await client.close().catch(() => {});
        return;
      }
      const old = c.client;
      c.client = client;
      c.generation++;
      c.protocol = client.getNegotiatedProtocolVersion();
      client.onclose = () => {
        if (c.client === client && !c.closed) this.markDown(c, "the connection closed");
      };
      this.setTools(c, tools as WireTool[], c.state === "connected");
      const was = c.state;
      c.state = "connected";
      c.error = undefined;
      c.attempts = 0;
      c.since = new Date().toISOString();
      if (old && old !== client) await old.close().catch(() => {});
      if (was !== "connected")
        await this.opts
          .audit({
            kind: "mcp.server",
            agent_id: null,
            server: c.name,
            state: "connected",
            protocol: c.protocol ?? null,
            tools: c.tools.size,
          })
          .catch((err) => this.opts.log.error({ err, server: c.name }, "mcp.server was not recorded"));
      this.opts.log.info({ server: c.name, protocol: c.protocol, tools: c.tools.size }, "MCP server connected");
    } catch (e) {
      await client?.close().catch(() => {});
      this.markDown(c, messageOf(e));
    }
  }

  /** down: audited once per outage; retried with backoff unless it cannot work (retry false) */
  private markDown(c: ServerConn, error: string, retry = true): void {
    const was = c.state;
    c.state = "down";
    c.error = error;
    c.client = null;
    if (was !== "down") {
      c.since = new Date().toISOString();
      this.opts.log.warn({ server: c.name, error }, "MCP server is down");
      void this.opts
        .audit({ kind: "mcp.server", agent_id: null, server: c.name, state: "down", error })
        .catch((err) => this.opts.log.error({ err, server: c.name }, "mcp.server was not recorded"));
    }
    if (!retry || c.closed) return;
    const delay = Math.min(this.max, this.base * 2 ** Math.min(c.attempts, 16));
    c.attempts++;
    c.retryAt = Date.now() + delay;
    if (c.timer) clearTimeout(c.timer);
    c.timer = setTimeout(() => {
      c.timer = null;
      void this.connect(c);
    }, delay);
    c.timer.unref?.();
  }

  /** the server's tools as kernel tools mcp.S.T: new ones registered, gone ones removed (audited when it changes) */
  private setTools(c: ServerConn, list: WireTool[], audit: boolean): void {
    const next = new Map<string, WireTool>();
    for (const t of list) {
      if (typeof t?.name !== "string" || !MCP_TOOL_NAME.test(t.name)) {
        this.opts.log.warn(
          { server: c.name, tool: String(t?.name).slice(0, 100) },
          "an MCP tool name the kernel cannot use: skipped",
        );
        continue;
      }
      if (next.size >= MAX_TOOLS) break;
      next.set(t.name, t);
    }
    const added = [...next.keys()].filter((n) => !c.tools.has(n));
    const removed = [...c.tools.keys()].filter((n) => !next.has(n));
    for (const n of removed) this.opts.tools.unregister(`mcp.${c.name}.${n}`);
    for (const t of next.values()) this.opts.tools.register(this.kernelTool(c, t));
    c.tools = next;
    if (audit && (added.length > 0 || removed.length > 0)) {
      void this.opts
        .audit({ kind: "mcp.tools", agent_id: null, server: c.name, added, removed })
        .catch((err) => this.opts.log.error({ err, server: c.name }, "mcp.tools was not recorded"));
    }
  }

  private kernelTool(c: ServerConn, t: WireTool): Tool {
    const name = `mcp.${c.name}.${t.name}`;
    const schema = t.inputSchema && typeof t.inputSchema === "object" ? t.inputSchema : { type: "object" };
    const destructive = t.annotations?.destructiveHint === true && t.annotations?.readOnlyHint !== true;
    return {
      name,
      description: t.description ?? "",
      effect: "irreversible",
      input: inputValidator(schema),
      inputSchema: schema,
      ...(t.annotations ? { annotations: t.annotations } : {}),
      alwaysApprove: this.opts.config.approve_destructive && destructive,
      auditFields: { server: c.name, mcp_tool: t.name },
      run: (ctx, input) => this.call(c, t.name, input as Record<string, unknown>, ctx),
    };
  }

  private async call(
    c: ServerConn,
    tool: string,
    args: Record<string, unknown>,
    ctx: Pick<ToolContext, "signal" | "record" | "forward">,
  ): Promise<unknown> {
    const { signal, record, forward } = ctx;
    if (c.state !== "connected" || !c.client) {
      if (c.state === "down" && c.retryAt === null && c.transport === "http") void this.connect(c);
      throw this.unreachable(c);
    }
    const client = c.client;
    const generation = c.generation;
    let result: Record<string, unknown>;
    // an MCP client's call through an upstream gateway: its capabilities and a retry's answers go on to the server
    const modern = c.protocol === "2026-07-28";
    const params = { name: tool, arguments: args, ...forwardedParams(forward, modern) };
    const onprogress = forward?.onProgress;
    try {
      result = (await client.callTool(
        params as never,
        {
          timeout: c.timeoutMs,
          signal,
          // an input_required result goes back to the MCP client that can answer it; an agent's call has none
          allowInputRequired: forward !== undefined && modern,
          ...(onprogress
            ? { onprogress: (p: { progress: number; total?: number; message?: string }) => onprogress(p) }
            : {}),
        } as never,
      )) as Record<string, unknown>;
    } catch (e) {
      if (signal.aborted)
        throw new KernelError(ErrorCode.AgentNotRunnable, `the call to mcp.${c.name}.${tool} was cancelled`);
      const m = messageOf(e);
      // a connected server: the SDK is loaded
      const { SdkError, SdkErrorCode, ProtocolError } = clientSdk!;
      if (e instanceof SdkError ? e.code === SdkErrorCode.RequestTimeout : /timed? ?out/i.test(m))
        throw new KernelError(ErrorCode.TimedOut, `mcp.${c.name}.${tool} did not answer within ${c.cfg.timeout}`, {
          server: c.name,
        });
      if (isConnectionError(e)) {
        if (c.generation === generation) this.markDown(c, m);
        throw this.unreachable(c);
      }
      // the server's own JSON-RPC error, kept for an MCP client the kernel passes it on to
      const code = (e as { code?: unknown })?.code;
      throw new KernelError(ErrorCode.InternalError, `mcp.${c.name}.${tool} failed: ${m}`, {
        server: c.name,
        ...(e instanceof ProtocolError && typeof code === "number"
          ? { mcp_error: { code, message: e.message, data: (e as { data?: unknown }).data ?? null } }
          : {}),
      });
    }
    const text = JSON.stringify(result);
    const bytes = Buffer.byteLength(text);
    record({ server: c.name, result_sha256: createHash("sha256").update(text).digest("hex"), bytes });
    if (bytes > c.cfg.max_result_bytes)
      throw new KernelError(
        ErrorCode.InternalError,
        `mcp.${c.name}.${tool} answered ${bytes} bytes, more than max_result_bytes (${c.cfg.max_result_bytes})`,
        { server: c.name, bytes },
      );
    const { _meta: _ignored, ...rest } = result;
    if (rest.resultType === "input_required") return rest;
    if (rest.isError === true) {
      const said = Array.isArray(rest.content)
        ? (rest.content as { type?: string; text?: string }[])
            .filter((b) => b?.type === "text")
            .map((b) => b.text)
            .join("\n")
        : "";
      throw new KernelError(
        ErrorCode.InternalError,
        `mcp.${c.name}.${tool} reported an error: ${said || "(no text)"}`,
        {
          server: c.name,
          result: rest,
        },
      );
    }
    return rest;
  }
}
