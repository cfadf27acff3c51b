// file_write: write a file the agent holds `file_write` on. ctx.authorize
// runs before anything is created, so a denied write leaves nothing behind
// (and the kernel refuses kernel-private state there, whatever the grant:
// kernel/caps/private.ts). Missing parent directories are made one
// component at a time beneath the granted root (mkdirat on directory fds,
// each opened with no symlink allowed), and every file is opened with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) relative to its parent's fd:
// a directory swapped for a symlink after the check makes the write fail,
// never land outside.
//
// Hard links: a write must never reach an inode outside the grant, and a
// name inside the grant may be a second link to a file outside it.
//   - Replacing writes a new file beside the target in the same parent
//     directory fd (a random name, O_CREAT|O_EXCL), fsyncs it, renameat()s
//     it over the target and fsyncs the directory: a hard-linked target
//     loses this name only, its other name keeps the old content. The
//     permission bits of a replaced file are kept. A crash between the two
//     steps can leave a `.aaos-tmp-…` file beside the target.
//   - Appending cannot replace, so a target with more than one hard link is
//     refused (-32001, checked on the opened fd).
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { authorizePath, basename, dirname, relativeTo } from "./beneath.ts";
import { capabilityDenied, ErrorCode, KernelError } from "../errors.ts";
import {
  close,
  Errno,
  fchmod,
  fstat,
  fsync,
  hardLinkRefused,
  mkdirsBeneath,
  O_APPEND,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOCTTY,
  O_NONBLOCK,
  O_RDONLY,
  O_WRONLY,
  openAtBeneath,
  openDirNoSymlinks,
  renameAt,
  statAt,
  SysError,
  toKernelError,
  unlinkAt,
  writeAll,
  type ErrorContext,
  type StatInfo,
} from "../sys/openat2.ts";
import { defineTool } from "./tool.ts";

export const MAX_WRITE_BYTES = 16 * 1024 * 1024;
/** the prefix of the file a replacing write builds before it renames it over the target */
export const TEMP_PREFIX = ".aaos-tmp-";

function lstatOrNull(dirFd: number, name: string): StatInfo | null {
  try {
    return statAt(dirFd, name);
  } catch (e) {
    if (e instanceof SysError && e.errno === Errno.ENOENT) return null;
    throw e;
  }
}

/** what may be replaced or appended to: a regular file, or nothing yet */
function checkTarget(st: StatInfo | null, path: string): void {
  if (st === null || st.type === "file") return;
  if (st.type === "symlink") throw new SysError(Errno.ELOOP, "open", path);
  if (st.type === "dir") throw new KernelError(ErrorCode.InvalidParams, `${path} is a directory`, { path });
  throw new KernelError(ErrorCode.InvalidParams, `${path} is not a regular file`, { path });
}

function fsyncDir(parentFd: number): void {
  const d = openAtBeneath(parentFd, ".", O_RDONLY | O_DIRECTORY);
  try {
    fsync(d);
  } finally {
    close(d);
  }
}

function append(parentFd: number, name: string, data: Uint8Array, errCtx: ErrorContext & { path: string }): void {
  const existed = lstatOrNull(parentFd, name);
  checkTarget(existed, errCtx.path);
  const fd = openAtBeneath(parentFd, name, O_WRONLY | O_CREAT | O_APPEND | O_NOCTTY | O_NONBLOCK, 0o644);
  try {
    const st = fstat(fd);
    if (st.type !== "file")
      throw new KernelError(ErrorCode.InvalidParams, `${errCtx.path} is not a regular file`, { path: errCtx.path });
    if (st.nlink > 1) throw hardLinkRefused(st.nlink, errCtx);
    writeAll(fd, data);
    fsync(fd);
  } finally {
    close(fd);
  }
  if (existed === null) fsyncDir(parentFd);
}

function replace(
  parentFd: number,
  name: string,
  data: Uint8Array,
  errCtx: ErrorContext & { path: string },
  tmpRefused: string | null,
): void {
  const old = lstatOrNull(parentFd, name);
  checkTarget(old, errCtx.path);
  if (tmpRefused !== null) throw capabilityDenied("file_write", errCtx.capability ?? "", tmpRefused);
  const tmp = TEMP_PREFIX + randomBytes(8).toString("hex");
  const fd = openAtBeneath(parentFd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY | O_NONBLOCK, 0o644);
  let renamed = false;
  try {
    try {
      if (old !== null) fchmod(fd, old.mode & 0o777);
      writeAll(fd, data);
      fsync(fd);
    } finally {
      close(fd);
    }
    // a directory that took the target's place meanwhile makes this fail (EISDIR), a symlink is replaced
    renameAt(parentFd, tmp, parentFd, name);
    renamed = true;
    fsyncDir(parentFd);
  } finally {
    if (!renamed) {
      try {
        unlinkAt(parentFd, tmp);
      } catch {
        // gone already
      }
    }
  }
}

export default defineTool({
  name: "file_write",
  effect: "reversible",
  description:
    "Write a UTF-8 text file the agent holds a file_write capability on (absolute path). Creates missing " +
    "parent directories inside the grant, replaces the file (or appends with append: true). Symlinks are " +
    "refused.",
  input: z.strictObject({
    path: z.string().min(1).max(4096).describe("absolute path of the file"),
    content: z.string().max(MAX_WRITE_BYTES).describe("text to write"),
    append: z.boolean().optional().describe("append instead of replacing"),
  }),
  async run(ctx, input) {
    const g = authorizePath(ctx, "file_write", input.path);
    const errCtx = { tool: "file_write", capability: `file_write: ${g.path}`, path: g.path };
    if (g.path === "/") throw new KernelError(ErrorCode.InvalidParams, "/ is a directory", { path: "/" });
    // directories we may create: the grant's root and everything beneath it
    // (an exact grant lets us create nothing but the file itself)
    const anchor = g.tree && g.root !== "/" ? dirname(g.root) : g.tree ? "/" : dirname(g.path);
    const rel = relativeTo(anchor, g.path);
    const parents = dirname("/" + rel).slice(1);
    const name = basename(g.path);
    const data = new TextEncoder().encode(input.content);
    // a replacing write builds its new file beside the target, never inside
    // kernel-private state (a target of <dataDir>/files itself would put it in <dataDir>)
    const dir = dirname(g.path);
    const tmpWhy = ctx.privateAreas.reason(`${dir === "/" ? "" : dir}/${TEMP_PREFIX}`);
    const tmpRefused =
      tmpWhy === null ? null : `a replacing write builds its new file beside ${g.path}, in ${dir}, and ${tmpWhy}`;

    let anchorFd = -1;
    let parentFd = -1;
    try {
      anchorFd = openDirNoSymlinks(anchor);
      parentFd = mkdirsBeneath(anchorFd, parents).fd;
      if (input.append) append(parentFd, name, data, errCtx);
      else replace(parentFd, name, data, errCtx, tmpRefused);
      return { path: g.path, bytes: data.length };
    } catch (e) {
      throw toKernelError(e, errCtx);
    } finally {
      if (parentFd >= 0) close(parentFd);
      if (anchorFd >= 0) close(anchorFd);
    }
  },
});
