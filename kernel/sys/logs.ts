// The kernel's own logs for the operator (system.logs): the newest lines of a
// pino JSON-lines file, read backwards from its end, and a follower that
// polls the file for what is appended. The files are kernel-private (no agent
// reaches them through a tool); this is the kernel reading its own log for
// the operator's RPC call. Each line is handed out as the parsed pino record
// with its level as a name and its time as an ISO string.
import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { ErrorCode, KernelError } from "../errors.ts";

export type LogSource = "kernel" | "init";
export type LogLine = Record<string, unknown>;

/** what system.logs may ask for at most */
export const LOG_TAIL_MAX = 10_000;
/** a tail reads at most this much of the file, however long its lines */
const SCAN_MAX_BYTES = 32 * 1024 * 1024;
const CHUNK = 64 * 1024;
/** a follower hands out at most this many lines a second; the rest are dropped with a marker */
export const FOLLOW_LINES_PER_SECOND = 1000;
/** a follower this far behind the file's end skips to it (with a marker) */
const FOLLOW_MAX_BEHIND = 16 * 1024 * 1024;
const FOLLOW_READ_MAX = 1024 * 1024;

const LEVELS: Record<number, string> = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" };

/** a pino record with a level name and an ISO time; a line that is not JSON: {msg} */
export function parseLogLine(text: string): LogLine {
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch {
    return { msg: text };
  }
  if (!rec || typeof rec !== "object" || Array.isArray(rec)) return { msg: text };
  const r = rec as LogLine;
  const out: LogLine = { ...r };
  if (typeof r.level === "number") out.level = LEVELS[r.level] ?? String(r.level);
  if (typeof r.time === "number") out.time = new Date(r.time).toISOString();
  return out;
}

function lineTime(l: LogLine): number | null {
  if (typeof l.time !== "string") return null;
  const t = Date.parse(l.time);
  return Number.isNaN(t) ? null : t;
}

export interface LogTail {
  lines: LogLine[];
  /** more lines matched than were given (tail, or the scan's byte bound) */
  truncated: boolean;
  /** the end of the last complete line: where a follower starts */
  offset: number;
}

/**
 * The newest `tail` complete lines of the file (a line still being written
 * is left for the follower), oldest first; with since (ms since the epoch),
 * only lines at or after it (the file is in time order: the scan stops at
 * the first older line).
 */
export function readLogTail(file: string, opts: { tail: number; since?: number }): LogTail {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const found: LogLine[] = [];
    let truncated = false;
    let offset = -1;
    let pos = size;
    let carry: Buffer = Buffer.alloc(0);
    let scanned = 0;
    let done = false;
    const take = (raw: Buffer): void => {
      if (raw.length === 0) return;
      const line = parseLogLine(raw.toString("utf8"));
      if (opts.since !== undefined) {
        const t = lineTime(line);
        if (t !== null && t < opts.since) {
          done = true;
          return;
        }
      }
      if (found.length >= opts.tail) {
        truncated = true;
        done = true;
        return;
      }
      found.push(line);
    };
    while (pos > 0 && !done) {
      const n = Math.min(CHUNK, pos);
      pos -= n;
      const buf = Buffer.alloc(n);
      let got = 0;
      while (got < n) {
        const r = readSync(fd, buf, got, n - got, pos + got);
        if (r === 0) break;
        got += r;
      }
      const data = carry.length ? Buffer.concat([buf.subarray(0, got), carry]) : buf.subarray(0, got);
      let end = data.length;
      let nl = end > 0 ? data.lastIndexOf(10, end - 1) : -1;
      if (offset < 0) {
        // the bytes after the last newline are a line still being written
        if (nl < 0) {
          carry = Buffer.from(data);
          scanned += n;
          continue;
        }
        offset = pos + nl + 1;
        end = nl;
        nl = nl > 0 ? data.lastIndexOf(10, nl - 1) : -1;
      }
      while (nl >= 0 && !done) {
        take(data.subarray(nl + 1, end));
        end = nl;
        nl = nl > 0 ? data.lastIndexOf(10, nl - 1) : -1;
      }
      carry = Buffer.from(data.subarray(0, end));
      scanned += n;
      if (scanned >= SCAN_MAX_BYTES && pos > 0 && !done) {
        truncated = true;
        done = true;
      }
    }
    if (!done && offset >= 0) take(carry);
    return { lines: found.reverse(), truncated, offset: offset < 0 ? 0 : offset };
  } finally {
    closeSync(fd);
  }
}

/**
 * Hands every complete line appended to the file after `from` to onLines,
 * polling every intervalMs, until the signal aborts. At most
 * FOLLOW_LINES_PER_SECOND lines a second: the rest are dropped, and a marker
 * line {msg: "dropped N lines", dropped: N} takes their place. A file that
 * shrank (rotated, truncated) is read again from its start.
 */
export function followLog(
  file: string,
  from: number,
  onLines: (lines: LogLine[]) => void,
  opts: { signal: AbortSignal; intervalMs?: number; linesPerSecond?: number },
): void {
  if (opts.signal.aborted) return;
  const perSecond = opts.linesPerSecond ?? FOLLOW_LINES_PER_SECOND;
  let offset = from;
  let windowStart = Date.now();
  let sent = 0;
  let dropped = 0;
  const marker = (n: number, what = "lines"): LogLine => ({
    level: "warn",
    time: new Date().toISOString(),
    msg: `dropped ${n} ${what}`,
    dropped: n,
    ...(what === "lines" ? {} : { unit: what }),
  });
  const tick = () => {
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      return; // not there (yet, or any more): try again at the next tick
    }
    if (size < offset) offset = 0;
    const out: LogLine[] = [];
    if (size - offset > FOLLOW_MAX_BEHIND) {
      out.push(marker(size - offset, "bytes"));
      offset = size;
    }
    if (Date.now() - windowStart >= 1000) {
      windowStart = Date.now();
      sent = 0;
    }
    if (dropped > 0 && sent < perSecond) {
      out.push(marker(dropped));
      dropped = 0;
    }
    if (size > offset) {
      const want = Math.min(size - offset, FOLLOW_READ_MAX);
      const buf = Buffer.alloc(want);
      let got = 0;
      try {
        const fd = openSync(file, "r");
        try {
          while (got < want) {
            const r = readSync(fd, buf, got, want - got, offset + got);
            if (r === 0) break;
            got += r;
          }
        } finally {
          closeSync(fd);
        }
      } catch {
        return;
      }
      const last = buf.subarray(0, got).lastIndexOf(10);
      if (last >= 0) {
        let start = 0;
        for (let nl = buf.indexOf(10, 0); nl >= 0 && nl <= last; nl = buf.indexOf(10, nl + 1)) {
          const raw = buf.subarray(start, nl);
          start = nl + 1;
          if (raw.length === 0) continue;
          if (sent < perSecond) {
            out.push(parseLogLine(raw.toString("utf8")));
            sent++;
          } else dropped++;
        }
        offset += last + 1;
      } else if (got === FOLLOW_READ_MAX) {
        // one line longer than a read: skip it rather than stall
        offset += got;
        dropped++;
      }
    }
    if (out.length) onLines(out);
  };
  const timer = setInterval(tick, opts.intervalMs ?? 200);
  opts.signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}

export interface LogReader {
  /** the newest lines of a source (system.logs); KernelErrors a person can act on */
  read(source: LogSource, opts: { tail: number; since?: number }): LogTail;
  /** follow a source from offset until the signal aborts */
  follow(source: LogSource, from: number, onLines: (lines: LogLine[]) => void, signal: AbortSignal): void;
}

/**
 * The reader over this boot's log files. kernel: --log-file, kernel.yaml
 * log.file, or <data>/logs/kernel.log in the appliance (undefined: the kernel
 * logs to stderr). init: <data>/logs/init.log in the appliance (undefined in
 * host mode, which has no init).
 */
export function logReader(files: { kernel?: string; init?: string }): LogReader {
  const fileOf = (source: LogSource): string => {
    const f = files[source];
    if (f !== undefined) return f;
    // JSON-RPC's "method not available" here: this kernel keeps no such file
    throw new KernelError(
      ErrorCode.MethodNotFound,
      source === "kernel"
        ? "the kernel logs to stderr in this mode; give --log-file (or kernel.yaml log.file) to read it here"
        : "host mode has no init and so no init log (in the appliance it is <data>/logs/init.log)",
    );
  };
  return {
    read(source, opts) {
      const file = fileOf(source);
      try {
        return readLogTail(file, opts);
      } catch (e) {
        // no line logged yet: the file is made at the first write
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return { lines: [], truncated: false, offset: 0 };
        throw e;
      }
    },
    follow(source, from, onLines, signal) {
      followLog(fileOf(source), from, onLines, { signal });
    },
  };
}
