// file_list: the entries of a directory the agent holds `file_read` on
// (file_read implies this tool). Opened beneath the granted root with every
// symlink refused, listed with getdents64 on that fd; symlinks inside are
// reported as such, never followed. Entries that are kernel-private state
// (ctx.privateAreas.hides: the stores under the data directory other than
// files/, the config's secrets/, key and log files) are left out, unstatted:
// listing the data directory shows only `files`.
import { z } from "zod";
import { authorizePath, basename, dirname, relativeTo } from "./beneath.ts";
import {
  close,
  O_DIRECTORY,
  O_RDONLY,
  openBeneath,
  readDirFd,
  statAt,
  toKernelError,
  type FileType,
} from "../sys/openat2.ts";
import { defineTool } from "./tool.ts";

export const MAX_LIST_ENTRIES = 10_000;

export default defineTool({
  name: "file_list",
  effect: "none",
  description:
    "List a directory the agent holds a file_read capability on (absolute path). Returns entries with " +
    "name, type (file, dir, symlink, other) and size in bytes, sorted by name.",
  input: z.strictObject({
    path: z.string().min(1).max(4096).describe("absolute path of the directory"),
  }),
  async run(ctx, input) {
    const g = authorizePath(ctx, "file_read", input.path);
    const [base, rel] = g.tree ? [g.root, relativeTo(g.root, g.path)] : [dirname(g.path), basename(g.path)];
    const errCtx = { tool: "file_list", capability: `file_read: ${g.path}`, path: g.path };
    const fd = openBeneath(base, rel, O_RDONLY | O_DIRECTORY, 0, errCtx);
    try {
      const { entries, truncated } = readDirFd(fd, MAX_LIST_ENTRIES);
      const out: { name: string; type: FileType; size: number }[] = [];
      for (const e of entries) {
        if (ctx.privateAreas.hides(g.path, e.name)) continue;
        try {
          const st = statAt(fd, e.name);
          out.push({ name: e.name, type: st.type, size: st.size });
        } catch {
          // removed while we listed: leave it out
        }
      }
      out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return { path: g.path, entries: out, truncated };
    } catch (e) {
      throw toKernelError(e, errCtx);
    } finally {
      close(fd);
    }
  },
});
