// JSON-RPC 2.0 server: parses and validates, then calls the method table.
// Requests on one connection run concurrently (an agent.run waiting for an
// approval must not block the approval.respond sent on the same line);
// replies are written as each completes and matched by id.
// Flow per peer (PeerState below): requests in flight and unsent output are
// bounded, a peer over either bound is not read, and a peer whose input
// ends still gets every reply before its connection closes. Transports
// (transports.ts) own the bytes; nothing here knows Bun.
import type { Logger } from "pino";
import { z } from "zod";
import {
  internalError,
  invalidParams,
  invalidRequest,
  KernelError,
  lineTooLong,
  methodNotFound,
  parseError,
  toWire,
} from "../errors.ts";
import { describeZodIssues } from "../zod.ts";
import { LineSplitter, type Frame } from "./framing.ts";

export type JsonRpcId = string | number | null;

export interface Connection {
  readonly id: number;
  readonly transport: string;
  notify(method: string, params: unknown): void;
  readonly closed: boolean;
  /** aborted when the connection closes: a call waiting for its peer's answer is cancelled with it */
  readonly signal: AbortSignal;
}

export interface MethodContext {
  conn: Connection;
  /**
   * Run fn once this request's reply has left the kernel: the transport has
   * handed every byte of it to the OS (or the peer is gone, or the request
   * was a notification and has no reply). E.g. system.shutdown stops the
   * kernel only after its caller has the answer.
   */
  afterReply(fn: () => void): void;
}

export interface Method<P = any> {
  params: z.ZodType<P>;
  /**
   * A hot method's shortcut past zod: the parsed params when raw has the
   * plain, valid shape params would accept and give back the same for, else
   * undefined (then params decides, with its error messages).
   */
  quick?: (raw: Record<string, unknown>) => P | undefined;
  handler(params: P, ctx: MethodContext): Promise<unknown> | unknown;
}

export type MethodTable = Record<string, Method>;

export interface ServerOptions {
  maxLineBytes: number;
  /** per connection: unsent output past which the peer is not read; 4× it drops the peer (default 8 MiB) */
  maxPendingOutputBytes?: number;
  /** per connection: request lines handled at once; past it the peer is not read (default 256) */
  maxInFlight?: number;
  log: Logger;
  /** called for each new connection, e.g. to send system.ready */
  onOpen?: (conn: Connection) => void;
}

/** the defaults of kernel.yaml `rpc:` (kernel/config.ts) for a server built without them */
export const RPC_FLOW_DEFAULTS = { maxPendingOutputBytes: 8 * 1024 * 1024, maxInFlight: 256 } as const;
/** unsent output past this many times the soft cap drops the peer */
export const HARD_OUTPUT_FACTOR = 4;

/**
 * What a transport does for one peer. Only write is required; a transport
 * that can, says how much it holds (unsent) and can stop reading (pause), so
 * a peer that does not read cannot grow the kernel.
 */
export interface PeerIO {
  /** queue text for the peer; never blocks, never drops */
  write(text: string): void;
  /** bytes accepted by write() that the OS has not taken yet */
  unsent?(): number;
  /** stop reading from the peer (backpressure reaches it); resume() reads again */
  pause?(): void;
  resume?(): void;
  /** every reply is queued and the peer sends no more: flush, then close our side */
  end?(): void;
  /** drop the peer now, unsent output and all */
  destroy?(): void;
}

/** What attach() gives the transport for one peer. */
export interface Peer {
  readonly conn: Connection;
  /** bytes from the peer */
  feed(data: Uint8Array): void;
  /** the peer sends no more (EOF, half-close, hang-up): what it sent is answered, then io.end() */
  endInput(): void;
  /** the transport's unsent output went down: reading may resume */
  drained(): void;
  /** the peer is gone: forget it; replies still being computed are discarded */
  close(): void;
  /** request lines started and not yet answered */
  readonly inFlight: number;
  /** resolves once every line read so far is answered (or the peer is gone) */
  idle(): Promise<void>;
}

export class RpcServer {
  private nextConn = 1;
  readonly connections = new Set<Connection>();

  constructor(
    private readonly methods: MethodTable,
    private readonly opts: ServerOptions,
  ) {}

  /** A transport calls this once per peer, feeds its bytes in, and says when its input ends or it goes. */
  attach(transport: string, io: PeerIO): Peer {
    const peer = new PeerState(this.nextConn++, transport, io, this, {
      maxLineBytes: this.opts.maxLineBytes,
      softCap: this.opts.maxPendingOutputBytes ?? RPC_FLOW_DEFAULTS.maxPendingOutputBytes,
      maxInFlight: this.opts.maxInFlight ?? RPC_FLOW_DEFAULTS.maxInFlight,
      log: this.opts.log,
      onClose: (conn) => {
        this.connections.delete(conn);
        this.opts.log.debug({ conn: conn.id, transport }, "connection closed");
      },
    });
    this.connections.add(peer.conn);
    this.opts.log.debug({ conn: peer.conn.id, transport }, "connection opened");
    this.opts.onOpen?.(peer.conn);
    return peer;
  }

  /** notify every open connection */
  broadcast(method: string, params: unknown): void {
    for (const c of this.connections) c.notify(method, params);
  }

  /**
   * One line in, one reply out (null: nothing to send, e.g. notifications).
   * What the methods ask to run after the reply (MethodContext.afterReply)
   * is pushed onto `after`; the caller runs it once the reply is written.
   */
  async handleLine(text: string, conn: Connection, after: (() => void)[] = []): Promise<unknown | null> {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return errorResponse(null, parseError());
    }
    if (Array.isArray(msg)) {
      if (msg.length === 0) return errorResponse(null, invalidRequest("empty batch"));
      const replies = await Promise.all(msg.map((m) => this.handleMessage(m, conn, after)));
      const out = replies.filter((r) => r !== null);
      return out.length ? out : null;
    }
    return this.handleMessage(msg, conn, after);
  }

  private async handleMessage(msg: unknown, conn: Connection, after: (() => void)[]): Promise<unknown | null> {
    if (msg === null || typeof msg !== "object" || Array.isArray(msg)) {
      return errorResponse(null, invalidRequest("expected a JSON-RPC 2.0 request object"));
    }
    const req = msg as Record<string, unknown>;
    const hasId = "id" in req;
    const id = req.id;
    const validId = id === null || typeof id === "string" || (typeof id === "number" && Number.isFinite(id));
    if (req.jsonrpc !== "2.0" || typeof req.method !== "string" || (hasId && !validId)) {
      const why =
        req.jsonrpc !== "2.0"
          ? 'jsonrpc must be "2.0"'
          : typeof req.method !== "string"
            ? "method must be a string"
            : "id must be a string, a number or null";
      return errorResponse(validId ? (id as JsonRpcId) : null, invalidRequest(why));
    }
    const isNotification = !hasId;
    const reply = await this.dispatch(req.method, req.params, conn, after);
    if (isNotification) return null;
    return "error" in reply
      ? errorResponse(id as JsonRpcId, reply.error)
      : { jsonrpc: "2.0", id, result: reply.result };
  }

  private async dispatch(
    name: string,
    rawParams: unknown,
    conn: Connection,
    after: (() => void)[],
  ): Promise<{ result: unknown } | { error: KernelError }> {
    const method = Object.hasOwn(this.methods, name) ? this.methods[name] : undefined;
    if (!method) return { error: methodNotFound(name) };
    if (rawParams !== undefined && (rawParams === null || typeof rawParams !== "object" || Array.isArray(rawParams))) {
      return { error: invalidParams("params must be an object (by-name parameters)") };
    }
    let params =
      method.quick && rawParams !== undefined ? method.quick(rawParams as Record<string, unknown>) : undefined;
    if (params === undefined) {
      const parsed = method.params.safeParse(rawParams ?? {});
      if (!parsed.success) return { error: invalidParams(describeZodIssues(parsed.error)) };
      params = parsed.data;
    }
    try {
      const result = await method.handler(params, { conn, afterReply: (fn) => void after.push(fn) });
      return { result: result ?? null };
    } catch (e) {
      if (e instanceof KernelError) return { error: e };
      this.opts.log.error({ err: e, method: name }, "internal error in method");
      return { error: internalError(e) };
    }
  }
}

/**
 * One peer's flow. Invariants: at most maxInFlight request lines run at once;
 * lines read beyond that wait in `backlog`, and while anything waits there or
 * the unsent output is over the soft cap the transport is paused, so what
 * the kernel holds for a peer is bounded by the caps plus what the OS had
 * already delivered. Unsent output past HARD_OUTPUT_FACTOR × the soft cap,
 * piled up while the peer was already behind, drops the peer: a single large
 * reply to a peer that reads is always sent.
 */
class PeerState implements Peer {
  readonly conn: Connection;
  private readonly splitter: LineSplitter;
  private backlog: Frame[] = [];
  private running = 0;
  private paused = false;
  private pumping = false;
  private inputEnded = false;
  private ended = false;
  private closed = false;
  #gone: AbortController | null = null;
  private idleWaiters: (() => void)[] = [];
  /** bytes handed to io.write so far */
  private written = 0;
  /** afterReply hooks, each waiting for the transport to take the first `mark` bytes written (marks ascend) */
  private afterWritten: { mark: number; fns: (() => void)[] }[] = [];

  constructor(
    id: number,
    transport: string,
    private readonly io: PeerIO,
    private readonly server: RpcServer,
    private readonly limits: {
      maxLineBytes: number;
      softCap: number;
      maxInFlight: number;
      log: Logger;
      onClose: (conn: Connection) => void;
    },
  ) {
    this.splitter = new LineSplitter(limits.maxLineBytes);
    const self = this;
    this.conn = {
      id,
      transport,
      notify: (method, params) => this.send({ jsonrpc: "2.0", method, params }),
      get closed() {
        return self.closed;
      },
      get signal() {
        // built the first time a method asks for it: most connections never do
        if (!self.#gone) {
          self.#gone = new AbortController();
          if (self.closed) self.#gone.abort();
        }
        return self.#gone.signal;
      },
    };
  }

  get inFlight(): number {
    return this.running;
  }

  feed(data: Uint8Array): void {
    if (this.closed || this.inputEnded) return;
    for (const frame of this.splitter.push(data)) this.backlog.push(frame);
    this.pump();
  }

  endInput(): void {
    if (this.closed || this.inputEnded) return;
    const last = this.splitter.end();
    if (last) this.backlog.push(last);
    this.inputEnded = true;
    this.pump();
  }

  drained(): void {
    this.runWritten();
    this.pump();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#gone?.abort();
    this.backlog = [];
    this.wakeIdle();
    // the peer is gone: what waited for a reply to be taken waits no longer
    this.runWritten();
    this.limits.onClose(this.conn);
  }

  idle(): Promise<void> {
    if (this.closed || (this.running === 0 && this.backlog.length === 0)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private unsent(): number {
    return this.io.unsent?.() ?? 0;
  }

  private overLimit(): boolean {
    return this.running >= this.limits.maxInFlight || this.unsent() > this.limits.softCap;
  }

  /** start what may start, pause or resume the peer, and end it once everything is answered */
  private pump(): void {
    if (this.closed || this.pumping) return;
    this.pumping = true;
    try {
      while (this.backlog.length && !this.overLimit() && !this.closed) this.start(this.backlog.shift()!);
    } finally {
      this.pumping = false;
    }
    if (this.closed) return;
    this.setPaused(this.backlog.length > 0 || this.overLimit());
    if (this.backlog.length || this.running) return;
    this.wakeIdle();
    if (this.inputEnded && !this.ended) {
      this.ended = true;
      if (this.io.end) this.io.end();
      else this.close();
    }
  }

  private start(frame: Frame): void {
    if (frame.kind === "oversized") {
      const max = this.limits.maxLineBytes;
      this.send(errorResponse(null, lineTooLong(frame.bytes, max)));
      return;
    }
    if (frame.text.trim() === "") return;
    this.running += 1;
    const after: (() => void)[] = [];
    this.server
      .handleLine(frame.text, this.conn, after)
      .then(
        (reply) => reply !== null && this.send(reply),
        (e) => this.limits.log.error({ err: e }, "rpc line handling failed"),
      )
      .finally(() => {
        this.whenWritten(after);
        this.running -= 1;
        this.pump();
      });
  }

  /** run fns once the transport has taken everything written so far (at once if it has, or the peer is gone) */
  private whenWritten(fns: (() => void)[]): void {
    if (fns.length === 0) return;
    this.afterWritten.push({ mark: this.written, fns });
    this.runWritten();
  }

  private runWritten(): void {
    const taken = this.written - this.unsent();
    let n = 0;
    while (n < this.afterWritten.length && (this.closed || this.afterWritten[n]!.mark <= taken)) n++;
    if (n === 0) return;
    // taken out before running: a hook may write, and so come back here
    for (const { fns } of this.afterWritten.splice(0, n)) {
      for (const fn of fns) {
        try {
          fn();
        } catch (e) {
          this.limits.log.error({ err: e, conn: this.conn.id }, "afterReply hook failed");
        }
      }
    }
  }

  private send(msg: unknown): void {
    if (this.closed) return;
    const before = this.unsent();
    const text = JSON.stringify(msg) + "\n";
    try {
      this.io.write(text);
    } catch (e) {
      this.limits.log.warn({ err: e, conn: this.conn.id }, "write to connection failed");
      return;
    }
    this.written += Buffer.byteLength(text);
    const after = this.unsent();
    const hardCap = HARD_OUTPUT_FACTOR * this.limits.softCap;
    if (after > hardCap && before > this.limits.softCap) {
      this.limits.log.warn(
        { conn: this.conn.id, transport: this.conn.transport, unsent_bytes: after, limit: hardCap },
        "peer does not read its replies; dropping it",
      );
      this.io.destroy?.();
      this.close();
      return;
    }
    if (after > this.limits.softCap) this.setPaused(true);
    if (this.afterWritten.length) this.runWritten();
  }

  private setPaused(want: boolean): void {
    if (want === this.paused) return;
    this.paused = want;
    if (want) this.io.pause?.();
    else this.io.resume?.();
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

function errorResponse(id: JsonRpcId, err: KernelError) {
  return { jsonrpc: "2.0", id, error: toWire(err) };
}
