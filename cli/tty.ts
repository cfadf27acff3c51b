// A real serial device (a USB serial adapter to an aaOS machine) as a
// ByteStream. The line is put into raw mode with the kernel's own termios
// code, so that both ends agree: no echo, no line editing, no 4095-byte cut.
import { closeSync, constants, openSync, writeSync } from "node:fs";
import { ReadStream } from "node:tty";
import { setRawMode } from "../kernel/sys/termios.ts";
import type { ByteStream } from "./client.ts";
import { unreachable } from "./exit.ts";

/**
 * Raw mode at `baud` with the kernel's own termios code (bun:ffi to libc).
 * Where that cannot load (an operator's machine without glibc), stty does
 * the same job.
 */
function rawMode(fd: number, baud: number): void {
  try {
    setRawMode(fd, baud);
  } catch (ffiError) {
    try {
      sttyRawMode(fd, baud);
    } catch {
      throw ffiError;
    }
  }
}

/** the fallback: stty on the device as our stdin */
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
    throw unreachable(
      `cannot open ${path}: ${err.code ?? err.message}`,
      "is the device plugged in, and may you read and write it (group dialout)?",
    );
  }
  try {
    rawMode(fd, baud);
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
      for (let off = 0; off < buf.length;) {
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
