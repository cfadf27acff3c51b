// file_move: rename a file or a directory; both paths need `file_write`.
// Reversible: the journal records the source (its pre-image; post absent)
// and the destination (what was there, its bytes when a file is replaced;
// post the moved entry, marked moved_from so a rewind moves it back, a
// directory's tree with it), and every missing parent of the destination it
// creates, before the rename.
//
// The rules of the other file tools: ctx.authorize on both paths first
// (kernel-private state refused, whatever the grant); both parents opened
// with no symlink anywhere; the names looked at with statx beneath those
// fds, never followed (a symlink at either is refused, -32001); a regular
// file with more than one hard link is refused (as source: its other name
// may lie outside the grant; as the file overwritten: its bytes could not be
// put back without handing this name that inode's content). The destination
// must not exist, or with overwrite: true be a regular file (a directory is
// never replaced). A directory is not moved into itself, nor when it is the
// root of a tree grant or holds kernel-private state or the agents' own area.
// renameat between the two parent fds (one file system only: EXDEV is
// refused), then both parents fsynced. The destination is checked before the
// rename, not by it: a name created there between the two by someone else is
// replaced.
import { z } from "zod";
import { authorizePath, basename, dirname, relativeTo } from "./beneath.ts";
import { ErrorCode, KernelError } from "../errors.ts";
import { readState, type FileState, type PathChange } from "../journal/index.ts";
import {
  close,
  Errno,
  hardLinkRefused,
  openDirNoSymlinks,
  renameAt,
  SysError,
  toKernelError,
  fsyncDir,
} from "../sys/openat2.ts";
import {
  createAnchor,
  createdDirs,
  enclosesPrivate,
  journaled,
  lstatOrNull,
  makeMissing,
  openExisting,
} from "./file_write.ts";
import { defineTool } from "./tool.ts";

export default defineTool({
  name: "file_move",
  effect: "reversible",
  description:
    "Move or rename a file or a directory (absolute paths); the agent needs a file_write capability on both " +
    "from and to. Creates missing parent directories of to inside the grant. to must not exist, unless " +
    "overwrite: true and it is a regular file, which is then replaced. Symlinks and files with more than one " +
    "hard link are refused, and so is moving a directory into itself or across file systems. The kernel " +
    "keeps what was there, so the move can be rewound; the answer's changes list every path changed.",
  input: z.strictObject({
    from: z.string().min(1).max(4096).describe("absolute path of the file or directory to move"),
    to: z.string().min(1).max(4096).describe("absolute path it moves to"),
    overwrite: z.boolean().optional().describe("replace a regular file at to"),
  }),
  async run(ctx, input) {
    const gf = authorizePath(ctx, "file_write", input.from);
    const gt = authorizePath(ctx, "file_write", input.to);
    const from = gf.path;
    const to = gt.path;
    const errFrom = { tool: "file_move", capability: `file_write: ${from}`, path: from };
    const errTo = { tool: "file_move", capability: `file_write: ${to}`, path: to };
    const invalid = (message: string, path: string) => new KernelError(ErrorCode.InvalidParams, message, { path });
    if (from === "/" || (gf.tree && from === gf.root)) throw invalid("cannot move the root of the grant", from);
    if (to === "/") throw invalid("/ is a directory", to);
    if (from === to) throw invalid(`${from} and ${to} are the same path`, to);
    if (to.startsWith(from + "/")) throw invalid(`cannot move ${from} into itself (${to})`, to);

    let fromFd = -1;
    let toFd = -1;
    let err = errFrom;
    try {
      // the source
      fromFd = openDirNoSymlinks(dirname(from));
      const fromName = basename(from);
      const src = lstatOrNull(fromFd, fromName);
      if (src === null) throw invalid(`${from} does not exist`, from);
      if (src.type === "symlink") throw new SysError(Errno.ELOOP, "rename", from);
      if (src.type === "file") {
        if (src.nlink > 1) throw hardLinkRefused(src.nlink, errFrom);
      } else if (src.type === "dir") {
        const why = enclosesPrivate(ctx.privateAreas, from);
        if (why !== null) throw invalid(`cannot move ${from}: ${why}`, from);
      } else throw invalid(`${from} is not a regular file or a directory`, from);
      const x = readState(fromFd, fromName);
      if (x.state.kind !== src.type) throw invalid(`${from} changed while it was being moved`, from);

      // the destination: its missing parents are created like file_write's
      err = errTo;
      const anchor = createAnchor(gt);
      const at = openExisting(anchor, dirname("/" + relativeTo(anchor, to)).slice(1));
      toFd = at.fd;
      const toName = basename(to);
      let pre: FileState = { kind: "absent" };
      let preContent: Uint8Array | null = null;
      if (at.missing.length === 0) {
        const dst = lstatOrNull(toFd, toName);
        if (dst !== null) {
          if (dst.type === "symlink") throw new SysError(Errno.ELOOP, "rename", to);
          if (!input.overwrite) throw invalid(`${to} exists (overwrite: true replaces a regular file)`, to);
          if (dst.type === "dir") throw invalid(`${to} is a directory`, to);
          if (dst.type !== "file") throw invalid(`${to} is not a regular file`, to);
          if (src.type === "dir") throw invalid(`cannot replace the file ${to} with the directory ${from}`, to);
          if (dst.nlink > 1) throw hardLinkRefused(dst.nlink, errTo);
          const y = readState(toFd, toName);
          pre = y.state;
          preContent = y.content;
        }
      }
      const changes: PathChange[] = [
        ...createdDirs(at.missing),
        { path: from, pre: x.state, preContent: x.content, post: { kind: "absent" } },
        { path: to, pre, preContent, post: { ...x.state, moved_from: from } as FileState },
      ];
      const { ticket } = journaled(ctx, changes, (changed) => {
        if (at.missing.length > 0) {
          const base = toFd;
          toFd = -1;
          toFd = makeMissing(base, at.missing, changed);
        }
        try {
          renameAt(fromFd, fromName, toFd, toName); // all or nothing
        } catch (e) {
          if (e instanceof SysError && e.errno === Errno.EXDEV)
            throw invalid(`cannot move across file systems (${from} to ${to})`, to);
          throw e;
        }
        changed();
        fsyncDir(toFd);
        fsyncDir(fromFd);
      });
      return { from, to, changes: ticket.changes };
    } catch (e) {
      throw toKernelError(e, err);
    } finally {
      if (toFd >= 0) close(toFd);
      if (fromFd >= 0) close(fromFd);
    }
  },
});
