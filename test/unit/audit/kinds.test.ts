// kernel/audit/kinds.ts lists every kind the kernel writes; docs/api.md's
// audit section has one table row per kind, no more, no fewer.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AUDIT_KINDS } from "../../../kernel/audit/index.ts";

const DOC = readFileSync(join(import.meta.dir, "../../../docs/api.md"), "utf8");

test("docs/api.md has a row for every audit kind, and only for those", () => {
  const section = DOC.slice(DOC.indexOf("\n## audit\n"), DOC.indexOf("\n### audit.query\n"));
  const rows = [...section.matchAll(/^\| `([a-z_]+\.[a-z_]+)` \|/gm)].map((m) => m[1]);
  expect(rows).toEqual([...AUDIT_KINDS]);
});

test("a kind is listed once", () => {
  expect(new Set(AUDIT_KINDS).size).toBe(AUDIT_KINDS.length);
});
