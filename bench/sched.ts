// Inference scheduler benchmarks, with simulated model latencies on a
// virtual clock (deterministic, seconds of wall time for hours of traffic):
//
//  - Jain's fairness index of tokens served across equal-priority agents
//    under contention (agents differ in request size and in how many calls
//    they keep outstanding), beside a plain FIFO admission in the same run.
//  - The share of tokens a high-priority agent gets under contention, beside
//    the share the same agent gets at equal priority.
//  - Scheduling overhead per request (acquire + settle, real clock) beside a
//    direct call with no scheduler.
//  - Budget overspend over 10,000 randomized runs (random agent trees,
//    lifetime and periodic budgets, concurrency, usage, latencies), checked
//    by an independent ledger: target exactly zero.
//
// Run directly: bun bench/sched.ts
import { KernelError } from "../kernel/errors.ts";
import { Scheduler, SchedCancelled, VirtualClock, parsePeriod, type Grant } from "../kernel/sched/index.ts";

import type { Figure } from "./figure.ts";
export type { Figure };

const drain = () => new Promise<void>((r) => setImmediate(r));

function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function jain(xs: number[]): number {
  const s = xs.reduce((a, b) => a + b, 0);
  const q = xs.reduce((a, b) => a + b * b, 0);
  return q === 0 ? 1 : (s * s) / (xs.length * q);
}

/** the admission interface the simulations drive: the scheduler, or a plain FIFO */
interface Admission {
  acquire(
    agentId: string,
    input: number,
    max: number,
  ): Promise<{ maxTokens: number; settle(u: { input_tokens: number; output_tokens: number }): void }>;
}

class Fifo implements Admission {
  private inFlight = 0;
  private q: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  acquire(_a: string, _i: number, max: number) {
    return new Promise<{ maxTokens: number; settle(): void }>((resolve) => {
      const go = () => {
        this.inFlight++;
        resolve({
          maxTokens: max,
          settle: () => {
            this.inFlight--;
            this.q.shift()?.();
          },
        });
      };
      if (this.inFlight < this.limit) go();
      else this.q.push(go);
    });
  }
}

const schedAdmission = (s: Scheduler): Admission => ({
  acquire: (agentId, input, max) => s.acquire({ agentId, provider: "sim", inputTokens: input, maxTokens: max }),
});

/** simulated call latency: time to first token + per output token */
const latencyMs = (out: number) => 300 + out * 2;

async function runVirtual(clock: VirtualClock, until: number) {
  await drain();
  while (clock.now() < until && clock.runNext()) await drain();
}

interface SimAgent {
  id: string;
  priority: number;
  size: number; // tokens per call (half input, half output)
  outstanding: number;
}

async function simulate(
  agents: SimAgent[],
  mode: "sched" | "fifo",
  opts: { concurrency: number; seconds: number; warmup: number },
) {
  const clock = new VirtualClock();
  const t0 = clock.now();
  let adm: Admission;
  if (mode === "sched") {
    const s = new Scheduler({ max_concurrency: opts.concurrency, aging_ms: 30_000 }, clock);
    for (const a of agents) s.register({ id: a.id, parentId: null, priority: a.priority, weight: 1 });
    adm = schedAdmission(s);
  } else adm = new Fifo(opts.concurrency);
  const served = new Map(agents.map((a) => [a.id, 0]));
  const end = t0 + opts.seconds * 1000;
  const from = t0 + opts.warmup * 1000;
  const loop = async (a: SimAgent) => {
    while (clock.now() < end) {
      const g = await adm.acquire(a.id, a.size / 2, a.size / 2);
      const out = Math.min(g.maxTokens, a.size / 2);
      await new Promise<void>((r) => clock.setTimer(r, latencyMs(out)));
      g.settle({ input_tokens: a.size / 2, output_tokens: out });
      if (clock.now() >= from && clock.now() < end) served.set(a.id, served.get(a.id)! + a.size / 2 + out);
    }
  };
  for (const a of agents) for (let i = 0; i < a.outstanding; i++) void loop(a);
  await runVirtual(clock, end + 60_000);
  return served;
}

async function fairness(): Promise<Figure[]> {
  // eight equal-priority agents; sizes 200..4000 tokens a call, 1..8 calls outstanding each
  const agents: SimAgent[] = [
    { size: 200, outstanding: 8 },
    { size: 400, outstanding: 1 },
    { size: 800, outstanding: 4 },
    { size: 1200, outstanding: 2 },
    { size: 1600, outstanding: 6 },
    { size: 2000, outstanding: 3 },
    { size: 3000, outstanding: 8 },
    { size: 4000, outstanding: 2 },
  ].map((a, i) => ({ id: `eq${i}`, priority: 50, ...a }));
  const opts = { concurrency: 4, seconds: 3600, warmup: 60 };
  const vtc = await simulate(agents, "sched", opts);
  const fifo = await simulate(agents, "fifo", opts);
  const jv = jain([...vtc.values()]);
  const jf = jain([...fifo.values()]);
  return [
    {
      name: "Jain's fairness index, 8 equal-priority agents under contention (1 h simulated)",
      value: jv,
      unit: "",
      baseline: { name: "plain FIFO", value: jf },
    },
  ];
}

async function priorityShare(): Promise<Figure[]> {
  const mk = (hiPriority: number): SimAgent[] => [
    { id: "hi", priority: hiPriority, size: 1000, outstanding: 6 },
    ...Array.from({ length: 4 }, (_, i) => ({ id: `lo${i}`, priority: 50, size: 1000, outstanding: 4 })),
  ];
  const opts = { concurrency: 4, seconds: 600, warmup: 30 };
  const share = (m: Map<string, number>) => m.get("hi")! / [...m.values()].reduce((a, b) => a + b, 0);
  const hi = share(await simulate(mk(90), "sched", opts));
  const eq = share(await simulate(mk(50), "sched", opts));
  return [
    {
      name: "token share of one priority-90 agent among 5 backlogged agents (4 at priority 50, 4 slots)",
      value: hi,
      unit: "",
      baseline: { name: "the same agent at priority 50", value: eq },
    },
  ];
}

async function overhead(): Promise<Figure[]> {
  const N = 20_000;
  // uncontended: one agent with a budget, one call at a time
  const s = new Scheduler({ max_concurrency: 8 });
  s.register({ id: "root", parentId: null, priority: 50, weight: 1, budget: { max_tokens: 1e12, period: "1h" } });
  s.register({ id: "a", parentId: "root", priority: 50, weight: 1, budget: { max_tokens: 1e11, period: "1h" } });
  const direct = async (_x: number) => ({ maxTokens: 100, settle(_u: unknown) {} });
  for (let i = 0; i < 2000; i++)
    (await s.acquire({ agentId: "a", provider: "p", inputTokens: 100, maxTokens: 100 })).settle({
      input_tokens: 50,
      output_tokens: 50,
    });
  let t = performance.now();
  for (let i = 0; i < N; i++)
    (await s.acquire({ agentId: "a", provider: "p", inputTokens: 100, maxTokens: 100 })).settle({
      input_tokens: 50,
      output_tokens: 50,
    });
  const sched1 = ((performance.now() - t) * 1000) / N;
  t = performance.now();
  for (let i = 0; i < N; i++) (await direct(i)).settle({ input_tokens: 50, output_tokens: 50 });
  const direct1 = ((performance.now() - t) * 1000) / N;

  // contended: 100 agents, 64 callers, 8 slots, rpm/tpm limits on
  const s2 = new Scheduler({ max_concurrency: 8, providers: { p: { rpm: 1e9, tpm: 1e12 } } });
  for (let i = 0; i < 100; i++)
    s2.register({
      id: `c${i}`,
      parentId: null,
      priority: 40 + (i % 3) * 10,
      weight: 1 + (i % 4),
      budget: { max_tokens: 1e12, period: "lifetime" },
    });
  let done = 0;
  const M = 20_000;
  t = performance.now();
  await new Promise<void>((resolve) => {
    const worker = async (w: number) => {
      while (done < M) {
        const g = await s2.acquire({
          agentId: `c${(w * 7 + done) % 100}`,
          provider: "p",
          inputTokens: 100,
          maxTokens: 100,
        });
        await Promise.resolve();
        g.settle({ input_tokens: 60, output_tokens: 40 });
        if (++done === M) resolve();
      }
    };
    for (let w = 0; w < 64; w++) void worker(w);
  });
  const sched2 = ((performance.now() - t) * 1000) / M;
  return [
    {
      name: "scheduling overhead per request, uncontended (acquire + settle, 2-level budget)",
      value: sched1,
      unit: "µs",
      baseline: { name: "direct call, no scheduler", value: direct1 },
    },
    {
      name: "scheduling overhead per request, 64 callers / 8 slots / 100 agents",
      value: sched2,
      unit: "µs",
      baseline: { name: "direct call, no scheduler", value: direct1 },
    },
  ];
}

/** 10,000 randomized runs; an independent ledger checks every budget window */
export async function overspend(
  runs = 10_000,
  seed = 42,
  overrun = 0,
): Promise<{ overspend: number; maxOverspend: number; calls: number; exhausted: number; tokens: number }> {
  const rnd = rng(seed);
  const ri = (a: number, b: number) => a + Math.floor(rnd() * (b - a + 1));
  let total = 0;
  let maxOver = 0;
  let calls = 0;
  let exhausted = 0;
  let tokens = 0;
  for (let run = 0; run < runs; run++) {
    const clock = new VirtualClock();
    const s = new Scheduler(
      { max_concurrency: ri(1, 8), aging_ms: ri(0, 1) ? 5_000 : 0, min_output_tokens: ri(1, 32) },
      clock,
    );
    const n = ri(1, 6);
    const agents: Array<{ id: string; parent: string | null; limit: number | null; period: string; regAt: number }> =
      [];
    for (let i = 0; i < n; i++) {
      const parent = agents.length === 0 || rnd() < 0.3 ? null : agents[ri(0, agents.length - 1)]!.id;
      const budgeted = rnd() < 0.8;
      const period = ["lifetime", "lifetime", "30s", "2m", "10m"][ri(0, 4)]!;
      const limit = budgeted ? ri(500, 20_000) : null;
      const id = `r${run}a${i}`;
      try {
        s.register({
          id,
          parentId: parent,
          priority: ri(0, 2) * 25,
          weight: ri(1, 3),
          budget: limit ? { max_tokens: limit, period } : undefined,
        });
        agents.push({ id, parent, limit, period, regAt: clock.now() });
      } catch (e) {
        if (!(e instanceof KernelError)) throw e; // parent could not cover: refused, fine
      }
    }
    const log: Array<{ agent: string; at: number; tokens: number }> = [];
    const loop = async (id: string, turns: number) => {
      for (let t = 0; t < turns; t++) {
        const input = ri(10, 3000);
        let g: Grant;
        try {
          g = await s.acquire({
            agentId: id,
            provider: ["a", "b"][ri(0, 1)]!,
            inputTokens: input,
            maxTokens: ri(16, 4096),
          });
        } catch (e) {
          if (e instanceof KernelError || e instanceof SchedCancelled) {
            exhausted++;
            return;
          }
          throw e;
        }
        const at = clock.now();
        // the model: input no more than estimated, output no more than max_tokens
        // (overrun > 0 makes a model that ignores max_tokens: the checker must see it)
        const u = { input_tokens: ri(Math.floor(input * 0.3), input), output_tokens: ri(0, g.maxTokens) + overrun };
        const fail = rnd() < 0.05; // a failed attempt reports what it saw, or nothing
        await new Promise<void>((r) => clock.setTimer(r, ri(50, 40_000)));
        const used = fail ? (rnd() < 0.5 ? null : { input_tokens: u.input_tokens, output_tokens: 0 }) : u;
        g.settle(used);
        calls++;
        const spent = used ? used.input_tokens + used.output_tokens : 0;
        tokens += spent;
        log.push({ agent: id, at, tokens: spent });
      }
    };
    for (const a of agents) for (let k = 0; k < ri(1, 3); k++) void loop(a.id, ri(1, 12));
    await runVirtual(clock, Infinity);
    // independent check: for every budgeted agent, for every window of its
    // period, the tokens of calls its subtree started in that window
    const ancestors = (id: string): string[] => {
      const out = [id];
      let p = agents.find((a) => a.id === id)?.parent ?? null;
      while (p) {
        out.push(p);
        p = agents.find((a) => a.id === p)?.parent ?? null;
      }
      return out;
    };
    for (const a of agents) {
      if (a.limit === null) continue;
      const periodMs = parsePeriod(a.period);
      const windows = new Map<number, number>();
      for (const c of log) {
        if (!ancestors(c.agent).includes(a.id)) continue;
        const w = periodMs ? Math.floor((c.at - a.regAt) / periodMs) : 0;
        windows.set(w, (windows.get(w) ?? 0) + c.tokens);
      }
      for (const sum of windows.values()) {
        const over = Math.max(0, sum - a.limit);
        total += over;
        maxOver = Math.max(maxOver, over);
      }
    }
  }
  return { overspend: total, maxOverspend: maxOver, calls, exhausted, tokens };
}

export async function benchSched(): Promise<Figure[]> {
  const figures: Figure[] = [];
  figures.push(...(await fairness()));
  figures.push(...(await priorityShare()));
  figures.push(...(await overhead()));
  const t = performance.now();
  const o = await overspend(10_000);
  figures.push({
    name: `budget overspend over 10,000 randomized runs (${o.calls.toLocaleString("en-US")} calls, ${o.exhausted.toLocaleString("en-US")} refused for budget, ${(performance.now() - t).toFixed(0)} ms)`,
    value: o.overspend,
    unit: "tokens",
    baseline: { name: "target", value: 0 },
  });
  return figures;
}

if (import.meta.main) {
  const { printFigures } = await import("./figure.ts");
  printFigures("inference scheduler", await benchSched());
}
