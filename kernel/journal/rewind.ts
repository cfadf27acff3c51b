// Rewind: put back the pre-images of an agent's changes (and its
// descendants'), newest first. A path whose state is no longer what the
// change left (another agent, or something outside the kernel, changed it
// since) is a conflict: reported and left alone, and so are that path's older
// changes, unless force. Every restoration is itself journaled (a change like
// any other, under the agent.rewind record), so a rewind can be rewound.
//
// Crash safety: the plan (the rows, in order) is persisted before the first
// step, and each step is idempotent (a path already back at its pre-image is
// counted restored, not touched); a kill -9 mid-rewind is finished at the
// next boot (recover()). Each file is replaced atomically (a new file beside
// it, fsynced, renamed over it, the directory fsynced), so no file is ever
// half restored.
//
// Paths are opened as the file tools open them: the parent with no symlink
// anywhere in it (openDirNoSymlinks), the name beneath it with none either.
import {
  close,
  Errno,
  fchmod,
  fsync,
  fsyncDir,
  mkdirsBeneath,
  O_CREAT,
  O_EXCL,
  O_NOCTTY,
  O_NONBLOCK,
  O_WRONLY,
  openAtBeneath,
  openDirNoSymlinks,
  renameAt,
  SysError,
  unlinkAt,
  writeAll,
} from "../sys/openat2.ts";
import { readState, sameState, type ChangeRow, type FileState, type Journal, type PathChange } from "./index.ts";

/** a restoring write's new file beside its target: named by the rewind and the step, so a resumed step removes a leftover first */
const TEMP_PREFIX = ".aaos-rw-";

function dirnameOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}
function basenameOf(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/** "other": a symlink, a device, a parent that is not a directory — never something a change left */
type Current = FileState | { kind: "other" };

/** what is at an absolute path now (a file hashed, never followed through a symlink) */
export function currentState(path: string, keepBytes = 0): { state: Current; content: Uint8Array | null } {
  let dir: number;
  try {
    dir = openDirNoSymlinks(dirnameOf(path));
  } catch (e) {
    if (e instanceof SysError && e.errno === Errno.ENOENT) return { state: { kind: "absent" }, content: null };
    return { state: { kind: "other" }, content: null };
  }
  try {
    return readState(dir, basenameOf(path), keepBytes);
  } catch {
    return { state: { kind: "other" }, content: null };
  } finally {
    close(dir);
  }
}

function same(a: Current, b: FileState): boolean {
  return a.kind !== "other" && sameState(a, b);
}

/** rows a crash (or a failed call) left intended: done if the path shows the change, gone if it shows none */
export function settleByLooking(journal: Journal, rows: ChangeRow[]): void {
  for (const r of rows) {
    const cur = currentState(r.path).state;
    const happened = same(cur, r.post) || !same(cur, r.pre);
    journal.settle([r.seq], happened);
  }
}

/** put `to` at path: absent (unlink / rmdir), a directory (mkdir), or a file with these bytes (atomically) */
function restore(
  path: string,
  cur: Current,
  to: FileState,
  content: Uint8Array | null,
  movedFrom: string | null,
  tmpName: string,
): void {
  const parent = openDirNoSymlinks(dirnameOf(path));
  const name = basenameOf(path);
  try {
    if (movedFrom !== null) {
      // a move: the entry goes back where it came from (its content, a directory's tree, with it)
      const from = openDirNoSymlinks(dirnameOf(movedFrom));
      try {
        renameAt(parent, name, from, basenameOf(movedFrom));
        fsyncDir(from);
      } finally {
        close(from);
      }
      cur = { kind: "absent" };
    }
    if (to.kind === "absent") {
      if (cur.kind === "dir") unlinkAt(parent, name, { dir: true });
      else if (cur.kind === "file") unlinkAt(parent, name);
    } else if (to.kind === "dir") {
      if (cur.kind === "file") unlinkAt(parent, name);
      if (cur.kind !== "dir") close(mkdirsBeneath(parent, name, to.mode || 0o755).fd);
    } else {
      if (cur.kind === "dir") unlinkAt(parent, name, { dir: true });
      const tmp = tmpName;
      // a kill -9 between this step's write and its rename left it: gone before the step is made again
      try {
        unlinkAt(parent, tmp);
      } catch {
        // none
      }
      const fd = openAtBeneath(parent, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY | O_NONBLOCK, 0o600);
      let renamed = false;
      try {
        try {
          fchmod(fd, to.mode);
          writeAll(fd, content ?? new Uint8Array(0));
          fsync(fd);
        } finally {
          close(fd);
        }
        renameAt(parent, tmp, parent, name);
        renamed = true;
      } finally {
        if (!renamed)
          try {
            unlinkAt(parent, tmp);
          } catch {
            // gone
          }
      }
    }
    fsyncDir(parent);
  } finally {
    close(parent);
  }
}

export interface RewindResult {
  rewind_id: string;
  dry_run: boolean;
  /** what was (or, dry run, would be) put back: the path and what it becomes */
  restored: { path: string; to: FileState["kind"]; seq: number; tool: string }[];
  conflicts: { path: string; seq: number; reason: string }[];
  unrestorable: { path: string; seq: number; reason: string }[];
}

export interface RewindPlan {
  /** the journal rows, newest first */
  seqs: number[];
  force: boolean;
}

/**
 * Walk the rows newest first; apply each (unless dryRun), journaling every
 * restoration before it is made. onStep(i) after each step (the caller
 * persists progress). Start at `from` (a resumed rewind). Yields to the
 * event loop every 16 steps.
 */
export async function runRewind(
  journal: Journal,
  rows: ChangeRow[],
  opts: {
    id: string;
    force: boolean;
    dryRun: boolean;
    from?: number;
    /** who the restorations are journaled as: the rewound agent, under the agent.rewind record */
    who: { agentId: string; lineage: string; callSeq: number | null };
    onStep?: (done: number) => void;
  },
): Promise<RewindResult> {
  const out: RewindResult = { rewind_id: opts.id, dry_run: opts.dryRun, restored: [], conflicts: [], unrestorable: [] };
  /** dry run: what each path would be after the steps so far */
  const overlay = new Map<string, Current>();
  const blocked = new Map<string, string>();
  // a move's source is put back with its destination's row: its own (older) row then finds it restored
  for (let i = opts.from ?? 0; i < rows.length; i++) {
    const r = rows[i]!;
    const step = () => {
      const why = blocked.get(r.path);
      if (why !== undefined) {
        out.conflicts.push({
          path: r.path,
          seq: r.seq,
          reason: `not rewound: a later change of this path was not (${why})`,
        });
        return;
      }
      const movedFrom = (r.post as { moved_from?: string }).moved_from ?? null;
      // looked at once: the state decides the step, and (a real rewind) its bytes are what the step journals
      const looked = overlay.has(r.path) ? null : currentState(r.path, opts.dryRun ? 0 : journal.opts.maxPreImageBytes);
      const cur = overlay.get(r.path) ?? looked!.state;
      if (same(cur, r.pre) && !same(cur, r.post)) {
        // already back (a rewind resumed after a crash, or someone restored it by hand)
        out.restored.push({ path: r.path, to: r.pre.kind, seq: r.seq, tool: r.tool });
        return;
      }
      if (!same(cur, r.post) && !opts.force) {
        const reason = `changed since (${describe(cur)} where ${r.tool} left ${describe(r.post)})`;
        blocked.set(r.path, "it changed since");
        out.conflicts.push({ path: r.path, seq: r.seq, reason });
        return;
      }
      let content: Uint8Array | null = null;
      if (r.pre.kind === "file") {
        content = r.restorable ? journal.content(r.pre.sha256) : null;
        if (content === null) {
          blocked.set(r.path, "its pre-image is not kept");
          out.unrestorable.push({
            path: r.path,
            seq: r.seq,
            reason: r.restorable
              ? "its pre-image is missing from the journal"
              : "its pre-image was not kept (larger than journal.max_pre_image_bytes, or pruned past journal.max_bytes)",
          });
          return;
        }
      }
      if (movedFrom !== null) {
        const src = overlay.get(movedFrom) ?? currentState(movedFrom).state;
        // the source holds what an older change of this same plan left there (undoing a move that
        // overwrote a file): that change is dealt with after this one, so the move back may replace it
        const older = rows.slice(i + 1).find((x) => x.path === movedFrom);
        const planned = src.kind === "file" && older !== undefined && same(src, older.post);
        if (src.kind !== "absent" && !planned && !opts.force) {
          blocked.set(r.path, "its source path is taken");
          out.conflicts.push({ path: r.path, seq: r.seq, reason: `cannot move back: ${movedFrom} exists again` });
          return;
        }
      }
      if (opts.dryRun) {
        overlay.set(r.path, r.pre);
        if (movedFrom !== null) overlay.set(movedFrom, r.post);
      } else {
        // journaled before it is made: the restoration can itself be rewound
        const now = looked ?? currentState(r.path, journal.opts.maxPreImageBytes);
        const changes: PathChange[] = [{ path: r.path, pre: asState(now.state), preContent: now.content, post: r.pre }];
        if (movedFrom !== null) {
          // what the move back replaces (nothing, or a file) is kept like any pre-image
          const src = currentState(movedFrom, journal.opts.maxPreImageBytes);
          changes.push({
            path: movedFrom,
            pre: asState(src.state),
            preContent: src.content,
            post: { ...r.post, moved_from: r.path } as FileState,
          });
        }
        const seqs = journal.record({ ...opts.who, tool: "rewind", rewindId: opts.id }, changes);
        try {
          restore(r.path, now.state, r.pre, content, movedFrom, `${TEMP_PREFIX}${opts.id}-${r.seq}`);
          journal.settle(seqs, true);
        } catch (e) {
          settleByLooking(
            journal,
            journal.intended().filter((x) => seqs.includes(x.seq)),
          );
          blocked.set(r.path, "restoring it failed");
          out.conflicts.push({ path: r.path, seq: r.seq, reason: `restoring failed: ${(e as Error).message}` });
          return;
        }
      }
      out.restored.push({ path: r.path, to: r.pre.kind, seq: r.seq, tool: r.tool });
    };
    step();
    opts.onStep?.(i + 1);
    // a long rewind lets the kernel answer its console between steps (PID 1 never stalls)
    if ((i + 1) % 16 === 0) await new Promise((r) => setImmediate(r));
  }
  return out;
}

function asState(c: Current): FileState {
  // "other" is never journaled as a pre-image a rewind could put back: recorded as absent
  return c.kind === "other" ? { kind: "absent" } : c;
}

function describe(s: Current): string {
  switch (s.kind) {
    case "absent":
      return "nothing";
    case "dir":
      return "a directory";
    case "other":
      return "a symlink or special file";
    case "file":
      return `a file (sha256 ${s.sha256.slice(0, 12)}…)`;
  }
}
