// kernel/sys/logs.ts on files of its own: the tail read backwards (a line
// still being written left out, since, the bound), the follower's rate bound
// with its "dropped N lines" marker, a rotated file read again from its start.
import { afterAll, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { followLog, parseLogLine, readLogTail, type LogLine } from "../../../kernel/sys/logs.ts";

const dir = mkdtempSync(join(tmpdir(), "aaos-logs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const rec = (i: number, t = Date.now()) => JSON.stringify({ level: 30, time: t, pid: 1, msg: `m${i}` });

test("a pino record: level names and ISO times; a line that is not JSON is its msg", () => {
  expect(parseLogLine('{"level":50,"time":0,"msg":"x","k":1}')).toEqual({
    level: "error",
    time: "1970-01-01T00:00:00.000Z",
    msg: "x",
    k: 1,
  });
  expect(parseLogLine("plain words")).toEqual({ msg: "plain words" });
});

test("the tail: the newest lines oldest first, the partial last line left for the follower", () => {
  const f = join(dir, "a.log");
  const body = Array.from({ length: 5000 }, (_, i) => rec(i)).join("\n") + "\n";
  writeFileSync(f, body + '{"level":30,"ms');
  const r = readLogTail(f, { tail: 3 });
  expect(r.lines.map((l) => l.msg)).toEqual(["m4997", "m4998", "m4999"]);
  expect(r.truncated).toBe(true);
  expect(r.offset).toBe(Buffer.byteLength(body));
  const all = readLogTail(f, { tail: 10_000 });
  expect(all.lines.length).toBe(5000);
  expect(all.truncated).toBe(false);
  expect(all.lines[0]!.msg).toBe("m0");
});

test("since: the scan stops at the first older line", () => {
  const f = join(dir, "b.log");
  const now = Date.now();
  writeFileSync(f, [0, 1, 2, 3].map((i) => rec(i, now - (4 - i) * 60_000)).join("\n") + "\n");
  expect(readLogTail(f, { tail: 100, since: now - 150_000 }).lines.map((l) => l.msg)).toEqual(["m2", "m3"]);
});

test("follow: appended lines, at most N a second, the rest dropped with a marker", async () => {
  const f = join(dir, "c.log");
  writeFileSync(f, rec(0) + "\n");
  const got: LogLine[] = [];
  const ac = new AbortController();
  followLog(f, readLogTail(f, { tail: 0 }).offset, (l) => got.push(...l), {
    signal: ac.signal,
    intervalMs: 20,
    linesPerSecond: 10,
  });
  appendFileSync(f, Array.from({ length: 25 }, (_, i) => rec(i + 1)).join("\n") + "\n");
  await Bun.sleep(1300);
  ac.abort();
  expect(got.slice(0, 10).map((l) => l.msg)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
  expect(got[10]).toMatchObject({ msg: "dropped 15 lines", dropped: 15, level: "warn" });
  const n = got.length;
  appendFileSync(f, rec(99) + "\n");
  await Bun.sleep(100);
  expect(got.length).toBe(n); // aborted: nothing more
});

test("follow: a file that shrank is read again from its start", async () => {
  const f = join(dir, "d.log");
  writeFileSync(f, rec(0) + "\n" + rec(1) + "\n");
  const got: LogLine[] = [];
  const ac = new AbortController();
  followLog(f, readLogTail(f, { tail: 0 }).offset, (l) => got.push(...l), { signal: ac.signal, intervalMs: 20 });
  writeFileSync(f, rec(7) + "\n");
  for (let i = 0; i < 50 && got.length === 0; i++) await Bun.sleep(20);
  ac.abort();
  expect(got.map((l) => l.msg)).toEqual(["m7"]);
});
