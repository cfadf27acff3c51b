// file_delete: remove a file, or an empty directory, the agent holds
// `file_write` on. Reversible: the file's bytes (or the directory) are
// journaled before the name goes (kernel/journal), so a rewind puts it back.
//
// The same rules as file_write: ctx.authorize first (kernel-private state is
// refused there, whatever the grant); the parent opened with no symlink
// anywhere in its path; the name looked at with statx beneath that fd, never
// followed (a symlink is refused, -32001); a regular file with more than one
// hard link is refused (-32001: its other name may lie outside the grant, and
// its bytes would enter the journal); a directory only when empty. The root
// of a tree grant, and any directory holding kernel-private state or the
// agents' own area, are never removed. unlinkat on the parent's fd, then the
// parent fsynced.
import { z } from "zod";
import { authorizePath, basename, dirname } from "./beneath.ts";
import { ErrorCode, KernelError } from "../errors.ts";
import { readState } from "../journal/index.ts";
import {
  close,
  hardLinkRefused,
  O_DIRECTORY,
  O_RDONLY,
  openAtBeneath,
  openDirNoSymlinks,
  readDirFd,
  SysError,
  toKernelError,
  unlinkAt,
  Errno,
  fsyncDir,
} from "../sys/openat2.ts";
import { enclosesPrivate, journaled, lstatOrNull } from "./file_write.ts";
import { defineTool } from "./tool.ts";

export default defineTool({
  name: "file_delete",
  effect: "reversible",
  description:
    "Delete a file, or an empty directory, the agent holds a file_write capability on (absolute path). " +
    "Symlinks, files with more than one hard link, non-empty directories and the root of the grant itself " +
    "are refused. The kernel keeps what was deleted, so the deletion can be rewound; the answer's changes " +
    "list the path with its sha256 before.",
  input: z.strictObject({
    path: z.string().min(1).max(4096).describe("absolute path of the file or empty directory"),
  }),
  async run(ctx, input) {
    const g = authorizePath(ctx, "file_write", input.path);
    const errCtx = { tool: "file_delete", capability: `file_write: ${g.path}`, path: g.path };
    const invalid = (message: string) => new KernelError(ErrorCode.InvalidParams, message, { path: g.path });
    if (g.path === "/" || (g.tree && g.path === g.root)) throw invalid("cannot delete the root of the grant");
    const name = basename(g.path);
    let parentFd = -1;
    try {
      parentFd = openDirNoSymlinks(dirname(g.path));
      const st = lstatOrNull(parentFd, name);
      if (st === null) throw invalid(`${g.path} does not exist`);
      if (st.type === "symlink") throw new SysError(Errno.ELOOP, "unlink", g.path);
      if (st.type === "file") {
        if (st.nlink > 1) throw hardLinkRefused(st.nlink, errCtx);
      } else if (st.type === "dir") {
        const why = enclosesPrivate(ctx.privateAreas, g.path);
        if (why !== null) throw invalid(`cannot delete ${g.path}: ${why}`);
        const d = openAtBeneath(parentFd, name, O_RDONLY | O_DIRECTORY);
        try {
          if (readDirFd(d, 1).entries.length > 0) throw invalid(`${g.path} is not empty`);
        } finally {
          close(d);
        }
      } else throw invalid(`${g.path} is not a regular file or a directory`);
      const { state: pre, content: preContent } = readState(parentFd, name);
      if (pre.kind !== st.type) throw invalid(`${g.path} changed while it was being deleted`);
      const dir = pre.kind === "dir";
      const { ticket } = journaled(ctx, [{ path: g.path, pre, preContent, post: { kind: "absent" } }], (changed) => {
        unlinkAt(parentFd, name, { dir }); // all or nothing
        changed();
        fsyncDir(parentFd);
      });
      return { path: g.path, deleted: dir ? "dir" : "file", changes: ticket.changes };
    } catch (e) {
      throw toKernelError(e, errCtx);
    } finally {
      if (parentFd >= 0) close(parentFd);
    }
  },
});
