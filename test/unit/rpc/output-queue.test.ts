import { expect, test } from "bun:test";
import { OutputQueue } from "../../../kernel/rpc/transports.ts";

test("OutputQueue: joins messages into chunks of about 64 KiB, counts bytes, takes back a partial write", () => {
  const q = new OutputQueue();
  const msg = "é".repeat(499) + "\n"; // 999 bytes, 500 chars
  for (let i = 0; i < 300; i++) q.push(msg);
  expect(q.bytes).toBe(300 * 999);
  const first = q.shift()!;
  expect(first.length).toBeGreaterThanOrEqual(64 * 1024);
  expect(first.length).toBeLessThan(2 * 64 * 1024 + 999);
  expect(q.bytes).toBe(300 * 999 - first.length);
  q.unshift(first.subarray(100));
  let out = Buffer.concat([first.subarray(0, 100)]);
  for (let c; (c = q.shift());) out = Buffer.concat([out, c]);
  expect(out.toString()).toBe(msg.repeat(300));
  expect(q.bytes).toBe(0);
  expect(q.shift()).toBe(null);
});

test("OutputQueue: a long queue drained chunk by chunk keeps its order", () => {
  const q = new OutputQueue();
  for (let i = 0; i < 20_000; i++) q.push(`${i}\n`);
  const text: string[] = [];
  for (let c; (c = q.shift());) {
    text.push(c.toString());
    q.push(""); // pushes between shifts
  }
  expect(text.join("").split("\n").slice(0, -1).map(Number)).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
});
