// The segment reader (readBlocks/readLines) and the byte-level hash check
// verify() uses (lineHashMatchesIn): same answers as the string versions.
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AuditLog } from "../../../kernel/audit/index.ts";
import {
  canonicalJSON,
  lineHashMatches,
  lineHashMatchesIn,
  recordHash,
  sha256hex,
} from "../../../kernel/audit/canonical.ts";
import { nodeIO, readBlocks, readLines, type AuditIO } from "../../../kernel/audit/segments.ts";
import { tempDirsPerTest } from "./temp-dirs.ts";

const dir = tempDirsPerTest();

function file(content: string | Buffer): string {
  const d = dir();
  mkdirSync(d, { recursive: true });
  const p = join(d, "x.jsonl");
  writeFileSync(p, content);
  return p;
}

async function collect(path: string, io: AuditIO = nodeIO): Promise<string[]> {
  const out: string[] = [];
  for await (const l of readLines(path, io)) out.push(l);
  return out;
}

/** a line as the log writes it */
function line(rec: Record<string, unknown>): string {
  const canon = canonicalJSON(rec);
  return canon.slice(0, -1) + ',"hash":"' + sha256hex(canon) + '"}';
}

describe("readBlocks / readLines", () => {
  test("lines of every length around the 64 KiB chunk, a trailing partial line dropped", async () => {
    const lens = [0, 1, 65535, 65536, 65537, 3, 200_000, 10, 131_072, 5];
    const want = lens.map((n, i) => String.fromCharCode(97 + i).repeat(n));
    const p = file(want.join("\n") + "\npartial");
    expect(await collect(p)).toEqual(want);
  });

  test("short reads (1 to 7 bytes at a time) give the same lines", async () => {
    const want = ['{"a":1}', "é€𝄞 multi-byte", "", "x".repeat(70_000), "end"];
    const p = file(want.join("\n") + "\n");
    let k = 0;
    const io: AuditIO = {
      ...nodeIO,
      read: (fd, buf, off, len, pos) => nodeIO.read(fd, buf, off, Math.min(len, 1 + (k++ % 7)), pos),
    };
    expect(await collect(p, io)).toEqual(want);
  });

  test("every block is whole lines; the buffer shrinks back after a long line", async () => {
    const want = ["x".repeat(300_000), ...Array.from({ length: 100_000 }, (_, i) => `line ${i}`)];
    const p = file(want.join("\n") + "\n");
    const sizes: number[] = [];
    let text = "";
    for await (const b of readBlocks(p)) {
      expect(b[b.length - 1]).toBe(10);
      sizes.push(b.buffer.byteLength);
      text += b.toString("utf8");
    }
    expect(text).toBe(want.join("\n") + "\n");
    expect(Math.max(...sizes)).toBe(512 * 1024); // grown for the long line
    expect(sizes.at(-1)!).toBeLessThanOrEqual(64 * 1024); // and back to one chunk
  });

  test("a failed read is thrown; stopping early closes the file only after the read in flight", async () => {
    const p = file(Array.from({ length: 20_000 }, (_, i) => `line ${i}`).join("\n") + "\n");
    let reads = 0;
    const failing: AuditIO = {
      ...nodeIO,
      read: (...a) => (++reads === 3 ? Promise.reject(new Error("EIO")) : nodeIO.read(...a)),
    };
    await expect(collect(p, failing)).rejects.toThrow("EIO");
    const events: string[] = [];
    const slow: AuditIO = {
      ...nodeIO,
      read: async (...a) => {
        const n = await nodeIO.read(...a);
        await Bun.sleep(5);
        events.push("read");
        return n;
      },
      close: async (fd) => {
        events.push("close");
        return nodeIO.close(fd);
      },
    };
    for await (const b of readBlocks(p, slow)) {
      expect(b.length).toBeGreaterThan(0);
      break;
    }
    expect(events).toEqual(["read", "read", "close"]);
  });

  test("a missing file has no lines", async () => {
    expect(await collect(join(dir(), "none.jsonl"))).toEqual([]);
  });
});

/** lineHashMatchesIn on buf[startByte, endByte), with the text and character offsets decoded from buf */
function matchesIn(buf: Buffer, startByte: number, endByte: number, hash: string): boolean {
  const text = buf.toString("utf8");
  const c = buf.toString("utf8", 0, startByte).length;
  const cn = c + buf.toString("utf8", startByte, endByte).length;
  return lineHashMatchesIn(text, c, cn, buf, startByte, endByte, hash);
}

describe("lineHashMatchesIn", () => {
  const recs = [
    { seq: 1, ts: "t", kind: "k", prev: "0".repeat(64) },
    { seq: 2, ts: "t", kind: "k", text: 'é€𝄞 \u2028 "quoted" \\', n: [1, 2.5, null] },
    { seq: 3, ts: "t", kind: "k", hash_like: ',"hash":"' + "a".repeat(64) + '"}' },
  ];

  test("agrees with lineHashMatches, at any offset in a buffer, and leaves the buffer as it was", () => {
    for (const r of recs) {
      const l = line(r);
      const hash = JSON.parse(l).hash as string;
      const buf = Buffer.from("jünk\n" + l + "\nmöre");
      const copy = Buffer.from(buf);
      const start = 6;
      const end = start + Buffer.byteLength(l);
      expect(lineHashMatches(l, hash)).toBe(true);
      expect(matchesIn(buf, start, end, hash)).toBe(true);
      expect(buf.equals(copy)).toBe(true);
    }
  });

  test("refuses what lineHashMatches refuses", () => {
    const l = line(recs[1]!);
    const hash = JSON.parse(l).hash as string;
    const other = "f".repeat(64);
    const cases: [string, string][] = [
      [l, other], // the hash asked for is not the line's
      [l.replace("2.5", "2.6"), hash], // content edited
      [l.replace(hash, hash.toUpperCase()), hash.toUpperCase()], // upper-case hex
      [l.replace(',"hash":"', ', "hash":"'), hash], // re-formatted
      [l.slice(0, -1) + " }", hash],
      ['{"hash":"' + hash + '"}', hash],
      ["", hash],
    ];
    for (const [s, h] of cases) {
      const buf = Buffer.from(s);
      expect(matchesIn(buf, 0, buf.length, h)).toBe(lineHashMatches(s, h));
      expect(matchesIn(buf, 0, buf.length, h)).toBe(false);
    }
  });

  test("invalid UTF-8 in the line never matches", () => {
    const l = line({ seq: 1, ts: "t", kind: "k", s: "abc" });
    const hash = JSON.parse(l).hash as string;
    const buf = Buffer.from(l);
    buf[buf.indexOf("abc")] = 0xff;
    expect(matchesIn(buf, 0, buf.length, hash)).toBe(false);
    expect(lineHashMatches(buf.toString("utf8"), hash)).toBe(false);
  });
});

describe("verify over blocks", () => {
  // multi-byte text shifts byte and character offsets apart inside a block; long
  // records cross readBlocks' 32 KiB buffers (verify's, 64 KiB: the tests further down)
  const texts = ["plain", "é€𝄞 \u2028", "x".repeat(40_000), "ü".repeat(20_000) + "𝄞", "end"];

  async function filled(d: string): Promise<AuditLog> {
    const log = await AuditLog.open(d, { durability: "none", registerEnvSecrets: false, segmentRecords: 150 });
    for (let i = 0; i < 400; i++)
      await log.append({ kind: "test.event", agent_id: "a", i, text: texts[i % texts.length] });
    return log;
  }

  test("a log of mixed ASCII, multi-byte and long records verifies", async () => {
    const log = await filled(dir());
    const v = await log.verify();
    expect(v.ok).toBe(true);
    expect(v.events).toBe(400);
    expect(v.head).toBe(log.head().hash);
    await log.close();
  });

  test("a line re-serialised with its members in another order still verifies (canonical form)", async () => {
    const d = dir();
    const log = await filled(d);
    const seg = join(
      d,
      readdirSync(d)
        .filter((n) => n.endsWith(".jsonl"))
        .sort()[0]!,
    );
    const lines = readFileSync(seg, "utf8").split("\n");
    const { hash, ...rest } = JSON.parse(lines[42]!);
    lines[42] = JSON.stringify({ hash, ...rest });
    writeFileSync(seg, lines.join("\n"));
    const v = await log.verify();
    expect(v.ok).toBe(true);
    expect(v.events).toBe(400);
    await log.close();
  });

  test("an invalid UTF-8 byte in a record is found at its seq", async () => {
    const d = dir();
    const log = await filled(d);
    const seg = join(
      d,
      readdirSync(d)
        .filter((n) => n.endsWith(".jsonl"))
        .sort()[0]!,
    );
    const bytes = readFileSync(seg);
    bytes[bytes.indexOf('"text":"plain"', bytes.indexOf('"i":100,')) + 9] = 0xff; // p of "plain"
    writeFileSync(seg, bytes);
    const v = await log.verify();
    expect(v.broken).toEqual({ seq: 101, reason: "hash does not match the record's content" });
    await log.close();
  });

  test("one changed character after multi-byte text is found at its seq", async () => {
    const d = dir();
    const log = await filled(d);
    const seg = join(
      d,
      readdirSync(d)
        .filter((n) => n.endsWith(".jsonl"))
        .sort()[1]!,
    );
    const lines = readFileSync(seg, "utf8").split("\n");
    const k = lines.findIndex((l) => l.includes('"i":204,'));
    lines[k] = lines[k]!.replace('"text":"end"', '"text":"End"');
    writeFileSync(seg, lines.join("\n"));
    const v = await log.verify();
    expect(v.ok).toBe(false);
    expect(v.broken).toEqual({ seq: 205, reason: "hash does not match the record's content" });
    await log.close();
  });
});

describe("verify's reading and its shortcut for lines as the log writes them", () => {
  // verify parses and hashes `P}` of a line `P,"hash":"H"}` in place; any other
  // line, or one that fails so, is checked as written: the answers must be those
  async function logOf(d: string, n: number, opts: Record<string, unknown> = {}): Promise<string> {
    const log = await AuditLog.open(d, { durability: "none", registerEnvSecrets: false, ...opts });
    for (let i = 0; i < n; i++) await log.append({ kind: "test.event", agent_id: "a", i });
    await log.close();
    return join(
      d,
      readdirSync(d)
        .filter((f) => f.endsWith(".jsonl"))
        .sort()[0]!,
    );
  }

  /** the segment's lines with line k replaced */
  function replaceLine(seg: string, k: number, text: string): void {
    const lines = readFileSync(seg, "utf8").split("\n");
    lines[k] = text;
    writeFileSync(seg, lines.join("\n"));
  }

  async function brokenAt(d: string): Promise<{ seq: number; reason: string } | undefined> {
    const log = await AuditLog.open(d, { durability: "none", registerEnvSecrets: false });
    const v = await log.verify();
    await log.close();
    return v.broken;
  }

  test("a line whose part before the hash member is `{` (so `{}` hashes to it) is not valid JSON", async () => {
    const d = dir();
    const seg = await logOf(d, 3);
    replaceLine(seg, 1, '{,"hash":"' + sha256hex("{}") + '"}');
    expect(await brokenAt(d)).toEqual({ seq: 2, reason: "record is not valid JSON" });
  });

  test("a hash member in upper-case hex does not match; a prev or seq changed in place is found", async () => {
    const d = dir();
    const seg = await logOf(d, 3);
    const original = readFileSync(seg, "utf8");
    const l2 = original.split("\n")[1]!;
    replaceLine(seg, 1, l2.slice(0, -66) + l2.slice(-66, -2).toUpperCase() + '"}');
    expect(await brokenAt(d)).toEqual({ seq: 2, reason: "hash does not match the record's content" });
    writeFileSync(seg, original);
    replaceLine(seg, 1, l2.replace('"seq":2,', '"seq":7,'));
    expect(await brokenAt(d)).toEqual({ seq: 2, reason: "found seq 7 where 2 was expected" });
    writeFileSync(seg, original);
    replaceLine(seg, 1, l2.replace(/"prev":"[0-9a-f]{64}"/, '"prev":"' + "b".repeat(64) + '"'));
    expect(await brokenAt(d)).toEqual({ seq: 2, reason: "prev does not match the hash of the previous record" });
    writeFileSync(seg, original);
    expect(await brokenAt(d)).toBeUndefined();
  });

  test("a hash member of multi-byte text (its ',' then not 75 characters from the end) does not match", async () => {
    const d = dir();
    const seg = await logOf(d, 3);
    const l2 = readFileSync(seg, "utf8").split("\n")[1]!;
    replaceLine(seg, 1, l2.slice(0, -66) + "é".repeat(32) + '"}'); // 64 bytes, 32 characters
    expect(await brokenAt(d)).toEqual({ seq: 2, reason: "hash does not match the record's content" });
  });

  test("a line with a second hash member inside: the last one counts, as in JSON.parse of the line", async () => {
    const d = dir();
    const seg = await logOf(d, 3);
    rmSync(join(d, "HEAD")); // the chain is rewritten below: only the anchor could tell
    const recs = readFileSync(seg, "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    let prev = recs[0].prev as string;
    const lines = recs.map((r, i) => {
      const { hash: _h, ...rest } = r;
      const content = canonicalJSON({ ...rest, prev });
      // record 2 carries a decoy hash member before the real one
      const p = i === 1 ? content.slice(0, -1) + ',"hash":"' + "c".repeat(64) + '"' : content.slice(0, -1);
      const h = sha256hex(p + "}");
      prev = h;
      return p + ',"hash":"' + h + '"}';
    });
    writeFileSync(seg, lines.join("\n") + "\n");
    const log = await AuditLog.open(d, { durability: "none", registerEnvSecrets: false });
    const v = await log.verify();
    expect(v).toMatchObject({ ok: true, events: 4 }); // and the audit.unanchored record
    expect((await log.query({ since_seq: 2, limit: 1 })).events[0]!.hash).toBe(lines[1]!.slice(-66, -2));
    await log.close();
  });

  test("records longer than verify's buffers, multi-byte among them, verify; one changed byte is found", async () => {
    const d = dir();
    const long = ["x".repeat(70_000), "é".repeat(90_000), "y".repeat(300_000) + "𝄞", "short"];
    let log = await AuditLog.open(d, {
      durability: "none",
      registerEnvSecrets: false,
      maxStringLength: 1_000_000,
      segmentRecords: 7,
    });
    for (let i = 0; i < 20; i++) await log.append({ kind: "test.event", i, text: long[i % long.length] });
    const v = await log.verify();
    expect(v).toMatchObject({ ok: true, events: 20 });
    await log.close();
    const seg = join(
      d,
      readdirSync(d)
        .filter((f) => f.endsWith(".jsonl"))
        .sort()[1]!,
    );
    const bytes = readFileSync(seg);
    const at = bytes.indexOf('"i":10,');
    const y = bytes.indexOf("y", at);
    bytes[y] = 0x7a; // a 'y' of record 11's long text
    writeFileSync(seg, bytes);
    log = await AuditLog.open(d, { durability: "none", registerEnvSecrets: false, maxStringLength: 1_000_000 });
    expect((await log.verify()).broken).toEqual({ seq: 11, reason: "hash does not match the record's content" });
    await log.close();
  });

  test("short reads give the same answer; a failed read fails verify", async () => {
    const d = dir();
    await logOf(d, 500);
    let k = 0;
    const short: Partial<AuditIO> = {
      read: (fd, buf, off, len, pos) => nodeIO.read(fd, buf, off, Math.min(len, 1 + (k++ % 300)), pos),
    };
    let log = await AuditLog.open(d, { durability: "none", registerEnvSecrets: false, io: short });
    expect(await log.verify()).toMatchObject({ ok: true, events: 500 });
    await log.close();
    let reads = 0;
    let failNow = false;
    const failing: Partial<AuditIO> = {
      read: (...a) => (failNow && ++reads === 3 ? Promise.reject(new Error("EIO")) : nodeIO.read(...a)),
    };
    log = await AuditLog.open(d, { durability: "none", registerEnvSecrets: false, io: failing });
    failNow = true;
    await expect(log.verify()).rejects.toThrow("cannot read the audit log");
    failNow = false;
    expect(await log.verify()).toMatchObject({ ok: true, events: 500 });
    await log.close();
  });
});

describe("verify against a line-by-line reference", () => {
  /** the first record that does not check out, read line by line as strings (the check verify makes) */
  function reference(lines: string[]): { seq: number; reason: string } | undefined {
    let prev = "0".repeat(64);
    for (let i = 0; i < lines.length; i++) {
      const seq = i + 1;
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(lines[i]!);
      } catch {
        return { seq, reason: "record is not valid JSON" };
      }
      if (!rec || typeof rec !== "object" || Array.isArray(rec)) return { seq, reason: "record is not a JSON object" };
      if (rec.seq !== seq) return { seq, reason: `found seq ${JSON.stringify(rec.seq)} where ${seq} was expected` };
      if (rec.prev !== prev) return { seq, reason: "prev does not match the hash of the previous record" };
      const h = rec.hash;
      if (typeof h !== "string" || (!lineHashMatches(lines[i]!, h) && recordHash(rec) !== h))
        return { seq, reason: "hash does not match the record's content" };
      prev = h;
    }
    return undefined;
  }

  test("random edits of one segment, most near the hash member: verify's answer is the reference's", async () => {
    const d = dir();
    const log = await AuditLog.open(d, { durability: "none", registerEnvSecrets: false, segmentRecords: 40 });
    for (let i = 0; i < 100; i++) await log.append({ kind: "test.event", i, text: i % 3 ? "plain" : "é€𝄞" });
    await log.close();
    const seg = join(d, "00000000000000000001.jsonl");
    const original = readFileSync(seg);
    const pieces = [",", "}", '"', "{", "a", "0", " ", "\\", "é", "\n", "\xff"].map((p) =>
      p === "\xff" ? Buffer.from([0xff]) : Buffer.from(p),
    );
    let seed = 7; // mulberry32: the same edits every run
    const rand = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    for (let round = 0; round < 300; round++) {
      const ends: number[] = [];
      for (let i = original.indexOf(10); i >= 0; i = original.indexOf(10, i + 1)) ends.push(i);
      const k = rand(ends.length - 1); // never the segment's last line
      const start = k ? ends[k - 1]! + 1 : 0;
      const end = ends[k]!;
      const at = rand(2) ? end - 1 - rand(80) : start + rand(end - start);
      const piece = pieces[rand(pieces.length)]!;
      const how = rand(4); // replace a byte, insert, delete, overwrite (the line's length kept)
      const edited = Buffer.concat([
        original.subarray(0, at),
        how === 2 ? Buffer.alloc(0) : piece,
        original.subarray(how === 1 ? at : how === 3 ? at + piece.length : at + 1),
      ]);
      writeFileSync(seg, edited);
      const lines = Buffer.concat([
        edited,
        ...[41, 81].map((f) => readFileSync(join(d, `000000000000000000${f}.jsonl`))),
      ])
        .toString("utf8")
        .split("\n")
        .slice(0, -1);
      const l = await AuditLog.open(d, { durability: "none", registerEnvSecrets: false, segmentRecords: 40 });
      const v = await l.verify();
      await l.close();
      const want = reference(lines);
      expect({ round, broken: v.broken }).toEqual({ round, broken: want });
    }
    writeFileSync(seg, original);
  });
});
