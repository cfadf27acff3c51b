import { describe, expect, test } from "bun:test";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { KernelError } from "../../../kernel/errors.ts";
import { AuditLog, GENESIS, canonicalJSON, recordHash, type AuditIO } from "../../../kernel/audit/index.ts";
import { createHash } from "node:crypto";
import { tempDirsPerTest } from "./temp-dirs.ts";

const dir = tempDirsPerTest();

async function fill(log: AuditLog, n: number, f: (i: number) => Record<string, unknown> = () => ({})) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(log.append({ kind: "test.event", i, ...f(i) }));
  return Promise.all(out);
}

describe("append and query", () => {
  test("records get seq from 1, ts, agent_id null by default, and a chained hash", async () => {
    const log = await AuditLog.open(dir());
    const a = await log.append({ kind: "agent.spawn", agent_id: "ag-1", name: "x" });
    const b = await log.append({ kind: "system.boot" });
    expect(a.seq).toBe(1);
    expect(b.seq).toBe(2);
    expect(log.head()).toEqual({ seq: 2, hash: b.hash });
    const { events, next_seq } = await log.query({});
    expect(next_seq).toBe(3);
    expect(events).toHaveLength(2);
    const [e1, e2] = events;
    expect(e1).toMatchObject({ seq: 1, kind: "agent.spawn", agent_id: "ag-1", name: "x", prev: GENESIS, hash: a.hash });
    expect(e2).toMatchObject({ seq: 2, kind: "system.boot", agent_id: null, prev: a.hash, hash: b.hash });
    expect(new Date(e1!.ts).toISOString()).toBe(e1!.ts);
    // field order for people
    expect(Object.keys(e1!).slice(0, 4)).toEqual(["seq", "ts", "kind", "agent_id"]);
    expect(Object.keys(e1!).slice(-2)).toEqual(["prev", "hash"]);
    await log.close();
  });

  test("a line on disk is canonical JSON with hash last; sha256 of the rest reproduces it", async () => {
    const d = dir();
    const log = await AuditLog.open(d);
    const { hash } = await log.append({
      kind: "tool.call",
      agent_id: "a",
      input: { z: 1, a: [1, { y: 2, b: 3 }], "10": "x", "9": "y" },
    });
    await log.close();
    const line = readFileSync(join(d, "00000000000000000001.jsonl"), "utf8").trimEnd();
    const rec = JSON.parse(line);
    expect(Object.keys(rec).at(-1)).toBe("hash");
    const { hash: h, ...rest } = rec;
    expect(h).toBe(hash);
    const canon = canonicalJSON(rest);
    expect(line).toBe(canon.slice(0, -1) + `,"hash":"${hash}"}`);
    expect(createHash("sha256").update(canon).digest("hex")).toBe(hash);
    expect(recordHash(rec)).toBe(hash);
    expect(canon.indexOf('"10"')).toBeLessThan(canon.indexOf('"9"')); // code-unit order, not numeric
  });

  test("the log's own fields cannot be forged by the caller", async () => {
    const log = await AuditLog.open(dir());
    await log.append({ kind: "x", seq: 99, prev: "f".repeat(64), hash: "nope", ts: "yesterday" } as never);
    const [e] = (await log.query({})).events;
    expect(e!.seq).toBe(1);
    expect(e!.prev).toBe(GENESIS);
    expect(e!.ts).not.toBe("yesterday");
    expect((await log.verify()).ok).toBe(true);
    await log.close();
  });

  test("filters: agent_id, exact kind, prefix kind, '*', since_seq", async () => {
    const log = await AuditLog.open(dir(), { segmentRecords: 7 });
    const kinds = ["tool.call", "tool.result", "toolbox.open", "tool", "agent.spawn"];
    await fill(log, 50, (i) => ({ kind: kinds[i % 5], agent_id: i % 2 ? "odd" : "even" }));
    const all = (await log.query({ limit: 1000 })).events;
    expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));

    const odd = (await log.query({ agent_id: "odd", limit: 1000 })).events;
    expect(odd).toHaveLength(25);
    expect(odd.every((e) => e.agent_id === "odd")).toBe(true);

    const exact = (await log.query({ kind: "tool", limit: 1000 })).events;
    expect(exact.map((e) => e.kind)).toEqual(Array(10).fill("tool"));

    const prefix = (await log.query({ kind: "tool.*", limit: 1000 })).events;
    expect(prefix).toHaveLength(20);
    expect(new Set(prefix.map((e) => e.kind))).toEqual(new Set(["tool.call", "tool.result"]));

    expect((await log.query({ kind: "*", limit: 1000 })).events).toHaveLength(50);

    const both = (await log.query({ kind: "tool.*", agent_id: "even", limit: 1000 })).events;
    expect(both.every((e) => e.agent_id === "even" && String(e.kind).startsWith("tool."))).toBe(true);
    expect(both).toHaveLength(10);

    const since = await log.query({ since_seq: 30, limit: 5 });
    expect(since.events.map((e) => e.seq)).toEqual([30, 31, 32, 33, 34]);
    expect(since.next_seq).toBe(35);

    expect(await log.query({ since_seq: 51 })).toEqual({ events: [], next_seq: 51 });
    expect(await log.query({ since_seq: 0, limit: 1 })).toMatchObject({ next_seq: 2 });
    expect(await log.query({ kind: "nothing" })).toEqual({ events: [], next_seq: 51 });
    await log.close();
  });

  test("limit defaults to 100 and is clamped to 1000", async () => {
    const log = await AuditLog.open(dir(), { durability: "none" });
    await fill(log, 1200);
    const d = await log.query({});
    expect(d.events).toHaveLength(100);
    expect(d.next_seq).toBe(101);
    const big = await log.query({ limit: 5000 });
    expect(big.events).toHaveLength(1000);
    expect(big.next_seq).toBe(1001);
    await log.close();
  });

  test("pagination with next_seq across segments returns every match exactly once", async () => {
    const log = await AuditLog.open(dir(), { segmentRecords: 10 });
    await fill(log, 137, (i) => ({ kind: i % 3 ? "tool.call" : "other", agent_id: "a" }));
    const seen: number[] = [];
    let since = 0;
    for (let pages = 0; pages < 100; pages++) {
      const r = await log.query({ kind: "tool.*", since_seq: since, limit: 7 });
      seen.push(...r.events.map((e) => e.seq));
      if (r.events.length === 0) break;
      since = r.next_seq;
    }
    const want = Array.from({ length: 137 }, (_, i) => i)
      .filter((i) => i % 3)
      .map((i) => i + 1);
    expect(seen).toEqual(want);
    expect((await log.query({ since_seq: since })).next_seq).toBe(138);
    await log.close();
  });

  test("bad queries and bad events reject with -32602; append never throws synchronously", async () => {
    const log = await AuditLog.open(dir());
    for (const q of [{ limit: 0 }, { limit: 1.5 }, { since_seq: -1 }, { agent_id: 5 }, { kind: {} }]) {
      await expect(log.query(q as never)).rejects.toMatchObject({ code: -32602 });
    }
    let p: Promise<unknown> | undefined;
    expect(() => {
      p = log.append({ kind: "" });
    }).not.toThrow();
    await expect(p!).rejects.toBeInstanceOf(KernelError);
    await expect(log.append({ kind: "" })).rejects.toMatchObject({ code: -32602 });
    await expect(log.append(null as never)).rejects.toMatchObject({ code: -32602 });
    await expect(log.append({ kind: 7 } as never)).rejects.toMatchObject({ code: -32602 });
    expect(log.head().seq).toBe(0);
    await log.close();
  });

  test("values are made JSON: undefined dropped, Errors, cycles, bigint, dates, maps, throwing getters", async () => {
    const log = await AuditLog.open(dir());
    const cyc: Record<string, unknown> = { name: "c" };
    cyc.self = cyc;
    const shared = { v: 1 };
    const evil = {
      get boom() {
        throw new Error("getter");
      },
    };
    const ev = {
      kind: "x",
      gone: undefined,
      fn: () => 1,
      arr: [1, undefined, NaN, Infinity],
      err: new TypeError("bad thing"),
      cyc,
      twice: [shared, shared],
      big: 12345678901234567890n,
      when: new Date(0),
      map: new Map([["k", 1]]),
      set: new Set([1, 2]),
      bytes: new Uint8Array([1, 2, 3]),
      evil,
    };
    await log.append(ev);
    ev.arr.push(5); // snapshot taken at append time
    const [e] = (await log.query({})).events;
    expect("gone" in e!).toBe(false);
    expect("fn" in e!).toBe(false);
    expect(e!.arr).toEqual([1, null, null, null]);
    expect(e!.err).toEqual({ message: "bad thing", name: "TypeError" });
    expect(e!.cyc).toEqual({ name: "c", self: "[circular]" });
    expect(e!.twice).toEqual([{ v: 1 }, { v: 1 }]);
    expect(e!.big).toBe("12345678901234567890");
    expect(e!.when).toBe("1970-01-01T00:00:00.000Z");
    expect(e!.map).toEqual({ k: 1 });
    expect(e!.set).toEqual([1, 2]);
    expect(e!.bytes).toEqual({ type: "bytes", length: 3, base64: "AQID" });
    expect(e!.evil).toEqual({ boom: "[unserialisable: getter]" });
    expect((await log.verify()).ok).toBe(true);
    await log.close();
  });

  test("long strings are cut with a note", async () => {
    const log = await AuditLog.open(dir(), { maxStringLength: 100 });
    await log.append({ kind: "x", out: "a".repeat(250) });
    const [e] = (await log.query({})).events;
    expect(e!.out).toBe("a".repeat(100) + "…[150 more bytes cut]");
    await log.close();
  });
});

describe("group commit and ordering", () => {
  test("concurrent appends: seq follows call order, all resolve, one sync per group", async () => {
    const fs = require("node:fs");
    const files = new Map<number, string>(); // fd → file name
    let syncs = 0; // fdatasync + fsync, any file
    let writes = 0; // to segments
    let headWrites = 0; // to HEAD
    const io: Partial<AuditIO> = {
      open: (p, flags) =>
        new Promise((res, rej) =>
          fs.open(p, flags, 0o640, (e: Error | null, fd: number) =>
            e ? rej(e) : (files.set(fd, p.split("/").at(-1)!), res(fd)),
          ),
        ),
      fdatasync: (fd) =>
        new Promise((res, rej) => fs.fdatasync(fd, (e: Error | null) => (syncs++, e ? rej(e) : res()))),
      fsync: (fd) => new Promise((res, rej) => fs.fsync(fd, (e: Error | null) => (syncs++, e ? rej(e) : res()))),
      write: (fd, buf, off, len, pos) =>
        new Promise((res, rej) =>
          fs.write(fd, buf, off, len, pos, (e: Error | null, n: number) => {
            if (files.get(fd)?.endsWith(".jsonl")) writes++;
            if (files.get(fd) === "HEAD") headWrites++;
            e ? rej(e) : res(n);
          }),
        ),
    };
    const log = await AuditLog.open(dir(), { io });
    syncs = headWrites = 0; // creating the log's directory and HEAD
    const order: number[] = [];
    const ps = Array.from({ length: 500 }, (_, i) => log.append({ kind: "c", i }).then((r) => (order.push(r.seq), r)));
    const rs = await Promise.all(ps);
    expect(rs.map((r) => r.seq)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    const evs = (await log.query({ limit: 1000 })).events;
    expect(evs.map((e) => e.i)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    // all 500 were sealed in the same tick: one write, one fdatasync (the
    // segment's new directory entry is one more fsync); HEAD is rewritten
    // once, unsynced
    expect(writes).toBe(1);
    expect(syncs).toBe(2);
    expect(headWrites).toBe(1);
    expect((await log.verify()).ok).toBe(true);
    // a second group: one write, one sync, one HEAD rewrite, nothing else
    syncs = writes = headWrites = 0;
    await Promise.all(Array.from({ length: 10 }, (_, i) => log.append({ kind: "d", i })));
    // HEAD is rewritten after the callers are answered: it never delays them
    while (log.memoryState().flushing) await Bun.sleep(1);
    expect({ writes, syncs, headWrites }).toEqual({ writes: 1, syncs: 1, headWrites: 1 });
    await log.close();
  });

  test("appends arriving during a sync form the next group, in order", async () => {
    const log = await AuditLog.open(dir());
    const seqs: number[] = [];
    const waves = [];
    for (let w = 0; w < 5; w++) {
      waves.push(...Array.from({ length: 20 }, (_, i) => log.append({ kind: "w", w, i }).then((r) => r.seq)));
      await new Promise((r) => setImmediate(r));
    }
    seqs.push(...(await Promise.all(waves)));
    expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    const evs = (await log.query({ limit: 1000 })).events;
    expect(evs.map((e) => [e.w, e.i])).toEqual(Array.from({ length: 100 }, (_, k) => [Math.floor(k / 20), k % 20]));
    await log.close();
  });

  test("appends queued before close are flushed; appends after close reject", async () => {
    const d = dir();
    const log = await AuditLog.open(d);
    const ps = Array.from({ length: 10 }, (_, i) => log.append({ kind: "k", i }));
    await log.close();
    expect((await Promise.all(ps)).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await expect(log.append({ kind: "late" })).rejects.toMatchObject({ code: -32603 });
    const again = await AuditLog.open(d);
    expect(again.head().seq).toBe(10);
    await again.close();
  });

  test("a failing disk rejects with -32603, leaves no gap, and the chain continues", async () => {
    const fs = require("node:fs");
    let failWrites = 0;
    let partial = false;
    const io: Partial<AuditIO> = {
      write: (fd, buf, off, len, pos) =>
        new Promise((res, rej) => {
          if (failWrites > 0) {
            failWrites--;
            if (partial) {
              // half the batch reaches the file, then the disk errors
              fs.writeSync(fd, buf, off, Math.floor(len / 2), pos);
            }
            const e = Object.assign(new Error("EIO: i/o error, write"), { code: "EIO" });
            return rej(e);
          }
          fs.write(fd, buf, off, len, pos, (e: Error | null, n: number) => (e ? rej(e) : res(n)));
        }),
    };
    const d = dir();
    const log = await AuditLog.open(d, { io, segmentRecords: 4 });
    await fill(log, 3);
    failWrites = 1;
    partial = true;
    const bad = await Promise.allSettled([log.append({ kind: "lost", n: 1 }), log.append({ kind: "lost", n: 2 })]);
    for (const r of bad) {
      expect(r.status).toBe("rejected");
      const err = (r as PromiseRejectedResult).reason;
      expect(err).toBeInstanceOf(KernelError);
      expect(err.code).toBe(-32603);
      expect(err.data.errno).toBe("EIO");
    }
    expect(log.head().seq).toBe(3);
    const ok = await fill(log, 6);
    expect(ok.map((r) => r.seq)).toEqual([4, 5, 6, 7, 8, 9]);
    const v = await log.verify();
    expect(v).toMatchObject({ ok: true, events: 9 });
    const kinds = (await log.query({})).events.map((e) => e.kind);
    expect(kinds).not.toContain("lost");
    await log.close();
    // and from disk, after a restart
    const again = await AuditLog.open(d, { segmentRecords: 4 });
    expect(again.head().seq).toBe(9);
    expect((await again.verify()).ok).toBe(true);
    await again.close();
  });

  test("a failure while creating a new segment is repaired too", async () => {
    const fs = require("node:fs");
    let failOpen = false;
    const io: Partial<AuditIO> = {
      open: (p, flags) =>
        new Promise((res, rej) => {
          if (failOpen && p.endsWith(".jsonl"))
            return rej(Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" }));
          fs.open(p, flags, 0o640, (e: Error | null, fd: number) => (e ? rej(e) : res(fd)));
        }),
    };
    const d = dir();
    const log = await AuditLog.open(d, { io, segmentRecords: 2 });
    await fill(log, 2);
    failOpen = true;
    await expect(log.append({ kind: "x" })).rejects.toMatchObject({ code: -32603, data: { errno: "ENOSPC" } });
    failOpen = false;
    expect((await log.append({ kind: "y" })).seq).toBe(3);
    expect((await log.verify()).ok).toBe(true);
    expect(
      readdirSync(d)
        .filter((n) => n.endsWith(".jsonl"))
        .sort(),
    ).toEqual(["00000000000000000001.jsonl", "00000000000000000003.jsonl"]);
    await log.close();
  });
});
