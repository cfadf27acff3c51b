import { describe, expect, test } from "bun:test";
import { appendFileSync, readFileSync, readdirSync, truncateSync, writeFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { AuditLog, GENESIS } from "../../../kernel/audit/index.ts";
import { tempDirsPerTest } from "./temp-dirs.ts";

const dir = tempDirsPerTest();
const seg = (d: string, first: number) => join(d, String(first).padStart(20, "0") + ".jsonl");
const segments = (d: string) =>
  readdirSync(d)
    .filter((n) => n.endsWith(".jsonl"))
    .sort();

async function fill(log: AuditLog, n: number, kind = "test.event") {
  return Promise.all(Array.from({ length: n }, (_, i) => log.append({ kind, agent_id: "a", i })));
}

describe("restart", () => {
  test("a restart continues the sequence and the chain", async () => {
    const d = dir();
    const a = await AuditLog.open(d);
    await fill(a, 5);
    const head = a.head();
    await a.close();
    const b = await AuditLog.open(d);
    expect(b.head()).toEqual(head);
    const r = await b.append({ kind: "after.restart" });
    expect(r.seq).toBe(6);
    const [e] = (await b.query({ since_seq: 6 })).events;
    expect(e!.prev).toBe(head.hash);
    expect(await b.verify()).toEqual({
      ok: true,
      events: 6,
      head: r.hash,
      anchor: { seq: 6, hash: r.hash },
      quarantined: [],
      tampered: [],
      unanchored: [],
    });
    await b.close();
  });

  test("an empty directory (or a missing one) starts at genesis", async () => {
    const d = join(dir(), "deeper", "still");
    const log = await AuditLog.open(d);
    expect(log.head()).toEqual({ seq: 0, hash: GENESIS });
    expect(await log.verify()).toEqual({
      ok: true,
      events: 0,
      head: GENESIS,
      anchor: { seq: 0, hash: GENESIS },
      quarantined: [],
      tampered: [],
      unanchored: [],
    });
    expect(await log.query({})).toEqual({ events: [], next_seq: 1 });
    await log.close();
  });

  test("segments roll over by count, across restarts and a changed segment size", async () => {
    const d = dir();
    let log = await AuditLog.open(d, { segmentRecords: 4 });
    await fill(log, 6); // 1-4, 5-6
    await log.close();
    expect(segments(d)).toEqual(["00000000000000000001.jsonl", "00000000000000000005.jsonl"]);
    log = await AuditLog.open(d, { segmentRecords: 4 });
    await fill(log, 3); // 7-8 fill seg 5, 9 opens seg 9
    await log.close();
    expect(segments(d)).toEqual([
      "00000000000000000001.jsonl",
      "00000000000000000005.jsonl",
      "00000000000000000009.jsonl",
    ]);
    log = await AuditLog.open(d, { segmentRecords: 2 });
    await fill(log, 4); // seg 9 gets 10, then 11-12, 13
    await log.close();
    expect(segments(d)).toEqual(["1", "5", "9", "11", "13"].map((n) => n.padStart(20, "0") + ".jsonl"));
    for (const [first, lines] of [
      [1, 4],
      [5, 4],
      [9, 2],
      [11, 2],
      [13, 1],
    ] as const) {
      const recs = readFileSync(seg(d, first), "utf8")
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: lines }, (_, i) => first + i));
    }
    log = await AuditLog.open(d);
    expect(await log.verify()).toMatchObject({ ok: true, events: 13 });
    const q = await log.query({ since_seq: 10, limit: 3 });
    expect(q.events.map((e) => e.seq)).toEqual([10, 11, 12]);
    await log.close();
  });

  test("a full last segment: the next record starts a new file after restart", async () => {
    const d = dir();
    let log = await AuditLog.open(d, { segmentRecords: 3 });
    await fill(log, 3);
    await log.close();
    log = await AuditLog.open(d, { segmentRecords: 3 });
    expect((await log.append({ kind: "x" })).seq).toBe(4);
    await log.close();
    expect(segments(d)).toEqual(["00000000000000000001.jsonl", "00000000000000000004.jsonl"]);
  });
});

describe("crash recovery", () => {
  test("a torn trailing line is truncated, quarantined, and reported by audit.recovered", async () => {
    const d = dir();
    let log = await AuditLog.open(d);
    await fill(log, 5);
    const head = log.head();
    await log.close();
    const sizeBefore = statSync(seg(d, 1)).size;
    const torn = '{"agent_id":"a","i":5,"kind":"test.ev';
    appendFileSync(seg(d, 1), torn);

    log = await AuditLog.open(d);
    const { events } = await log.query({ since_seq: 6 });
    expect(events).toHaveLength(1);
    const rec = events[0]!;
    expect(rec).toMatchObject({
      seq: 6,
      kind: "audit.recovered",
      agent_id: null,
      prev: head.hash,
      bytes_dropped: torn.length,
      invalid_lines: 0,
    });
    expect(String(rec.reason)).toContain("torn");
    expect(readFileSync(join(d, String(rec.quarantine)), "utf8")).toBe(torn);
    expect(statSync(seg(d, 1)).size).toBeGreaterThan(sizeBefore);
    expect(readFileSync(seg(d, 1), "utf8").endsWith("\n")).toBe(true);
    expect(await log.verify()).toMatchObject({ ok: true, events: 6 });
    expect((await log.append({ kind: "go.on" })).seq).toBe(7);
    await log.close();
  });

  test("half-written lines (zero-filled pages) at the end are dropped like a torn line", async () => {
    const d = dir();
    let log = await AuditLog.open(d);
    await fill(log, 4);
    await log.close();
    const junk = Buffer.concat([
      Buffer.alloc(300),
      Buffer.from("\n"),
      Buffer.from('{"seq":5,"x":1}\n'),
      Buffer.alloc(17),
    ]);
    appendFileSync(seg(d, 1), junk);
    log = await AuditLog.open(d);
    expect(log.head().seq).toBe(5);
    const [rec] = (await log.query({ since_seq: 5 })).events;
    expect(rec).toMatchObject({ kind: "audit.recovered", bytes_dropped: junk.length, invalid_lines: 2 });
    expect(readFileSync(join(d, String(rec!.quarantine)))).toEqual(junk);
    expect((await log.verify()).ok).toBe(true);
    await log.close();
  });

  test("a newest segment without one valid record is removed; recovery continues from the one before", async () => {
    const d = dir();
    let log = await AuditLog.open(d, { segmentRecords: 3 });
    await fill(log, 3);
    const head = log.head();
    await log.close();
    writeFileSync(seg(d, 4), '{"seq":4,"ts":"2'); // crashed while writing the first record of a new segment
    log = await AuditLog.open(d, { segmentRecords: 3 });
    const [rec] = (await log.query({ since_seq: 4 })).events;
    expect(rec).toMatchObject({
      seq: 4,
      kind: "audit.recovered",
      prev: head.hash,
      segment: "00000000000000000004.jsonl",
      bytes_dropped: 16,
    });
    expect(segments(d)).toEqual(["00000000000000000001.jsonl", "00000000000000000004.jsonl"]);
    expect(await log.verify()).toMatchObject({ ok: true, events: 4 });
    await log.close();
  });

  test("an empty newest segment (created, never written) is not reported", async () => {
    const d = dir();
    let log = await AuditLog.open(d, { segmentRecords: 2 });
    await fill(log, 2);
    await log.close();
    writeFileSync(seg(d, 3), "");
    log = await AuditLog.open(d, { segmentRecords: 2 });
    expect(log.head().seq).toBe(2);
    expect((await log.append({ kind: "x" })).seq).toBe(3);
    expect((await log.query({ kind: "audit.recovered" })).events).toHaveLength(0);
    expect((await log.verify()).ok).toBe(true);
    await log.close();
  });
});

describe("verify", () => {
  test("a byte edited in the middle of a segment is reported at its record, and open does not 'fix' it", async () => {
    const d = dir();
    let log = await AuditLog.open(d, { segmentRecords: 10 });
    await fill(log, 25);
    await log.close();
    // record 15 is line 5 of segment 11
    const path = seg(d, 11);
    const lines = readFileSync(path, "utf8").split("\n");
    expect(JSON.parse(lines[4]!).seq).toBe(15);
    const off = lines.slice(0, 4).join("\n").length + 1 + lines[4]!.indexOf('"i":14') + 4;
    const bytes = readFileSync(path);
    expect(String.fromCharCode(bytes[off]!)).toBe("1");
    bytes[off] = "7".charCodeAt(0); // "i":14 → "i":74
    writeFileSync(path, bytes);

    log = await AuditLog.open(d, { segmentRecords: 10 });
    expect(log.head().seq).toBe(25);
    const v = await log.verify();
    expect(v.ok).toBe(false);
    expect(v.broken).toEqual({ seq: 15, reason: "hash does not match the record's content" });
    expect(v.events).toBe(14);
    // the log goes on, and verify keeps reporting the same record
    expect((await log.append({ kind: "later" })).seq).toBe(26);
    expect((await log.verify()).broken?.seq).toBe(15);
    await log.close();
  });

  test("a removed record, a broken JSON line, a swapped prev, a wrong segment name", async () => {
    const d = dir();
    let log = await AuditLog.open(d, { segmentRecords: 5 });
    await fill(log, 12);
    await log.close();
    const original = readFileSync(seg(d, 6), "utf8");
    const lines = original.split("\n");

    const check = async (content: string, seq: number, reason: RegExp) => {
      writeFileSync(seg(d, 6), content);
      const l = await AuditLog.open(d, { segmentRecords: 5 });
      const v = await l.verify();
      await l.close();
      expect(v.ok).toBe(false);
      expect(v.broken!.seq).toBe(seq);
      expect(v.broken!.reason).toMatch(reason);
    };
    await check([...lines.slice(0, 2), ...lines.slice(3)].join("\n"), 8, /found seq 9 where 8/);
    await check([...lines.slice(0, 2), "{not json", ...lines.slice(3)].join("\n"), 8, /not valid JSON/);
    const r8 = JSON.parse(lines[2]!);
    r8.prev = "a".repeat(64);
    await check([...lines.slice(0, 2), JSON.stringify(r8), ...lines.slice(3)].join("\n"), 8, /prev/);
    writeFileSync(seg(d, 6), original);

    log = await AuditLog.open(d, { segmentRecords: 5 });
    expect((await log.verify()).ok).toBe(true);
    await log.close();
    const { renameSync } = require("node:fs");
    renameSync(seg(d, 6), seg(d, 7));
    log = await AuditLog.open(d, { segmentRecords: 5 });
    expect((await log.verify()).broken).toEqual({
      seq: 6,
      reason: "segment 00000000000000000007.jsonl starts at seq 7, expected 6",
    });
    await log.close();
  });

  test("the hash is over canonical JSON: a record re-serialised with other key order and spacing still verifies", async () => {
    const d = dir();
    let log = await AuditLog.open(d);
    await fill(log, 3);
    await log.close();
    const lines = readFileSync(seg(d, 1), "utf8").trimEnd().split("\n");
    const r2 = JSON.parse(lines[1]!);
    const reordered = Object.fromEntries(Object.entries(r2).reverse());
    lines[1] = JSON.stringify(reordered, null, 1).replace(/\n/g, "");
    writeFileSync(seg(d, 1), lines.join("\n") + "\n");
    log = await AuditLog.open(d);
    expect(await log.verify()).toMatchObject({ ok: true, events: 3 });
    await log.close();
  });

  test("records cut from the end while the kernel runs are reported as missing", async () => {
    const d = dir();
    const log = await AuditLog.open(d);
    await fill(log, 5);
    const text = readFileSync(seg(d, 1), "utf8");
    const keep = text.split("\n").slice(0, 3).join("\n") + "\n";
    truncateSync(seg(d, 1), Buffer.byteLength(keep));
    const v = await log.verify();
    expect(v).toMatchObject({ ok: false, events: 3, broken: { seq: 4 } });
    expect(v.broken!.reason).toMatch(/missing/);
    await log.close();
  });
});
