// Transports: each turns a byte stream into RpcServer.attach() calls.
// unix:PATH (many clients), stdio (one), tty:/dev/X (the serial console).
import { closeSync, createReadStream, createWriteStream, openSync, constants as fsc, rmSync, chmodSync, existsSync, lstatSync } from "node:fs";
import type { Logger } from "pino";
import type { RpcServer } from "./server.ts";

export interface Listener {
  describe: string;
  close(): void;
}

export type ListenSpec = { kind: "unix"; path: string } | { kind: "stdio" } | { kind: "tty"; device: string; baud?: number };

export function parseListen(text: string): ListenSpec {
  if (text === "stdio") return { kind: "stdio" };
  if (text.startsWith("unix:") && text.length > 5) return { kind: "unix", path: text.slice(5) };
  if (text.startsWith("tty:") && text.length > 4) {
    const [device, baud] = text.slice(4).split("@");
    return { kind: "tty", device: device!, baud: baud ? Number(baud) : undefined };
  }
  throw new Error(`--listen: expected unix:PATH, stdio or tty:/dev/NAME, got "${text}"`);
}

export async function listen(spec: ListenSpec, server: RpcServer, log: Logger): Promise<Listener> {
  switch (spec.kind) {
    case "unix":
      return listenUnix(spec.path, server, log);
    case "stdio":
      return listenStdio(server, log);
    case "tty":
      return listenTty(spec.device, spec.baud, server, log);
  }
}

type SocketState = { conn: ReturnType<RpcServer["attach"]>; queue: Buffer[] };

function listenUnix(path: string, server: RpcServer, log: Logger): Listener {
  if (existsSync(path) && lstatSync(path).isSocket()) rmSync(path);
  const flush = (socket: Bun.Socket<SocketState>) => {
    const q = socket.data.queue;
    while (q.length) {
      const head = q[0]!;
      const n = socket.write(head);
      if (n < head.length) {
        q[0] = head.subarray(Math.max(n, 0));
        return;
      }
      q.shift();
    }
  };
  const listener = Bun.listen<SocketState>({
    unix: path,
    socket: {
      open(socket) {
        socket.data = { queue: [], conn: undefined as any };
        socket.data.conn = server.attach("unix", {
          write(text) {
            socket.data.queue.push(Buffer.from(text));
            if (socket.data.queue.length === 1) flush(socket);
          },
        });
      },
      data(socket, data) {
        socket.data.conn.feed(data);
      },
      drain(socket) {
        flush(socket);
      },
      close(socket) {
        socket.data.conn?.close();
      },
      error(socket, err) {
        log.warn({ err }, "unix socket error");
        socket.data.conn?.close();
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

function listenStdio(server: RpcServer, log: Logger): Listener {
  const conn = server.attach("stdio", { write: (text) => void process.stdout.write(text) });
  process.stdin.on("data", (d: Buffer) => conn.feed(d));
  process.stdin.on("end", () => conn.close());
  process.stdin.on("error", (err) => log.warn({ err }, "stdin error"));
  return { describe: "stdio", close: () => conn.close() };
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
  const conn = server.attach("tty", { write: (text) => void out.write(text) });
  const input = createReadStream("", { fd, autoClose: false, highWaterMark: 64 * 1024 });
  input.on("data", (d) => conn.feed(d as Buffer));
  input.on("error", (err) => log.warn({ err, device }, "tty read error"));
  return {
    describe: `tty:${device}`,
    close() {
      conn.close();
      input.destroy();
      try {
        closeSync(fd);
      } catch {}
    },
  };
}
