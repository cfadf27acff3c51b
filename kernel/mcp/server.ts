// The kernel as an MCP server (docs/mcp.md). Each kernel.yaml mcp.clients
// entry is a principal: an agent spawned from its manifest, whose
// capabilities are exactly what the client may do. Its surface (Surface,
// kernel/mcp/surface.ts) is built on AgentServices alone: its tools
// (invokeTool, via "mcp": capability-checked, approval-gated and audited
// like an agent's own calls), the served methods of agents it may call,
// agent_run for the manifests it may spawn, and its own status and audit
// trail as resources. /mcp on the HTTP listener serves it with the v2 SDK's
// createMcpHandler (2026-07-28 stateless, 2025-11-25 stateless fallback),
// after the bearer token has named the principal and Host and Origin have
// been checked; the RPC line serves the same surface to `aaosctl mcp`.
import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { Logger } from "pino";
import type { McpHttpHandler, ProtocolError } from "@modelcontextprotocol/server";
import type { McpConfig } from "../config.ts";
import { ErrorCode, KernelError } from "../errors.ts";
import type { AgentServices, McpForward, ToolDescription } from "../services.ts";
import { forwardedParams, type McpServers } from "./client.ts";
import { runsAnAgent } from "./names.ts";
import type { Surface, TaskStore } from "./surface.ts";

/**
 * The server SDK and the surface builder (kernel/mcp/surface.ts), loaded at
 * the first /mcp request or the first MCP protocol error: a kernel that is
 * never asked over MCP does not evaluate them (bench/memory.ts, idle RSS).
 */
type ServerSide = typeof import("./surface.ts") & { sdk: typeof import("@modelcontextprotocol/server") };
let serverSideLoad: Promise<ServerSide> | null = null;
function loadServerSide(): Promise<ServerSide> {
  serverSideLoad ??= Promise.all([import("@modelcontextprotocol/server"), import("./surface.ts")]).then(
    ([sdk, surface]) => ({ ...surface, sdk }),
    (e) => {
      serverSideLoad = null;
      throw new Error(`the MCP server SDK did not load: ${(e as Error)?.message ?? e}`);
    },
  );
  return serverSideLoad;
}

/** the SDK's ProtocolError (what the SDK answers as that JSON-RPC error) */
async function protocolError(code: number, message: string, data?: unknown): Promise<ProtocolError> {
  return new (await loadServerSide()).sdk.ProtocolError(code, message, data);
}

export interface McpServiceOptions {
  services: AgentServices;
  servers: McpServers;
  config: McpConfig;
  configDir: string;
  version: string;
  log: Logger;
}

export interface McpClientInfo {
  name: string;
  manifest: string;
  /** the principal's agent (null until spawned, or when its manifest cannot be spawned) */
  agent_id: string | null;
  /** reachable over HTTP: it has a token file */
  http: boolean;
  /** the principal of requests without a token, from loopback only */
  anonymous: boolean;
  upstream: string | null;
  error?: string;
}

type CallOpts = Parameters<Surface["call"]>[2];

/** an upstream server's JSON-RPC error, passed on to the gateway's client as the same error */
class UpstreamError extends Error {
  constructor(readonly upstream: { code: number; message: string; data: unknown }) {
    super(upstream.message);
  }
  /** as the SDK's error; the SDK's message carries its own "MCP error CODE: " prefix */
  protocol(): Promise<ProtocolError> {
    const e = this.upstream;
    return protocolError(e.code, e.message.replace(/^MCP error -?\d+: /, ""), e.data ?? undefined);
  }
}

const SELF_STATUS = "aaos://self/status";
const SELF_AUDIT = "aaos://self/audit";
const AGENT_STATUS = /^aaos:\/\/agents\/([^/]+)\/status$/;
/** a served method as an MCP tool: AGENT.METHOD (a kernel tool has no dot; mcp.S.T has two) */
const SERVED = /^([a-z0-9][a-z0-9_-]{0,62})\.([a-z][a-z0-9_]{0,62})$/;
/** the audit records aaos://self/audit shows */
const AUDIT_TAIL = 200;

function text(value: unknown): { type: "text"; text: string } {
  return { type: "text", text: typeof value === "string" ? value : JSON.stringify(value, null, 2) };
}

/** a kernel error as an MCP tool error: the client's model can read it and try something else */
function toolError(e: unknown): { isError: true; content: { type: "text"; text: string }[] } {
  const code = (e as { code?: unknown })?.code;
  const message = (e as Error)?.message ?? String(e);
  return { isError: true, content: [text(typeof code === "number" ? `[${code}] ${message}` : message)] };
}

function annotationsOf(t: ToolDescription): Record<string, unknown> {
  if (t.annotations) return t.annotations;
  return t.effect === "none"
    ? { readOnlyHint: true, destructiveHint: false }
    : { readOnlyHint: false, destructiveHint: t.effect === "irreversible" };
}

/** an MCP tool's inputSchema must be an object schema */
function objectSchema(s: Record<string, unknown> | object): Record<string, unknown> {
  const schema = s as Record<string, unknown>;
  return schema.type === "object" ? schema : { properties: {}, ...schema, type: "object" };
}

export class McpService {
  private readonly principals = new Map<
    string,
    { agentId: string | null; spawning: Promise<string> | null; error?: string }
  >();
  private tokens = new Map<string, Buffer>();
  private tokensReadAt = 0;
  private handler: McpHttpHandler | null = null;

  constructor(private readonly opts: McpServiceOptions) {
    for (const name of Object.keys(opts.config.clients)) this.principals.set(name, { agentId: null, spawning: null });
  }

  /** at boot: every principal's agent (a manifest that cannot be spawned is logged and retried at its first request) */
  async start(): Promise<void> {
    await Promise.all(
      [...this.principals.keys()].map((n) =>
        this.principal(n).catch((err) =>
          this.opts.log.error({ err, client: n }, "an MCP client's principal was not spawned"),
        ),
      ),
    );
  }

  private readonly taskStores = new Map<string, TaskStore>();

  /** a principal's tasks (an approval-waiting call answered as a task), kept across HTTP requests */
  private tasksOf(name: string, Store: typeof TaskStore): TaskStore {
    let t = this.taskStores.get(name);
    if (!t) this.taskStores.set(name, (t = new Store()));
    return t;
  }

  /** the external servers (kernel.yaml mcp.servers) and their state */
  servers() {
    return this.opts.servers.status();
  }

  clients(): McpClientInfo[] {
    return Object.entries(this.opts.config.clients).map(([name, c]) => {
      const p = this.principals.get(name)!;
      return {
        name,
        manifest: c.manifest,
        agent_id: p.agentId,
        http: c.token_file !== undefined,
        anonymous: this.opts.config.anonymous === name,
        upstream: c.upstream ?? null,
        ...(p.error ? { error: p.error } : {}),
      };
    });
  }

  private known(name: string) {
    const c = this.opts.config.clients[name];
    if (!c) {
      const names = Object.keys(this.opts.config.clients);
      throw new KernelError(
        ErrorCode.InvalidParams,
        `no MCP client named "${name}" in kernel.yaml mcp.clients (${names.length ? `known: ${names.join(", ")}` : "none is configured"})`,
      );
    }
    return c;
  }

  /** the principal's agent id: spawned at boot, and again when it was stopped */
  async principal(name: string): Promise<string> {
    const c = this.known(name);
    const p = this.principals.get(name)!;
    if (p.agentId !== null) {
      try {
        if (this.opts.services.status(p.agentId).state !== "stopped") return p.agentId;
      } catch {
        // forgotten: spawn again
      }
    }
    if (p.spawning) return p.spawning;
    p.spawning = (async () => {
      try {
        const r = await this.opts.services.spawn({ name: c.manifest });
        p.agentId = r.agent_id;
        delete p.error;
        this.opts.log.info({ client: name, agent_id: r.agent_id }, "MCP client principal spawned");
        return r.agent_id;
      } catch (e) {
        p.error = (e as Error).message;
        throw e;
      } finally {
        p.spawning = null;
      }
    })();
    return p.spawning;
  }

  /** the surface of one client: the same for HTTP and for aaosctl mcp */
  surface(name: string): Surface {
    const c = this.known(name);
    const s = this.opts.services;
    const servers = this.opts.servers;
    const upstream = c.upstream ?? null;
    const self = this;

    async function list() {
      const id = await self.principal(name);
      const held = s.listTools(id);
      const tools: any[] = [];
      const upstreamTools = upstream ? servers.wireTools(upstream) : [];
      const heldNames = new Set(held.map((t) => t.name));
      for (const t of held) {
        // an upstream's tools are shown under their own names (below)
        if (upstream && t.name.startsWith(`mcp.${upstream}.`)) continue;
        tools.push({
          name: t.name,
          description: t.description,
          inputSchema: objectSchema(t.input_schema),
          annotations: annotationsOf(t),
        });
      }
      for (const t of upstreamTools) if (heldNames.has(`mcp.${upstream}.${t.name}`)) tools.push(t);
      const reach = s.reachable(id);
      for (const m of reach.methods) {
        tools.push({
          name: `${m.agent}.${m.method}`,
          description: m.description || `${m.method}, served by the agent ${m.agent}`,
          inputSchema: objectSchema(m.params),
          ...(m.result && (m.result as { type?: unknown }).type === "object" ? { outputSchema: m.result } : {}),
          annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: false },
        });
      }
      if (reach.spawn_child.length > 0) {
        tools.push({
          name: "agent_run",
          description: `Run an agent once with a message and answer its reply. Agents: ${reach.spawn_child.join(", ")}.`,
          inputSchema: {
            type: "object",
            properties: {
              agent: { type: "string", enum: reach.spawn_child, description: "the manifest to spawn" },
              message: { type: "string", description: "what the agent is asked" },
            },
            required: ["agent", "message"],
            additionalProperties: false,
          },
          annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: true },
        });
      }
      const resources: any[] = [
        { uri: SELF_STATUS, name: "status", title: "This principal's agent status", mimeType: "application/json" },
        { uri: SELF_AUDIT, name: "audit", title: "This principal's audit trail", mimeType: "application/json" },
      ];
      const reachableAgents = new Set([...reach.methods.map((m) => m.agent_id), ...s.status(id).children]);
      for (const a of reachableAgents) {
        resources.push({
          uri: `aaos://agents/${a}/status`,
          name: `agent ${a}`,
          mimeType: "application/json",
        });
      }
      let resourceTemplates: any[] = [];
      let prompts: any[] = [];
      if (upstream) {
        const client = servers.clientOf(upstream);
        const caps = client.getServerCapabilities() ?? {};
        if (caps.resources) {
          resources.push(...(await client.listResources()).resources);
          resourceTemplates = (await client.listResourceTemplates()).resourceTemplates;
        }
        if (caps.prompts) prompts = (await client.listPrompts()).prompts;
      }
      return { tools, resources, resourceTemplates, prompts, upstream: upstream !== null };
    }

    async function invoke(id: string, tool: string, args: Record<string, unknown>, opts: CallOpts) {
      return s.invokeTool(id, tool, args, {
        via: "mcp",
        client: name,
        ...(opts.signal ? { signal: opts.signal } : {}),
        // an external server's tool gets what the client's call carries (its capabilities, a retry's answers)
        ...(opts.forward && tool.startsWith("mcp.") ? { forward: opts.forward } : {}),
        onApprovalPending: (approvalId) => {
          opts.onProgress?.(`waiting for approval ${approvalId}: the operator decides with approval.respond`);
          opts.onApprovalPending?.(approvalId);
        },
      });
    }

    async function call(tool: string, args: Record<string, unknown>, opts: CallOpts): Promise<any> {
      const id = await self.principal(name);
      try {
        if (upstream && servers.wireTools(upstream).some((t) => t.name === tool)) {
          try {
            return await invoke(id, `mcp.${upstream}.${tool}`, args, opts);
          } catch (e) {
            const data = (e as KernelError)?.data as
              { result?: unknown; mcp_error?: { code: number; message: string; data: unknown } } | undefined;
            // the upstream's own error result, as it gave it; its JSON-RPC error stays one
            if (data?.result) return data.result;
            if (data?.mcp_error) throw new UpstreamError(data.mcp_error);
            throw e;
          }
        }
        if (tool === "agent_run") return await agentRun(id, args, opts);
        const served = SERVED.exec(tool);
        if (served) {
          const m = s.reachable(id).methods.find((x) => x.agent === served[1] && x.method === served[2]);
          if (m) {
            const result = await s.call(id, {
              to: m.agent,
              method: m.method,
              params: args,
              ...(opts.signal ? { signal: opts.signal } : {}),
            });
            const structured = result !== null && typeof result === "object" && !Array.isArray(result);
            return { content: [text(result)], ...(structured ? { structuredContent: result } : {}) };
          }
        }
        const output = await invoke(id, tool, args, opts);
        // an external server's result is already an MCP result
        if (tool.startsWith("mcp.") && output && typeof output === "object" && "content" in output) return output;
        return { content: [text(output)] };
      } catch (e) {
        if (e instanceof UpstreamError) throw await e.protocol();
        return toolError(e);
      }
    }

    async function agentRun(id: string, args: Record<string, unknown>, opts: CallOpts) {
      const agent = args.agent;
      const message = args.message;
      if (typeof agent !== "string" || typeof message !== "string" || message.length === 0)
        throw new KernelError(ErrorCode.InvalidParams, 'agent_run needs {"agent": NAME, "message": TEXT}');
      const child = await s.spawn({ name: agent }, id);
      const stop = () => void s.stop(child.agent_id).catch(() => {});
      opts.signal?.addEventListener("abort", stop, { once: true });
      try {
        opts.onProgress?.(`agent ${child.agent_id} (${agent}) is running`);
        const r = await s.run(child.agent_id, message, {
          onOutput: (ev) => {
            if (ev.type !== "approval_pending") return;
            opts.onProgress?.(`waiting for approval ${ev.approval_id} (${ev.tool}): the operator decides`);
            opts.onApprovalPending?.(ev.approval_id);
          },
        });
        return {
          content: [text(r.response || `(no text; stop reason ${r.stop_reason})`)],
          structuredContent: {
            agent_id: r.agent_id,
            response: r.response,
            stop_reason: r.stop_reason,
            tool_calls: r.tool_calls.length,
          },
        };
      } finally {
        opts.signal?.removeEventListener("abort", stop);
        if (s.status(child.agent_id).lifecycle !== "persistent") await s.stop(child.agent_id).catch(() => {});
      }
    }

    async function read(uri: string, forward?: McpForward): Promise<any> {
      const id = await self.principal(name);
      const json = (value: unknown) => ({
        contents: [{ uri, mimeType: "application/json", text: JSON.stringify(value, null, 2) }],
      });
      if (uri === SELF_STATUS) return json(s.status(id));
      if (uri === SELF_AUDIT) {
        const head = s.auditHead().seq;
        const { events } = await s.queryAudit({ agent_id: id, since_seq: Math.max(1, head - 20_000), limit: 1000 });
        return json({ agent_id: id, events: events.slice(-AUDIT_TAIL) });
      }
      const m = AGENT_STATUS.exec(uri);
      if (m) {
        const reach = s.reachable(id);
        if (reach.methods.some((x) => x.agent_id === m[1]) || s.status(id).children.includes(m[1]!))
          return json(s.status(m[1]!));
      }
      if (upstream && !uri.startsWith("aaos://")) {
        const c = servers.clientOf(upstream);
        const modern = c.getNegotiatedProtocolVersion() === "2026-07-28";
        return c.readResource(
          { uri, ...forwardedParams(forward, modern) } as never,
          {
            allowInputRequired: forward !== undefined && modern,
          } as never,
        );
      }
      throw await protocolError(-32602, `Resource not found: ${uri}`, { uri });
    }

    return {
      features: () => ({ prompts: upstream !== null, completions: upstream !== null }),
      // an agent's run: agent_run, or a served method (AGENT.METHOD) the principal may call
      long: runsAnAgent,
      list,
      call,
      read,
      prompt: async (n, args, forward) => {
        if (!upstream) throw await protocolError(-32602, `no prompt named "${n}"`);
        const c = servers.clientOf(upstream);
        const modern = c.getNegotiatedProtocolVersion() === "2026-07-28";
        return c.getPrompt(
          { name: n, arguments: args, ...forwardedParams(forward, modern) } as never,
          {
            allowInputRequired: forward !== undefined && modern,
          } as never,
        );
      },
      complete: async (params) => {
        if (!upstream) throw await protocolError(-32601, "completion/complete needs an upstream server");
        return servers.clientOf(upstream).complete(params);
      },
    };
  }

  // ---- HTTP ------------------------------------------------------------

  /** the client a bearer token names (re-read from the token files at most every 2 s on a miss) */
  private tokenOwner(token: string): string | null {
    const given = Buffer.from(token);
    const find = () => {
      for (const [name, t] of this.tokens) if (t.length === given.length && timingSafeEqual(t, given)) return name;
      return null;
    };
    const hit = find();
    if (hit !== null || Date.now() - this.tokensReadAt < 2000) return hit;
    this.tokensReadAt = Date.now();
    const next = new Map<string, Buffer>();
    for (const [name, c] of Object.entries(this.opts.config.clients)) {
      if (!c.token_file) continue;
      const file = isAbsolute(c.token_file) ? c.token_file : join(this.opts.configDir, c.token_file);
      try {
        const t = readFileSync(file, "utf8").trim();
        if (t.length >= 16) next.set(name, Buffer.from(t));
        else
          this.opts.log.error({ client: name, file }, "an MCP client's token is shorter than 16 characters: refused");
      } catch (err) {
        this.opts.log.error({ err, client: name, file }, "an MCP client's token file cannot be read");
      }
    }
    this.tokens = next;
    return find();
  }

  /**
   * POST/GET/DELETE /mcp. clientAddress: the peer's IP. Refusals: a Host
   * that is not an IP literal, localhost or a kernel.yaml mcp.allowed_hosts
   * name (403, DNS rebinding), an Origin other than the Host's own (403), no
   * or a wrong bearer token (401).
   */
  async fetch(
    req: Request,
    clientAddress: string,
    audit: (e: Record<string, unknown>) => Promise<unknown>,
  ): Promise<Response> {
    // a refusal is recorded before it is answered (a failed record is logged by the caller)
    const refuse = async (status: number, message: string, headers: Record<string, string> = {}) => {
      await audit({ status, reason: message, client_address: clientAddress }).catch(() => {});
      return new Response(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32600, message } }), {
        status,
        headers: { "content-type": "application/json", ...headers },
      });
    };
    const host = req.headers.get("host") ?? "";
    if (!this.hostAllowed(host)) return refuse(403, `Host "${host}" is not allowed (DNS rebinding protection)`);
    const origin = req.headers.get("origin");
    if (origin !== null) {
      let ok = false;
      try {
        ok = new URL(origin).host === host;
      } catch {
        ok = false;
      }
      if (!ok) return refuse(403, `Origin "${origin}" is not this server's own`);
    }
    const auth = req.headers.get("authorization");
    let client: string | null = null;
    let token = "";
    if (auth) {
      const m = /^Bearer\s+(\S{1,512})$/i.exec(auth.trim());
      if (m) {
        token = m[1]!;
        client = this.tokenOwner(token);
      }
      if (client === null)
        return refuse(401, "wrong bearer token", { "www-authenticate": 'Bearer realm="aaos", error="invalid_token"' });
    } else if (this.opts.config.anonymous && isLoopback(clientAddress)) {
      client = this.opts.config.anonymous;
    } else {
      return refuse(401, "a bearer token is needed (kernel.yaml mcp.clients.NAME.token_file)", {
        "www-authenticate": 'Bearer realm="aaos"',
      });
    }
    const { sdk, buildMcpServer, TaskStore } = await loadServerSide();
    this.handler ??= sdk.createMcpHandler((ctx) => {
      const who = ctx.authInfo?.clientId;
      if (!who) throw new Error("no principal");
      return buildMcpServer(
        this.surface(who),
        { name: "aaos", version: this.opts.version },
        this.tasksOf(who, TaskStore),
        ctx.era,
      );
    });
    return this.handler.fetch(req, { authInfo: { token, clientId: client, scopes: [] } });
  }

  private hostAllowed(host: string): boolean {
    let hostname: string;
    try {
      hostname = new URL(`http://${host}`).hostname;
    } catch {
      return false;
    }
    if (hostname === "localhost" || /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) || hostname.startsWith("[")) return true;
    return (this.opts.config.allowed_hosts ?? []).includes(hostname.toLowerCase());
  }

  async close(): Promise<void> {
    await this.handler?.close().catch(() => {});
  }
}

function isLoopback(address: string): boolean {
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}
