// dir_create: make a directory, and its missing parents, beneath a
// `file_write` grant (an exact grant: the directory itself only). Like
// file_write's parents: one component at a time, each opened with no symlink
// allowed (mkdirsBeneath), so a component swapped for a symlink makes the
// call fail, never land outside. Reversible: every directory it will create
// is journaled first (pre absent, post a directory), and a rewind removes
// it again; each one's parent is fsynced after. An existing directory is no
// change at all.
import { z } from "zod";
import { authorizePath, basename, dirname, relativeTo } from "./beneath.ts";
import { ErrorCode, KernelError } from "../errors.ts";
import {
  close,
  Errno,
  fsync,
  O_DIRECTORY,
  O_RDONLY,
  openAtBeneath,
  SysError,
  toKernelError,
  fsyncDir,
} from "../sys/openat2.ts";
import { createAnchor, createdDirs, journaled, lstatOrNull, mkdirsJournaled, openExisting } from "./file_write.ts";
import { defineTool } from "./tool.ts";

export default defineTool({
  name: "dir_create",
  effect: "reversible",
  description:
    "Create a directory the agent holds a file_write capability on (absolute path), with its missing parent " +
    "directories inside the grant. An existing directory is left as it is (created is then empty); a file " +
    "or a symlink in the way is refused. Returns the directories created, parents first; the creation can be " +
    "rewound.",
  input: z.strictObject({
    path: z.string().min(1).max(4096).describe("absolute path of the directory"),
  }),
  async run(ctx, input) {
    const g = authorizePath(ctx, "file_write", input.path);
    const errCtx = { tool: "dir_create", capability: `file_write: ${g.path}`, path: g.path };
    if (g.path === "/") return { path: g.path, created: [], changes: [] };
    const anchor = createAnchor(g);
    const name = basename(g.path);
    let fd = -1;
    try {
      const at = openExisting(anchor, dirname("/" + relativeTo(anchor, g.path)).slice(1));
      fd = at.fd;
      const missing = [...at.missing];
      if (missing.length === 0) {
        const st = lstatOrNull(fd, name);
        if (st?.type === "dir") return { path: g.path, created: [], changes: [] };
        if (st?.type === "symlink") throw new SysError(Errno.ELOOP, "mkdir", g.path);
        if (st !== null)
          throw new KernelError(ErrorCode.InvalidParams, `${g.path} exists and is not a directory`, {
            path: g.path,
          });
      }
      missing.push(g.path);
      const names = missing.map(basename);
      const { ticket } = journaled(ctx, createdDirs(missing), (changed) => {
        close(mkdirsJournaled(fd, missing, changed));
        // durable: each new directory's entry in its parent
        fsyncDir(fd);
        for (let i = 1; i < names.length; i++) {
          const d = openAtBeneath(fd, names.slice(0, i).join("/"), O_RDONLY | O_DIRECTORY);
          try {
            fsync(d);
          } finally {
            close(d);
          }
        }
      });
      return { path: g.path, created: missing, changes: ticket.changes };
    } catch (e) {
      throw toKernelError(e, errCtx);
    } finally {
      if (fd >= 0) close(fd);
    }
  },
});
