// The kernel's HTTP listener (docs/dashboard.md): the dashboard page, its
// login, and the JSON-RPC methods over a WebSocket at /rpc. A front door
// like the serial line: it parses and authenticates, then hands each
// message to an RpcServer built on AgentServices (no private back door).
// An operator session gets every method but web.tokens; a viewer session
// gets a table whose changing methods all answer -32001.
//
// Security: authentication before anything but the page's own static files;
// the session is a random id in an HttpOnly, SameSite=Strict cookie, never a
// token in a URL; the Origin of every WebSocket and of every state-changing
// request must be the page's own (DNS-rebinding and cross-site requests are
// refused); failed logins are audited and rate-limited per client address.
import type { Server, ServerWebSocket } from "bun";
import type { Logger } from "pino";
import type { AuditEventInput } from "../services.ts";
import type { Peer, RpcServer } from "../rpc/server.ts";
import { Auth, type Role, type Session } from "./auth.ts";
import indexHtml from "./assets/index.html" with { type: "text" };
import appJs from "./assets/app.js" with { type: "text" };
import appCss from "./assets/app.css" with { type: "text" };

export const COOKIE = "aaos_session";

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

const ASSETS: Record<string, { body: string; type: string }> = {
  "/": { body: indexHtml as unknown as string, type: "text/html; charset=utf-8" },
  "/index.html": { body: indexHtml as unknown as string, type: "text/html; charset=utf-8" },
  "/app.js": { body: appJs, type: "text/javascript; charset=utf-8" },
  "/app.css": { body: appCss, type: "text/css; charset=utf-8" },
};

/** bytes of the embedded page (docs/dashboard.md gives the figure) */
export function assetBytes(): number {
  return ["/", "/app.js", "/app.css"].reduce((n, p) => n + Buffer.byteLength(ASSETS[p]!.body), 0);
}

export interface WebOptions {
  hostname: string;
  port: number;
  auth: Auth;
  /** one RpcServer per role: the operator's full table, the viewer's read-only one */
  servers: Record<Role, RpcServer>;
  audit: (e: AuditEventInput) => Promise<unknown>;
  log: Logger;
  maxMessageBytes: number;
  /** the session cookie's Secure flag (behind TLS) */
  secureCookie?: boolean;
  /** /mcp: the kernel's MCP server (kernel/mcp/server.ts), which checks its own bearer tokens */
  mcp?: (req: Request, clientAddress: string) => Promise<Response>;
}

interface SocketData {
  session: Session;
  client: string;
  peer?: Peer;
}

export interface WebListener {
  describe: string;
  url: string;
  close(): void;
}

function json(status: number, body: unknown, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...SECURITY_HEADERS, ...extra },
  });
}

function cookieOf(req: Request): string | undefined {
  const header = req.headers.get("cookie");
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** the request comes from a page of this origin: Origin names the Host it was sent to */
export function sameOrigin(req: Request): boolean {
  const origin = req.headers.get("origin");
  const host = req.headers.get("host");
  if (!origin || !host) return false;
  try {
    const u = new URL(origin);
    return (u.protocol === "http:" || u.protocol === "https:") && u.host === host;
  } catch {
    return false;
  }
}

export function startWeb(opts: WebOptions): WebListener {
  const { auth, log } = opts;
  const cookie = (value: string, maxAge: number) =>
    `${COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAge}${opts.secureCookie ? "; Secure" : ""}`;

  /** each session's open WebSockets: a logout closes them */
  const sockets = new Map<string, Set<ServerWebSocket<SocketData>>>();
  const server: Server<SocketData> = Bun.serve<SocketData>({
    hostname: opts.hostname,
    port: opts.port,
    // the body of a login is a token; an MCP request at most the RPC line's size
    maxRequestBodySize: opts.mcp ? Math.max(64 * 1024, opts.maxMessageBytes) : 64 * 1024,
    async fetch(req, srv) {
      const url = new URL(req.url);
      const client = srv.requestIP(req)?.address ?? "unknown";
      try {
        if (url.pathname === "/mcp" && opts.mcp) {
          // a call may wait for a human's approval, or an agent's run: no idle cut (Bun's default is 10 s)
          srv.timeout(req, 0);
          return await opts.mcp(req, client);
        }
        if (req.method === "GET" && ASSETS[url.pathname]) {
          const a = ASSETS[url.pathname]!;
          return new Response(a.body, { headers: { "content-type": a.type, ...SECURITY_HEADERS } });
        }
        if (url.pathname === "/rpc") {
          if (!sameOrigin(req)) return json(403, { error: "cross-origin WebSocket refused" });
          const session = auth.session(cookieOf(req));
          if (!session) return json(401, { error: "log in first" });
          if (srv.upgrade(req, { data: { session, client } })) return undefined as unknown as Response;
          return json(400, { error: "expected a WebSocket upgrade" });
        }
        if (url.pathname === "/session" && req.method === "GET") {
          const s = auth.session(cookieOf(req));
          return s ? json(200, { role: s.role }) : json(401, { error: "no session" });
        }
        if (url.pathname === "/login" && req.method === "POST") return await login(req, client);
        if (url.pathname === "/logout" && req.method === "POST") {
          if (!sameOrigin(req)) return json(403, { error: "cross-origin request refused" });
          const id = cookieOf(req);
          auth.close(id);
          // the session's sockets end with it
          for (const ws of sockets.get(id ?? "") ?? []) ws.close(4401, "logged out");
          return new Response(null, { status: 204, headers: { "set-cookie": cookie("", 0), ...SECURITY_HEADERS } });
        }
        return json(404, { error: `no such page: ${url.pathname}` });
      } catch (err) {
        log.error({ err, path: url.pathname }, "dashboard request failed");
        return json(500, { error: "internal error" });
      }
    },
    websocket: {
      maxPayloadLength: opts.maxMessageBytes,
      idleTimeout: 0,
      open(ws) {
        const d = ws.data;
        let mine = sockets.get(d.session.id);
        if (!mine) sockets.set(d.session.id, (mine = new Set()));
        mine.add(ws);
        d.peer = opts.servers[d.session.role].attach("websocket", {
          write: (text) => {
            // one JSON-RPC message per frame: the server writes newline-terminated lines
            for (const line of text.split("\n")) if (line) ws.send(line);
          },
          unsent: () => ws.getBufferedAmount(),
          end: () => ws.close(1000, "done"),
          destroy: () => ws.terminate(),
        });
        d.peer.conn.notify("web.session", { role: d.session.role });
      },
      message(ws, msg) {
        // an expired or evicted session's socket ends at its next message
        if (!auth.session(ws.data.session.id)) {
          ws.close(4401, "session ended: log in again");
          return;
        }
        const text = typeof msg === "string" ? msg : Buffer.from(msg).toString("utf8");
        // a raw newline is never inside a JSON string: as a separator it would split the message
        ws.data.peer?.feed(Buffer.from(text.replace(/[\r\n]/g, " ") + "\n"));
      },
      drain(ws) {
        ws.data.peer?.drained();
      },
      close(ws) {
        ws.data.peer?.close();
        const mine = sockets.get(ws.data.session.id);
        mine?.delete(ws);
        if (mine && mine.size === 0) sockets.delete(ws.data.session.id);
      },
    },
  });

  async function login(req: Request, client: string): Promise<Response> {
    if (!sameOrigin(req)) return json(403, { error: "cross-origin request refused" });
    const wait = auth.retryAfter(client);
    if (wait > 0) {
      const s = Math.ceil(wait / 1000);
      return json(429, { error: `too many failed logins; try again in ${s} s` }, { "retry-after": String(s) });
    }
    let token: unknown;
    try {
      token = ((await req.json()) as { token?: unknown })?.token;
    } catch {
      return json(400, { error: 'expected a JSON body {"token": "..."}' });
    }
    const role = typeof token === "string" && token.length > 0 && token.length <= 512 ? auth.roleOf(token) : null;
    if (!role) {
      auth.failed(client);
      await opts
        .audit({ kind: "web.login", agent_id: null, ok: false, client, reason: "wrong token" })
        .catch((err) => log.error({ err }, "web.login was not recorded"));
      return json(401, { error: "wrong token" });
    }
    try {
      await opts.audit({ kind: "web.login", agent_id: null, ok: true, role, client });
    } catch {
      // no session that the audit log does not know of
      return json(503, { error: "the audit log cannot be written; no session opened" });
    }
    const s = auth.open(role, client);
    return json(200, { role }, { "set-cookie": cookie(s.id, Math.round((s.expires - Date.now()) / 1000)) });
  }

  const shown = `${opts.hostname.includes(":") ? `[${opts.hostname}]` : opts.hostname}:${server.port}`;
  return {
    describe: `http:${shown}`,
    url: `http://${shown}/`,
    close: () => server.stop(true),
  };
}

export type { ServerWebSocket };
