// Transports: each turns a byte stream into RpcServer.attach() calls.
// unix:PATH (many clients), stdio (one), tty:/dev/X (the serial console).
import {
  closeSync,
  createReadStream,
  createWriteStream,
  openSync,
  constants as fsc,
  rmSync,
  chmodSync,
  existsSync,
  lstatSync,
} from "node:fs";
import type { Logger } from "pino";
import type { Peer, PeerIO, RpcServer } from "./server.ts";

export interface Listener {
  describe: string;
  close(): void;
}

export type ListenSpec =
  | { kind: "unix"; path: string }
  | { kind: "stdio" }
  | { kind: "tty"; device: string; baud?: number }
  | { kind: "http"; hostname: string; port: number };

/** HOST:PORT (IPv6 in brackets) → the parts, or null */
export function parseHostPort(text: string): { hostname: string; port: number } | null {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { hostname: m[1]!.replace(/^\[|\]$/g, ""), port };
}

export function parseListen(text: string): ListenSpec {
  if (text === "stdio") return { kind: "stdio" };
  if (text.startsWith("http:")) {
    const hp = parseHostPort(text.slice(5));
    if (!hp) throw new Error(`--listen http: expected http:HOST:PORT (e.g. http:127.0.0.1:8080), got "${text}"`);
    return { kind: "http", ...hp };
  }
  if (text.startsWith("unix:") && text.length > 5) return { kind: "unix", path: text.slice(5) };
  if (text.startsWith("tty:") && text.length > 4) {
    const [device, baud] = text.slice(4).split("@");
    return { kind: "tty", device: device!, baud: baud ? Number(baud) : undefined };
  }
  throw new Error(`--listen: expected unix:PATH, http:HOST:PORT, stdio or tty:/dev/NAME, got "${text}"`);
}

export async function listen(spec: ListenSpec, server: RpcServer, log: Logger): Promise<Listener> {
  switch (spec.kind) {
    case "unix":
      return listenUnix(spec.path, server, log);
    case "stdio":
      return listenStdio(server, log);
    case "tty":
      return listenTty(spec.device, spec.baud, server, log);
    case "http":
      // the dashboard's listener needs its tokens and sessions: kernel/web starts it
      throw new Error("an http listener is started by kernel/web (startWeb), not by listen()");
  }
}

/**
 * Output the peer has not taken yet. Messages are kept as the strings they
 * are and handed out joined, up to 64 KiB at a time, so a peer that reads
 * slowly costs its bytes, not an object (or a pending write) per reply.
 */
export class OutputQueue {
  private parts: string[] = [];
  private first = 0;
  private head: Buffer | null = null;
  /** bytes queued */
  bytes = 0;

  push(text: string): void {
    if (text === "") return;
    this.parts.push(text);
    this.bytes += Buffer.byteLength(text);
  }

  /** the next chunk of output (taken off the queue), or null when it is empty */
  shift(): Buffer | null {
    let chunk = this.head;
    this.head = null;
    if (!chunk) {
      if (this.first === this.parts.length) return null;
      let end = this.first;
      let chars = 0;
      while (end < this.parts.length && (end === this.first || chars < 64 * 1024)) chars += this.parts[end++]!.length;
      chunk = Buffer.from(this.parts.slice(this.first, end).join(""));
      this.first = end;
      if (this.first === this.parts.length) {
        this.parts = [];
        this.first = 0;
      } else if (this.first > 4096 && this.first * 2 > this.parts.length) {
        this.parts = this.parts.slice(this.first);
        this.first = 0;
      }
    }
    this.bytes -= chunk.length;
    return chunk;
  }

  /** put back the part of a chunk a write did not take */
  unshift(rest: Buffer): void {
    if (rest.length === 0) return;
    this.head = rest;
    this.bytes += rest.length;
  }

  clear(): void {
    this.parts = [];
    this.first = 0;
    this.head = null;
    this.bytes = 0;
  }
}

type SocketState = { peer: Peer; out: OutputQueue; ending: boolean; ended: boolean };

// allowHalfOpen: a client's shutdown(SHUT_WR) (`echo … | socat`) ends its
// input only; it is answered, then we end our side (PeerIO.end).
function listenUnix(path: string, server: RpcServer, log: Logger): Listener {
  if (existsSync(path) && lstatSync(path).isSocket()) rmSync(path);
  const flush = (socket: Bun.Socket<SocketState>) => {
    const st = socket.data;
    for (let chunk; (chunk = st.out.shift());) {
      const n = Math.max(socket.write(chunk), 0);
      if (n < chunk.length) return st.out.unshift(chunk.subarray(n));
    }
    if (st.ending && !st.ended) {
      st.ended = true;
      socket.end();
    }
  };
  const listener = Bun.listen<SocketState>({
    unix: path,
    allowHalfOpen: true,
    socket: {
      open(socket) {
        const out = new OutputQueue();
        socket.data = { out, ending: false, ended: false, peer: undefined as unknown as Peer };
        // replies settled in one turn (a group commit resolves many at once) leave in one write
        let scheduled = false;
        const flushSoon = () => {
          scheduled = false;
          flush(socket);
          // what waited for these bytes to be taken (afterReply) runs now, as it would on a drain
          if (out.bytes === 0) socket.data.peer.drained();
        };
        socket.data.peer = server.attach("unix", {
          write(text) {
            const wasEmpty = out.bytes === 0;
            out.push(text);
            if (wasEmpty && !scheduled) {
              scheduled = true;
              setImmediate(flushSoon);
            }
          },
          unsent: () => out.bytes,
          pause: () => socket.pause(),
          resume: () => socket.resume(),
          end() {
            socket.data.ending = true;
            flush(socket);
          },
          destroy() {
            out.clear();
            socket.terminate();
          },
        });
      },
      data(socket, data) {
        socket.data.peer.feed(data);
      },
      end(socket) {
        socket.data.peer.endInput();
      },
      drain(socket) {
        flush(socket);
        socket.data.peer.drained();
      },
      close(socket) {
        socket.data.peer?.close();
      },
      error(socket, err) {
        log.warn({ err, conn: socket.data.peer?.conn.id }, "unix socket error");
        socket.data.peer?.close();
      },
    },
  });
  chmodSync(path, 0o600);
  return {
    describe: `unix:${path}`,
    close() {
      listener.stop(true);
      rmSync(path, { force: true });
    },
  };
}

/**
 * PeerIO over a Node-style writable, one chunk in flight at a time. Bun's
 * stdout keeps what the pipe would not take without showing it in
 * writableLength, so the chunk counts as unsent until its write callback.
 */
function streamIO(
  out: NodeJS.WritableStream,
  input: NodeJS.ReadableStream,
  hooks: { peer: () => Peer | null; onEnd: () => void; onDestroy: () => void },
): PeerIO {
  const queue = new OutputQueue();
  let writing = 0;
  let ending = false;
  const next = () => {
    if (writing) return;
    const chunk = queue.shift();
    if (!chunk) {
      if (ending) {
        ending = false;
        hooks.onEnd();
      }
      return;
    }
    writing = chunk.length;
    out.write(chunk, () => {
      writing = 0;
      next();
      hooks.peer()?.drained();
    });
  };
  return {
    write(text) {
      queue.push(text);
      next();
    },
    unsent: () => queue.bytes + writing,
    pause: () => void input.pause(),
    resume: () => void input.resume(),
    end() {
      ending = true;
      next();
    },
    destroy() {
      queue.clear();
      hooks.onDestroy();
    },
  };
}

function listenStdio(server: RpcServer, log: Logger): Listener {
  let peer: Peer | null = null;
  const io = streamIO(process.stdout, process.stdin, {
    peer: () => peer,
    // stdin ended and every reply is on stdout: the connection closes; the kernel goes on
    onEnd: () => peer?.close(),
    onDestroy: () => process.stdin.pause(),
  });
  peer = server.attach("stdio", io);
  process.stdin.on("data", (d: Buffer) => peer.feed(d));
  process.stdin.on("end", () => peer.endInput());
  process.stdin.on("error", (err) => log.warn({ err }, "stdin error"));
  return { describe: "stdio", close: () => peer.close() };
}

async function listenTty(device: string, baud: number | undefined, server: RpcServer, log: Logger): Promise<Listener> {
  const fd = openSync(device, fsc.O_RDWR | fsc.O_NOCTTY);
  try {
    const { setRawMode } = await import("../sys/termios.ts");
    setRawMode(fd, baud);
  } catch (err) {
    // a pipe or a pty in a test is not always a real tty; say so and go on
    log.warn({ err, device }, "could not put the RPC tty into raw mode");
  }
  const out = createWriteStream("", { fd, autoClose: false });
  out.on("error", (err) => log.warn({ err, device }, "tty write error"));
  const input = createReadStream("", { fd, autoClose: false, highWaterMark: 64 * 1024 });
  let peer: Peer | null = null;
  const io = streamIO(out, input, {
    peer: () => peer,
    onEnd: () => {
      log.warn({ device }, "RPC tty input ended (EOF or hang-up); replies written, connection closed");
      peer?.close();
    },
    onDestroy: () => void input.pause(),
  });
  peer = server.attach("tty", io);
  input.on("data", (d) => peer.feed(d as Buffer));
  input.on("end", () => peer.endInput());
  input.on("error", (err) => {
    // EIO on a hung-up line: no more input, but what was asked is still answered
    log.warn({ err, device }, "tty read error");
    peer.endInput();
  });
  return {
    describe: `tty:${device}`,
    close() {
      peer.close();
      input.destroy();
      try {
        closeSync(fd);
      } catch {}
    },
  };
}
