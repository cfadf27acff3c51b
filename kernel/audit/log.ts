// AuditLog: the append-only, hash-chained, group-committed audit trail.
// The design (file layout, hashing, durability, recovery, redaction) is
// described at the top of ./index.ts.
import * as fs from "node:fs";
import { dirname, join } from "node:path";
import { ErrorCode, KernelError, invalidParams } from "../errors.ts";
import type { AuditEventInput } from "../services.ts";
import { GENESIS, canonicalJSON, lineHashMatches, recordHash, sanitize, sha256hex, type SanitizeContext } from "./canonical.ts";
import { fsyncDir, listSegments, nodeIO, readLines, scanTail, segmentName, segmentPath, writeAll, type AuditIO } from "./segments.ts";

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

export interface AuditVerifyResult {
  ok: boolean;
  /** records that checked out (all of them when ok) */
  events: number;
  /** hash of the last record that checked out (GENESIS for an empty log) */
  head: string;
  broken?: { seq: number; reason: string };
}

export interface AuditOpenOptions {
  /** records per segment file; default 10,000 */
  segmentRecords?: number;
  /** "fsync" (default): append resolves after fdatasync; "none": after write() */
  durability?: "fsync" | "none";
  /** most records sealed into one write; default 4096 */
  maxBatchRecords?: number;
  /** strings longer than this are cut (after redaction); default 65,536 */
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
}

function internal(message: string, cause?: unknown): KernelError {
  const err = cause as NodeJS.ErrnoException | undefined;
  const data: Record<string, unknown> = {};
  if (err?.code) data.errno = err.code;
  if (err?.message) data.cause = err.message;
  return new KernelError(ErrorCode.InternalError, err?.message ? `${message}: ${err.message}` : message, data);
}

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

  static async open(dir: string, opts: AuditOpenOptions = {}): Promise<AuditLog> {
    const log = new AuditLog(dir, opts);
    try {
      await log.init();
    } catch (e) {
      if (log.fd !== null) await log.io.close(log.fd).catch(() => {});
      if (e instanceof KernelError) throw e;
      throw internal(`cannot open audit log in ${dir}`, e);
    }
    return log;
  }

  private async init(): Promise<void> {
    const created = await fs.promises.mkdir(this.dir, { recursive: true });
    if (created && this.durable) await fsyncDir(this.io, dirname(created));
    if (this.envSecrets) {
      for (const [k, v] of Object.entries(process.env)) if (v && v.length >= 8 && ENV_SECRET_NAME.test(k)) this.registerSecret(v);
    }

    const recovered: Record<string, unknown>[] = [];
    for (;;) {
      const segs = await listSegments(this.dir);
      const first = segs.at(-1);
      if (first === undefined) break; // empty log: genesis
      const path = segmentPath(this.dir, first);
      const fd = await this.io.open(path, "r+");
      let keep = false;
      try {
        const t = await scanTail(this.io, fd, first);
        if (t.validEnd < t.size) {
          const quarantine = await this.quarantine(first, t.validEnd, t.dropped);
          await this.io.ftruncate(fd, t.validEnd);
          await this.io.fsync(fd);
          recovered.push({
            segment: segmentName(first),
            bytes_dropped: t.size - t.validEnd,
            invalid_lines: t.invalidLines,
            reason: t.invalidLines ? "invalid records at the end of the log" : "torn write at the end of the log",
            quarantine,
          });
        }
        if (t.last) {
          this.headSeq = t.last.seq;
          this.headHash = t.last.hash;
          this.segFirst = first;
          this.segSize = t.validEnd;
          this.segCount = Math.max(0, t.last.seq - first + 1);
          this.fd = fd;
          keep = true;
          break;
        }
      } finally {
        if (!keep) await this.io.close(fd).catch(() => {});
      }
      // Not one valid record in the newest segment: it was created but never
      // acknowledged into. Remove it and recover from the one before.
      await this.io.unlink(path);
      if (this.durable) await fsyncDir(this.io, this.dir);
    }
    if (this.headSeq === 0) this.segFirst = 1;
    for (const r of recovered) await this.append({ kind: "audit.recovered", agent_id: null, ...r });
  }

  /** Keep the bytes recovery drops, beside the log, for an investigator. */
  private async quarantine(first: number, offset: number, bytes: Buffer): Promise<string> {
    const qdir = join(this.dir, "quarantine");
    await fs.promises.mkdir(qdir, { recursive: true });
    const name = `${segmentName(first)}.at-${offset}.${Date.now()}.dropped`;
    const fd = await this.io.open(join(qdir, name), "w");
    try {
      await writeAll(this.io, fd, bytes, 0);
      await this.io.fsync(fd);
    } finally {
      await this.io.close(fd).catch(() => {});
    }
    await fsyncDir(this.io, qdir);
    await fsyncDir(this.io, this.dir);
    return join("quarantine", name);
  }

  /** The durable head: seq and hash of the last acknowledged record. */
  head(): { seq: number; hash: string } {
    return { seq: this.headSeq, hash: this.headHash };
  }

  /** Any string field containing `value` is written as "[redacted]" from now on. */
  registerSecret(value: string): void {
    if (typeof value === "string" && value.length >= MIN_SECRET_LENGTH) this.ctx.secrets.add(value);
  }

  /**
   * Record an event. The record is snapshotted (sanitised, redacted,
   * timestamped) now; its place in the sequence is the call order; the
   * promise resolves once the record is durable. Never throws synchronously.
   */
  async append(event: AuditEventInput): Promise<{ seq: number; hash: string }> {
    if (this.closed) throw new KernelError(ErrorCode.InternalError, "audit log is closed");
    const fields = this.prepare(event);
    return new Promise((resolve, reject) => {
      this.queue.push({ fields, resolve, reject });
      this.kick();
    });
  }

  private prepare(event: AuditEventInput): Record<string, unknown> {
    if (!event || typeof event !== "object" || Array.isArray(event)) throw invalidParams("an audit event must be an object");
    if (typeof event.kind !== "string" || event.kind.length === 0) throw invalidParams("an audit event needs a non-empty string kind");
    const s = sanitize(event, this.ctx);
    const fields: Record<string, unknown> = s && typeof s === "object" && !Array.isArray(s) ? (s as Record<string, unknown>) : Object.create(null);
    delete fields.seq;
    delete fields.prev;
    delete fields.hash;
    fields.ts = new Date().toISOString();
    if (typeof fields.kind !== "string") fields.kind = String(event.kind);
    const a = fields.agent_id;
    fields.agent_id = typeof a === "string" ? a : a === undefined || a === null ? null : canonicalJSON(a);
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

  /** Seal a batch (seq, prev, hash in call order), write it, sync it, resolve it. */
  private async writeBatch(batch: Pending[]): Promise<void> {
    if (this.needsRepair) {
      try {
        await this.repair();
      } catch (e) {
        this.fail(batch, e);
        return;
      }
    }
    const n = batch.length;
    const lines = new Array<string>(n);
    const hashes = new Array<string>(n);
    let prev = this.headHash;
    const base = this.headSeq;
    for (let j = 0; j < n; j++) {
      const f = batch[j]!.fields;
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
        for (let k = i; k < i + take; k++) batch[k]!.resolve({ seq: base + k + 1, hash: hashes[k]! });
        i += take;
      }
    } catch (e) {
      this.needsRepair = true;
      this.fail(batch.slice(i), e);
    }
  }

  private fail(entries: Pending[], e: unknown): void {
    const err = e instanceof KernelError ? e : internal("audit log write failed", e);
    for (const p of entries) p.reject(err);
  }

  /** Make sure `fd` is the segment the next record goes to (rolling over when full). */
  private async ensureSegment(): Promise<void> {
    if (this.fd !== null && this.segCount < this.segmentRecords) return;
    if (this.fd !== null) {
      const old = this.fd;
      this.fd = null;
      await this.io.close(old).catch(() => {});
    }
    if (this.segCount >= this.segmentRecords) {
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
    if (this.fd !== null) {
      const old = this.fd;
      this.fd = null;
      await this.io.close(old).catch(() => {});
    }
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
      if (!Number.isSafeInteger(q.since_seq) || q.since_seq < 0) throw invalidParams("since_seq must be a non-negative integer");
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
   * hash field. Reports the first record that does not. Memory: one read
   * chunk. Records appended while verify runs are not covered.
   */
  async verify(): Promise<AuditVerifyResult> {
    const upto = this.headSeq;
    const uptoHash = this.headHash;
    let expected = 1;
    let prev = GENESIS;
    const broken = (seq: number, reason: string): AuditVerifyResult => ({ ok: false, events: expected - 1, head: prev, broken: { seq, reason } });
    try {
      const segs = await listSegments(this.dir);
      outer: for (const first of segs) {
        if (expected > upto) break;
        if (first !== expected) {
          return broken(expected, `segment ${segmentName(first)} starts at seq ${first}, expected ${expected}`);
        }
        for await (const line of readLines(segmentPath(this.dir, first), this.io)) {
          if (expected > upto) break outer;
          let rec: Record<string, unknown>;
          try {
            rec = JSON.parse(line);
          } catch {
            return broken(expected, "record is not valid JSON");
          }
          if (!rec || typeof rec !== "object" || Array.isArray(rec)) return broken(expected, "record is not a JSON object");
          if (rec.seq !== expected) return broken(expected, `found seq ${JSON.stringify(rec.seq)} where ${expected} was expected`);
          if (rec.prev !== prev) return broken(expected, "prev does not match the hash of the previous record");
          if (typeof rec.hash !== "string" || (!lineHashMatches(line, rec.hash) && recordHash(rec) !== rec.hash)) return broken(expected, "hash does not match the record's content");
          prev = rec.hash;
          expected++;
        }
      }
    } catch (e) {
      throw internal("cannot read the audit log", e);
    }
    if (expected <= upto) return broken(expected, `record missing: the log ends at seq ${expected - 1} but the head is ${upto}`);
    if (prev !== uptoHash) return broken(upto, "the last record differs from the head the kernel acknowledged");
    return { ok: true, events: expected - 1, head: prev };
  }

  /** Flush what is queued, then release the file. Later appends reject. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing) await this.flushing;
    if (this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      await this.io.close(fd).catch(() => {});
    }
  }

  /** Sizes of everything the log holds in memory (for tests and status). */
  memoryState(): { queued: number; secrets: number; flushing: boolean; segment: string; segment_records: number } {
    return { queued: this.queue.length, secrets: this.ctx.secrets.size, flushing: this.flushing !== null, segment: segmentName(this.segFirst), segment_records: this.segCount };
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

