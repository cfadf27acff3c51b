// kernel/cut.ts: the one way long text is cut (audit records, tool results for the model).
import { expect, test } from "bun:test";
import { cut, cutMarker } from "../../../kernel/cut.ts";

test("text within the limit (in UTF-8 bytes) comes back as it is", () => {
  expect(cut("x".repeat(10), 10)).toBe("x".repeat(10));
  expect(cut("€€€", 9)).toBe("€€€");
  expect(cut("", 0)).toBe("");
});

test("longer text keeps at most limit bytes and says how many were left out", () => {
  expect(cut("a".repeat(250), 100)).toBe("a".repeat(100) + "…[150 more bytes cut]");
  expect(cutMarker(150)).toBe("…[150 more bytes cut]");
});

test("never inside a UTF-8 sequence or a surrogate pair", () => {
  expect(cut("ab€cd", 4)).toBe("ab" + cutMarker(5)); // € is 3 bytes: 2 + 3 > 4
  expect(cut("ab€cd", 5)).toBe("ab€" + cutMarker(2));
  expect(cut("ab😀cd", 5)).toBe("ab" + cutMarker(6)); // 😀 is 4 bytes, 2 UTF-16 units
  expect(cut("ab😀cd", 6)).toBe("ab😀" + cutMarker(2));
});
