// RpcClient: newline-delimited JSON-RPC 2.0 over a byte stream (a unix
// socket to a host-mode kernel, a QEMU serial chardev socket, or a tty).
// Replies are matched to calls by id; notifications go to listeners.
// Used by aaosctl, the test harnesses and the QEMU harness alike.
import { connect, type Socket } from "node:net";

export interface RpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = "RpcError";
  }
}

/**
 * The line or socket closed with the call unanswered, or the call was made
 * on a client already closed: nothing will answer it. aaosctl exits 3
 * (unreachable) on it; `reason` is why the stream broke, if it did.
 */
export class ConnectionLost extends Error {
  constructor(readonly reason?: Error) {
    super(reason ? `connection lost: ${reason.message}` : "connection closed");
    this.name = "ConnectionLost";
  }
}

export interface Notification {
  method: string;
  params: any;
}

type Pending = { resolve: (v: any) => void; reject: (e: Error) => void };

export interface CallOptions {
  /** reject with a timeout error (and forget the call) after this many ms */
  timeoutMs?: number;
  /** reject (and forget the call) when aborted; the kernel may still act on it */
  signal?: AbortSignal;
}

/** Anything that carries bytes both ways. */
export interface ByteStream {
  write(data: string): void;
  onData(cb: (chunk: Buffer) => void): void;
  onClose(cb: (err?: Error) => void): void;
  close(): void;
}

export function socketStream(sock: Socket): ByteStream {
  return {
    write: (d) => void sock.write(d),
    onData: (cb) => void sock.on("data", cb),
    onClose: (cb) => {
      sock.on("close", () => cb());
      sock.on("error", (e) => cb(e));
    },
    close: () => sock.destroy(),
  };
}

export function connectUnix(path: string, timeoutMs = 5000): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once("connect", () => {
      clearTimeout(timer);
      resolve(socketStream(sock));
    });
    sock.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(`cannot connect to ${path}: ${e.code ?? e.message}`));
    });
  });
}

export class RpcClient {
  /** random start: a reply left on a serial line by an earlier session can never match a new call */
  private nextId = 1 + Math.floor(Math.random() * 1e9);
  private pending = new Map<number | string, Pending>();
  private buffer = "";
  private listeners = new Set<(n: Notification) => void>();
  private closeListeners = new Set<(err?: Error) => void>();
  private closed = false;
  /** recent notifications, so a waitFor() registered late still sees one that already came */
  private backlog: Notification[] = [];
  /** lines that were not JSON-RPC (e.g. kernel console noise on a shared serial line) */
  readonly noise: string[] = [];

  constructor(private stream: ByteStream) {
    stream.onData((chunk) => this.onData(chunk.toString("utf8")));
    stream.onClose((err) => this.onClose(err));
  }

  static async unix(path: string, timeoutMs?: number): Promise<RpcClient> {
    return new RpcClient(await connectUnix(path, timeoutMs));
  }

  private onData(text: string) {
    this.buffer += text;
    let nl: number;
    while ((nl = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, "");
      this.buffer = this.buffer.slice(nl + 1);
      if (line.trim()) this.onLine(line);
    }
  }

  private onLine(line: string) {
    let msg: any;
    try {
      msg = JSON.parse(line);
    } catch {
      this.noise.push(line);
      return;
    }
    for (const m of Array.isArray(msg) ? msg : [msg]) this.onMessage(m);
  }

  private onMessage(msg: any) {
    if (msg === null || typeof msg !== "object" || msg.jsonrpc !== "2.0") {
      this.noise.push(JSON.stringify(msg));
      return;
    }
    if (typeof msg.method === "string") {
      if (msg.id === undefined) for (const l of this.listeners) l({ method: msg.method, params: msg.params });
      // A request with an id is never a reply: on a serial line that is not yet
      // in raw mode it is our own call echoed back, and must not settle it.
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error) p.reject(new RpcError(msg.error.code, msg.error.message, msg.error.data));
    else p.resolve(msg.result);
  }

  private onClose(err?: Error) {
    if (this.closed) return;
    this.closed = true;
    const e = new ConnectionLost(err);
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    for (const l of this.closeListeners) l(err);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  call<T = any>(method: string, params: unknown = {}, opts: CallOptions = {}): Promise<T> {
    if (this.closed) return Promise.reject(new ConnectionLost());
    if (opts.signal?.aborted) return Promise.reject(new Error(`${method}: aborted`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => forget(new Error(`${method}: aborted`));
      const done = () => {
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
      };
      const forget = (e: Error) => {
        if (!this.pending.delete(id)) return;
        done();
        reject(e);
      };
      this.pending.set(id, {
        resolve: (v) => (done(), resolve(v)),
        reject: (e) => (done(), reject(e)),
      });
      if (opts.timeoutMs !== undefined)
        timer = setTimeout(
          () => forget(new Error(`no answer to ${method} within ${opts.timeoutMs} ms`)),
          opts.timeoutMs,
        );
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      this.stream.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
    });
  }

  notify(method: string, params: unknown = {}): void {
    this.stream.write(JSON.stringify({ jsonrpc: "2.0", method, params }) + "\n");
  }

  /** raw bytes, for protocol tests */
  sendRaw(data: string): void {
    this.stream.write(data);
  }

  onNotification(cb: (n: Notification) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** told once when the connection closes (err: why, if it broke) */
  onClosed(cb: (err?: Error) => void): () => void {
    this.closeListeners.add(cb);
    return () => this.closeListeners.delete(cb);
  }

  /** resolves with the first notification of that method (optionally matching a predicate) */
  waitFor(method: string, timeoutMs = 10_000, match: (params: any) => boolean = () => true): Promise<any> {
    const i = this.backlog.findIndex((n) => n.method === method && match(n.params));
    if (i >= 0) return Promise.resolve(this.backlog.splice(i, 1)[0]!.params);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no ${method} notification within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onNotification((n) => {
        if (n.method === method && match(n.params)) {
          const j = this.backlog.indexOf(n);
          if (j >= 0) this.backlog.splice(j, 1);
          clearTimeout(timer);
          off();
          resolve(n.params);
        }
      });
    });
  }

  close(): void {
    this.stream.close();
    this.onClose();
  }
}
