// file_read: read a file the agent holds `file_read` on. The path is checked
// by ctx.authorize first, then opened beneath the granted root with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS): no symlink, `..` or swapped
// directory can lead outside the grant between the check and the open.
// Kernel-private state is refused by the kernel's check whatever the grant
// (kernel/caps/private.ts). A regular file with more than one hard link is
// refused once opened (fstat on the fd): its other name may lie outside the
// grant, and a hard link is the one way in that no path check can see.
import { z } from "zod";
import { authorizePath, basename, dirname, relativeTo } from "./beneath.ts";
import { ErrorCode, KernelError } from "../errors.ts";
import {
  close,
  fstat,
  hardLinkRefused,
  O_NOCTTY,
  O_NONBLOCK,
  O_RDONLY,
  openBeneath,
  readUpTo,
  toKernelError,
} from "../sys/openat2.ts";
import { defineTool } from "./tool.ts";

/** UTF-8 text of bytes cut at a cap: drop a trailing partial character */
export function utf8Prefix(data: Uint8Array, truncated: boolean): { text: string; bytes: number } {
  let end = data.length;
  if (truncated && end > 0) {
    let i = end - 1;
    let back = 0;
    while (i >= 0 && back < 4 && (data[i]! & 0xc0) === 0x80) {
      i--;
      back++;
    }
    if (i >= 0) {
      const lead = data[i]!;
      const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
      if (end - i < need) end = i;
    }
  }
  const slice = data.subarray(0, end);
  return { text: new TextDecoder().decode(slice), bytes: slice.length };
}

export default defineTool({
  name: "file_read",
  effect: "none",
  description:
    "Read a text file (UTF-8) the agent holds a file_read capability on. The path must be absolute. " +
    "Symlinks, files with more than one hard link, and the kernel's own state are refused. Returns the " +
    "content, its size in bytes, and whether it was cut at max_bytes.",
  input: z.strictObject({
    path: z.string().min(1).max(4096).describe("absolute path of the file"),
    max_bytes: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("read at most this many bytes (capped by the kernel's limit)"),
  }),
  async run(ctx, input) {
    const g = authorizePath(ctx, "file_read", input.path);
    const [base, rel] = g.tree ? [g.root, relativeTo(g.root, g.path)] : [dirname(g.path), basename(g.path)];
    const errCtx = { tool: "file_read", capability: `file_read: ${g.path}`, path: g.path };
    const max = Math.min(input.max_bytes ?? ctx.limits.fileReadMaxBytes, ctx.limits.fileReadMaxBytes);
    // O_NONBLOCK: a FIFO planted in the grant must not hang the kernel
    const fd = openBeneath(base, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, errCtx);
    try {
      const st = fstat(fd);
      if (st.type === "dir")
        throw new KernelError(ErrorCode.InvalidParams, `${g.path} is a directory (use file_list)`, { path: g.path });
      if (st.type !== "file")
        throw new KernelError(ErrorCode.InvalidParams, `${g.path} is not a regular file`, { path: g.path });
      if (st.nlink > 1) throw hardLinkRefused(st.nlink, errCtx);
      const { data, truncated } = readUpTo(fd, max);
      const { text, bytes } = utf8Prefix(data, truncated);
      return { path: g.path, content: text, bytes, truncated };
    } catch (e) {
      throw toKernelError(e, errCtx);
    } finally {
      close(fd);
    }
  },
});
