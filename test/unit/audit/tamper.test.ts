// The head anchor (<dir>/HEAD): cutting, editing or deleting the end of the
// log while the kernel is down is reported by verify, for good; a crash's
// torn tail is not.
import { describe, expect, test } from "bun:test";
import {
  appendFileSync,
  existsSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { AuditLog, GENESIS, canonicalJSON } from "../../../kernel/audit/index.ts";
import { tempDirsPerTest } from "./temp-dirs.ts";

const dir = tempDirsPerTest();
const seg = (d: string, first: number) => join(d, String(first).padStart(20, "0") + ".jsonl");
const segments = (d: string) =>
  readdirSync(d)
    .filter((n) => n.endsWith(".jsonl"))
    .sort();
const lines = (path: string) => readFileSync(path, "utf8").trimEnd().split("\n");

async function fill(log: AuditLog, n: number) {
  return Promise.all(Array.from({ length: n }, (_, i) => log.append({ kind: "test.event", agent_id: "a", i })));
}

async function logWith(d: string, n: number, opts = {}) {
  const log = await AuditLog.open(d, opts);
  await fill(log, n);
  const head = log.head();
  await log.close();
  return head;
}

/** sha256 of canonical JSON, as any language would check it */
function rehash(rec: Record<string, unknown>): string {
  const { hash: _h, ...rest } = rec;
  return createHash("sha256").update(canonicalJSON(rest)).digest("hex");
}

describe("the anchor file", () => {
  test("HEAD is one fixed-size line, rewritten in place: seq, hash, and a check over both", async () => {
    const d = dir();
    const head = await logWith(d, 3);
    const text = readFileSync(join(d, "HEAD"), "latin1");
    expect(text.length).toBe(121);
    const m = /^aaos-audit-head 1 (\d{20}) ([0-9a-f]{64}) ([0-9a-f]{16})\n$/.exec(text)!;
    expect(m).not.toBeNull();
    expect(Number(m[1])).toBe(head.seq);
    expect(m[2]).toBe(head.hash);
    const body = text.slice(0, text.length - 18);
    expect(createHash("sha256").update(body).digest("hex").slice(0, 16)).toBe(m[3]!);
    // a fresh log anchors genesis at open, before its first record
    const e = dir();
    const log = await AuditLog.open(e);
    expect(readFileSync(join(e, "HEAD"), "latin1")).toContain(` ${"0".repeat(20)} ${GENESIS} `);
    await log.close();
  });

  test("a clean log reopened: no report, the anchor in verify's answer", async () => {
    const d = dir();
    const head = await logWith(d, 4);
    const log = await AuditLog.open(d);
    expect(log.head()).toEqual(head);
    expect(await log.verify()).toEqual({
      ok: true,
      events: 4,
      head: head.hash,
      anchor: head,
      quarantined: [],
      tampered: [],
      unanchored: [],
    });
    expect((await log.query({ kind: "audit.*" })).events).toHaveLength(0);
    await log.close();
  });

  test("callers cannot write the log's own audit.* kinds", async () => {
    const log = await AuditLog.open(dir());
    await expect(log.append({ kind: "audit.tampered", reason: "fake" })).rejects.toMatchObject({ code: -32602 });
    await expect(log.append({ kind: "audit.recovered" })).rejects.toMatchObject({ code: -32602 });
    expect(log.head().seq).toBe(0);
    await log.close();
  });
});

describe("tampering while the kernel is down", () => {
  test("the last records edited: quarantined as acknowledged, verify not ok, numbering continues after the anchor", async () => {
    const d = dir();
    const head = await logWith(d, 10);
    // change the payload of records 9 and 10
    const ls = lines(seg(d, 1));
    const cut = Buffer.byteLength(ls.slice(0, 8).join("\n")) + 1;
    const edited = [ls[8]!.replace('"i":8', '"i":80'), ls[9]!.replace('"i":9', '"i":90')];
    writeFileSync(seg(d, 1), [...ls.slice(0, 8), ...edited].join("\n") + "\n");

    const log = await AuditLog.open(d);
    // recovery cut 9-10 (their hashes no longer match) but the anchor names 10:
    // the first new record is 11, in a segment of its own; 9 and 10 are never reused
    expect(log.head().seq).toBe(12);
    expect(segments(d)).toEqual(["00000000000000000001.jsonl", "00000000000000000011.jsonl"]);
    const [t, r] = (await log.query({ since_seq: 9 })).events;
    const h8 = JSON.parse(ls[7]!).hash;
    expect(t).toMatchObject({
      seq: 11,
      kind: "audit.tampered",
      anchor: head,
      found: { seq: 8, hash: h8 },
      missing: [9, 10],
      prev: h8,
    });
    expect(String(t!.reason)).toContain("acknowledged records 9-10 were cut, edited or deleted");
    expect(r).toMatchObject({
      seq: 12,
      kind: "audit.recovered",
      segment: "00000000000000000001.jsonl",
      offset: cut,
      seqs: [9, 10],
      acknowledged: true,
      invalid_lines: 2,
    });
    expect(readFileSync(join(d, String(r!.quarantine)), "utf8")).toBe(edited.join("\n") + "\n");

    const v = await log.verify();
    expect(v.ok).toBe(false);
    expect(v.events).toBe(10); // 1-8, 11, 12: every record there checks out
    expect(v.head).toBe(log.head().hash);
    expect(v.broken!.seq).toBe(9);
    expect(v.broken!.reason).toMatch(
      /^tampered: the log ends at seq 8 but its head anchor \(HEAD\) names seq 10: .*\(audit\.tampered at seq 11\)$/,
    );
    expect(v.tampered).toEqual([
      { record: 11, anchor: head, found: { seq: 8, hash: h8 }, missing: [9, 10], reason: String(t!.reason) },
    ]);
    expect(v.quarantined).toEqual([
      {
        segment: "00000000000000000001.jsonl",
        offset: cut,
        bytes: Buffer.byteLength(edited.join("\n") + "\n"),
        file: String(r!.quarantine),
        seqs: [9, 10],
        acknowledged: true,
        reason: String(r!.reason),
        record: 12,
      },
    ]);
    expect(v.anchor).toEqual(log.head());

    // it stays reported: more records, restarts
    expect((await log.append({ kind: "later" })).seq).toBe(13);
    await log.close();
    const again = await AuditLog.open(d);
    expect((await again.query({ kind: "audit.*" })).events).toHaveLength(2); // no new report
    const v2 = await again.verify();
    expect(v2).toMatchObject({ ok: false, events: 11, broken: { seq: 9 } });
    expect(v2.tampered).toHaveLength(1);
    await again.close();
  });

  test("the last record replaced by a self-consistent forgery: the hash at the anchor differs", async () => {
    const d = dir();
    const head = await logWith(d, 5);
    const ls = lines(seg(d, 1));
    const forged = JSON.parse(ls[4]!);
    forged.i = 999;
    forged.hash = rehash(forged);
    writeFileSync(seg(d, 1), [...ls.slice(0, 4), JSON.stringify(forged)].join("\n") + "\n");
    const log = await AuditLog.open(d);
    const [t] = (await log.query({ since_seq: 6 })).events;
    expect(t).toMatchObject({ seq: 6, kind: "audit.tampered", anchor: head, found: { seq: 5, hash: forged.hash } });
    expect(String(t!.reason)).toContain("record 5 is not the one the head anchor (HEAD) names");
    const v = await log.verify();
    expect(v).toMatchObject({ ok: false, events: 6, broken: { seq: 5 } });
    expect(v.quarantined).toEqual([]);
    await log.close();
  });

  test("the newest segment deleted: reported, and its seqs are never handed out again", async () => {
    const d = dir();
    const head = await logWith(d, 6, { segmentRecords: 4 }); // 1-4, 5-6
    const gone = lines(seg(d, 5)).map((l) => JSON.parse(l).hash);
    unlinkSync(seg(d, 5));

    let log = await AuditLog.open(d, { segmentRecords: 4 });
    expect(log.head().seq).toBe(7);
    expect(segments(d)).toEqual(["00000000000000000001.jsonl", "00000000000000000007.jsonl"]);
    const r = await log.append({ kind: "after" });
    expect(r.seq).toBe(8);
    const evs = (await log.query({ since_seq: 5 })).events;
    expect(evs.map((e) => [e.seq, e.kind])).toEqual([
      [7, "audit.tampered"],
      [8, "after"],
    ]);
    expect(evs[0]).toMatchObject({ anchor: head, found: { seq: 4 }, missing: [5, 6] });
    // nothing on disk carries seq 5 or 6
    for (const s of segments(d)) for (const l of lines(join(d, s))) expect([5, 6]).not.toContain(JSON.parse(l).seq);
    const v = await log.verify();
    expect(v).toMatchObject({ ok: false, events: 6, head: r.hash, broken: { seq: 5 } });
    expect(v.broken!.reason).toContain("acknowledged records 5-6 were cut, edited or deleted");
    expect(v.tampered[0]!.record).toBe(7);
    expect(gone).not.toContain(v.head);
    await log.close();

    // a deleted segment that is not the newest is a broken chain, as before
    unlinkSync(seg(d, 1));
    log = await AuditLog.open(d, { segmentRecords: 4 });
    expect((await log.verify()).broken).toMatchObject({
      seq: 1,
      reason: "segment 00000000000000000007.jsonl starts at seq 7, expected 1",
    });
    await log.close();
  });

  test("every segment deleted: the log starts after the anchor, from genesis's hash", async () => {
    const d = dir();
    const head = await logWith(d, 3);
    unlinkSync(seg(d, 1));
    const log = await AuditLog.open(d);
    const [t] = (await log.query({})).events;
    expect(t).toMatchObject({
      seq: 4,
      kind: "audit.tampered",
      prev: GENESIS,
      anchor: head,
      found: { seq: 0, hash: GENESIS },
      missing: [1, 3],
    });
    expect(segments(d)).toEqual(["00000000000000000004.jsonl"]);
    expect(await log.verify()).toMatchObject({ ok: false, events: 1, broken: { seq: 1 } });
    await log.close();
  });

  test("records cut from the end between two lines are reported like a deletion", async () => {
    const d = dir();
    const head = await logWith(d, 5);
    const ls = lines(seg(d, 1));
    truncateSync(seg(d, 1), Buffer.byteLength(ls.slice(0, 3).join("\n")) + 1);
    const log = await AuditLog.open(d);
    const v = await log.verify();
    expect(v).toMatchObject({
      ok: false,
      broken: { seq: 4 },
      tampered: [{ record: 6, anchor: head, missing: [4, 5] }],
      quarantined: [],
    });
    await log.close();
  });

  test("a seq jump without the audit.tampered record that documents it is a broken chain", async () => {
    const d = dir();
    await logWith(d, 6, { segmentRecords: 4 });
    unlinkSync(seg(d, 5));
    let log = await AuditLog.open(d, { segmentRecords: 4 });
    await log.close();
    // forge the report away: an ordinary record of the same seq in its place
    const rec = JSON.parse(lines(seg(d, 7))[0]!);
    const plain = { ...rec, kind: "test.event" };
    delete plain.anchor;
    delete plain.missing;
    plain.hash = rehash(plain);
    writeFileSync(seg(d, 7), JSON.stringify(plain) + "\n");
    rmSync(join(d, "HEAD"));
    log = await AuditLog.open(d, { segmentRecords: 4 });
    const v = await log.verify();
    expect(v.ok).toBe(false);
    expect(v.broken).toEqual({ seq: 5, reason: "segment 00000000000000000007.jsonl starts at seq 7, expected 5" });
    await log.close();
  });
});

describe("crashes are not tampering", () => {
  test("a torn tail past the anchored head: quarantined and listed, verify ok", async () => {
    const d = dir();
    const head = await logWith(d, 5);
    const size = readFileSync(seg(d, 1)).length;
    const torn = '{"agent_id":"a","i":5,"kind":"test.event","prev":"' + head.hash.slice(0, 20);
    appendFileSync(seg(d, 1), torn);
    const log = await AuditLog.open(d);
    const [r] = (await log.query({ since_seq: 6 })).events;
    expect(r).toMatchObject({
      seq: 6,
      kind: "audit.recovered",
      acknowledged: false,
      offset: size,
      bytes_dropped: torn.length,
    });
    expect("seqs" in r!).toBe(false);
    const v = await log.verify();
    expect(v).toMatchObject({ ok: true, events: 6, tampered: [], unanchored: [] });
    expect(v.broken).toBeUndefined();
    expect(v.quarantined).toEqual([
      {
        segment: "00000000000000000001.jsonl",
        offset: size,
        bytes: torn.length,
        file: String(r!.quarantine),
        acknowledged: false,
        reason: "torn write at the end of the log",
        record: 6,
      },
    ]);
    await log.close();
  });

  test("a power cut: HEAD lagging behind the log, a half-written record after it", async () => {
    const d = dir();
    const log0 = await AuditLog.open(d);
    await fill(log0, 3);
    // HEAD is rewritten just after the callers are answered: wait until it names seq 3
    let stale = readFileSync(join(d, "HEAD"));
    for (let i = 0; i < 200 && !stale.toString().includes(" 00000000000000000003 "); i++) {
      await Bun.sleep(5);
      stale = readFileSync(join(d, "HEAD"));
    }
    expect(stale.toString()).toContain(" 00000000000000000003 ");
    await fill(log0, 3);
    await log0.close();
    writeFileSync(join(d, "HEAD"), stale); // the anchor's last rewrites never reached the disk
    // and the last group's pages reached it in part: a record whose bytes
    // are not all there (its hash fails), then zeros
    appendFileSync(
      seg(d, 1),
      '{"agent_id":"a","i":0,"kind":"test.event","seq":7,"hash":"' + "0".repeat(64) + '"}\n' + "\0".repeat(40),
    );
    const log = await AuditLog.open(d);
    expect(log.head().seq).toBe(7);
    const v = await log.verify();
    expect(v).toMatchObject({ ok: true, events: 7, tampered: [] });
    expect(v.quarantined).toMatchObject([{ seqs: [7, 7], acknowledged: false, record: 7 }]);
    expect(v.anchor).toEqual(log.head()); // rewritten at open
    await log.close();
  });

  test("HEAD lagging but naming another record than the log holds at its seq: tampering", async () => {
    const d = dir();
    const log0 = await AuditLog.open(d);
    await fill(log0, 3);
    // HEAD is rewritten just after the callers are answered: wait until it names seq 3
    let stale = readFileSync(join(d, "HEAD"));
    for (let i = 0; i < 200 && !stale.toString().includes(" 00000000000000000003 "); i++) {
      await Bun.sleep(5);
      stale = readFileSync(join(d, "HEAD"));
    }
    expect(stale.toString()).toContain(" 00000000000000000003 ");
    await fill(log0, 3);
    await log0.close();
    writeFileSync(join(d, "HEAD"), stale);
    // history rewritten from record 3 on, with fresh hashes
    const ls = lines(seg(d, 1)).map((l) => JSON.parse(l));
    for (let k = 2; k < ls.length; k++) {
      ls[k].i = 100 + k;
      ls[k].prev = ls[k - 1].hash;
      ls[k].hash = rehash(ls[k]);
    }
    writeFileSync(seg(d, 1), ls.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const log = await AuditLog.open(d);
    const v = await log.verify();
    expect(v).toMatchObject({ ok: false, broken: { seq: 3 }, tampered: [{ record: 7, found: { seq: 6 } }] });
    await log.close();
  });

  test("a crash after the report was written but before HEAD was rewritten does not report twice", async () => {
    const d = dir();
    await logWith(d, 6, { segmentRecords: 4 });
    const anchorBefore = readFileSync(join(d, "HEAD"));
    unlinkSync(seg(d, 5));
    let log = await AuditLog.open(d, { segmentRecords: 4 });
    await log.close();
    writeFileSync(join(d, "HEAD"), anchorBefore); // as if HEAD's rewrite was lost
    log = await AuditLog.open(d, { segmentRecords: 4 });
    expect((await log.query({ kind: "audit.tampered" })).events).toHaveLength(1);
    await log.close();

    // the same for a rewritten last record (no seq gap)
    const e = dir();
    await logWith(e, 3);
    const before = readFileSync(join(e, "HEAD"));
    const ls = lines(seg(e, 1));
    const forged = JSON.parse(ls[2]!);
    forged.i = 7;
    forged.hash = rehash(forged);
    writeFileSync(seg(e, 1), [...ls.slice(0, 2), JSON.stringify(forged)].join("\n") + "\n");
    log = await AuditLog.open(e);
    await log.close();
    writeFileSync(join(e, "HEAD"), before);
    log = await AuditLog.open(e);
    expect((await log.query({ kind: "audit.tampered" })).events).toHaveLength(1);
    await log.close();
  });
});

describe("no anchor", () => {
  test("HEAD missing beside a log with records: audit.unanchored, ok unaffected, HEAD recreated", async () => {
    const d = dir();
    const head = await logWith(d, 4);
    rmSync(join(d, "HEAD"));
    let log = await AuditLog.open(d);
    const [u] = (await log.query({ since_seq: 5 })).events;
    expect(u).toMatchObject({ seq: 5, kind: "audit.unanchored", found: head });
    expect(String(u!.reason)).toContain("the head anchor (HEAD) is missing");
    const v = await log.verify();
    expect(v).toMatchObject({ ok: true, events: 5, unanchored: [{ record: 5, found: head }] });
    expect(existsSync(join(d, "HEAD"))).toBe(true);
    await log.close();
    log = await AuditLog.open(d);
    expect((await log.query({ kind: "audit.*" })).events).toHaveLength(1);
    await log.close();
  });

  test("HEAD damaged: reported with its content, then rewritten whole", async () => {
    const d = dir();
    await logWith(d, 2);
    writeFileSync(join(d, "HEAD"), "garbage that is longer than one anchor line ".repeat(4));
    const log = await AuditLog.open(d);
    const [u] = (await log.query({ since_seq: 3 })).events;
    expect(u).toMatchObject({ kind: "audit.unanchored" });
    expect(String(u!.head_file)).toContain("garbage");
    expect(String(u!.reason)).toContain("unreadable");
    await log.close();
    expect(readFileSync(join(d, "HEAD")).length).toBe(121);
    const again = await AuditLog.open(d);
    expect(await again.verify()).toMatchObject({ ok: true, anchor: again.head(), unanchored: [{ record: 3 }] });
    await again.close();
  });
});
