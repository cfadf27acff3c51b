// canonicalJSON writes a tree whose keys already come sorted with one
// JSON.stringify (what sanitize() and the log build); every other tree goes
// key by key. Both must give the same text: the canonical form the hash covers.
import { describe, expect, test } from "bun:test";
import { canonicalJSON, sanitize } from "../../../kernel/audit/canonical.ts";

/** the canonical form written out by hand: keys sorted by UTF-16 code units at every level */
function reference(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (Array.isArray(v)) return "[" + v.map(reference).join(",") + "]";
  const o = v as Record<string, unknown>;
  return (
    "{" +
    Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => JSON.stringify(k) + ":" + reference(o[k]))
      .join(",") +
    "}"
  );
}

let seed = 7;
const rnd = (n: number) => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed % n;
};
const KEYS = ["a", "b", "Z", "10", "2", "0", "é", "\u{1F600}", "kind", "seq", "__proto__", "toJSON", "a b", "-1", "01"];
function tree(depth: number): unknown {
  switch (rnd(depth > 3 ? 4 : 7)) {
    case 0:
      return rnd(2) ? 'text \u2028 "q" \\ \n' : "ascii";
    case 1:
      return [0.1, -0, 1e21, 42, Number.MAX_SAFE_INTEGER][rnd(5)];
    case 2:
      return rnd(2) === 1;
    case 3:
      return null;
    case 4:
    case 5: {
      const o: Record<string, unknown> = rnd(2) ? {} : Object.create(null);
      for (let i = rnd(6); i > 0; i--)
        Object.defineProperty(o, KEYS[rnd(KEYS.length)]!, {
          value: tree(depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      return o;
    }
    default:
      return Array.from({ length: rnd(4) }, () => tree(depth + 1));
  }
}

describe("canonicalJSON", () => {
  test("the same text as the key-by-key form, for sorted, unsorted and integer-keyed trees", () => {
    const ctx = { secrets: new Set<string>(), maxString: 1 << 20 };
    for (let i = 0; i < 3000; i++) {
      const t = tree(0);
      expect(canonicalJSON(t)).toBe(reference(t));
      // what the log hashes: the sanitised tree, keys inserted sorted
      const s = sanitize(t, ctx);
      expect(canonicalJSON(s)).toBe(reference(s));
    }
  });

  test("integer-like keys, which objects hold first in numeric order, still come out sorted as strings", () => {
    expect(canonicalJSON({ b: 1, 10: 2, 2: 3, a: [{ 1: "x", "01": "y" }] })).toBe(
      '{"10":2,"2":3,"a":[{"01":"y","1":"x"}],"b":1}',
    );
  });

  test("values JSON.stringify would write differently take the key-by-key way", () => {
    expect(canonicalJSON({ a: undefined, b: [undefined, () => 1], c: NaN })).toBe('{"b":[null,null],"c":null}');
    expect(canonicalJSON({ d: new Date(0) })).toBe(reference({ d: new Date(0) }));
  });
});
