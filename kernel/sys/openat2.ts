// Opening files beneath a granted root so that neither a symlink nor `..`
// can lead outside it: openat2(2) with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS
// through bun:ffi (raw syscall 437; glibc has no wrapper), and, where the
// kernel lacks openat2 (ENOSYS, Linux < 5.6), a component-by-component walk
// with openat(O_NOFOLLOW|O_DIRECTORY) that refuses the same things.
//
// Also the *at calls the file tools need on those fds: renameAt and unlinkAt
// (single names, nothing resolved), and statx with st_nlink, so a tool can
// refuse a regular file with more than one hard link (hardLinkRefused).
//
// Everything here is synchronous and works on raw fds the caller must close.
// Errors are KernelErrors a person can act on; ELOOP/EXDEV from the resolve
// flags (a symlink, or an escape) become "capability denied".
import { dlopen, ptr, read as readPtr } from "bun:ffi";
import { capabilityDenied, ErrorCode, invalidParams, KernelError } from "../errors.ts";

// ---- constants (x86_64 / generic Linux) ----------------------------------

export const O_RDONLY = 0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;
export const O_TMPFILE = 0o20200000;

export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_EMPTY_PATH = 0x1000;
const STATX_TYPE = 0x1;
const STATX_MODE = 0x2;
const STATX_NLINK = 0x4;
const STATX_INO = 0x100;
const STATX_SIZE = 0x200;

const SYS_getdents64 = 217;
const SYS_statx = 332;
const SYS_openat2 = 437;

export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EMFILE: 24,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  EDQUOT: 122,
} as const;
const ERRNO_NAME = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));
const ERRNO_TEXT: Record<string, string> = {
  EPERM: "operation not permitted",
  ENOENT: "no such file or directory",
  EIO: "input/output error",
  ENXIO: "no such device or address",
  EACCES: "permission denied",
  EEXIST: "already exists",
  EXDEV: "would leave the granted directory",
  ENOTDIR: "a component of the path is not a directory",
  EISDIR: "is a directory",
  EINVAL: "invalid argument",
  EMFILE: "too many open files",
  EFBIG: "file too large",
  ENOSPC: "no space left on device",
  EROFS: "read-only file system",
  ENAMETOOLONG: "file name too long",
  ENOSYS: "not supported by this kernel",
  ELOOP: "is or passes through a symbolic link",
  EDQUOT: "disk quota exceeded",
};

// ---- libc ----------------------------------------------------------------

const libc = dlopen("libc.so.6", {
  syscall: { args: ["i64", "i64", "i64", "i64", "i64", "i64"], returns: "i64" },
  __errno_location: { args: [], returns: "ptr" },
  openat: { args: ["i32", "ptr", "i32", "u32"], returns: "i32" },
  mkdirat: { args: ["i32", "ptr", "u32"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: "i64" },
  write: { args: ["i32", "ptr", "u64"], returns: "i64" },
  close: { args: ["i32"], returns: "i32" },
  fsync: { args: ["i32"], returns: "i32" },
  fchmod: { args: ["i32", "u32"], returns: "i32" },
  renameat: { args: ["i32", "ptr", "i32", "ptr"], returns: "i32" },
  unlinkat: { args: ["i32", "ptr", "i32"], returns: "i32" },
});
const sym = libc.symbols;

function errno(): number {
  return readPtr.i32(sym.__errno_location()!, 0);
}

/** a failed system call: errno and its name, before it becomes a KernelError */
export class SysError extends Error {
  constructor(
    readonly errno: number,
    readonly op: string,
    readonly path: string,
  ) {
    const name = ERRNO_NAME.get(errno) ?? `errno ${errno}`;
    super(`${op} ${path}: ${ERRNO_TEXT[name] ?? name} (${name})`);
    this.name = "SysError";
  }
  get code(): string {
    return ERRNO_NAME.get(this.errno) ?? `E${this.errno}`;
  }
}

function cstr(s: string): Buffer {
  if (s.includes("\0")) throw invalidParams("path contains a NUL byte", { path: s.replace(/\0/g, "\\0") });
  return Buffer.from(s + "\0", "utf8");
}

/** retry on EINTR; -1 → SysError */
function sys(op: string, path: string, call: () => number | bigint): number {
  for (;;) {
    const r = Number(call());
    if (r >= 0) return r;
    const e = errno();
    if (e === Errno.EINTR) continue;
    throw new SysError(e, op, path);
  }
}

// ---- openat2 and its fallback ---------------------------------------------

let openat2Missing = process.env.AAOS_NO_OPENAT2 === "1";

/** test hook: force the component walk (as on a kernel without openat2) */
export function setOpenat2Disabled(disabled: boolean): void {
  openat2Missing = disabled;
}

function rawOpenat2(dirFd: number, path: string, flags: number, mode: number, resolve: number): number {
  const p = cstr(path);
  // struct open_how { u64 flags; u64 mode; u64 resolve; }
  const how = new BigUint64Array([
    BigInt(flags),
    BigInt(flags & O_CREAT || (flags & O_TMPFILE) === O_TMPFILE ? mode : 0),
    BigInt(resolve),
  ]);
  return sys("openat2", path, () => sym.syscall(SYS_openat2, dirFd, ptr(p), ptr(how), 24, 0));
}

/** split a relative path into components; refuses "", ".", ".." and absolute paths */
function components(rel: string): string[] {
  if (rel.startsWith("/")) throw invalidParams(`"${rel}" must be relative to the granted root`);
  const parts = rel.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.includes("..")) throw new SysError(Errno.EXDEV, "open", rel);
  return parts;
}

/**
 * The fallback walk: every component opened with O_NOFOLLOW (directories
 * as O_PATH|O_DIRECTORY|O_NOFOLLOW), and the fd checked with fstat, so a
 * symlink anywhere is refused without a check-then-open race. `..` never
 * reaches here (components() refuses it).
 */
function walkOpen(dirFd: number, rel: string, flags: number, mode: number): number {
  const parts = components(rel);
  if (parts.length === 0) return sys("openat", rel, () => sym.openat(dirFd, cstr("."), flags | O_CLOEXEC, mode));
  let cur = dirFd;
  try {
    for (let i = 0; i < parts.length - 1; i++) {
      const next = openOneNoFollow(cur, parts[i]!, O_PATH | O_DIRECTORY, 0, rel);
      if (cur !== dirFd) close(cur);
      cur = next;
    }
    return openOneNoFollow(cur, parts[parts.length - 1]!, flags, mode, rel);
  } finally {
    if (cur !== dirFd) close(cur);
  }
}

function openOneNoFollow(dirFd: number, name: string, flags: number, mode: number, rel: string): number {
  let fd: number;
  try {
    fd = sys("openat", rel, () => sym.openat(dirFd, cstr(name), flags | O_NOFOLLOW | O_CLOEXEC, mode));
  } catch (e) {
    // O_DIRECTORY|O_NOFOLLOW on a symlink reports ENOTDIR: call it what it is
    if (e instanceof SysError && e.errno === Errno.ENOTDIR && isSymlinkAt(dirFd, name))
      throw new SysError(Errno.ELOOP, "openat", rel);
    throw e;
  }
  // O_PATH|O_NOFOLLOW hands back the symlink itself rather than failing
  if (flags & O_PATH && fstat(fd).type === "symlink") {
    close(fd);
    throw new SysError(Errno.ELOOP, "openat", rel);
  }
  return fd;
}

function isSymlinkAt(dirFd: number, name: string): boolean {
  try {
    return statAt(dirFd, name).type === "symlink";
  } catch {
    return false;
  }
}

/**
 * Open rel beneath the directory dirFd: no symlink anywhere (even the last
 * component), no `..`, no absolute path, no magic links. Returns an fd.
 */
export function openAtBeneath(dirFd: number, rel: string, flags: number, mode = 0): number {
  if (!openat2Missing) {
    try {
      return rawOpenat2(
        dirFd,
        rel === "" ? "." : rel,
        flags | O_CLOEXEC,
        mode,
        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
      );
    } catch (e) {
      if (!(e instanceof SysError) || e.errno !== Errno.ENOSYS) throw e;
      openat2Missing = true;
    }
  }
  return walkOpen(dirFd, rel, flags, mode);
}

/** open an absolute directory path with no symlink anywhere in it (O_PATH unless flags say otherwise) */
export function openDirNoSymlinks(absDir: string, flags = O_PATH | O_DIRECTORY): number {
  if (!absDir.startsWith("/")) throw invalidParams(`"${absDir}" is not absolute`);
  const rootFd = sys("openat", "/", () => sym.openat(AT_FDCWD, cstr("/"), O_PATH | O_DIRECTORY | O_CLOEXEC, 0));
  try {
    return openAtBeneath(rootFd, absDir.slice(1), flags | O_DIRECTORY);
  } finally {
    close(rootFd);
  }
}

export interface ErrorContext {
  /** tool name for the capability-denied data */
  tool?: string;
  /** the capability the agent would need, for the data */
  capability?: string;
  /** the path as the agent wrote it, for messages */
  path?: string;
}

/** turn a SysError into a KernelError a person can act on */
export function toKernelError(e: unknown, ctx: ErrorContext = {}): unknown {
  if (!(e instanceof SysError)) return e;
  const where = ctx.path ?? e.path;
  if (e.errno === Errno.ELOOP || e.errno === Errno.EXDEV) {
    const err = capabilityDenied(ctx.tool ?? "", ctx.capability ?? "", "symlink or escape refused");
    err.message = `capability denied: symlink or escape refused (${where} ${ERRNO_TEXT[e.code]})`;
    return err;
  }
  const text = ERRNO_TEXT[e.code] ?? e.code;
  const data = { path: where, errno: e.code };
  switch (e.errno) {
    case Errno.ENOENT:
    case Errno.ENOTDIR:
    case Errno.EISDIR:
    case Errno.EEXIST:
    case Errno.ENAMETOOLONG:
    case Errno.ENOTEMPTY:
      return new KernelError(ErrorCode.InvalidParams, `${where}: ${text}`, data);
    default:
      return new KernelError(ErrorCode.InternalError, `${where}: ${text} (${e.code})`, data);
  }
}

/** why a regular file with more than one hard link is refused (docs/manifests.md) */
export const HARD_LINK_REASON =
  "a file with more than one hard link is refused, because the other name may lie outside the grant";

/**
 * the error for a regular file with st_nlink > 1: -32001, naming the path and
 * why (its other name may lie outside the grant, and writing or reading
 * through this one would reach that file)
 */
export function hardLinkRefused(nlink: number, ctx: ErrorContext = {}): KernelError {
  const err = capabilityDenied(ctx.tool ?? "", ctx.capability ?? "", HARD_LINK_REASON);
  err.message = `capability denied: ${ctx.path ?? "the file"} has ${nlink} hard links; ${HARD_LINK_REASON}`;
  if (ctx.path !== undefined) (err.data as Record<string, unknown>).path = ctx.path;
  (err.data as Record<string, unknown>).nlink = nlink;
  return err;
}

/**
 * Open relPath beneath the absolute directory root. The root itself is
 * reached with no symlink in it either. Throws KernelErrors (a symlink or an
 * escape: -32001 "symlink or escape refused").
 */
export function openBeneath(root: string, relPath: string, flags: number, mode = 0, ctx: ErrorContext = {}): number {
  try {
    const rootFd = openDirNoSymlinks(root);
    try {
      return openAtBeneath(rootFd, relPath, flags, mode);
    } finally {
      close(rootFd);
    }
  } catch (e) {
    throw toKernelError(e, { path: joinPath(root, relPath), ...ctx });
  }
}

function joinPath(root: string, rel: string): string {
  return rel === "" || rel === "." ? root : root.endsWith("/") ? root + rel : `${root}/${rel}`;
}

/**
 * Make every missing directory of relDir beneath dirFd, one component at a
 * time (mkdirat, then open it with no symlink allowed: a directory swapped
 * for a symlink between the two steps is refused). Returns an O_PATH fd of
 * the last directory (dirFd itself duplicated when relDir is empty) and the
 * names it created.
 */
export function mkdirsBeneath(dirFd: number, relDir: string, mode = 0o755): { fd: number; created: string[] } {
  const parts = components(relDir);
  const created: string[] = [];
  let cur = openAtBeneath(dirFd, ".", O_PATH | O_DIRECTORY);
  try {
    for (const name of parts) {
      let next: number | undefined;
      for (let attempt = 0; next === undefined; attempt++) {
        try {
          next = openAtBeneath(cur, name, O_PATH | O_DIRECTORY);
        } catch (e) {
          if (!(e instanceof SysError) || e.errno !== Errno.ENOENT || attempt > 2) throw e;
          try {
            sys("mkdirat", name, () => sym.mkdirat(cur, cstr(name), mode));
            created.push(name);
          } catch (m) {
            if (!(m instanceof SysError) || m.errno !== Errno.EEXIST) throw m;
          }
        }
      }
      close(cur);
      cur = next;
    }
    const fd = cur;
    cur = -1;
    return { fd, created };
  } finally {
    if (cur >= 0) close(cur);
  }
}

// ---- fd operations ---------------------------------------------------------

export function close(fd: number): void {
  sym.close(fd); // never retried: on Linux the fd is gone even on EINTR
}

export function fsync(fd: number): void {
  sys("fsync", `fd ${fd}`, () => sym.fsync(fd));
}

/** fsync of a directory fd (O_PATH ones included): what was created, renamed or removed in it is durable */
export function fsyncDir(dirFd: number): void {
  const d = openAtBeneath(dirFd, ".", O_RDONLY | O_DIRECTORY);
  try {
    fsync(d);
  } finally {
    close(d);
  }
}

export function fchmod(fd: number, mode: number): void {
  sys("fchmod", `fd ${fd}`, () => sym.fchmod(fd, mode));
}

/** a single name inside a directory fd: no `/`, not "", "." or ".." (so *at calls resolve nothing) */
function oneName(name: string, op: string): Buffer {
  if (name === "" || name === "." || name === ".." || name.includes("/"))
    throw invalidParams(`${op}: "${name}" is not a single file name`);
  return cstr(name);
}

/**
 * rename one name to another inside directory fds (O_PATH fds will do).
 * Names are single components, so nothing is resolved: a symlink at `to`
 * is replaced, never followed; a hard-linked `to` loses this name only.
 */
export function renameAt(fromDirFd: number, from: string, toDirFd: number, to: string): void {
  const a = oneName(from, "renameat");
  const b = oneName(to, "renameat");
  sys("renameat", to, () => sym.renameat(fromDirFd, a, toDirFd, b));
}

const AT_REMOVEDIR = 0x200;

/** remove one name (a file; a directory with dir: true) inside a directory fd */
export function unlinkAt(dirFd: number, name: string, opts: { dir?: boolean } = {}): void {
  const n = oneName(name, "unlinkat");
  sys("unlinkat", name, () => sym.unlinkat(dirFd, n, opts.dir ? AT_REMOVEDIR : 0));
}

/** read up to max bytes; truncated when the file had more */
export function readUpTo(fd: number, max: number): { data: Uint8Array; truncated: boolean } {
  const buf = new Uint8Array(max + 1);
  let n = 0;
  while (n < buf.length) {
    const got = sys("read", `fd ${fd}`, () => sym.read(fd, ptr(buf, n), buf.length - n));
    if (got === 0) break;
    n += got;
  }
  return { data: buf.subarray(0, Math.min(n, max)), truncated: n > max };
}

export function writeAll(fd: number, data: Uint8Array): number {
  let n = 0;
  while (n < data.length) {
    n += sys("write", `fd ${fd}`, () => sym.write(fd, ptr(data, n), data.length - n));
  }
  return n;
}

export type FileType = "file" | "dir" | "symlink" | "other";
export interface StatInfo {
  type: FileType;
  size: number;
  /** permission bits (mode & 0o7777) */
  mode: number;
  /** hard links to the inode (a regular file with more than one may have a name outside the grant) */
  nlink: number;
  ino: bigint;
}

function typeOf(mode: number): FileType {
  switch (mode & 0o170000) {
    case 0o100000:
      return "file";
    case 0o040000:
      return "dir";
    case 0o120000:
      return "symlink";
    default:
      return "other";
  }
}

function statx(dirFd: number, name: string, flags: number): StatInfo {
  const p = cstr(name);
  const buf = new Uint8Array(256); // struct statx
  sys("statx", name || `fd ${dirFd}`, () =>
    sym.syscall(
      SYS_statx,
      dirFd,
      ptr(p),
      flags,
      STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_INO | STATX_SIZE,
      ptr(buf),
      0,
    ),
  );
  const v = new DataView(buf.buffer);
  const nlink = v.getUint32(16, true); // stx_nlink
  const mode = v.getUint16(28, true); // stx_mode
  const ino = v.getBigUint64(32, true); // stx_ino
  const size = Number(v.getBigUint64(40, true)); // stx_size
  return { type: typeOf(mode), size, mode: mode & 0o7777, nlink, ino };
}

/** fstat of an open fd */
export function fstat(fd: number): StatInfo {
  return statx(fd, "", AT_EMPTY_PATH);
}

/** lstat of a name inside a directory fd (a symlink is reported, not followed) */
export function statAt(dirFd: number, name: string): StatInfo {
  return statx(dirFd, name, AT_SYMLINK_NOFOLLOW);
}

const DT: Record<number, FileType> = { 4: "dir", 8: "file", 10: "symlink" };

/** the names in a directory opened with O_RDONLY|O_DIRECTORY (getdents64), without . and .. */
export function readDirFd(
  fd: number,
  maxEntries = Infinity,
): { entries: { name: string; type: FileType | "unknown" }[]; truncated: boolean } {
  const buf = new Uint8Array(64 * 1024);
  const v = new DataView(buf.buffer);
  const dec = new TextDecoder();
  const entries: { name: string; type: FileType | "unknown" }[] = [];
  for (;;) {
    const n = sys("getdents64", `fd ${fd}`, () => sym.syscall(SYS_getdents64, fd, ptr(buf), buf.length, 0, 0, 0));
    if (n === 0) return { entries, truncated: false };
    // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    for (let off = 0; off < n;) {
      const reclen = v.getUint16(off + 16, true);
      const dtype = buf[off + 18]!;
      let end = off + 19;
      while (end < off + reclen && buf[end] !== 0) end++;
      const name = dec.decode(buf.subarray(off + 19, end));
      off += reclen;
      if (name === "." || name === "..") continue;
      if (entries.length >= maxEntries) return { entries, truncated: true };
      entries.push({ name, type: dtype === 0 ? "unknown" : (DT[dtype] ?? "other") });
    }
  }
}
