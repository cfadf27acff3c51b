// The head anchor: <audit dir>/HEAD, one fixed-size line naming the last
// record the log has made durable, kept outside the segments so that records
// cut from the end of the log (or a deleted newest segment) can be told from
// a log that never had them. Format and rules: the HEAD section of ./index.ts.
import { join } from "node:path";
import { sha256hex } from "./canonical.ts";
import type { AuditIO } from "./segments.ts";

export const ANCHOR_FILE = "HEAD";
const MAGIC = "aaos-audit-head 1";
/** `aaos-audit-head 1 <seq, 20 digits> <hash, 64 hex> <check, 16 hex>\n` */
export const ANCHOR_BYTES = MAGIC.length + 1 + 20 + 1 + 64 + 1 + 16 + 1;
const ANCHOR_RE = /^aaos-audit-head 1 (\d{20}) ([0-9a-f]{64}) ([0-9a-f]{16})\n$/;

export interface Anchor {
  seq: number;
  hash: string;
}

export type AnchorRead = ({ state: "ok" } & Anchor) | { state: "missing" } | { state: "invalid"; raw: string };

export function anchorPath(dir: string): string {
  return join(dir, ANCHOR_FILE);
}

function check(body: string): string {
  return sha256hex(body).slice(0, 16);
}

/** The anchor's bytes: always ANCHOR_BYTES long, so it is rewritten in place. */
export function formatAnchor(seq: number, hash: string): Buffer {
  const body = `${MAGIC} ${String(seq).padStart(20, "0")} ${hash}`;
  return Buffer.from(`${body} ${check(body)}\n`, "latin1");
}

export function parseAnchor(bytes: Buffer): Anchor | null {
  if (bytes.length !== ANCHOR_BYTES) return null;
  const text = bytes.toString("latin1");
  const m = ANCHOR_RE.exec(text);
  if (!m) return null;
  if (check(text.slice(0, text.length - 18)) !== m[3]) return null;
  const seq = Number(m[1]);
  if (!Number.isSafeInteger(seq)) return null;
  return { seq, hash: m[2]! };
}

/** Read HEAD. A read error other than ENOENT counts as an unreadable anchor. */
export async function readAnchor(io: AuditIO, dir: string): Promise<AnchorRead> {
  let fd: number;
  try {
    fd = await io.open(anchorPath(dir), "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return { state: "missing" };
    return { state: "invalid", raw: `cannot read HEAD: ${(e as Error).message}` };
  }
  try {
    const buf = Buffer.alloc(ANCHOR_BYTES + 1);
    let got = 0;
    while (got < buf.length) {
      const n = await io.read(fd, buf, got, buf.length - got, got);
      if (n <= 0) break;
      got += n;
    }
    const bytes = buf.subarray(0, got);
    const a = parseAnchor(bytes);
    if (a) return { state: "ok", ...a };
    return { state: "invalid", raw: JSON.stringify(bytes.toString("latin1").slice(0, ANCHOR_BYTES)) };
  } catch (e) {
    return { state: "invalid", raw: `cannot read HEAD: ${(e as Error).message}` };
  } finally {
    await io.close(fd).catch(() => {});
  }
}
