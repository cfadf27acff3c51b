// A real serial device (a USB serial adapter to an aaOS machine) as a
// ByteStream. The line is put into raw mode with the kernel's own termios
// code, so that both ends agree: no echo, no line editing, no 4095-byte cut.
import { closeSync, constants, openSync, writeSync } from "node:fs";
import { ReadStream } from "node:tty";
import type { ByteStream } from "./client.ts";
import { unreachable } from "./exit.ts";

type SetRawMode = (fd: number, baud: number) => unknown;

/** the kernel's setRawMode (kernel/sys/termios.ts); stty only if that module is absent */
async function loadSetRawMode(): Promise<SetRawMode> {
  try {
    // a variable specifier: this copy may predate kernel/sys/termios.ts
    const path = "../kernel/sys/termios.ts";
    const mod: { setRawMode?: SetRawMode } = await import(path);
    if (typeof mod.setRawMode === "function") return mod.setRawMode;
  } catch {
    // not built into this copy: fall through
  }
  return sttyRawMode;
}

/** fallback for a checkout without kernel/sys/termios.ts: the operator's machine has stty */
function sttyRawMode(fd: number, baud: number): void {
  const r = Bun.spawnSync(["stty", "raw", "-echo", "-ixon", "-ixoff", "clocal", String(baud)], {
    stdin: fd,
    stdout: "ignore",
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`stty: ${r.stderr.toString().trim()}`);
}

export async function openTty(path: string, baud: number): Promise<ByteStream> {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw unreachable(`cannot open ${path}: ${err.code ?? err.message}`, "is the device plugged in, and may you read and write it (group dialout)?");
  }
  try {
    const setRawMode = await loadSetRawMode();
    setRawMode(fd, baud);
  } catch (e) {
    closeSync(fd);
    throw unreachable(`cannot set ${path} to raw mode at ${baud} baud: ${(e as Error).message}`);
  }
  // tty.ReadStream polls the fd instead of parking a thread in read(2), so
  // closing it lets the process exit.
  const input = new ReadStream(fd);
  let closed = false;
  const closers: ((err?: Error) => void)[] = [];
  const finish = (err?: Error) => {
    if (closed) return;
    closed = true;
    for (const c of closers) c(err);
  };
  input.on("close", () => finish());
  input.on("error", (e) => finish(e));
  return {
    write: (data) => {
      if (closed) return;
      const buf = Buffer.from(data, "utf8");
      for (let off = 0; off < buf.length; ) {
        try {
          off += writeSync(fd, buf, off);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "EAGAIN") continue;
          finish(e as Error);
          return;
        }
      }
    },
    onData: (cb) => void input.on("data", (d: Buffer | string) => cb(typeof d === "string" ? Buffer.from(d) : d)),
    onClose: (cb) => void closers.push(cb),
    close: () => {
      input.destroy();
      finish();
    },
  };
}
