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
//
// Reversibility (kernel/journal): before anything changes, every change the
// call will make is handed to ctx.journal.begin — each parent directory it
// will create (pre absent, post a directory), then the file (its pre-image:
// absent, or its bytes as readState finds them through the parent's fd; its
// post-image: the bytes it will hold) — and settled after: done when it
// happened, failed when an error came before anything changed (an error
// after a change leaves it to the kernel, which looks at the path). A
// replaced file with more than one hard link is journaled without its bytes
// (not restorable): a rewind would otherwise hand this name the content of
// an inode whose other name may lie outside the grant. The helpers the other
// changing tools share (file_delete, file_move, dir_create) live here too.
import { createHash, randomBytes } from "node:crypto";
import { readSync } from "node:fs";
import { z } from "zod";
import { authorizePath, basename, dirname, relativeTo, type GrantedPath } from "./beneath.ts";
import { capabilityDenied, ErrorCode, KernelError } from "../errors.ts";
import type { PrivateAreas } from "../caps/index.ts";
import {
  fileState,
  readState,
  type Capture,
  type FileState,
  type JournalTicket,
  type PathChange,
} from "../journal/index.ts";
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
  O_PATH,
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
  fsyncDir,
} from "../sys/openat2.ts";
import { defineTool } from "./tool.ts";

export const MAX_WRITE_BYTES = 16 * 1024 * 1024;
/** the prefix of the file a replacing write builds before it renames it over the target */
export const TEMP_PREFIX = ".aaos-tmp-";
/** the mode the journal records for a directory a tool creates (mkdirat's 0o755) */
export const DIR_MODE = 0o755;
/** the mode the journal records for a file a tool creates */
export const FILE_MODE = 0o644;

export function lstatOrNull(dirFd: number, name: string): StatInfo | null {
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

export function joinPath(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

/**
 * The directory a changing tool may create directories from: the parent of
 * a tree grant's root (the root itself may be created), or, for an exact
 * grant, the path's own parent (nothing may be created).
 */
export function createAnchor(g: GrantedPath): string {
  return g.tree && g.root !== "/" ? dirname(g.root) : g.tree ? "/" : dirname(g.path);
}

/**
 * Open the deepest existing directory of `rel` beneath the absolute
 * directory `anchor` (every component with no symlink), and name the
 * components below it that do not exist yet: the directories mkdirsBeneath
 * will create, in order, as absolute paths. A component that is a symlink or
 * not a directory throws (SysError), as the open would.
 */
export function openExisting(anchor: string, rel: string): { fd: number; missing: string[] } {
  const parts = rel.split("/").filter((s) => s !== "" && s !== ".");
  let cur = openDirNoSymlinks(anchor);
  let at = anchor;
  try {
    for (let i = 0; i < parts.length; i++) {
      let next: number;
      try {
        next = openAtBeneath(cur, parts[i]!, O_PATH | O_DIRECTORY);
      } catch (e) {
        if (!(e instanceof SysError) || e.errno !== Errno.ENOENT) throw e;
        const missing: string[] = [];
        for (const p of parts.slice(i)) missing.push((at = joinPath(at, p)));
        const fd = cur;
        cur = -1;
        return { fd, missing };
      }
      close(cur);
      cur = next;
      at = joinPath(at, parts[i]!);
    }
    const fd = cur;
    cur = -1;
    return { fd, missing: [] };
  } finally {
    if (cur >= 0) close(cur);
  }
}

/** the journal changes of directories a call creates */
export function createdDirs(paths: string[]): PathChange[] {
  return paths.map((path) => ({
    path,
    pre: { kind: "absent" },
    preContent: null,
    post: { kind: "dir", mode: DIR_MODE },
  }));
}

/**
 * Make the missing directories openExisting named, beneath the fd of their
 * existing parent (not closed): the fd of the last one. `changed` is called
 * once one may exist (on an error, when the first is there).
 */
export function mkdirsJournaled(fd: number, missing: string[], changed: () => void): number {
  const names = missing.map(basename);
  try {
    const out = mkdirsBeneath(fd, names.join("/"), DIR_MODE).fd;
    changed();
    return out;
  } catch (e) {
    try {
      if (lstatOrNull(fd, names[0]!) !== null) changed();
    } catch {
      changed(); // cannot tell: the kernel will look
    }
    throw e;
  }
}

/** mkdirsJournaled, closing the parent's fd */
export function makeMissing(fd: number, missing: string[], changed: () => void): number {
  try {
    return mkdirsJournaled(fd, missing, changed);
  } finally {
    close(fd);
  }
}

/**
 * A kernel-private area at or beneath `path` (the data directory, the config
 * directory that holds secrets/, a key file's directory…), or the agents'
 * own area <data>/files itself: a directory that may not be moved or
 * deleted, whatever the grant, since its private content would go with it.
 * null when none. PrivateAreas answers only "is this path private"; the
 * areas themselves are read from it here.
 */
export function enclosesPrivate(areas: PrivateAreas, path: string): string | null {
  return areas.encloses(path);
}

/** the state a file will have after data is appended to it (pre: its state now, content: its bytes when kept) */
function appendedState(
  parentFd: number,
  name: string,
  pre: FileState,
  content: Uint8Array | null,
  data: Uint8Array,
): FileState {
  if (pre.kind !== "file") return fileState(data, FILE_MODE);
  const hash = createHash("sha256");
  let size = 0;
  if (content !== null) {
    hash.update(content);
    size = content.length;
  } else {
    // too large to keep: hash its bytes again, streamed through the fd
    const fd = openAtBeneath(parentFd, name, O_RDONLY | O_NOCTTY | O_NONBLOCK);
    try {
      const buf = new Uint8Array(1024 * 1024);
      for (let n; (n = readSync(fd, buf)) > 0; size += n) hash.update(buf.subarray(0, n));
    } finally {
      close(fd);
    }
  }
  hash.update(data);
  return { kind: "file", sha256: hash.digest("hex"), size: size + data.length, mode: pre.mode };
}

function append(
  parentFd: number,
  name: string,
  data: Uint8Array,
  errCtx: ErrorContext & { path: string },
  changed: () => void,
): void {
  const existed = lstatOrNull(parentFd, name);
  checkTarget(existed, errCtx.path);
  const fd = openAtBeneath(parentFd, name, O_WRONLY | O_CREAT | O_APPEND | O_NOCTTY | O_NONBLOCK, FILE_MODE);
  if (existed === null) changed(); // created
  try {
    const st = fstat(fd);
    if (st.type !== "file")
      throw new KernelError(ErrorCode.InvalidParams, `${errCtx.path} is not a regular file`, { path: errCtx.path });
    if (st.nlink > 1) throw hardLinkRefused(st.nlink, errCtx);
    changed();
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
  changed: () => void,
): void {
  const old = lstatOrNull(parentFd, name);
  checkTarget(old, errCtx.path);
  if (tmpRefused !== null) throw capabilityDenied("file_write", errCtx.capability ?? "", tmpRefused);
  const tmp = TEMP_PREFIX + randomBytes(8).toString("hex");
  const fd = openAtBeneath(parentFd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY | O_NONBLOCK, FILE_MODE);
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
    renameAt(parentFd, tmp, parentFd, name); // all or nothing
    renamed = true;
    changed();
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

/**
 * Run a change journaled: begin() (durable when it returns), apply, done();
 * an error before `changed` was called: failed(); after it, left to the
 * kernel (it settles the change by looking at the path).
 */
export function journaled<T>(
  ctx: { journal: Capture },
  changes: PathChange[],
  apply: (changed: () => void) => T,
): { out: T; ticket: JournalTicket } {
  const ticket = ctx.journal.begin(changes);
  let changed = false;
  try {
    const out = apply(() => void (changed = true));
    ticket.done();
    return { out, ticket };
  } catch (e) {
    if (!changed) ticket.failed();
    throw e;
  }
}

export default defineTool({
  name: "file_write",
  effect: "reversible",
  description:
    "Write a UTF-8 text file the agent holds a file_write capability on (absolute path). Creates missing " +
    "parent directories inside the grant, replaces the file (or appends with append: true). Symlinks are " +
    "refused. The kernel keeps what the file held before, so the change can be rewound; the answer's " +
    "changes list every path changed with its sha256 before and after.",
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
    const anchor = createAnchor(g);
    const parents = dirname("/" + relativeTo(anchor, g.path)).slice(1);
    const name = basename(g.path);
    const data = new TextEncoder().encode(input.content);
    // a replacing write builds its new file beside the target, never inside
    // kernel-private state (a target of <dataDir>/files itself would put it in <dataDir>)
    const dir = dirname(g.path);
    const tmpWhy = ctx.privateAreas.reason(`${dir === "/" ? "" : dir}/${TEMP_PREFIX}`);
    const tmpRefused =
      tmpWhy === null ? null : `a replacing write builds its new file beside ${g.path}, in ${dir}, and ${tmpWhy}`;

    let parentFd = -1;
    try {
      const at = openExisting(anchor, parents);
      parentFd = at.fd;
      // the pre-image, read through the parent's fd before anything changes
      let pre: FileState = { kind: "absent" };
      let preContent: Uint8Array | null = null;
      if (at.missing.length === 0) {
        const old = lstatOrNull(parentFd, name);
        checkTarget(old, g.path);
        if (old !== null) {
          if (input.append && old.nlink > 1) throw hardLinkRefused(old.nlink, errCtx);
          const r = readState(parentFd, name);
          pre = r.state;
          // a hard-linked file's bytes are not kept: a rewind would give this name another name's inode's content
          preContent = old.nlink > 1 ? null : r.content;
        }
      }
      if (!input.append && tmpRefused !== null) throw capabilityDenied("file_write", errCtx.capability, tmpRefused);
      const post = input.append
        ? appendedState(parentFd, name, pre, preContent, data)
        : fileState(data, pre.kind === "file" ? pre.mode & 0o777 : FILE_MODE);
      const changes = [...createdDirs(at.missing), { path: g.path, pre, preContent, post }];
      const { ticket } = journaled(ctx, changes, (changed) => {
        if (at.missing.length > 0) {
          const base = parentFd;
          parentFd = -1;
          parentFd = makeMissing(base, at.missing, changed);
        }
        if (input.append) append(parentFd, name, data, errCtx, changed);
        else replace(parentFd, name, data, errCtx, tmpRefused, changed);
      });
      return { path: g.path, bytes: data.length, changes: ticket.changes };
    } catch (e) {
      throw toKernelError(e, errCtx);
    } finally {
      if (parentFd >= 0) close(parentFd);
    }
  },
});
