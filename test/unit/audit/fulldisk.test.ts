// A full (or read-only) data disk: the log opens degraded instead of not at
// all, answers queries and verify from what is durable, rejects appends with
// a message a person can act on, and heals itself once space is freed,
// without a gap or a half record. On a real tmpfs filled to the brim.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import {
  appendFileSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  rmdirSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditLog } from "../../../kernel/audit/index.ts";

const FULL = "audit log cannot be written: ENOSPC: no space left on device; free space on the data disk";

/** a 2 MiB tmpfs of our own, or why there is none */
function mountTmpfs(): { mnt: string | null; why: string } {
  const mnt = mkdtempSync(join(tmpdir(), "aaos-audit-full-"));
  const r = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], { stderr: "pipe" });
  if (r.exitCode === 0) return { mnt, why: "" };
  rmdirSync(mnt);
  const why = `mount -t tmpfs failed: ${r.stderr.toString().trim()}`;
  if (process.getuid?.() === 0)
    throw new Error(`${why} (running as root: a real full disk is required for these tests)`);
  return { mnt: null, why };
}
const { mnt, why } = mountTmpfs();
if (!mnt)
  console.warn(`test/unit/audit/fulldisk.test.ts: SKIPPED, these tests need root to mount a small tmpfs (${why})`);
const run = test.skipIf(!mnt);

let n = 0;
const made: string[] = [];
afterEach(() => {
  for (const p of made.splice(0)) rmSync(p, { recursive: true, force: true });
});
afterAll(() => {
  if (!mnt) return;
  // a test that failed midway may hold files open there: detach it lazily then
  if (Bun.spawnSync(["umount", mnt]).exitCode !== 0) Bun.spawnSync(["umount", "-l", mnt]);
  rmdirSync(mnt);
});

/** a fresh log directory on the tmpfs */
function place(): string {
  const root = join(mnt!, `t${++n}`);
  mkdirSync(root);
  made.push(root);
  return join(root, "audit");
}

/** fill the tmpfs to the brim; returns the filler to unlink */
function fillDisk(): string {
  const p = join(mnt!, `filler-${n}`);
  made.push(p);
  const fd = openSync(p, "w");
  const big = Buffer.alloc(64 * 1024, 0x2e);
  for (const size of [64 * 1024, 4096, 1]) {
    for (;;) {
      try {
        writeSync(fd, big, 0, size);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOSPC") break;
        throw e;
      }
    }
  }
  closeSync(fd);
  // brim: not one more byte in a new file
  expect(() => {
    const probe = join(mnt!, "probe");
    const f = openSync(probe, "w");
    try {
      writeSync(f, "x");
    } finally {
      closeSync(f);
      unlinkSync(probe);
    }
  }).toThrow(/ENOSPC/);
  return p;
}

const seg = (d: string, first: number) => join(d, String(first).padStart(20, "0") + ".jsonl");
const allRecords = (d: string) =>
  readdirSync(d)
    .filter((f) => f.endsWith(".jsonl"))
    .sort()
    .flatMap((f) => readFileSync(join(d, f), "utf8").split("\n").filter(Boolean))
    .map((l) => JSON.parse(l)); // throws on a half record

/** as if the process died: its descriptors go, nothing is flushed, repaired or synced */
function kill(log: AuditLog) {
  const raw = log as unknown as { fd: number | null; anchorFd: number | null; closed: boolean };
  for (const fd of [raw.fd, raw.anchorFd]) if (fd !== null) closeSync(fd);
  raw.fd = raw.anchorFd = null;
  raw.closed = true;
}

async function fill(log: AuditLog, k: number) {
  return Promise.all(Array.from({ length: k }, (_, i) => log.append({ kind: "test.event", agent_id: "a", i })));
}

describe("open on a full disk", () => {
  run(
    "with a torn tail to quarantine: opens degraded, reads work, appends say why, freeing space heals it",
    async () => {
      const d = place();
      let log = await AuditLog.open(d);
      await fill(log, 5);
      const head = log.head();
      await log.close();
      const torn = '{"agent_id":"a","i":5,"kind":"test.ev';
      appendFileSync(seg(d, 1), torn);
      const filler = fillDisk();

      log = await AuditLog.open(d);
      const deg = log.degraded();
      expect(deg).toEqual({ reason: FULL, since: expect.any(String) });
      expect(new Date(deg!.since).toISOString()).toBe(deg!.since);
      expect(log.head()).toEqual(head);
      expect((await log.query({})).events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      const v = await log.verify();
      expect(v).toMatchObject({ ok: true, events: 5, head: head.hash, anchor: head, tampered: [] });
      expect(v.quarantined).toEqual([
        {
          segment: "00000000000000000001.jsonl",
          offset: expect.any(Number),
          bytes: torn.length,
          file: null,
          acknowledged: false,
          reason: "torn write at the end of the log",
          record: null,
        },
      ]);
      const err = await log.append({ kind: "during" }).catch((e) => e);
      expect(err).toMatchObject({ code: -32603, message: FULL, data: { errno: "ENOSPC" } });
      expect(log.degraded()!.since).toBe(deg!.since);
      // the evidence is still where it was; nothing half-kept in quarantine
      expect(readFileSync(seg(d, 1), "utf8").endsWith(torn)).toBe(true);
      expect(readdirSync(join(d, "quarantine"))).toEqual([]);

      unlinkSync(filler);
      const r = await log.append({ kind: "after" });
      expect(r.seq).toBe(7); // 6: the audit.recovered record the recovery owed
      expect(log.degraded()).toBeNull();
      const [rec] = (await log.query({ since_seq: 6 })).events;
      expect(rec).toMatchObject({ kind: "audit.recovered", bytes_dropped: torn.length, acknowledged: false });
      expect(readFileSync(join(d, String(rec!.quarantine)), "utf8")).toBe(torn);
      const v2 = await log.verify();
      expect(v2).toMatchObject({
        ok: true,
        events: 7,
        head: r.hash,
        quarantined: [{ file: rec!.quarantine, record: 6 }],
      });
      await log.close();
      expect(allRecords(d).map((x) => x.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      log = await AuditLog.open(d);
      expect(await log.verify()).toMatchObject({ ok: true, events: 7, anchor: { seq: 7 } });
      await log.close();
    },
  );

  run("behind its anchor (newest segment deleted): the report waits for space, verify says so meanwhile", async () => {
    const d = place();
    let log = await AuditLog.open(d, { segmentRecords: 4 });
    await fill(log, 6);
    const head = log.head();
    await log.close();
    unlinkSync(seg(d, 5));
    const filler = fillDisk();

    log = await AuditLog.open(d, { segmentRecords: 4 });
    expect(log.degraded()?.reason).toBe(FULL);
    expect(log.head().seq).toBe(4);
    const v = await log.verify();
    expect(v).toMatchObject({
      ok: false,
      events: 4,
      broken: { seq: 5 },
      tampered: [{ record: null, anchor: head, found: { seq: 4 }, missing: [5, 6] }],
    });
    expect(v.broken!.reason).toContain("not yet recorded: the log cannot be written");
    await expect(log.append({ kind: "x" })).rejects.toMatchObject({ code: -32603, message: FULL });
    // HEAD keeps the evidence while the report cannot be written
    expect(readFileSync(join(d, "HEAD"), "latin1")).toContain(head.hash);

    unlinkSync(filler);
    expect((await log.append({ kind: "after" })).seq).toBe(8);
    expect((await log.query({ since_seq: 5 })).events.map((e) => [e.seq, e.kind])).toEqual([
      [7, "audit.tampered"],
      [8, "after"],
    ]);
    expect(await log.verify()).toMatchObject({ ok: false, broken: { seq: 5 }, tampered: [{ record: 7 }] });
    await log.close();
  });

  run("on a read-only disk: degraded with EROFS, heals after a remount read-write", async () => {
    const d = place();
    let log = await AuditLog.open(d);
    await fill(log, 2);
    await log.close();
    appendFileSync(seg(d, 1), '{"half');
    expect(Bun.spawnSync(["mount", "-o", "remount,ro", mnt!]).exitCode).toBe(0);
    try {
      log = await AuditLog.open(d);
      expect(log.degraded()?.reason).toBe(
        "audit log cannot be written: EROFS: read-only file system; the data disk is mounted read-only: check it and remount it read-write",
      );
      expect((await log.query({})).events).toHaveLength(2);
      expect((await log.verify()).ok).toBe(true);
      await expect(log.append({ kind: "x" })).rejects.toMatchObject({ code: -32603, data: { errno: "EROFS" } });
    } finally {
      expect(Bun.spawnSync(["mount", "-o", "remount,rw", mnt!]).exitCode).toBe(0);
    }
    expect((await log.append({ kind: "after" })).seq).toBe(4);
    expect(log.degraded()).toBeNull();
    expect(await log.verify()).toMatchObject({ ok: true, events: 4 });
    await log.close();
  });
});

describe("the disk fills while the log runs", () => {
  run(
    "a write cut short by ENOSPC leaves no gap and no half record, across a restart, once space is freed",
    async () => {
      const d = place();
      let log = await AuditLog.open(d);
      await fill(log, 3);
      const filler = fillDisk();

      // bigger than what is left of the segment's last page: part of it reaches the file
      const big = { kind: "big", blob: "x".repeat(20_000) };
      const bad = await Promise.allSettled([log.append(big), log.append({ kind: "small" })]);
      for (const r of bad) expect(r).toMatchObject({ status: "rejected", reason: { code: -32603, message: FULL } });
      expect(log.degraded()?.reason).toBe(FULL);
      expect(log.head().seq).toBe(3);
      const size = readFileSync(seg(d, 1)).length;
      expect(size).toBeGreaterThan(
        Buffer.byteLength(readFileSync(seg(d, 1), "utf8").split("\n").slice(0, 3).join("\n")) + 1,
      ); // a half record is on disk
      expect(await log.verify()).toMatchObject({ ok: true, events: 3 });
      await expect(log.append(big)).rejects.toMatchObject({ message: FULL }); // still full: the same, no more

      // a clean stop while the disk is still full cuts the half record (a shrink needs no space)
      await log.close();
      expect(
        readFileSync(seg(d, 1), "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l).seq),
      ).toEqual([1, 2, 3]);
      log = await AuditLog.open(d);
      expect(log.degraded()).toBeNull(); // nothing to recover; the disk is still full, though
      await expect(log.append(big)).rejects.toMatchObject({ message: FULL });
      expect(log.degraded()?.reason).toBe(FULL);
      // killed (no close) while a half record is on disk: the next open has a torn tail to quarantine, and no room
      kill(log);
      log = await AuditLog.open(d);
      expect(log.degraded()?.reason).toBe(FULL);
      expect(log.head().seq).toBe(3);
      expect((await log.verify()).quarantined).toMatchObject([{ record: null, file: null, acknowledged: false }]);
      await expect(log.append({ kind: "small" })).rejects.toMatchObject({ message: FULL });

      unlinkSync(filler);
      const r = await log.append({ kind: "small" });
      expect(r.seq).toBe(5); // 4: audit.recovered
      expect(log.degraded()).toBeNull();
      const big2 = await log.append(big);
      expect(big2.seq).toBe(6);
      await log.close();
      const recs = allRecords(d); // every line parses: no half record
      expect(recs.map((x) => [x.seq, x.kind])).toEqual([
        [1, "test.event"],
        [2, "test.event"],
        [3, "test.event"],
        [4, "audit.recovered"],
        [5, "small"],
        [6, "big"],
      ]);
      log = await AuditLog.open(d);
      expect(await log.verify()).toMatchObject({
        ok: true,
        events: 6,
        tampered: [],
        quarantined: [{ record: 4, acknowledged: false }],
      });
      expect(log.degraded()).toBeNull();
      await log.close();
    },
  );
});
