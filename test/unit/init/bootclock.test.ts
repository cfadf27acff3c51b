// The boot report's first steps (init/bootclock.ts): stage0's clocks, passed
// in AAOS_STAGE0_CLOCK, lined up with Bun's time origin and the marks the
// bundle's banner and kernel/main.ts leave.
import { afterEach, expect, test } from "bun:test";
import { bootClock } from "../../../init/bootclock.ts";

afterEach(() => {
  globalThis.__aaosEval0 = undefined;
  globalThis.__aaosMain = undefined;
});

const ns = (ms: number) => BigInt(Math.round(ms * 1e6)).toString();

test("stage0's clocks and the two marks give linux, exec, runtime, modules and to-main", () => {
  const main = (globalThis.__aaosMain = performance.now());
  const eval0 = (globalThis.__aaosEval0 = main - 100);
  const env: Record<string, string | undefined> = {
    AAOS_STAGE0_CLOCK: `${ns(2400)},${ns(performance.timeOrigin - 300)}`,
  };
  const c = bootClock(env);
  expect(c.steps).toMatchObject({
    linux: 2400,
    exec: 300,
    runtime: Math.round(eval0),
    modules: 100,
    "to-main": Math.round(300 + main),
  });
  expect(c.steps.main).toBeGreaterThanOrEqual(0);
  // the agents' tools never see it
  expect(env.AAOS_STAGE0_CLOCK).toBeUndefined();
  // CLOCK_BOOTTIME at a point of performance.now(): Linux's time + the exec + Bun's own
  expect(Math.round(c.boottimeAt(1000))).toBe(2400 + 300 + 1000);
});

test("without stage0 (host mode, bun run) only what was marked is reported", () => {
  const c = bootClock({});
  expect(c.steps).toEqual({});
  expect(c.boottimeAt(5)).toBeNaN();
  globalThis.__aaosEval0 = 10;
  globalThis.__aaosMain = 25;
  expect(bootClock({ AAOS_STAGE0_CLOCK: "garbage" }).steps).toMatchObject({ modules: 15 });
});
