// JSON-RPC 2.0 server: parses and validates, then calls the method table.
// Requests on one connection run concurrently (an agent.run waiting for an
// approval must not block the approval.respond sent on the same line);
// replies are written as each completes and matched by id.
import type { Logger } from "pino";
import { z } from "zod";
import { ErrorCode, KernelError } from "../errors.ts";
import { LineSplitter } from "./framing.ts";

export type JsonRpcId = string | number | null;

export interface Connection {
  readonly id: number;
  readonly transport: string;
  notify(method: string, params: unknown): void;
  readonly closed: boolean;
}

export interface MethodContext {
  conn: Connection;
}

export interface Method<P = any> {
  params: z.ZodType<P>;
  handler(params: P, ctx: MethodContext): Promise<unknown> | unknown;
}

export type MethodTable = Record<string, Method>;

export interface ServerOptions {
  maxLineBytes: number;
  log: Logger;
  /** called for each new connection, e.g. to send system.ready */
  onOpen?: (conn: Connection) => void;
  onClose?: (conn: Connection) => void;
}

export interface ByteSink {
  write(text: string): void;
}

export class RpcServer {
  private nextConn = 1;
  readonly connections = new Set<Connection>();

  constructor(
    private readonly methods: MethodTable,
    private readonly opts: ServerOptions,
  ) {}

  /** A transport calls this once per peer; it feeds bytes in and calls close() when the peer goes. */
  attach(transport: string, sink: ByteSink): { feed(data: Uint8Array): void; close(): void } {
    const splitter = new LineSplitter(this.opts.maxLineBytes);
    let closed = false;
    const send = (msg: unknown) => {
      if (closed) return;
      try {
        sink.write(JSON.stringify(msg) + "\n");
      } catch (e) {
        this.opts.log.warn({ err: e, conn: conn.id }, "write to connection failed");
      }
    };
    const conn: Connection = {
      id: this.nextConn++,
      transport,
      notify: (method, params) => send({ jsonrpc: "2.0", method, params }),
      get closed() {
        return closed;
      },
    };
    this.connections.add(conn);
    this.opts.onOpen?.(conn);
    return {
      feed: (data) => {
        for (const frame of splitter.push(data)) {
          if (frame.kind === "oversized") {
            send(errorResponse(null, ErrorCode.InvalidRequest, `line of ${frame.bytes} bytes exceeds the limit of ${this.opts.maxLineBytes} bytes; discarded`, { limit: this.opts.maxLineBytes }));
            continue;
          }
          if (frame.text.trim() === "") continue;
          this.handleLine(frame.text, conn).then(
            (reply) => reply !== null && send(reply),
            (e) => this.opts.log.error({ err: e }, "rpc line handling failed"),
          );
        }
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.connections.delete(conn);
        this.opts.onClose?.(conn);
      },
    };
  }

  /** notify every open connection */
  broadcast(method: string, params: unknown): void {
    for (const c of this.connections) c.notify(method, params);
  }

  /** one line in, one reply out (null: nothing to send, e.g. notifications) */
  async handleLine(text: string, conn: Connection): Promise<unknown | null> {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return errorResponse(null, ErrorCode.ParseError, "Parse error: the line is not valid JSON");
    }
    if (Array.isArray(msg)) {
      if (msg.length === 0) return errorResponse(null, ErrorCode.InvalidRequest, "Invalid Request: empty batch");
      const replies = await Promise.all(msg.map((m) => this.handleMessage(m, conn)));
      const out = replies.filter((r) => r !== null);
      return out.length ? out : null;
    }
    return this.handleMessage(msg, conn);
  }

  private async handleMessage(msg: unknown, conn: Connection): Promise<unknown | null> {
    if (msg === null || typeof msg !== "object" || Array.isArray(msg)) {
      return errorResponse(null, ErrorCode.InvalidRequest, "Invalid Request: expected a JSON-RPC 2.0 request object");
    }
    const req = msg as Record<string, unknown>;
    const hasId = "id" in req;
    const id = req.id;
    const validId = id === null || typeof id === "string" || (typeof id === "number" && Number.isFinite(id));
    if (req.jsonrpc !== "2.0" || typeof req.method !== "string" || (hasId && !validId)) {
      const why = req.jsonrpc !== "2.0" ? 'jsonrpc must be "2.0"' : typeof req.method !== "string" ? "method must be a string" : "id must be a string, a number or null";
      return errorResponse(validId ? (id as JsonRpcId) : null, ErrorCode.InvalidRequest, `Invalid Request: ${why}`);
    }
    const isNotification = !hasId;
    const reply = await this.dispatch(req.method, req.params, conn);
    if (isNotification) return null;
    return "error" in reply ? { jsonrpc: "2.0", id, error: reply.error } : { jsonrpc: "2.0", id, result: reply.result };
  }

  private async dispatch(name: string, rawParams: unknown, conn: Connection): Promise<{ result: unknown } | { error: object }> {
    const method = Object.hasOwn(this.methods, name) ? this.methods[name] : undefined;
    if (!method) return { error: { code: ErrorCode.MethodNotFound, message: `Method not found: ${name}` } };
    if (rawParams !== undefined && (rawParams === null || typeof rawParams !== "object" || Array.isArray(rawParams))) {
      return { error: { code: ErrorCode.InvalidParams, message: "Invalid params: params must be an object (by-name parameters)" } };
    }
    const parsed = method.params.safeParse(rawParams ?? {});
    if (!parsed.success) {
      return { error: { code: ErrorCode.InvalidParams, message: `Invalid params: ${describeZodError(parsed.error)}` } };
    }
    try {
      const result = await method.handler(parsed.data, { conn });
      return { result: result ?? null };
    } catch (e) {
      if (e instanceof KernelError) {
        return { error: e.data === undefined ? { code: e.code, message: e.message } : { code: e.code, message: e.message, data: e.data } };
      }
      this.opts.log.error({ err: e, method: name }, "internal error in method");
      return { error: { code: ErrorCode.InternalError, message: `Internal error: ${(e as Error)?.message ?? String(e)}` } };
    }
  }
}

/** the field a person got wrong: unknown fields first (usually a typo), then the rest */
export function describeZodError(err: z.ZodError): string {
  const ordered = [...err.issues].sort((a, b) => Number(b.code === "unrecognized_keys") - Number(a.code === "unrecognized_keys"));
  return ordered
    .slice(0, 2)
    .map((issue) => {
      const base = issue.path.map(String).join(".");
      if (issue.code === "unrecognized_keys") return `${base ? base + "." : ""}${issue.keys.join(", ")}: unknown field`;
      const missing = issue.code === "invalid_type" && /received undefined$/.test(issue.message);
      return `${base || "(params)"}: ${missing ? "required" : issue.message}`;
    })
    .join("; ");
}

function errorResponse(id: JsonRpcId, code: number, message: string, data?: unknown) {
  return { jsonrpc: "2.0", id, error: data === undefined ? { code, message } : { code, message, data } };
}
