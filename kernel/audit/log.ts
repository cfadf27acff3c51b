// AuditLog: the append-only, hash-chained, group-committed audit trail.
// The design (file layout, hashing, durability, recovery, redaction) is
// described at the top of ./index.ts.
import * as fs from "node:fs";
import { dirname, join } from "node:path";
import { ErrorCode, KernelError, invalidParams } from "../errors.ts";
import { ANCHOR_BYTES, anchorPath, formatAnchor, readAnchor, type Anchor, type AnchorRead } from "./anchor.ts";
import {
  GENESIS,
  sortKeys,
  canonicalJSON,
  lineHashMatchesIn,
  recordHash,
  sanitize,
  sha256Bytes,
  sha256hex,
  type SanitizeContext,
} from "./canonical.ts";
import type { AuditLogKind } from "./kinds.ts";
import {
  blockBuffers,
  fsyncDir,
  listSegments,
  nodeIO,
  parseRecord,
  readBlocks,
  readLines,
  scanTail,
  segmentName,
  segmentPath,
  writeAll,
  type AuditIO,
  type TailScan,
} from "./segments.ts";

/**
 * What append() takes. The log is storage: it takes any non-empty kind but
 * its own audit.*; the kernel's writers are held to kinds.ts by
 * AgentServices.audit (AuditEventInput).
 */
export interface AuditAppendEvent {
  kind: string;
  agent_id?: string | null;
  [field: string]: unknown;
}

export interface AuditRecord {
  seq: number;
  ts: string;
  kind: string;
  agent_id: string | null;
  [field: string]: unknown;
  prev: string;
  hash: string;
}

export interface AuditQuery {
  agent_id?: string;
  /** exact, or a prefix ending in ".*" ("tool.*" matches "tool.call", not "tool"); "*" matches all */
  kind?: string;
  /** first seq to consider (inclusive); default 1 */
  since_seq?: number;
  /** default 100, at most 1000 (larger values are clamped) */
  limit?: number;
}

export interface AuditHeadRef {
  seq: number;
  hash: string;
}

/** Bytes crash recovery cut from the end of the log (reported by an audit.recovered record). */
export interface AuditQuarantined {
  /** the segment file they were cut from */
  segment: string;
  /** byte offset in that segment where they began */
  offset: number;
  bytes: number;
  /** where they are kept, relative to the log's directory; null while the log cannot be written (they are still at the end of the segment) */
  file: string | null;
  /** first and last seq of the records among them that still parse */
  seqs?: [number, number];
  /** they held records the log had acknowledged (the log was behind its head anchor): ok is false */
  acknowledged: boolean;
  reason: string;
  /** seq of the audit.recovered record that reports them; null: not yet written (the log is degraded) */
  record: number | null;
}

/** The log was found behind, or different from, its head anchor at open (an audit.tampered record). */
export interface AuditTampered {
  /** seq of the audit.tampered record; null: not yet written (the log is degraded) */
  record: number | null;
  /** what HEAD said */
  anchor: AuditHeadRef;
  /** the head recovery found in the segments */
  found: AuditHeadRef;
  /** acknowledged seqs that are gone (when the log ended before the anchor); never reused */
  missing?: [number, number];
  reason: string;
}

/** The log had records but no readable head anchor at open (an audit.unanchored record). */
export interface AuditUnanchored {
  record: number | null;
  found: AuditHeadRef;
  reason: string;
}

export interface AuditVerifyResult {
  ok: boolean;
  /** records that checked out (all of them when ok) */
  events: number;
  /** hash of the last record that checked out (GENESIS for an empty log) */
  head: string;
  /** the first problem: a record that does not check out, else the first tampering report */
  broken?: { seq: number; reason: string };
  /** what <dir>/HEAD holds now (null: missing or unreadable) */
  anchor: AuditHeadRef | null;
  /** every range crash recovery cut from the log, oldest first */
  quarantined: AuditQuarantined[];
  /** every time the log was found behind or unlike its anchor; any entry makes ok false, for good */
  tampered: AuditTampered[];
  /** every time the log was opened without a readable anchor (cannot rule tampering in or out; ok unaffected) */
  unanchored: AuditUnanchored[];
}

export interface AuditOpenOptions {
  /** records per segment file; default 10,000 */
  segmentRecords?: number;
  /** "fsync" (default): append resolves after fdatasync; "none": after write() */
  durability?: "fsync" | "none";
  /** most records sealed into one write; default 4096 */
  maxBatchRecords?: number;
  /** strings longer than this many UTF-8 bytes are cut (after redaction); default 65,536 */
  maxStringLength?: number;
  /** register credential-looking environment variables as secrets; default true */
  registerEnvSecrets?: boolean;
  /** replace disk operations (tests inject failures) */
  io?: Partial<AuditIO>;
}

export const DEFAULT_SEGMENT_RECORDS = 10_000;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
const MIN_SECRET_LENGTH = 4;
const ENV_SECRET_NAME = /(API_?KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL)/i;

interface Pending {
  fields: Record<string, unknown>;
  resolve: (v: { seq: number; hash: string }) => void;
  reject: (e: unknown) => void;
  /** set to its reason once the entry is rejected: an entry linked to it is not written either */
  failed?: unknown;
  /** fields[link.field] is set to link.to's seq when this entry is sealed (AuditLink) */
  link?: { field: string; to: Pending };
}

/**
 * A record that names an earlier one by seq before that one is durable:
 * `to` is the promise append() returned for the earlier record, `field` the
 * field that gets its seq when this record is sealed (the earlier one, being
 * first in call order, is sealed first, in the same group commit or before).
 */
export interface AuditLink {
  field: string;
  to: Promise<{ seq: number; hash: string }>;
}

/** A recovery step found at open and not yet carried out (the disk may be full). */
interface Drop {
  /** the segment */
  first: number;
  /** where the dropped bytes begin (0 with remove) */
  offset: number;
  bytes: Buffer;
  /** the segment holds no valid record: remove it, after keeping its bytes */
  remove: boolean;
  /** the audit.recovered record that reports it (null: an empty file, nothing to report) */
  record: Record<string, unknown> | null;
}

function internal(message: string, cause?: unknown): KernelError {
  const err = cause as NodeJS.ErrnoException | undefined;
  const data: Record<string, unknown> = {};
  if (err?.code) data.errno = err.code;
  if (err?.message) data.cause = err.message;
  return new KernelError(ErrorCode.InternalError, err?.message ? `${message}: ${err.message}` : message, data);
}

const WRITE_ADVICE: Record<string, [string, string]> = {
  ENOSPC: ["no space left on device", "free space on the data disk"],
  EDQUOT: ["disk quota exceeded", "free space on the data disk or raise its quota"],
  EROFS: ["read-only file system", "the data disk is mounted read-only: check it and remount it read-write"],
  EIO: ["input/output error", "the data disk reported an I/O error: check the disk"],
};

/** The error an append rejects with when the disk refuses: what failed and what to do. */
function cannotWrite(cause: unknown): KernelError {
  if (cause instanceof KernelError) return cause;
  const err = cause as NodeJS.ErrnoException | undefined;
  const code = typeof err?.code === "string" ? err.code : undefined;
  const known = code ? WRITE_ADVICE[code] : undefined;
  const what = known ? `${code}: ${known[0]}; ${known[1]}` : `${err?.message ?? String(cause)}; check the data disk`;
  const data: Record<string, unknown> = {};
  if (code) data.errno = code;
  if (err?.message) data.cause = err.message;
  return new KernelError(ErrorCode.InternalError, `audit log cannot be written: ${what}`, data);
}

/** first and last seq of the lines among `bytes` that parse as JSON objects with a seq */
function seqRange(bytes: Buffer): [number, number] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const piece of bytes.toString("utf8").split("\n")) {
    if (!piece.includes('"seq"')) continue;
    let r: unknown;
    try {
      r = JSON.parse(piece);
    } catch {
      continue;
    }
    const seq = (r as Record<string, unknown> | null)?.seq;
    if (typeof seq === "number" && Number.isSafeInteger(seq) && seq >= 1) {
      lo = Math.min(lo, seq);
      hi = Math.max(hi, seq);
    }
  }
  return lo <= hi ? [lo, hi] : undefined;
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);
const isRange = (v: unknown): v is [number, number] =>
  Array.isArray(v) && v.length === 2 && v.every((x) => Number.isSafeInteger(x));
const ref = (v: unknown): AuditHeadRef =>
  isObj(v) ? { seq: Number(v.seq), hash: String(v.hash) } : { seq: 0, hash: "" };

export class AuditLog {
  readonly dir: string;
  private readonly segmentRecords: number;
  private readonly durable: boolean;
  private readonly maxBatch: number;
  private readonly io: AuditIO;
  private readonly ctx: SanitizeContext & { secrets: Set<string> };
  private readonly envSecrets: boolean;

  // Durable head: the last record whose write (and sync) completed.
  private headSeq = 0;
  private headHash = GENESIS;
  // The segment that holds, or will hold, the next record (committed state:
  // size and count cover durable records only).
  private segFirst = 1;
  private segSize = 0;
  private segCount = 0;
  private fd: number | null = null;

  // Appends not yet written: bounded by what callers have in flight.
  private queue: Pending[] = [];
  private flushing: Promise<void> | null = null;
  private needsRepair = false;
  private closed = false;

  // What open found and could not finish yet (the disk refused): carried
  // out, and its records written, before the next caller's records.
  private needsDir = false;
  private pendingDrops: Drop[] = [];
  private pendingRecords: Record<string, unknown>[] = [];
  /** set while the log is behind its anchor: the next record gets seq pendingGap + 1 */
  private pendingGap: number | null = null;
  private degradedState: { reason: string; since: string } | null = null;
  /** told each record's line (canonical JSON with its hash) once it is durable */
  private readonly watchers = new Set<(line: string) => void>();

  // The head anchor (<dir>/HEAD) as this process last wrote or read it.
  private anchorFd: number | null = null;
  private anchorSeq = -1;
  private anchorHash = "";
  private anchorSynced = false;

  private constructor(dir: string, opts: AuditOpenOptions) {
    this.dir = dir;
    const n = opts.segmentRecords ?? DEFAULT_SEGMENT_RECORDS;
    if (!Number.isSafeInteger(n) || n < 1) throw invalidParams("segmentRecords must be a positive integer");
    this.segmentRecords = n;
    this.durable = (opts.durability ?? "fsync") === "fsync";
    this.maxBatch = Math.max(1, opts.maxBatchRecords ?? 4096);
    this.io = { ...nodeIO, ...opts.io };
    this.ctx = { secrets: new Set(), maxString: Math.max(64, opts.maxStringLength ?? 65_536) };
    this.envSecrets = opts.registerEnvSecrets ?? true;
  }

  /**
   * Open (and recover) the log. Resolves even when the disk refuses writes
   * (full, read-only, failing): the log is then degraded (see degraded()),
   * reads work, appends reject until the disk takes writes again. Rejects
   * only when the log cannot be read.
   */
  static async open(dir: string, opts: AuditOpenOptions = {}): Promise<AuditLog> {
    const log = new AuditLog(dir, opts);
    try {
      await log.init();
    } catch (e) {
      for (const fd of [log.fd, log.anchorFd]) if (fd !== null) await log.io.close(fd).catch(() => {});
      if (e instanceof KernelError) throw e;
      throw internal(`cannot open audit log in ${dir}`, e);
    }
    return log;
  }

  private async init(): Promise<void> {
    try {
      const created = await fs.promises.mkdir(this.dir, { recursive: true });
      if (created && this.durable) await fsyncDir(this.io, dirname(created));
    } catch (e) {
      // an empty log that cannot be written yet
      this.needsDir = true;
      this.degrade(e);
    }
    if (this.envSecrets) {
      for (const [k, v] of Object.entries(process.env))
        if (v && v.length >= 8 && ENV_SECRET_NAME.test(k)) this.registerSecret(v);
    }

    // Read-only first: the anchor, then the newest segments backwards to
    // the last valid record. Nothing is changed on disk until settle().
    const anchor: AnchorRead = this.needsDir ? { state: "missing" } : await readAnchor(this.io, this.dir);
    if (anchor.state === "ok") {
      this.anchorSeq = anchor.seq;
      this.anchorHash = anchor.hash;
    }
    const segs = await listSegments(this.dir);
    const drops: Omit<Drop, "record">[] = [];
    const invalid: number[] = [];
    for (let k = segs.length - 1; k >= 0; k--) {
      const first = segs[k]!;
      const fd = await this.io.open(segmentPath(this.dir, first), "r");
      let t: TailScan;
      try {
        t = await scanTail(this.io, fd, first);
      } finally {
        await this.io.close(fd).catch(() => {});
      }
      if (t.validEnd < t.size || !t.last) {
        drops.push({ first, offset: t.validEnd, bytes: t.dropped, remove: !t.last });
        invalid.push(t.invalidLines);
      }
      if (t.last) {
        this.headSeq = t.last.seq;
        this.headHash = t.last.hash;
        this.segFirst = first;
        this.segSize = t.validEnd;
        this.segCount = Math.max(0, t.last.seq - first + 1);
        break;
      }
      // Not one valid record in this segment: it was created but never
      // acknowledged into (or all of it was cut). It goes; look at the one before.
    }
    if (this.headSeq === 0) this.segFirst = 1;

    // Compare the recovered head with the anchor.
    const found = { seq: this.headSeq, hash: this.headHash };
    const a: Anchor | null = anchor.state === "ok" ? { seq: anchor.seq, hash: anchor.hash } : null;
    let behind = false;
    const records: Record<string, unknown>[] = [];
    if (a && a.seq > found.seq) {
      behind = true;
      this.pendingGap = a.seq;
      const lost = a.seq === found.seq + 1 ? `record ${a.seq} was` : `records ${found.seq + 1}-${a.seq} were`;
      records.push(
        this.internalRecord({
          kind: "audit.tampered",
          anchor: a,
          found,
          missing: [found.seq + 1, a.seq],
          reason: `the log ends at seq ${found.seq} but its head anchor (HEAD) names seq ${a.seq}: acknowledged ${lost} cut, edited or deleted while the kernel was down; numbering continues after ${a.seq}`,
        }),
      );
    } else if (a) {
      const at = a.seq === found.seq ? found.hash : a.seq === 0 ? GENESIS : await this.hashAt(a.seq);
      if (at !== a.hash && !(await this.reported(a))) {
        records.push(
          this.internalRecord({
            kind: "audit.tampered",
            anchor: a,
            found,
            reason:
              at === null
                ? `record ${a.seq}, the head the anchor (HEAD) names, is missing or invalid: the log was rewritten from there on while the kernel was down`
                : `record ${a.seq} is not the one the head anchor (HEAD) names: the log was rewritten from there on while the kernel was down`,
          }),
        );
      }
    } else if (found.seq > 0) {
      records.push(
        this.internalRecord({
          kind: "audit.unanchored",
          found,
          reason:
            (anchor.state === "invalid"
              ? "the head anchor (HEAD) is unreadable"
              : "the head anchor (HEAD) is missing") +
            `, beside a log of ${found.seq} records: it was removed or damaged, or the log was written by a kernel without anchors; records cut from the end of the log before this point cannot be detected`,
          ...(anchor.state === "invalid" ? { head_file: anchor.raw } : {}),
        }),
      );
    }
    drops.forEach((d, i) => {
      let record: Record<string, unknown> | null = null;
      if (d.bytes.length) {
        const seqs = seqRange(d.bytes);
        const acknowledged = a !== null && (behind || (seqs !== undefined && seqs[0] <= a.seq));
        const lines = invalid[i]!;
        record = this.internalRecord({
          kind: "audit.recovered",
          segment: segmentName(d.first),
          offset: d.offset,
          bytes_dropped: d.bytes.length,
          invalid_lines: lines,
          reason: acknowledged
            ? "records the log had acknowledged were cut or edited at the end of the log (see audit.tampered)"
            : lines
              ? "invalid records at the end of the log"
              : "torn write at the end of the log",
          ...(seqs ? { seqs } : {}),
          acknowledged,
          quarantine: null, // filled in once the bytes are kept
        });
        records.push(record);
      }
      this.pendingDrops.push({ ...d, record });
    });
    this.pendingRecords = records;
    await this.settle();
  }

  /** Carry out what open found (or what is still pending) and write its records; never throws. */
  private async settle(): Promise<void> {
    if (this.pendingDrops.length || this.pendingRecords.length || this.needsDir) await this.writeBatch([]);
    if (!this.degradedState) await this.writeAnchor(true);
  }

  /** hash of the valid record `seq`, or null when the log has none */
  private async hashAt(seq: number): Promise<string | null> {
    let first: number | undefined;
    for (const s of await listSegments(this.dir)) if (s <= seq) first = s;
    if (first === undefined) return null;
    for await (const line of readLines(segmentPath(this.dir, first), this.io)) {
      let r: unknown;
      try {
        r = JSON.parse(line);
      } catch {
        continue;
      }
      const s = isObj(r) ? r.seq : undefined;
      if (s === seq) return parseRecord(line)?.hash ?? null;
      if (typeof s === "number" && s > seq) return null;
    }
    return null;
  }

  /** an audit.tampered record about this very anchor is already in the newest segment (a crash before HEAD was rewritten) */
  private async reported(a: Anchor): Promise<boolean> {
    if (this.headSeq === 0) return false;
    for await (const line of readLines(segmentPath(this.dir, this.segFirst), this.io)) {
      if (!line.includes('"audit.tampered"')) continue;
      const p = parseRecord(line);
      const an = p?.rec.anchor;
      if (p?.rec.kind === "audit.tampered" && isObj(an) && an.seq === a.seq && an.hash === a.hash) return true;
    }
    return false;
  }

  /** Keep the bytes recovery drops, beside the log, for an investigator. */
  private async quarantine(first: number, offset: number, bytes: Buffer): Promise<string> {
    const qdir = join(this.dir, "quarantine");
    await fs.promises.mkdir(qdir, { recursive: true });
    const name = `${segmentName(first)}.at-${offset}.${Date.now()}.dropped`;
    const path = join(qdir, name);
    const fd = await this.io.open(path, "w");
    try {
      await writeAll(this.io, fd, bytes, 0);
      await this.io.fsync(fd);
    } catch (e) {
      await this.io.close(fd).catch(() => {});
      await this.io.unlink(path).catch(() => {}); // no half-kept evidence
      throw e;
    }
    await this.io.close(fd).catch(() => {});
    await fsyncDir(this.io, qdir);
    await fsyncDir(this.io, this.dir);
    return join("quarantine", name);
  }

  /** One recovery step: keep the dropped bytes, then cut them (or remove the segment). */
  private async carryOut(d: Drop): Promise<void> {
    if (d.record && d.record.quarantine === null)
      d.record.quarantine = await this.quarantine(d.first, d.offset, d.bytes);
    const path = segmentPath(this.dir, d.first);
    if (d.remove) {
      await this.io.unlink(path).catch((e) => {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      });
      if (this.durable) await fsyncDir(this.io, this.dir);
      return;
    }
    const fd = await this.io.open(path, "r+");
    try {
      await this.io.ftruncate(fd, d.offset);
      await this.io.fsync(fd);
    } finally {
      await this.io.close(fd).catch(() => {});
    }
  }

  /** The durable head: seq and hash of the last acknowledged record. */
  head(): { seq: number; hash: string } {
    return { seq: this.headSeq, hash: this.headHash };
  }

  /**
   * null while the log takes writes. Otherwise why it cannot (the message
   * appends reject with) and since when: open found the disk refusing, or
   * the last write failed. Cleared by the first append that succeeds.
   */
  degraded(): { reason: string; since: string } | null {
    return this.degradedState ? { ...this.degradedState } : null;
  }

  private degrade(e: unknown): void {
    this.degradedState = {
      reason: cannotWrite(e).message,
      since: this.degradedState?.since ?? new Date().toISOString(),
    };
  }

  /** Any string field containing `value` is written as "[redacted]" from now on. */
  /**
   * Every record from now on, as its line (canonical JSON, hash included,
   * newline-terminated), once it is durable, in seq order. A watcher's error
   * is its own (ignored). Returns the unsubscribe.
   */
  watch(fn: (line: string) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  registerSecret(value: string): void {
    if (typeof value === "string" && value.length >= MIN_SECRET_LENGTH) this.ctx.secrets.add(value);
  }

  /**
   * Record an event. The record is snapshotted (sanitised, redacted,
   * timestamped) now; its place in the sequence is the call order; the
   * promise resolves once the record is durable. Never throws synchronously.
   * Kinds `audit.*` are the log's own and are refused (-32602).
   * With `link`, the record's `link.field` is the seq of the record `link.to`
   * stands for, which need not be durable yet; if that one is not written,
   * neither is this one (it rejects with the same error).
   */
  append(event: AuditAppendEvent, link?: AuditLink): Promise<{ seq: number; hash: string }> {
    let p: Pending;
    try {
      if (this.closed) throw new KernelError(ErrorCode.InternalError, "audit log is closed");
      const fields = this.prepare(event, link?.field);
      if (typeof event.kind === "string" && event.kind.startsWith("audit."))
        throw invalidParams(`kind ${event.kind}: audit.* records are written by the audit log itself`);
      const to = link && this.appended.get(link.to);
      if (link && !to) throw invalidParams("link.to is not a record this log was given");
      p = { fields, resolve: () => {}, reject: () => {}, ...(to ? { link: { field: link.field, to } } : {}) };
    } catch (e) {
      return Promise.reject(e);
    }
    const promise = new Promise<{ seq: number; hash: string }>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = (e) => {
        p.failed = e ?? new Error("audit append failed");
        reject(e);
      };
    });
    this.appended.set(promise, p);
    this.queue.push(p);
    this.kick();
    return promise;
  }

  /** what append() returned, for a later record's link */
  private readonly appended = new WeakMap<Promise<unknown>, Pending>();

  private internalRecord(event: { kind: AuditLogKind; [field: string]: unknown }): Record<string, unknown> {
    return this.prepare({ ...event, agent_id: null });
  }

  /**
   * The record's fields, seq and prev (set when sealed) and the link field
   * included, inserted in canonical key order: sealing changes values only,
   * so canonicalJSON() writes the record with one JSON.stringify.
   */
  private prepare(event: AuditAppendEvent, linkField?: string): Record<string, unknown> {
    if (!event || typeof event !== "object" || Array.isArray(event))
      throw invalidParams("an audit event must be an object");
    if (typeof event.kind !== "string" || event.kind.length === 0)
      throw invalidParams("an audit event needs a non-empty string kind");
    const s = sanitize(event, this.ctx);
    const src: Record<string, unknown> =
      s && typeof s === "object" && !Array.isArray(s) ? (s as Record<string, unknown>) : Object.create(null);
    const a = src.agent_id;
    const own: Record<string, unknown> = {
      agent_id: typeof a === "string" ? a : a === undefined || a === null ? null : canonicalJSON(a),
      kind: typeof src.kind === "string" ? src.kind : String(event.kind),
      prev: GENESIS,
      seq: 0,
      ts: isoNow(),
    };
    if (linkField !== undefined) own[linkField] = 0;
    const keys = Object.keys(src).filter((k) => k !== "hash" && !Object.hasOwn(own, k));
    for (const k in own) keys.push(k);
    sortKeys(keys);
    const fields: Record<string, unknown> = Object.create(null);
    for (const k of keys) fields[k] = Object.hasOwn(own, k) ? own[k] : src[k];
    return fields;
  }

  private kick(): void {
    if (this.flushing) return;
    this.flushing = new Promise<void>((resolve) => {
      setImmediate(() => {
        void this.drain().finally(() => {
          this.flushing = null;
          resolve();
          if (this.queue.length) this.kick();
        });
      });
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      let batch: Pending[];
      if (this.queue.length <= this.maxBatch) {
        batch = this.queue;
        this.queue = [];
      } else {
        batch = this.queue.splice(0, this.maxBatch);
      }
      try {
        await this.writeBatch(batch);
      } catch (e) {
        // writeBatch settles every entry itself; this is a last resort
        for (const p of batch) p.reject(internal("audit log write failed", e));
      }
    }
  }

  /**
   * Seal a batch (seq, prev, hash in call order), write it, sync it, resolve
   * it. What open left pending (recovery steps, their records) goes first;
   * when that fails the batch is rejected and the log stays degraded.
   */
  private async writeBatch(batch: Pending[]): Promise<void> {
    try {
      await this.prepareWrite();
    } catch (e) {
      this.degrade(e);
      this.fail(batch, e);
      return;
    }
    // an entry linked to one that was not written is not written either
    if (batch.some((p) => p.link?.to.failed !== undefined)) {
      batch = batch.filter((p) => {
        const failed = p.link?.to.failed;
        if (failed !== undefined) p.reject(failed);
        return failed === undefined;
      });
    }
    const k = this.pendingRecords.length;
    const all: Pending[] = k
      ? [
          ...this.pendingRecords.map((fields) => ({
            fields,
            resolve: () => {
              this.pendingRecords.shift(); // resolved in order: this is the first pending one
            },
            reject: () => {},
          })),
          ...batch,
        ]
      : batch;
    const n = all.length;
    if (n === 0) return;
    const lines = new Array<string>(n);
    const hashes = new Array<string>(n);
    let prev = this.headHash;
    const base = this.pendingGap ?? this.headSeq;
    for (let j = 0; j < n; j++) {
      const { fields: f, link } = all[j]!;
      if (link) f[link.field] = link.to.fields.seq; // sealed before this one: earlier in call order
      f.prev = prev;
      f.seq = base + j + 1;
      const canon = canonicalJSON(f);
      const hash = sha256hex(canon);
      lines[j] = canon.slice(0, -1) + ',"hash":"' + hash + '"}\n';
      hashes[j] = hash;
      prev = hash;
    }
    let i = 0;
    try {
      while (i < n) {
        await this.ensureSegment();
        const fd = this.fd!;
        const take = Math.min(n - i, this.segmentRecords - this.segCount);
        const buf = Buffer.from(take === n ? lines.join("") : lines.slice(i, i + take).join(""), "utf8");
        await writeAll(this.io, fd, buf, this.segSize);
        if (this.durable) await this.io.fdatasync(fd);
        // committed
        this.segSize += buf.length;
        this.segCount += take;
        this.headSeq = base + i + take;
        this.headHash = hashes[i + take - 1]!;
        this.pendingGap = null;
        for (let q = i; q < i + take; q++) all[q]!.resolve({ seq: base + q + 1, hash: hashes[q]! });
        if (this.watchers.size)
          for (let q = i; q < i + take; q++)
            for (const w of this.watchers) {
              try {
                w(lines[q]!);
              } catch {
                // a watcher's failure is its own
              }
            }
        i += take;
      }
    } catch (e) {
      this.needsRepair = true;
      this.degrade(e);
      this.fail(all.slice(i), e);
      return;
    }
    this.degradedState = null;
    // after the records it covers are durable; synced only when it carries news of tampering
    await this.writeAnchor(k > 0);
  }

  /** Before a write: what a failed write, or open, left to do. Throws if the disk still refuses. */
  private async prepareWrite(): Promise<void> {
    if (this.needsDir) {
      const created = await fs.promises.mkdir(this.dir, { recursive: true });
      if (created && this.durable) await fsyncDir(this.io, dirname(created));
      this.needsDir = false;
    }
    if (this.needsRepair) await this.repair();
    while (this.pendingDrops.length) {
      await this.carryOut(this.pendingDrops[0]!);
      this.pendingDrops.shift();
    }
    if (this.pendingGap !== null && this.segFirst !== this.pendingGap + 1) {
      // numbering resumes after the anchor, in a segment of its own
      await this.closeSegment();
      this.segFirst = this.pendingGap + 1;
      this.segSize = 0;
      this.segCount = 0;
    }
  }

  private fail(entries: Pending[], e: unknown): void {
    const err = cannotWrite(e);
    for (const p of entries) p.reject(err);
  }

  private async closeSegment(): Promise<void> {
    if (this.fd !== null) {
      const old = this.fd;
      this.fd = null;
      await this.io.close(old).catch(() => {});
    }
  }

  /** Make sure `fd` is the segment the next record goes to (rolling over when full). */
  private async ensureSegment(): Promise<void> {
    if (this.fd !== null && this.segCount < this.segmentRecords) return;
    await this.closeSegment();
    if (this.segCount >= this.segmentRecords) {
      await this.writeAnchor(true); // bounds how far the anchor can lag after a power cut
      this.segFirst = this.headSeq + 1;
      this.segSize = 0;
      this.segCount = 0;
    }
    const path = segmentPath(this.dir, this.segFirst);
    // A segment with no committed bytes may hold leftovers of a failed
    // write: start it empty.
    const fd = await this.io.open(path, this.segSize === 0 ? "w" : "r+");
    try {
      if (this.segSize === 0 && this.durable) await fsyncDir(this.io, this.dir);
    } catch (e) {
      await this.io.close(fd).catch(() => {});
      throw e;
    }
    this.fd = fd;
  }

  /** After a failed write: drop whatever reached the disk past the durable head. */
  private async repair(): Promise<void> {
    await this.closeSegment();
    let removed = false;
    for (const first of await listSegments(this.dir)) {
      if (first > this.segFirst) {
        await this.io.unlink(segmentPath(this.dir, first));
        removed = true;
      }
    }
    if (this.segSize > 0) {
      const fd = await this.io.open(segmentPath(this.dir, this.segFirst), "r+");
      try {
        await this.io.ftruncate(fd, this.segSize);
        if (this.durable) await this.io.fsync(fd);
      } catch (e) {
        await this.io.close(fd).catch(() => {});
        throw e;
      }
      this.fd = fd;
    }
    if (removed && this.durable) await fsyncDir(this.io, this.dir);
    this.needsRepair = false;
  }

  /**
   * Rewrite <dir>/HEAD in place with the durable head (fsync it when `sync`).
   * Best effort: a failure leaves it lagging, and the next commit tries
   * again. Never while open's reports are unwritten: until they are in the
   * chain, the anchor is the evidence.
   */
  private async writeAnchor(sync: boolean): Promise<void> {
    if (this.pendingRecords.length || this.pendingGap !== null || this.needsDir) return;
    const seq = this.headSeq;
    const hash = this.headHash;
    try {
      if (this.anchorFd === null) await this.openAnchor();
      const fd = this.anchorFd!;
      if (this.anchorSeq !== seq || this.anchorHash !== hash) {
        this.anchorSynced = false;
        this.anchorSeq = -1; // unknown until the write completes
        await writeAll(this.io, fd, formatAnchor(seq, hash), 0);
        this.anchorSeq = seq;
        this.anchorHash = hash;
      }
      if (sync && this.durable && !this.anchorSynced) {
        await this.io.fsync(fd);
        this.anchorSynced = true;
      }
    } catch {
      if (this.anchorFd !== null) {
        const fd = this.anchorFd;
        this.anchorFd = null;
        await this.io.close(fd).catch(() => {});
      }
      this.anchorSeq = -1;
      this.anchorSynced = false;
    }
  }

  private async openAnchor(): Promise<void> {
    const path = anchorPath(this.dir);
    let fd: number;
    try {
      fd = await this.io.open(path, "r+");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      fd = await this.io.open(path, "w");
      try {
        await writeAll(this.io, fd, formatAnchor(this.headSeq, this.headHash), 0);
        if (this.durable) {
          await this.io.fsync(fd);
          await fsyncDir(this.io, this.dir);
        }
      } catch (err) {
        await this.io.close(fd).catch(() => {});
        await this.io.unlink(path).catch(() => {}); // an empty HEAD would read as a damaged one
        throw err;
      }
      this.anchorFd = fd;
      this.anchorSeq = this.headSeq;
      this.anchorHash = this.headHash;
      this.anchorSynced = this.durable;
      return;
    }
    try {
      if ((await this.io.fstatSize(fd)) !== ANCHOR_BYTES) {
        // damaged (already reported by audit.unanchored): make it one anchor again
        await writeAll(this.io, fd, formatAnchor(this.headSeq, this.headHash), 0);
        await this.io.ftruncate(fd, ANCHOR_BYTES);
        this.anchorSeq = this.headSeq;
        this.anchorHash = this.headHash;
        this.anchorSynced = false;
      }
    } catch (e) {
      await this.io.close(fd).catch(() => {});
      throw e;
    }
    this.anchorFd = fd;
  }

  /**
   * Records matching the filters, oldest first, streamed from disk (memory
   * is one read chunk plus the page of results). Only durable records are
   * returned. next_seq is the since_seq that continues after this page.
   */
  async query(q: AuditQuery = {}): Promise<{ events: AuditRecord[]; next_seq: number }> {
    if (q === null || typeof q !== "object") throw invalidParams("audit query must be an object");
    const { agent_id, kind } = q;
    if (agent_id !== undefined && typeof agent_id !== "string") throw invalidParams("agent_id must be a string");
    if (kind !== undefined && typeof kind !== "string") throw invalidParams("kind must be a string");
    let since = 1;
    if (q.since_seq !== undefined) {
      if (!Number.isSafeInteger(q.since_seq) || q.since_seq < 0)
        throw invalidParams("since_seq must be a non-negative integer");
      since = Math.max(1, q.since_seq);
    }
    let limit = DEFAULT_LIMIT;
    if (q.limit !== undefined) {
      if (!Number.isSafeInteger(q.limit) || q.limit < 1) throw invalidParams("limit must be a positive integer");
      limit = Math.min(MAX_LIMIT, q.limit);
    }
    let kindExact: string | undefined;
    let kindPrefix: string | undefined;
    if (kind === "*") kindPrefix = "";
    else if (kind?.endsWith(".*")) kindPrefix = kind.slice(0, -1);
    else kindExact = kind;

    const upto = this.headSeq;
    if (since > upto) return { events: [], next_seq: Math.max(since, upto + 1) };
    const events: AuditRecord[] = [];
    let segs: number[];
    try {
      segs = await listSegments(this.dir);
    } catch (e) {
      throw internal("cannot list audit segments", e);
    }
    let start = 0;
    for (let s = 0; s < segs.length; s++) if (segs[s]! <= since) start = s;
    try {
      for (let s = start; s < segs.length; s++) {
        const first = segs[s]!;
        if (first > upto) break;
        for await (const line of readLines(segmentPath(this.dir, first), this.io)) {
          let rec: Record<string, unknown>;
          try {
            rec = JSON.parse(line);
          } catch {
            continue; // corrupt line: verify() reports it; a query skips it
          }
          const seq = rec?.seq;
          if (typeof seq !== "number") continue;
          if (seq < since) continue;
          if (seq > upto) return { events, next_seq: upto + 1 };
          if (agent_id !== undefined && rec.agent_id !== agent_id) continue;
          if (kindExact !== undefined && rec.kind !== kindExact) continue;
          if (kindPrefix !== undefined && !(typeof rec.kind === "string" && rec.kind.startsWith(kindPrefix))) continue;
          events.push(present(rec));
          if (events.length >= limit) return { events, next_seq: seq + 1 };
        }
      }
    } catch (e) {
      if (e instanceof KernelError) throw e;
      throw internal("cannot read the audit log", e);
    }
    return { events, next_seq: upto + 1 };
  }

  /**
   * Walk every segment from genesis: each record must parse, carry the
   * expected seq, link to the previous record's hash, and hash to its own
   * hash field; the only seq jump allowed is the one an audit.tampered record
   * opening a segment documents. Collects the reports of the log's own
   * records (audit.recovered, audit.tampered, audit.unanchored) and those
   * still pending in memory. Memory: readBlocks' two buffers, the decoded
   * block, and the reports.
   * Records appended while verify runs are not covered.
   */
  async verify(): Promise<AuditVerifyResult> {
    // HEAD is written after the head moves, so read it first: it is then at or before `upto`
    let anchor: AuditHeadRef | null = null;
    if (!this.needsDir) {
      const a = await readAnchor(this.io, this.dir);
      if (a.state === "ok") anchor = { seq: a.seq, hash: a.hash };
    }
    const upto = this.headSeq;
    const uptoHash = this.headHash;
    const pending = this.pendingRecords.slice();
    const quarantined: AuditQuarantined[] = [];
    const tampered: AuditTampered[] = [];
    const unanchored: AuditUnanchored[] = [];
    const w: ChainWalk = {
      expected: 1,
      prev: GENESIS,
      events: 0,
      upto,
      chain: null,
      quarantined,
      tampered,
      unanchored,
      shaped: new Int32Array(1024),
    };
    const bufs = blockBuffers(VERIFY_HALF);
    try {
      const segs = await listSegments(this.dir);
      outer: for (const first of segs) {
        if (w.expected > upto) break;
        if (first !== w.expected) {
          if (!(first > w.expected && (await this.isReportedGap(first, w.expected, w.prev)))) {
            w.chain = {
              seq: w.expected,
              reason: `segment ${segmentName(first)} starts at seq ${first}, expected ${w.expected}`,
            };
            break;
          }
          w.expected = first;
        }
        for await (const block of readBlocks(segmentPath(this.dir, first), this.io, bufs))
          if (walkBlock(block, w)) break outer;
      }
    } catch (e) {
      throw internal("cannot read the audit log", e);
    }
    const { expected, prev, events } = w;
    let chain = w.chain;
    if (!chain && expected <= upto)
      chain = { seq: expected, reason: `record missing: the log ends at seq ${expected - 1} but the head is ${upto}` };
    else if (!chain && prev !== uptoHash)
      chain = { seq: upto, reason: "the last record differs from the head the kernel acknowledged" };
    for (const f of pending) collect(f, null, quarantined, tampered, unanchored);

    let broken = chain;
    const t = tampered[0];
    const q = quarantined.find((x) => x.acknowledged);
    const where = (record: number | null, kind: string) =>
      record === null ? `not yet recorded: the log cannot be written` : `${kind} at seq ${record}`;
    if (!broken && t)
      broken = {
        seq: t.missing ? t.missing[0] : t.anchor.seq,
        reason: `tampered: ${t.reason} (${where(t.record, "audit.tampered")})`,
      };
    if (!broken && q)
      broken = {
        seq: q.seqs ? q.seqs[0] : upto,
        reason: `tampered: ${q.reason} (${where(q.record, "audit.recovered")})`,
      };
    return {
      ok: !broken,
      events,
      head: prev,
      ...(broken ? { broken } : {}),
      anchor,
      quarantined,
      tampered,
      unanchored,
    };
  }

  /** `first` opens with an audit.tampered record that documents the seq jump from expected - 1 */
  private async isReportedGap(first: number, expected: number, prev: string): Promise<boolean> {
    for await (const line of readLines(segmentPath(this.dir, first), this.io)) {
      let r: unknown;
      try {
        r = JSON.parse(line);
      } catch {
        return false;
      }
      if (!isObj(r) || !isObj(r.found) || !isObj(r.anchor)) return false;
      return (
        r.kind === "audit.tampered" &&
        r.seq === first &&
        r.prev === prev &&
        r.found.seq === expected - 1 &&
        r.found.hash === prev &&
        r.anchor.seq === first - 1
      );
    }
    return false;
  }

  /**
   * Flush what is queued, cut what a failed write left past the head (a
   * shrink works on a full disk too), make the anchor durable, then release
   * the files. Later appends reject.
   */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing) await this.flushing;
    if (this.needsRepair) await this.repair().catch(() => {}); // else the next open quarantines it
    await this.writeAnchor(true);
    await this.closeSegment();
    if (this.anchorFd !== null) {
      const fd = this.anchorFd;
      this.anchorFd = null;
      await this.io.close(fd).catch(() => {});
    }
  }

  /** Sizes of everything the log holds in memory (for tests and status). */
  memoryState(): { queued: number; secrets: number; flushing: boolean; segment: string; segment_records: number } {
    return {
      queued: this.queue.length,
      secrets: this.ctx.secrets.size,
      flushing: this.flushing !== null,
      segment: segmentName(this.segFirst),
      segment_records: this.segCount,
    };
  }
}

/** verify()'s walk along the chain: where it is, and what it found */
interface ChainWalk {
  /** the seq the next record must have */
  expected: number;
  /** the hash the next record's prev must be */
  prev: string;
  events: number;
  /** the head when verify started: records past it are not covered */
  upto: number;
  chain: { seq: number; reason: string } | null;
  quarantined: AuditQuarantined[];
  tampered: AuditTampered[];
  unanchored: AuditUnanchored[];
  /** walkBlock's scratch: where each line of its block that has the hash member's shape ends */
  shaped: Int32Array;
}

/** verify()'s read buffers: two of VERIFY_HALF, together 128 KiB (docs/design.md, "Verifying the audit log") */
const VERIFY_HALF = 64 * 1024;

/** bytes from a line's end to the ',' of its hash member: `,"hash":"` + 64 + `"}` */
const HASH_TAIL = 75;

/**
 * Check the records in one block of whole lines (readBlocks), moving `w`
 * on; true when the walk ends here (a broken record, or past w.upto). Each
 * record must parse as a JSON object, carry the expected seq, link to the
 * previous hash, and hash to its own hash field: over the line's own bytes,
 * else over its canonical form (a re-formatted line).
 *
 * Most lines are as the log wrote them, `P,"hash":"H"}`, and the log hashed
 * `P}`. So first the ',' of each such line is overwritten with '}' in the
 * block, and the block decoded once: then `P}` is both a slice of the text
 * to parse and a range of bytes to hash, in place. When `P}` parses as an
 * object with the expected seq and prev and its bytes hash to H (so H is 64
 * hex digits, the line's last 75 bytes are ASCII, and the text offsets used
 * were right), the line itself is valid JSON (a non-empty object P} with one
 * more member) and parses to the same record plus hash H: the answer
 * checkLine() gives, without parsing the 75 bytes of the hash member. Any
 * other line, or any failure, goes to checkLine() with the line as written,
 * whose answer is then the answer.
 *
 * '\n' is a '\n' in bytes and text, and when the lengths agree every byte is
 * one UTF-16 unit (ASCII, or an invalid byte as U+FFFD), so offsets agree
 * too; an ASCII byte decodes to itself whatever precedes it, so the last 75
 * bytes being ASCII makes them the last 75 characters. A plain function, not
 * part of the async verify(), so its loop is optimised like any other.
 */
function walkBlock(block: Buffer, w: ChainWalk): boolean {
  let count = 0;
  let shaped = w.shaped;
  for (let s = 0; s < block.length;) {
    const nl = block.indexOf(10, s);
    const cut = nl - HASH_TAIL;
    if (
      cut > s &&
      block[nl - 1] === 0x7d &&
      block[nl - 2] === 0x22 &&
      block[cut] === 0x2c &&
      block[cut + 1] === 0x22 &&
      block[cut + 2] === 0x68 &&
      block[cut + 3] === 0x61 &&
      block[cut + 4] === 0x73 &&
      block[cut + 5] === 0x68 &&
      block[cut + 6] === 0x22 &&
      block[cut + 7] === 0x3a &&
      block[cut + 8] === 0x22
    ) {
      if (count === shaped.length) {
        const more = new Int32Array(count * 2);
        more.set(shaped);
        shaped = w.shaped = more;
      }
      shaped[count++] = nl;
      block[cut] = 0x7d;
    }
    s = nl + 1;
  }
  const text = block.toString("utf8");
  const same = text.length === block.length;
  const ab = block.buffer;
  const base = block.byteOffset;
  let expected = w.expected;
  let prev = w.prev;
  let stop = false;
  for (let s = 0, c = 0, k = 0; s < block.length;) {
    if (expected > w.upto) {
      stop = true;
      break;
    }
    const nl = block.indexOf(10, s);
    const cn = same ? nl : text.indexOf("\n", c);
    let rec: Record<string, unknown> | null = null;
    let hash = "";
    let line = text;
    let lc = c;
    let lcn = cn;
    if (k < count && shaped[k] === nl) {
      k++;
      try {
        rec = JSON.parse(text.slice(c, cn - HASH_TAIL + 1));
      } catch {
        rec = null;
      }
      const cut = nl - HASH_TAIL;
      if (rec !== null && isObj(rec) && rec.seq === expected && rec.prev === prev) {
        hash = sha256Bytes(new Uint8Array(ab, base + s, cut + 1 - s));
        if (!text.startsWith(hash, cn - 66)) rec = null; // H is text[cn - 66, cn - 2)
      } else rec = null;
      if (rec === null) {
        // the line as written, in bytes and as text (decoded on its own: its 64
        // bytes of hash need not be ASCII, so its ',' need not be at cn - 75)
        block[cut] = 0x2c;
        line = block.toString("utf8", s, nl);
        lc = 0;
        lcn = line.length;
      }
    }
    if (rec === null) {
      const r = checkLine(line, lc, lcn, block, s, nl, expected, prev);
      if (typeof r === "string") {
        w.chain = { seq: expected, reason: r };
        stop = true;
        break;
      }
      rec = r;
      hash = r.hash as string;
    }
    if (typeof rec.kind === "string" && rec.kind.startsWith("audit."))
      collect(rec, expected, w.quarantined, w.tampered, w.unanchored);
    prev = hash;
    expected++;
    w.events++;
    s = nl + 1;
    c = cn + 1;
  }
  w.expected = expected;
  w.prev = prev;
  return stop;
}

/**
 * One line, text.slice(c, cn) and block[s, nl), as it was written: the
 * record if it is one with the expected seq and prev whose hash matches its
 * content, over the line's own bytes (lineHashMatchesIn) else over its
 * canonical form; else why not.
 */
function checkLine(
  text: string,
  c: number,
  cn: number,
  block: Buffer,
  s: number,
  nl: number,
  expected: number,
  prev: string,
): Record<string, unknown> | string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(text.slice(c, cn));
  } catch {
    return "record is not valid JSON";
  }
  if (!isObj(rec)) return "record is not a JSON object";
  if (rec.seq !== expected) return `found seq ${JSON.stringify(rec.seq)} where ${expected} was expected`;
  if (rec.prev !== prev) return "prev does not match the hash of the previous record";
  if (
    typeof rec.hash !== "string" ||
    (!lineHashMatchesIn(text, c, cn, block, s, nl, rec.hash) && recordHash(rec) !== rec.hash)
  )
    return "hash does not match the record's content";
  return rec;
}

/** A report of the log's own (an audit.* record, written or pending) into verify()'s lists. */
function collect(
  rec: Record<string, unknown>,
  record: number | null,
  quarantined: AuditQuarantined[],
  tampered: AuditTampered[],
  unanchored: AuditUnanchored[],
): void {
  const reason = String(rec.reason ?? "");
  if (rec.kind === "audit.recovered") {
    const file = typeof rec.quarantine === "string" ? rec.quarantine : null;
    // records written before offsets were recorded: the quarantine file's name carries it
    const offset = typeof rec.offset === "number" ? rec.offset : Number(/\.at-(\d+)\./.exec(file ?? "")?.[1] ?? 0);
    quarantined.push({
      segment: String(rec.segment ?? ""),
      offset,
      bytes: typeof rec.bytes_dropped === "number" ? rec.bytes_dropped : 0,
      file,
      ...(isRange(rec.seqs) ? { seqs: [rec.seqs[0], rec.seqs[1]] as [number, number] } : {}),
      acknowledged: rec.acknowledged === true,
      reason,
      record,
    });
  } else if (rec.kind === "audit.tampered") {
    tampered.push({
      record,
      anchor: ref(rec.anchor),
      found: ref(rec.found),
      ...(isRange(rec.missing) ? { missing: [rec.missing[0], rec.missing[1]] as [number, number] } : {}),
      reason,
    });
  } else if (rec.kind === "audit.unanchored") {
    unanchored.push({ record, found: ref(rec.found), reason });
  }
}

/** Field order for people: seq, ts, kind, agent_id, the rest, prev, hash. */
function present(rec: Record<string, unknown>): AuditRecord {
  const out: Record<string, unknown> = { seq: rec.seq, ts: rec.ts, kind: rec.kind, agent_id: rec.agent_id ?? null };
  for (const k of Object.keys(rec)) {
    if (Object.hasOwn(out, k) || k === "prev" || k === "hash") continue;
    Object.defineProperty(out, k, { value: rec[k], enumerable: true, writable: true, configurable: true });
  }
  out.prev = rec.prev;
  out.hash = rec.hash;
  return out as AuditRecord;
}

let isoMs = -1;
let isoText = "";
/** new Date().toISOString(), made once per millisecond */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}
