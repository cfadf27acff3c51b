import { describe, expect, test } from "bun:test";
import { LineSplitter } from "../../../kernel/rpc/framing.ts";

const enc = (s: string) => new TextEncoder().encode(s);

describe("LineSplitter", () => {
  test("splits lines across chunk boundaries, strips CR", () => {
    const s = new LineSplitter(100);
    expect(s.push(enc('{"a":'))).toEqual([]);
    expect(s.push(enc('1}\r\n{"b"'))).toEqual([{ kind: "line", text: '{"a":1}' }]);
    expect(s.push(enc(":2}\n"))).toEqual([{ kind: "line", text: '{"b":2}' }]);
  });

  test("multi-byte UTF-8 split between chunks survives", () => {
    const s = new LineSplitter(100);
    const bytes = enc("héllo → 世界\n");
    const frames = [...s.push(bytes.subarray(0, 3)), ...s.push(bytes.subarray(3, 9)), ...s.push(bytes.subarray(9))];
    expect(frames).toEqual([{ kind: "line", text: "héllo → 世界" }]);
  });

  test("an oversized line is reported once with its size and memory stays at the cap", () => {
    const s = new LineSplitter(1000);
    const frames = [];
    for (let i = 0; i < 100; i++) {
      frames.push(...s.push(enc("x".repeat(500))));
      expect((s as any).held).toBeLessThanOrEqual(1000); // bytes held never pass the cap
    }
    frames.push(...s.push(enc("tail\nok\n")));
    expect(frames).toEqual([
      { kind: "oversized", bytes: 50_004 },
      { kind: "line", text: "ok" },
    ]);
  });

  test("exactly at the cap is a line, one byte over is not", () => {
    const s = new LineSplitter(10);
    expect(s.push(enc("0123456789\n"))).toEqual([{ kind: "line", text: "0123456789" }]);
    expect(s.push(enc("0123456789A\n"))).toEqual([{ kind: "oversized", bytes: 11 }]);
  });
});

describe("LineSplitter.end", () => {
  test("end of input gives the last line that had no newline, or its oversize report, or nothing", () => {
    const s = new LineSplitter(10);
    expect(s.push(enc("a\nbc"))).toEqual([{ kind: "line", text: "a" }]);
    expect(s.end()).toEqual({ kind: "line", text: "bc" });
    expect(s.end()).toBe(null);
    s.push(enc("x".repeat(25)));
    expect(s.end()).toEqual({ kind: "oversized", bytes: 25 });
    expect(new LineSplitter(10).end()).toBe(null);
  });
});
