// file_write: write a file the agent holds `file_write` on. ctx.authorize
// runs before anything is created, so a denied write leaves nothing behind.
// Missing parent directories are made one component at a time beneath the
// granted root (mkdirat on directory fds, each opened with no symlink
// allowed), and the file is opened with openat2(RESOLVE_BENEATH|
// RESOLVE_NO_SYMLINKS) relative to its parent's fd: a directory swapped for
// a symlink after the check makes the write fail, never land outside.
import { z } from "zod";
import { authorizePath, basename, dirname, relativeTo } from "../caps/grant.ts";
import { ErrorCode, KernelError } from "../errors.ts";
import {
  close,
  fstat,
  fsync,
  mkdirsBeneath,
  O_APPEND,
  O_CREAT,
  O_NOCTTY,
  O_NONBLOCK,
  O_TRUNC,
  O_WRONLY,
  openAtBeneath,
  openDirNoSymlinks,
  toKernelError,
  writeAll,
} from "../sys/openat2.ts";
import { defineTool } from "./tool.ts";

export const MAX_WRITE_BYTES = 16 * 1024 * 1024;

export default defineTool({
  name: "file_write",
  description:
    "Write a UTF-8 text file the agent holds a file_write capability on (absolute path). Creates missing parent directories inside the grant, replaces the file (or appends with append: true). Symlinks are refused.",
  input: z.strictObject({
    path: z.string().min(1).max(4096).describe("absolute path of the file"),
    content: z.string().max(MAX_WRITE_BYTES).describe("text to write"),
    append: z.boolean().optional().describe("append instead of replacing"),
  }),
  async run(ctx, input) {
    const g = authorizePath(ctx, "file_write", input.path);
    const errCtx = { tool: "file_write", capability: `file_write: ${g.path}`, path: g.path };
    if (g.path === "/" || (g.tree && g.path === "/")) throw new KernelError(ErrorCode.InvalidParams, "/ is a directory", { path: "/" });
    // directories we may create: the grant's root and everything beneath it
    // (an exact grant lets us create nothing but the file itself)
    const anchor = g.tree && g.root !== "/" ? dirname(g.root) : g.tree ? "/" : dirname(g.path);
    const rel = relativeTo(anchor, g.path);
    const parents = dirname("/" + rel).slice(1);
    const name = basename(g.path);
    const data = new TextEncoder().encode(input.content);

    let anchorFd = -1;
    let parentFd = -1;
    let fd = -1;
    try {
      anchorFd = openDirNoSymlinks(anchor);
      parentFd = mkdirsBeneath(anchorFd, parents).fd;
      const flags = O_WRONLY | O_CREAT | O_NOCTTY | O_NONBLOCK | (input.append ? O_APPEND : O_TRUNC);
      fd = openAtBeneath(parentFd, name, flags, 0o644);
      const st = fstat(fd);
      if (st.type !== "file") throw new KernelError(ErrorCode.InvalidParams, `${g.path} is not a regular file`, { path: g.path });
      writeAll(fd, data);
      fsync(fd);
      return { path: g.path, bytes: data.length };
    } catch (e) {
      throw toKernelError(e, errCtx);
    } finally {
      if (fd >= 0) close(fd);
      if (parentFd >= 0) close(parentFd);
      if (anchorFd >= 0) close(anchorFd);
    }
  },
});
