import { expect, test } from "bun:test";
import { jain, overspend } from "../../../bench/sched.ts";

test("randomized runs never overspend a budget (the benchmark's check, fewer runs)", async () => {
  const r = await overspend(500, 7);
  expect(r.calls).toBeGreaterThan(1000);
  expect(r.exhausted).toBeGreaterThan(0);
  expect(r.overspend).toBe(0);
});

test("the independent ledger does see overspend when a model ignores max_tokens", async () => {
  const r = await overspend(200, 7, 500);
  expect(r.overspend).toBeGreaterThan(0);
});

test("Jain's index", () => {
  expect(jain([1, 1, 1, 1])).toBe(1);
  expect(jain([1, 0, 0, 0])).toBe(0.25);
});
