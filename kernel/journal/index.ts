// kernel/journal: reversible effects (docs/design.md "Reversibility"). Every
// change a reversible tool makes to the agents' files is recorded before it
// happens: the path, its pre-image (a file's bytes, content-addressed by
// sha256; a directory; or absent) and the post-image the change will leave.
// The audit record of the call (tool.result) carries both hashes, so the
// audit chain is the ledger; this journal holds what a rewind needs to put
// the pre-images back (rewind.ts).
//
// Storage: <data>/state/journal/ (kernel-private like all of <data> but
// files/): journal.db (bun:sqlite, WAL, synchronous=FULL: a row that
// returned is on disk) and objects/<sha256> for pre-images larger than
// INLINE_BYTES (smaller ones are BLOBs in the db, one commit for the row and
// its pre-image). A row is written `intended` before the change (the
// write-ahead) and marked `done` after it; one left `intended` by a crash is
// settled at the next boot by looking at the path (recover()).
//
// Bounds: kernel.yaml journal.max_bytes of pre-images; past it the oldest go
// (their rows stay, marked pruned: a rewind past them says it cannot restore
// them), audited as journal.prune. A pre-image over max_pre_image_bytes is
// not kept at all (the row says so).
import type { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readSync, rmSync } from "node:fs";
import { join } from "node:path";
import { openStateDb, writeFileAtomic } from "../sys/files.ts";
import {
  close,
  Errno,
  fstat,
  O_NOCTTY,
  O_NONBLOCK,
  O_RDONLY,
  openAtBeneath,
  statAt,
  SysError,
} from "../sys/openat2.ts";

/**
 * What a path holds. moved_from, on a post-image: the change moved the entry
 * here from that path (file_move), so a rewind moves it back.
 */
export type FileState =
  | { kind: "absent" }
  | { kind: "file"; sha256: string; size: number; mode: number; moved_from?: string }
  | { kind: "dir"; mode: number; moved_from?: string };

export interface PathChange {
  path: string;
  pre: FileState;
  /** the pre-image's bytes when pre.kind === "file"; null when too large to keep */
  preContent: Uint8Array | null;
  post: FileState;
}

/** what the audit shows of a state */
export interface ShownState {
  kind: FileState["kind"];
  sha256?: string;
}

export interface JournalTicket {
  readonly changes: { path: string; pre: ShownState; post: ShownState }[];
  done(): void;
  failed(): void;
}

export interface Capture {
  begin(changes: PathChange[]): JournalTicket;
}

/** pre-images up to this size live in the db itself */
export const INLINE_BYTES = 256 * 1024;

export function sha256hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export function fileState(content: Uint8Array, mode: number): FileState {
  return { kind: "file", sha256: sha256hex(content), size: content.length, mode: mode & 0o7777 };
}

export function shown(s: FileState): ShownState {
  return s.kind === "file" ? { kind: "file", sha256: s.sha256 } : { kind: s.kind };
}

/** same content and kind (a file's mode is not compared: a chmod outside is not a conflict) */
export function sameState(a: FileState, b: FileState): boolean {
  if (a.kind !== b.kind) return false;
  return a.kind !== "file" || a.sha256 === (b as { sha256: string }).sha256;
}

/**
 * What is at `name` in the directory dirFd, never following a symlink: a
 * symlink or anything but a file or directory throws (the tools refuse
 * those). A file's bytes are read when it holds at most maxBytes.
 */
export function readState(
  dirFd: number,
  name: string,
  maxBytes = 16 * 1024 * 1024,
): { state: FileState; content: Uint8Array | null } {
  let st;
  try {
    st = statAt(dirFd, name);
  } catch (e) {
    if (e instanceof SysError && e.errno === Errno.ENOENT) return { state: { kind: "absent" }, content: null };
    throw e;
  }
  if (st.type === "dir") return { state: { kind: "dir", mode: st.mode }, content: null };
  if (st.type === "symlink") throw new SysError(Errno.ELOOP, "open", name);
  if (st.type !== "file") throw new SysError(Errno.EINVAL, "open", name);
  const fd = openAtBeneath(dirFd, name, O_RDONLY | O_NOCTTY | O_NONBLOCK);
  try {
    const f = fstat(fd);
    if (f.type !== "file") throw new SysError(Errno.EINVAL, "open", name);
    // hash it all; keep the bytes only when small enough
    const hash = createHash("sha256");
    let size = 0;
    let kept: Uint8Array | null = null;
    const chunk = 1024 * 1024;
    const parts: Uint8Array[] = [];
    const buf = new Uint8Array(chunk);
    for (;;) {
      const n = readSync(fd, buf, 0, chunk, null);
      if (n === 0) break;
      const data = buf.subarray(0, n);
      hash.update(data);
      size += n;
      if (size <= maxBytes) parts.push(data.slice());
    }
    if (size <= maxBytes) kept = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    return { state: { kind: "file", sha256: hash.digest("hex"), size, mode: f.mode }, content: kept };
  } finally {
    close(fd);
  }
}

export interface ChangeRow {
  seq: number;
  call_seq: number | null;
  agent_id: string;
  /** ",ID,PARENT,GRANDPARENT," — a rewind with include_children finds descendants by it */
  lineage: string;
  tool: string;
  path: string;
  pre: FileState;
  post: FileState;
  /** the pre-image can be put back (false: too large when taken, or pruned) */
  restorable: boolean;
  state: "intended" | "done";
  rewind_id: string | null;
  ts: string;
}

export interface JournalOptions {
  dir: string;
  maxBytes: number;
  maxPreImageBytes: number;
}

export class Journal {
  private handle: Database | null = null;
  private q: ReturnType<Journal["prepare"]> | null = null;

  constructor(readonly opts: JournalOptions) {}

  private db(): { db: Database; q: ReturnType<Journal["prepare"]> } {
    if (!this.handle) {
      mkdirSync(join(this.opts.dir, "objects"), { recursive: true });
      const db = openStateDb(join(this.opts.dir, "journal.db"));
      db.exec(`
        CREATE TABLE IF NOT EXISTS changes (
          seq INTEGER PRIMARY KEY AUTOINCREMENT, call_seq INTEGER, agent_id TEXT NOT NULL, lineage TEXT NOT NULL,
          tool TEXT NOT NULL, path TEXT NOT NULL, pre TEXT NOT NULL, post TEXT NOT NULL,
          pre_sha256 TEXT, restorable INTEGER NOT NULL, state TEXT NOT NULL, rewind_id TEXT, ts TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS changes_path ON changes (path, seq);
        CREATE INDEX IF NOT EXISTS changes_state ON changes (state);
        CREATE TABLE IF NOT EXISTS blobs (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, data BLOB) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS rewinds (
          id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, audit_seq INTEGER, plan TEXT NOT NULL, done INTEGER NOT NULL,
          state TEXT NOT NULL, result TEXT, ts TEXT NOT NULL);
      `);
      this.handle = db;
      this.q = this.prepare(db);
    }
    return { db: this.handle, q: this.q! };
  }

  private prepare(db: Database) {
    return {
      insert: db.query(
        `INSERT INTO changes (call_seq, agent_id, lineage, tool, path, pre, post, pre_sha256, restorable, state, rewind_id, ts)
         VALUES ($call_seq, $agent_id, $lineage, $tool, $path, $pre, $post, $pre_sha256, $restorable, 'intended', $rewind_id, $ts)`,
      ),
      putBlob: db.query(`INSERT OR IGNORE INTO blobs (sha256, size, data) VALUES ($sha256, $size, $data)`),
      blob: db.query(`SELECT size, data FROM blobs WHERE sha256 = $sha256`),
      setState: db.query(`UPDATE changes SET state = $state WHERE seq = $seq`),
      del: db.query(`DELETE FROM changes WHERE seq = $seq`),
      intended: db.query(`SELECT * FROM changes WHERE state = 'intended' ORDER BY seq`),
      since: db.query(
        `SELECT * FROM changes WHERE state = 'done' AND (call_seq IS NULL OR call_seq > $after)
           AND (lineage LIKE $pattern) ORDER BY seq DESC`,
      ),
      bytes: db.query(`SELECT COALESCE(SUM(size), 0) AS n FROM blobs`),
      oldestBlobs: db.query(
        `SELECT b.sha256 AS sha256, b.size AS size, b.data IS NULL AS external, MIN(c.seq) AS first
         FROM blobs b JOIN changes c ON c.pre_sha256 = b.sha256 GROUP BY b.sha256 ORDER BY first`,
      ),
      orphanBlobs: db.query(
        `SELECT sha256, size, data IS NULL AS external FROM blobs
         WHERE sha256 NOT IN (SELECT pre_sha256 FROM changes WHERE pre_sha256 IS NOT NULL)`,
      ),
      delBlob: db.query(`DELETE FROM blobs WHERE sha256 = $sha256`),
      unrestorable: db.query(`UPDATE changes SET restorable = 0 WHERE pre_sha256 = $sha256`),
      addRewind: db.query(
        `INSERT INTO rewinds (id, agent_id, audit_seq, plan, done, state, ts) VALUES ($id, $agent_id, $audit_seq, $plan, 0, 'running', $ts)`,
      ),
      rewindProgress: db.query(`UPDATE rewinds SET done = $done WHERE id = $id`),
      rewindEnd: db.query(`UPDATE rewinds SET state = 'done', result = $result WHERE id = $id`),
      runningRewinds: db.query(`SELECT * FROM rewinds WHERE state = 'running' ORDER BY ts`),
      bySeq: db.query(`SELECT * FROM changes WHERE seq = $seq`),
    };
  }

  close(): void {
    this.handle?.close();
    this.handle = null;
    this.q = null;
  }

  /** true once anything was ever journaled (the file exists) */
  exists(): boolean {
    return this.handle !== null || existsSync(join(this.opts.dir, "journal.db"));
  }

  /** a pre-image's bytes, or null when it is not kept (pruned, or never kept) */
  content(sha: string): Uint8Array | null {
    const { q } = this.db();
    const r = q.blob.get({ sha256: sha }) as { size: number; data: Uint8Array | null } | null;
    if (!r) return null;
    if (r.data) return r.data;
    try {
      return readFileSync(join(this.opts.dir, "objects", sha));
    } catch {
      return null;
    }
  }

  /** the write-ahead: rows and pre-images, one transaction, durable when it returns */
  record(
    who: { agentId: string; lineage: string; tool: string; callSeq: number | null; rewindId?: string | null },
    changes: PathChange[],
  ): number[] {
    const { db, q } = this.db();
    const ts = new Date().toISOString();
    // large pre-images are written (and fsynced) as files first: the rows that name them come after
    const big = new Set<string>();
    for (const c of changes)
      if (
        c.pre.kind === "file" &&
        c.preContent &&
        c.preContent.length > INLINE_BYTES &&
        c.preContent.length <= this.opts.maxPreImageBytes
      ) {
        this.keepFile(c.preContent);
        big.add(c.pre.sha256);
      }
    return db.transaction(() =>
      changes.map((c) => {
        let restorable = c.pre.kind !== "file";
        if (c.pre.kind === "file" && c.preContent && c.preContent.length <= this.opts.maxPreImageBytes) {
          const put = big.has(c.pre.sha256)
            ? q.putBlob.run({ sha256: c.pre.sha256, size: c.preContent.length, data: null })
            : q.putBlob.run({ sha256: c.pre.sha256, size: c.preContent.length, data: c.preContent });
          if (put.changes > 0 && this.total !== null) this.total += c.preContent.length;
          restorable = true;
        }
        const r = q.insert.run({
          call_seq: who.callSeq,
          agent_id: who.agentId,
          lineage: who.lineage,
          tool: who.tool,
          path: c.path,
          pre: JSON.stringify(c.pre),
          post: JSON.stringify(c.post),
          pre_sha256: c.pre.kind === "file" ? c.pre.sha256 : null,
          restorable: restorable ? 1 : 0,
          rewind_id: who.rewindId ?? null,
          ts,
        });
        return Number(r.lastInsertRowid);
      }),
    )();
  }

  private keepFile(content: Uint8Array): void {
    const file = join(this.opts.dir, "objects", sha256hex(content));
    // content-addressed: a file of that name already holds these bytes
    if (!existsSync(file)) writeFileAtomic(file, content, 0o600);
  }

  /**
   * The outcome, committed without waiting for the disk (synchronous=NORMAL
   * for this one commit): the next FULL commit makes it durable, and a crash
   * before that leaves the rows intended, which the next boot settles by
   * looking at the paths, as it would have been. One fsync per change, not two.
   */
  settle(seqs: number[], happened: boolean): void {
    const { db, q } = this.db();
    db.exec("PRAGMA synchronous = NORMAL");
    try {
      db.transaction(() => {
        for (const seq of seqs) happened ? q.setState.run({ seq, state: "done" }) : q.del.run({ seq });
      })();
    } finally {
      db.exec("PRAGMA synchronous = FULL");
    }
  }

  /** rows a crash left intended: the caller decides from the path whether each happened */
  intended(): ChangeRow[] {
    if (!this.exists()) return [];
    return (this.db().q.intended.all() as Record<string, any>[]).map(toRow);
  }

  /** done changes of the agent (and, with children, every agent whose lineage holds it) after an audit seq, newest first */
  changesSince(agentId: string, afterSeq: number, children: boolean): ChangeRow[] {
    if (!this.exists()) return [];
    const pattern = children ? `%,${agentId},%` : `,${agentId},%`;
    return (this.db().q.since.all({ after: afterSeq, pattern }) as Record<string, any>[]).map(toRow);
  }

  /** bytes of pre-images kept (summed once, then kept up to date) */
  private total: number | null = null;
  bytes(): number {
    if (!this.exists()) return 0;
    return (this.total ??= (this.db().q.bytes.get() as { n: number }).n);
  }

  /** past max_bytes: the oldest pre-images go (their rows stay, not restorable); returns what went */
  prune(): { blobs: number; bytes: number } {
    if (!this.exists()) return { blobs: 0, bytes: 0 };
    const { db, q } = this.db();
    let total = this.bytes();
    let blobs = 0;
    let bytes = 0;
    const files: string[] = [];
    db.transaction(() => {
      for (const o of q.orphanBlobs.all() as { sha256: string; size: number; external: number }[]) {
        q.delBlob.run({ sha256: o.sha256 });
        if (o.external) files.push(o.sha256);
        total -= o.size;
      }
      if (total <= this.opts.maxBytes) return;
      for (const b of q.oldestBlobs.all() as { sha256: string; size: number; external: number }[]) {
        if (total <= this.opts.maxBytes) break;
        q.delBlob.run({ sha256: b.sha256 });
        q.unrestorable.run({ sha256: b.sha256 });
        if (b.external) files.push(b.sha256);
        total -= b.size;
        blobs++;
        bytes += b.size;
      }
    })();
    for (const f of files) rmSync(join(this.opts.dir, "objects", f), { force: true });
    this.total = null;
    return { blobs, bytes };
  }

  /** rows by seq, in the order given (a resumed rewind's plan); a row gone since is left out */
  rows(seqs: number[]): ChangeRow[] {
    const { q } = this.db();
    const out: ChangeRow[] = [];
    for (const seq of seqs) {
      const r = q.bySeq.get({ seq }) as Record<string, any> | null;
      if (r) out.push(toRow(r));
    }
    return out;
  }

  // ---- rewinds (rewind.ts drives these) ----------------------------------

  addRewind(id: string, agentId: string, auditSeq: number | null, plan: unknown): void {
    this.db().q.addRewind.run({
      id,
      agent_id: agentId,
      audit_seq: auditSeq,
      plan: JSON.stringify(plan),
      ts: new Date().toISOString(),
    });
  }

  rewindProgress(id: string, done: number): void {
    this.db().q.rewindProgress.run({ id, done });
  }

  endRewind(id: string, result: unknown): void {
    this.db().q.rewindEnd.run({ id, result: JSON.stringify(result) });
  }

  runningRewinds(): { id: string; agent_id: string; audit_seq: number | null; plan: unknown; done: number }[] {
    if (!this.exists()) return [];
    return (this.db().q.runningRewinds.all() as Record<string, any>[]).map((r) => ({
      id: r.id,
      agent_id: r.agent_id,
      audit_seq: r.audit_seq,
      plan: JSON.parse(r.plan),
      done: r.done,
    }));
  }
}

function toRow(r: Record<string, any>): ChangeRow {
  return {
    seq: r.seq,
    call_seq: r.call_seq ?? null,
    agent_id: r.agent_id,
    lineage: r.lineage,
    tool: r.tool,
    path: r.path,
    pre: JSON.parse(r.pre),
    post: JSON.parse(r.post),
    restorable: !!r.restorable,
    state: r.state,
    rewind_id: r.rewind_id ?? null,
    ts: r.ts,
  };
}
