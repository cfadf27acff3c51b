// The operator's read-only view of the files agents wrote (fs.list, fs.read):
// the agents' area of the data disk, <data>/files, with paths relative to it
// ("/" is its root). Every open goes beneath that directory with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS): a symlink anywhere, a `..`
// that leaves it, a swapped directory are refused, so the kernel-private
// state beside it (the audit log, the stores, the approvals) stays out of
// reach here as it does for agents' tools. Entries that are kernel-private
// all the same (a log or key file kernel.yaml placed under files/) are hidden
// and refused. The Kernel calls these and audits each call; nothing here
// holds state.
import { readSync } from "node:fs";
import type { PrivateAreas } from "./caps/private.ts";
import { capabilityDenied, ErrorCode, invalidParams, KernelError } from "./errors.ts";
import {
  close,
  fstat,
  hardLinkRefused,
  O_DIRECTORY,
  O_NOCTTY,
  O_NONBLOCK,
  O_RDONLY,
  openBeneath,
  readDirFd,
  statAt,
  toKernelError,
  type FileType,
} from "./sys/openat2.ts";

/** fs.list answers at most this many entries (truncated past it) */
export const FS_LIST_MAX = 10_000;

export interface FsEntry {
  name: string;
  type: FileType;
  size: number;
}

export interface FsListResult {
  path: string;
  entries: FsEntry[];
  truncated: boolean;
}

export interface FsReadResult {
  path: string;
  offset: number;
  /** bytes in this answer */
  bytes: number;
  /** the file's size when it was read */
  size: number;
  /** this answer reaches the end of the file */
  eof: boolean;
  /** utf-8: the bytes are valid UTF-8, in `text`; base64: in `data_base64` */
  encoding: "utf-8" | "base64";
  text?: string;
  data_base64?: string;
}

/**
 * "/" + the path's components, "." dropped and slashes collapsed; `..` is
 * kept, for the open beneath the area to refuse it if it leaves
 */
export function normalizeFsPath(path: string): { shown: string; rel: string } {
  if (path.includes("\0")) throw invalidParams("a path has no NUL byte", { path });
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  return { shown: "/" + parts.join("/"), rel: parts.join("/") };
}

const errCtx = (method: string, shown: string) => ({
  tool: method,
  capability: "operator",
  path: shown,
});

function refusePrivate(method: string, shown: string, abs: string, priv: PrivateAreas): void {
  const why = priv.reason(abs);
  if (why !== null) throw capabilityDenied(method, "operator", `${shown} is kernel-private state`);
}

/** the entries of a directory under files/, sorted by name; symlinks shown as such, never followed */
export function fsList(root: string, path: string, priv: PrivateAreas): FsListResult {
  const { shown, rel } = normalizeFsPath(path);
  const abs = rel === "" ? root : `${root}/${rel}`;
  refusePrivate("fs.list", shown, abs, priv);
  const fd = openBeneath(root, rel, O_RDONLY | O_DIRECTORY, 0, errCtx("fs.list", shown));
  try {
    const { entries, truncated } = readDirFd(fd, FS_LIST_MAX);
    const out: FsEntry[] = [];
    for (const e of entries) {
      if (priv.hides(abs, e.name)) continue;
      try {
        const st = statAt(fd, e.name);
        out.push({ name: e.name, type: st.type, size: st.size });
      } catch {
        // removed while we listed: left out
      }
    }
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { path: shown, entries: out, truncated };
  } catch (e) {
    throw toKernelError(e, errCtx("fs.list", shown));
  } finally {
    close(fd);
  }
}

/** at most `max` bytes of a regular file under files/ from offset (length: fewer) */
export function fsRead(
  root: string,
  path: string,
  opts: { offset: number; length?: number; max: number },
  priv: PrivateAreas,
): FsReadResult {
  const { shown, rel } = normalizeFsPath(path);
  if (rel === "") throw new KernelError(ErrorCode.InvalidParams, "/ is a directory (use fs.list)", { path: shown });
  refusePrivate("fs.read", shown, `${root}/${rel}`, priv);
  const ctx = errCtx("fs.read", shown);
  // O_NONBLOCK: a FIFO planted in files/ must not hang the kernel
  const fd = openBeneath(root, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, ctx);
  try {
    const st = fstat(fd);
    if (st.type === "dir")
      throw new KernelError(ErrorCode.InvalidParams, `${shown} is a directory (use fs.list)`, { path: shown });
    if (st.type !== "file")
      throw new KernelError(ErrorCode.InvalidParams, `${shown} is not a regular file`, { path: shown });
    // its other name may be anywhere on the disk, kernel-private state included
    if (st.nlink > 1) throw hardLinkRefused(st.nlink, ctx);
    const want = Math.max(0, Math.min(opts.length ?? opts.max, opts.max, st.size - opts.offset));
    const buf = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      const n = readSync(fd, buf, got, want - got, opts.offset + got);
      if (n === 0) break;
      got += n;
    }
    const data = buf.subarray(0, got);
    let text: string | null = null;
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(data);
    } catch {
      text = null;
    }
    return {
      path: shown,
      offset: opts.offset,
      bytes: got,
      size: st.size,
      eof: opts.offset + got >= st.size,
      ...(text !== null ? { encoding: "utf-8", text } : { encoding: "base64", data_base64: data.toString("base64") }),
    };
  } catch (e) {
    throw toKernelError(e, ctx);
  } finally {
    close(fd);
  }
}
