// One MCP principal's surface as an MCP server: a low-level server of the
// official v2 SDK whose handlers answer from a Surface. The kernel's /mcp
// (kernel/mcp/server.ts, a Surface on AgentServices) and `aaosctl mcp`
// (cli/mcp.ts, a Surface on the RPC line) both serve through this one
// builder, so the two transports cannot drift apart. The SDK speaks the
// protocol (2026-07-28, and 2025-11-25 for older clients); nothing here does.
import { ProtocolError, Server } from "@modelcontextprotocol/server";

/** one principal's MCP surface, in MCP wire shapes (tools/list entries, CallToolResult, …) */
export interface Surface {
  /** what the principal's server declares: prompts and completions exist only with an upstream gateway */
  features(): { prompts: boolean; completions: boolean };
  list(): Promise<{ tools: any[]; resources: any[]; resourceTemplates: any[]; prompts: any[]; upstream: boolean }>;
  call(
    name: string,
    args: Record<string, unknown>,
    opts: { signal?: AbortSignal; onProgress?: (message: string) => void },
  ): Promise<any>;
  read(uri: string): Promise<any>;
  prompt(name: string, args: Record<string, string>): Promise<any>;
  complete(params: any): Promise<any>;
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

/** a low-level v2 SDK Server answering tools/*, resources/*, prompts/*, completion/* from the surface */
export function buildMcpServer(surface: Surface, info: { name: string; version: string }): Server {
  const f = surface.features();
  const server = new Server(info, {
    capabilities: {
      tools: {},
      resources: {},
      logging: {},
      ...(f.prompts ? { prompts: {} } : {}),
      ...(f.completions ? { completions: {} } : {}),
    },
    instructions:
      "aaOS: the tools, agents and resources this principal's capabilities allow. A call that needs a human's approval waits for the operator.",
  });
  server.setRequestHandler("tools/list", () => guarded(async () => ({ tools: (await surface.list()).tools })));
  server.setRequestHandler("tools/call", (req, ctx) =>
    guarded(async () => {
      const token = ctx.mcpReq._meta?.progressToken;
      let n = 0;
      const onProgress = (message: string) => {
        void ctx.mcpReq.log("info", message, "aaos").catch(() => {});
        if (token !== undefined)
          void ctx.mcpReq
            .notify({ method: "notifications/progress", params: { progressToken: token, progress: ++n, message } })
            .catch(() => {});
      };
      return await surface.call(req.params.name, (req.params.arguments ?? {}) as Record<string, unknown>, {
        signal: ctx.mcpReq.signal,
        onProgress,
      });
    }),
  );
  server.setRequestHandler("resources/list", () =>
    guarded(async () => ({ resources: (await surface.list()).resources })),
  );
  server.setRequestHandler("resources/templates/list", () =>
    guarded(async () => ({ resourceTemplates: (await surface.list()).resourceTemplates })),
  );
  server.setRequestHandler("resources/read", (req) => guarded(() => surface.read(req.params.uri)));
  if (f.prompts) {
    server.setRequestHandler("prompts/list", () => guarded(async () => ({ prompts: (await surface.list()).prompts })));
    server.setRequestHandler("prompts/get", (req) =>
      guarded(() => surface.prompt(req.params.name, (req.params.arguments ?? {}) as Record<string, string>)),
    );
  }
  if (f.completions)
    server.setRequestHandler("completion/complete", (req) => guarded(() => surface.complete(req.params)));
  // a 2025 client may set a log level; the kernel's messages are few and always sent
  server.setRequestHandler("logging/setLevel", () => ({}));
  return server;
}
