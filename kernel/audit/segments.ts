// Segment files: naming, listing, a streaming line reader, the backward tail
// scan used by crash recovery, and the small promise wrappers over node:fs
// (raw fds, positional writes, fdatasync on the thread pool so the event
// loop keeps serving while the disk syncs).
import * as fs from "node:fs";
import { join } from "node:path";
import { HASH_RE, lineHashMatches, recordHash } from "./canonical.ts";

export const SEGMENT_RE = /^(\d{20})\.jsonl$/;

export function segmentName(firstSeq: number): string {
  return String(firstSeq).padStart(20, "0") + ".jsonl";
}

/** First seq of every segment in `dir`, ascending. */
export async function listSegments(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch (e) {
    // a log whose directory could not be created yet (full disk) is empty
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const out: number[] = [];
  for (const n of names) {
    const m = SEGMENT_RE.exec(n);
    if (m) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

/** The operations the log performs on the disk; replaceable in tests. */
export interface AuditIO {
  open(path: string, flags: string): Promise<number>;
  close(fd: number): Promise<void>;
  write(fd: number, buf: Uint8Array, off: number, len: number, pos: number): Promise<number>;
  read(fd: number, buf: Uint8Array, off: number, len: number, pos: number): Promise<number>;
  fdatasync(fd: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  ftruncate(fd: number, len: number): Promise<void>;
  fstatSize(fd: number): Promise<number>;
  unlink(path: string): Promise<void>;
}

const cb =
  <T>(res: (v: T) => void, rej: (e: unknown) => void) =>
  (e: NodeJS.ErrnoException | null, v?: T) =>
    e ? rej(e) : res(v as T);

export const nodeIO: AuditIO = {
  open: (p, flags) => new Promise((res, rej) => fs.open(p, flags, 0o640, cb(res, rej))),
  close: (fd) => new Promise((res, rej) => fs.close(fd, cb(res, rej))),
  write: (fd, buf, off, len, pos) => new Promise((res, rej) => fs.write(fd, buf, off, len, pos, cb(res, rej))),
  read: (fd, buf, off, len, pos) => new Promise((res, rej) => fs.read(fd, buf, off, len, pos, cb(res, rej))),
  fdatasync: (fd) => new Promise((res, rej) => fs.fdatasync(fd, cb(res, rej))),
  fsync: (fd) => new Promise((res, rej) => fs.fsync(fd, cb(res, rej))),
  ftruncate: (fd, len) => new Promise((res, rej) => fs.ftruncate(fd, len, cb(res, rej))),
  fstatSize: (fd) => new Promise((res, rej) => fs.fstat(fd, (e, st) => (e ? rej(e) : res(st.size)))),
  unlink: (p) => new Promise((res, rej) => fs.unlink(p, cb(res, rej))),
};

export async function writeAll(io: AuditIO, fd: number, buf: Uint8Array, pos: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await io.write(fd, buf, off, buf.length - off, pos + off);
    if (n <= 0) throw new Error("write returned 0 bytes");
    off += n;
  }
}

/** fsync a directory so entries created or removed in it are durable. */
export async function fsyncDir(io: AuditIO, dir: string): Promise<void> {
  const fd = await io.open(dir, "r");
  try {
    await io.fsync(fd);
  } finally {
    await io.close(fd).catch(() => {});
  }
}

const CHUNK = 64 * 1024;
/** readBlocks' two buffers: together one chunk */
const HALF = CHUNK / 2;

/**
 * Complete lines of a file, in order, as blocks: each block is a view of one
 * or more whole lines, every one ending in '\n', valid only until the next
 * block is asked for (the buffers are reused). Two 32 KiB buffers, together
 * one 64 KiB chunk: while the caller works through the block in one, the
 * next read is already filling the other, so the read's round trip to the
 * thread pool overlaps the caller's work. A line longer than a buffer grows
 * it (to at most twice the line), and the buffers shrink back after. A
 * trailing partial line is not yielded (it was never acknowledged, or is
 * still being written).
 */
/** readBlocks' two buffers; a caller that keeps them (verify) reuses them across files */
export interface BlockBuffers {
  buf: Buffer;
  spare: Buffer;
  /** the size each shrinks back to after a long line */
  half: number;
}

export function blockBuffers(half = HALF): BlockBuffers {
  return { buf: Buffer.allocUnsafe(half), spare: Buffer.allocUnsafe(half), half };
}

export async function* readBlocks(
  path: string,
  io: AuditIO = nodeIO,
  b: BlockBuffers = blockBuffers(),
): AsyncGenerator<Buffer> {
  let fd: number;
  try {
    fd = await io.open(path, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  let inflight: Promise<number> | null = null;
  try {
    // b.buf is being filled, then yielded; the next read goes into b.spare while b.buf is yielded
    let have = 0; // b.buf[0, have): the start of a line the read continues
    let pos = 0;
    let n = await io.read(fd, b.buf, 0, b.buf.length, 0);
    for (;;) {
      if (n <= 0) return;
      pos += n;
      const end = have + n;
      const last = b.buf.lastIndexOf(10, end - 1); // buf[0, have) holds no '\n'
      if (last < 0) {
        have = end;
        if (have === b.buf.length) {
          const bigger = Buffer.allocUnsafe(b.buf.length * 2);
          b.buf.copy(bigger, 0, 0, have);
          b.buf = bigger;
        }
        n = await io.read(fd, b.buf, have, b.buf.length - have, pos);
        continue;
      }
      const tail = end - last - 1; // the start of the next line, carried over into spare
      let size = b.half;
      while (size < 2 * tail) size *= 2;
      if (b.spare.length !== size) b.spare = Buffer.allocUnsafe(size);
      b.buf.copy(b.spare, 0, last + 1, end);
      const next = io.read(fd, b.spare, tail, b.spare.length - tail, pos);
      next.catch(() => {}); // awaited below, or in finally when the caller stops early
      inflight = next;
      yield b.buf.subarray(0, last + 1);
      n = await next;
      inflight = null;
      [b.buf, b.spare] = [b.spare, b.buf];
      have = tail;
    }
  } finally {
    if (inflight) await inflight.catch(() => {}); // the fd is not closed under a read
    await io.close(fd).catch(() => {});
  }
}

/** Complete lines ('\n'-terminated) of a file, in order, decoded (readBlocks' memory bound). */
export async function* readLines(path: string, io: AuditIO = nodeIO): AsyncGenerator<string> {
  for await (const block of readBlocks(path, io)) {
    for (let s = 0; s < block.length;) {
      const nl = block.indexOf(10, s);
      yield block.toString("utf8", s, nl);
      s = nl + 1;
    }
  }
}

export interface ParsedRecord {
  seq: number;
  hash: string;
  prev: string;
  rec: Record<string, unknown>;
}

/**
 * Parse one line; null unless it is a well-formed record whose hash matches
 * its content. (Chain links are not checked here: verify() does that.)
 */
export function parseRecord(line: string): ParsedRecord | null {
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch {
    return null;
  }
  if (!rec || typeof rec !== "object" || Array.isArray(rec)) return null;
  const r = rec as Record<string, unknown>;
  const { seq, hash, prev } = r;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) return null;
  if (typeof hash !== "string" || !HASH_RE.test(hash)) return null;
  if (typeof prev !== "string" || !HASH_RE.test(prev)) return null;
  if (typeof r.kind !== "string" || typeof r.ts !== "string") return null;
  if (!lineHashMatches(line, hash) && recordHash(r) !== hash) return null;
  return { seq, hash, prev, rec: r };
}

export interface TailScan {
  size: number;
  /** byte offset just past the last valid record's '\n' (0: none) */
  validEnd: number;
  last: ParsedRecord | null;
  /** bytes from validEnd to the end of the file (what recovery drops) */
  dropped: Buffer;
  /** complete but invalid lines in the dropped region */
  invalidLines: number;
}

/**
 * Read `fd` backwards from its end until the last line that is a valid
 * record with seq >= firstSeq. Typical cost: one 64 KiB read.
 */
export async function scanTail(io: AuditIO, fd: number, firstSeq: number): Promise<TailScan> {
  const size = await io.fstatSize(fd);
  let bufStart = size;
  let buf = Buffer.alloc(0);
  let chunk = CHUNK;
  const load = async (from: number) => {
    while (bufStart > from) {
      const start = Math.max(0, Math.min(from, bufStart - chunk));
      const piece = Buffer.allocUnsafe(bufStart - start);
      let got = 0;
      while (got < piece.length) {
        const n = await io.read(fd, piece, got, piece.length - got, start + got);
        if (n <= 0) throw new Error("short read while scanning audit segment");
        got += n;
      }
      buf = Buffer.concat([piece, buf]);
      bufStart = start;
      chunk *= 2; // grow so a long scan stays linear
    }
  };
  /** absolute index of the last '\n' strictly before `before`, or -1 */
  const prevNewline = async (before: number): Promise<number> => {
    let searchEnd = before; // exclusive
    for (;;) {
      if (searchEnd <= 0) return -1;
      if (searchEnd - 1 < bufStart) await load(Math.max(0, searchEnd - CHUNK));
      const rel = buf.lastIndexOf(10, searchEnd - 1 - bufStart);
      if (rel >= 0) return rel + bufStart;
      if (bufStart === 0) return -1;
      searchEnd = bufStart;
    }
  };
  let nl = await prevNewline(size);
  let invalidLines = 0;
  while (nl >= 0) {
    const p = await prevNewline(nl);
    const s = p + 1;
    const line = buf.subarray(s - bufStart, nl - bufStart).toString("utf8");
    const rec = parseRecord(line);
    if (rec && rec.seq >= firstSeq) {
      const validEnd = nl + 1;
      await load(validEnd);
      return { size, validEnd, last: rec, dropped: Buffer.from(buf.subarray(validEnd - bufStart)), invalidLines };
    }
    invalidLines++;
    nl = p;
  }
  await load(0);
  return { size, validEnd: 0, last: null, dropped: Buffer.from(buf), invalidLines };
}

export function segmentPath(dir: string, firstSeq: number): string {
  return join(dir, segmentName(firstSeq));
}
