// The init syscalls' shared door to glibc (bun:ffi): one dlopen of libc.so.6,
// errno after a failed call, and NUL-terminated C strings. Used by
// termios.ts, mount.ts, reboot.ts, net.ts, clock.ts and proc.ts (init/ and aaosctl).
import { dlopen, read, type FFIFunction, type Pointer } from "bun:ffi";

const symbols = {
  __errno_location: { args: [], returns: "ptr" },
  strerror: { args: ["i32"], returns: "cstring" },
  // termios
  tcgetattr: { args: ["i32", "ptr"], returns: "i32" },
  tcsetattr: { args: ["i32", "i32", "ptr"], returns: "i32" },
  cfmakeraw: { args: ["ptr"], returns: "void" },
  cfsetispeed: { args: ["ptr", "u32"], returns: "i32" },
  cfsetospeed: { args: ["ptr", "u32"], returns: "i32" },
  tcflush: { args: ["i32", "i32"], returns: "i32" },
  isatty: { args: ["i32"], returns: "i32" },
  // mounts and power
  mount: { args: ["ptr", "ptr", "ptr", "u64", "ptr"], returns: "i32" },
  umount2: { args: ["ptr", "i32"], returns: "i32" },
  sync: { args: [], returns: "void" },
  syncfs: { args: ["i32"], returns: "i32" },
  reboot: { args: ["i32"], returns: "i32" },
  klogctl: { args: ["i32", "ptr", "i32"], returns: "i32" },
  // processes
  waitpid: { args: ["i32", "ptr", "i32"], returns: "i32" },
  // sockets
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: "i64" },
  recvfrom: { args: ["i32", "ptr", "u64", "i32", "ptr", "ptr"], returns: "i64" },
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  // the clock (init/time.ts)
  clock_settime: { args: ["i32", "ptr"], returns: "i32" },
  adjtime: { args: ["ptr", "ptr"], returns: "i32" },
} satisfies Record<string, FFIFunction>;

let lib: ReturnType<typeof dlopen<typeof symbols>> | null = null;

/** glibc's functions; throws (once per call) if libc.so.6 cannot be opened. */
export function libc() {
  lib ??= dlopen("libc.so.6", symbols);
  return lib.symbols;
}

export function errno(): number {
  return read.i32(libc().__errno_location() as Pointer, 0);
}

export class SysError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
    detail?: string,
  ) {
    super(`${call}${detail ? ` ${detail}` : ""}: ${String(libc().strerror(errno))} (errno ${errno})`);
    this.name = "SysError";
  }
}

/** Throw SysError when a libc call returned -1 (read errno right away). */
export function check(call: string, rc: number | bigint, detail?: string): number {
  if (Number(rc) < 0) throw new SysError(call, errno(), detail);
  return Number(rc);
}

/** A NUL-terminated copy of s, for a `ptr` argument. */
export function cstr(s: string): Buffer {
  return Buffer.from(s + "\0", "utf8");
}
