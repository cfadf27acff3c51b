// `aaosctl mcp --as NAME`: the stdio bridge a desktop MCP client (Claude
// Desktop, Claude Code, an IDE) launches. The client speaks MCP on our
// stdin/stdout; we answer with the official v2 server SDK (serveStdio: 2026-07-28
// first, 2025-11-25 for a client that opens with initialize), and the surface
// behind it is the kernel's own for the principal NAME (kernel.yaml
// mcp.clients.NAME), reached over the operator's line (--socket, --serial,
// --tty, --context) through the mcp.* RPC methods. The bridge decides nothing:
// every list, call, read and prompt is the kernel's answer for that principal,
// checked against its manifest and audited there (docs/mcp.md).
//
// stdout carries MCP and nothing else; every word for a person goes to stderr.
import { randomUUID } from "node:crypto";
import { ProtocolError } from "@modelcontextprotocol/server";
import { serveStdio, StdioServerTransport } from "@modelcontextprotocol/server/stdio";
import { buildMcpServer, runsAnAgent, TaskStore, type Surface } from "../kernel/mcp/surface.ts";
import type { McpForward } from "../kernel/services.ts";
import { ConnectionLost, RpcError, type RpcClient } from "./client.ts";
import { CliError, ExitCode, unreachable, usageError } from "./exit.ts";
import { cliVersion } from "./help.ts";
import type { Ctx } from "./verbs.ts";

/** one entry of mcp.clients */
export interface McpClientInfo {
  name: string;
  manifest: string;
  /** null until the principal is spawned (its manifest may not spawn: then `error` says why) */
  agent_id: string | null;
  http: boolean;
  upstream: string | null;
  error?: string;
}

const METHOD_NOT_FOUND = -32601;

/** the kernel's error as the SDK's, so the MCP client sees the kernel's code, message and data */
function protocolError(e: RpcError): ProtocolError {
  return new ProtocolError(e.code, e.message, e.data);
}

/** what mcp.surface answers: the lists, and which optional features the principal's server declares */
interface SurfaceReply {
  tools?: any[];
  resources?: any[];
  resourceTemplates?: any[];
  prompts?: any[];
  upstream?: boolean;
  features?: { prompts: boolean; completions: boolean };
}

/** what the client's request carries on to an upstream server, as the mcp.* methods take it */
function forwardParams(f: McpForward): Record<string, unknown> {
  return {
    ...(f.clientCapabilities ? { client_capabilities: f.clientCapabilities } : {}),
    ...(f.inputResponses ? { input_responses: f.inputResponses } : {}),
    ...(f.requestState !== undefined ? { request_state: f.requestState } : {}),
  };
}

/**
 * The principal NAME's MCP surface, each method one RPC call to the kernel.
 * mcp.progress notifications go to the calls in flight of that principal and
 * tool: a message to onProgress, an approval_id (the call now waits for a
 * person) to onApprovalPending, which may make the call a task. features:
 * from the first mcp.surface (prompts and completions: an upstream gateway).
 */
export function rpcSurface(
  client: RpcClient,
  as: string,
  features: { prompts: boolean; completions: boolean },
): Surface {
  type Waiting = {
    id: string;
    name: string;
    onProgress?: (message: string) => void;
    onApprovalPending?: (id: string) => void;
    forward?: McpForward;
  };
  const waiting = new Set<Waiting>();
  client.onNotification((n) => {
    const p = n.params;
    if (n.method !== "mcp.progress" || p?.as !== as) return;
    for (const w of waiting) {
      if (p.call_id !== undefined ? p.call_id !== w.id : p.name !== w.name) continue;
      if (typeof p.progress === "number") {
        // an external server's progress, its numbers kept
        w.forward?.onProgress?.({
          progress: p.progress,
          ...(typeof p.total === "number" ? { total: p.total } : {}),
          ...(typeof p.message === "string" ? { message: p.message } : {}),
        });
        continue;
      }
      if (typeof p.message === "string") w.onProgress?.(p.message);
      if (typeof p.approval_id === "string") w.onApprovalPending?.(p.approval_id);
    }
  });
  const rpc = async <T>(method: string, params: Record<string, unknown>): Promise<T> => {
    try {
      return await client.call<T>(method, { as, ...params });
    } catch (e) {
      // the kernel's error, its code, message and data kept; a lost line stays what it is
      throw e instanceof RpcError ? protocolError(e) : e;
    }
  };
  return {
    features: () => features,
    long: runsAnAgent,
    async list() {
      const r = await rpc<SurfaceReply & { resource_templates?: any[] }>("mcp.surface", {});
      return {
        tools: r.tools ?? [],
        resources: r.resources ?? [],
        resourceTemplates: r.resourceTemplates ?? r.resource_templates ?? [],
        prompts: r.prompts ?? [],
        upstream: r.upstream ?? false,
      };
    },
    async call(name, args, opts) {
      const w: Waiting = {
        id: randomUUID(),
        name,
        onProgress: opts.onProgress,
        onApprovalPending: opts.onApprovalPending,
        forward: opts.forward,
      };
      const forward = opts.forward && forwardParams(opts.forward);
      waiting.add(w);
      // the MCP client gave up (notifications/cancelled, tasks/cancel): so does the kernel's call
      const cancel = () => void client.call("mcp.cancel", { call_id: w.id }).catch(() => {});
      opts.signal?.addEventListener("abort", cancel, { once: true });
      try {
        return await client.call(
          "mcp.call",
          { as, name, arguments: args, call_id: w.id, ...(forward ? { forward } : {}) },
          { signal: opts.signal },
        );
      } catch (e) {
        // the line is gone: no answer is true; the bridge is about to exit
        if (e instanceof ConnectionLost) throw e;
        // a kernel error is the tool's error, as the HTTP surface answers it
        if (e instanceof RpcError)
          return { content: [{ type: "text", text: `[${e.code}] ${e.message}` }], isError: true };
        throw e;
      } finally {
        opts.signal?.removeEventListener("abort", cancel);
        waiting.delete(w);
      }
    },
    read: (uri, f) => rpc("mcp.read", { uri, ...(f ? { forward: forwardParams(f) } : {}) }),
    prompt: (name, args, f) =>
      rpc("mcp.prompt", { name, arguments: args, ...(f ? { forward: forwardParams(f) } : {}) }),
    complete: (params) => rpc("mcp.complete", { params: params ?? {} }),
  };
}

/** the SDK's stdio transport, telling us when the client closed its end (stdin at EOF) */
class BridgeTransport extends StdioServerTransport {
  private ended!: () => void;
  readonly closed = new Promise<void>((resolve) => (this.ended = resolve));
  override async close(): Promise<void> {
    await super.close();
    this.ended();
  }
}

/** stderr, one line, named: what a desktop client keeps in its MCP server log */
function log(text: string): void {
  process.stderr.write(`aaosctl mcp: ${text}\n`);
}

/** the principal NAME, as the kernel knows it; a usage error (exit 2) naming the known ones */
async function findClient(client: RpcClient, as: string): Promise<McpClientInfo> {
  let clients: McpClientInfo[];
  try {
    ({ clients } = await client.call<{ clients: McpClientInfo[] }>("mcp.clients", {}));
  } catch (e) {
    if (e instanceof RpcError && e.code === METHOD_NOT_FOUND)
      throw new CliError(ExitCode.failed, `the kernel serves no MCP: ${e.message}`, "docs/mcp.md");
    throw e;
  }
  const me = clients.find((c) => c.name === as);
  if (me) return me;
  const known = clients.map((c) => c.name);
  throw usageError(
    `no MCP client is named ${JSON.stringify(as)}: kernel.yaml mcp.clients has ${known.length ? known.join(", ") : "none"}`,
    "docs/mcp.md says how to declare one",
  );
}

export async function runMcp(ctx: Ctx, as: string): Promise<number> {
  const client = await ctx.rpc();
  const me = await findClient(client, as);
  const version = await client
    .call<{ version?: string }>("system.info", {})
    .then((i) => i.version ?? cliVersion())
    .catch(() => cliVersion());
  // the first look at the surface: it must answer before we serve, and says which features to declare
  const first = await client.call<SurfaceReply>("mcp.surface", { as });
  const upstream = Boolean(me.upstream);
  const surface = rpcSurface(client, as, first.features ?? { prompts: upstream, completions: upstream });

  // a task (a call waiting for an approval, 2026-07-28) outlives the request that started it: this process keeps them
  const tasks = new TaskStore();
  const wire = new BridgeTransport();
  const handle = serveStdio(({ era }) => buildMcpServer(surface, { name: "aaos", version }, tasks, era), {
    transport: wire,
    onerror: (e) => log(e.message),
  });
  const agent = me.agent_id ?? `not spawned${me.error ? `: ${me.error}` : ""}`;
  log(`serving ${as} (manifest ${me.manifest}, agent ${agent}) from ${ctx.targetName || "the kernel"}`);

  const ended = await new Promise<"eof" | "lost" | "interrupted">((resolve) => {
    wire.closed.then(() => resolve("eof"));
    client.onClosed(() => resolve("lost"));
    if (client.isClosed) resolve("lost");
    if (ctx.signal?.aborted) resolve("interrupted");
    ctx.signal?.addEventListener("abort", () => resolve("interrupted"), { once: true });
  });
  await handle.close().catch(() => {});
  if (ended === "lost")
    throw unreachable(
      `the connection to the kernel (${ctx.targetName || "its line"}) was lost; the MCP session ends`,
      "the client may start aaosctl mcp again once the kernel is back",
    );
  return ended === "interrupted" ? 130 : ExitCode.ok;
}
