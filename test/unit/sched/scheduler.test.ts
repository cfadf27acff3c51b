import { describe, expect, test } from "bun:test";
import { KernelError } from "../../../kernel/errors.ts";
import { Scheduler, SchedCancelled, VirtualClock, parsePeriod, type Grant } from "../../../kernel/sched/index.ts";

const tick = () => new Promise<void>((r) => setImmediate(r));

function settled<T>(p: Promise<T>) {
  const s: { done: boolean; value?: T; error?: unknown } = { done: false };
  p.then(
    (v) => {
      s.done = true;
      s.value = v;
    },
    (e) => {
      s.done = true;
      s.error = e;
    },
  );
  return s;
}

function mulberry32(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("budgets", () => {
  test("concurrent reservations never exceed a budget", async () => {
    const clock = new VirtualClock();
    const s = new Scheduler({ max_concurrency: 64 }, clock);
    s.register({ id: "a", parentId: null, priority: 0, weight: 1, budget: { max_tokens: 1000, period: "lifetime" } });
    const rnd = mulberry32(7);
    const outcomes = Array.from({ length: 40 }, () =>
      settled(s.acquire({ agentId: "a", provider: "p", inputTokens: 50, maxTokens: 100 })),
    );
    await tick();
    let spent = 0;
    // settle whatever is granted, in random order, with random usage within the grant
    for (let round = 0; round < 100; round++) {
      const granted = outcomes.filter((o) => o.done && o.value && !(o.value as any)._s) as Array<{ value: Grant }>;
      if (!granted.length) break;
      const g = granted[Math.floor(rnd() * granted.length)]!.value;
      (g as any)._s = true;
      const u = { input_tokens: Math.floor(rnd() * 50) + 1, output_tokens: Math.floor(rnd() * (g.maxTokens + 1)) };
      spent += u.input_tokens + u.output_tokens;
      g.settle(u);
      await tick();
      const left = s.budgetLeft("a")!;
      expect(left.ceiling).toBeGreaterThanOrEqual(0);
      expect(spent).toBeLessThanOrEqual(1000);
    }
    await tick();
    expect(outcomes.every((o) => o.done)).toBe(true);
    const rejected = outcomes.filter((o) => o.error);
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) {
      expect(r.error).toBeInstanceOf(KernelError);
      expect((r.error as KernelError).code).toBe(-32004);
    }
    expect(spent).toBeLessThanOrEqual(1000);
    expect(s.usage("a")!.input_tokens + s.usage("a")!.output_tokens).toBe(spent);
  });

  test("max_tokens shrinks to what is left, and a call below min_output_tokens is refused", async () => {
    const s = new Scheduler({ min_output_tokens: 16 }, new VirtualClock());
    s.register({ id: "a", parentId: null, priority: 0, weight: 1, budget: { max_tokens: 300, period: "lifetime" } });
    const g = await s.acquire({ agentId: "a", provider: "p", inputTokens: 100, maxTokens: 4096 });
    expect(g.maxTokens).toBe(200);
    expect(g.reserved).toBe(300);
    g.settle({ input_tokens: 90, output_tokens: 200 });
    // 10 left: not enough for 5 input + 16 output
    const e = await s.acquire({ agentId: "a", provider: "p", inputTokens: 5, maxTokens: 4096 }).catch((x) => x);
    expect(e).toBeInstanceOf(KernelError);
    expect(e.code).toBe(-32004);
    expect(e.data.agent_id).toBe("a");
  });

  test("a call that only lacks room because of calls in flight waits instead of shrinking", async () => {
    const s = new Scheduler({}, new VirtualClock());
    s.register({ id: "a", parentId: null, priority: 0, weight: 1, budget: { max_tokens: 1000, period: "lifetime" } });
    const g1 = await s.acquire({ agentId: "a", provider: "p", inputTokens: 100, maxTokens: 500 });
    const p2 = settled(s.acquire({ agentId: "a", provider: "p", inputTokens: 100, maxTokens: 500 }));
    await tick();
    expect(p2.done).toBe(false);
    g1.settle({ input_tokens: 100, output_tokens: 50 });
    await tick();
    expect(p2.done).toBe(true);
    expect(p2.value!.maxTokens).toBe(500);
  });

  test("a child's budget comes out of its parent's", async () => {
    const s = new Scheduler({}, new VirtualClock());
    s.register({ id: "p", parentId: null, priority: 0, weight: 1, budget: { max_tokens: 1000, period: "lifetime" } });
    s.register({ id: "c1", parentId: "p", priority: 0, weight: 1, budget: { max_tokens: 600, period: "lifetime" } });
    // the parent cannot cover a second 600
    expect(() =>
      s.register({ id: "c2", parentId: "p", priority: 0, weight: 1, budget: { max_tokens: 600, period: "lifetime" } }),
    ).toThrow(KernelError);
    try {
      s.register({ id: "c2", parentId: "p", priority: 0, weight: 1, budget: { max_tokens: 600, period: "lifetime" } });
    } catch (e) {
      expect((e as KernelError).code).toBe(-32004);
    }
    // the parent may spend only the 400 it did not give away
    expect(s.budgetLeft("p")!.now).toBe(400);
    expect(s.budgetLeft("c1")!.now).toBe(600);
    const g = await s.acquire({ agentId: "c1", provider: "p", inputTokens: 100, maxTokens: 500 });
    expect(g.maxTokens).toBe(500);
    expect(s.budgetLeft("p")!.now).toBe(400);
    g.settle({ input_tokens: 100, output_tokens: 100 });
    // the child spent 200 of its 600; the parent's ledger shows it
    expect(s.budgetLeft("c1")!.now).toBe(400);
    expect(s.budgetLeft("p")!.now).toBe(400);
    expect(s.status().agents.find((a) => a.agent_id === "p")!.budget!.used).toBe(200);
    // stopping the child returns its unspent 400 to the parent
    s.unregister("c1");
    expect(s.budgetLeft("p")!.now).toBe(800);
    s.register({ id: "c3", parentId: "p", priority: 0, weight: 1, budget: { max_tokens: 600, period: "lifetime" } });
  });

  test("a child without a budget draws from its parent's", async () => {
    const s = new Scheduler({}, new VirtualClock());
    s.register({ id: "p", parentId: null, priority: 0, weight: 1, budget: { max_tokens: 500, period: "lifetime" } });
    s.register({ id: "c", parentId: "p", priority: 0, weight: 1 });
    const g = await s.acquire({ agentId: "c", provider: "x", inputTokens: 100, maxTokens: 1000 });
    expect(g.maxTokens).toBe(400);
    g.settle({ input_tokens: 100, output_tokens: 380 });
    const e = await s.acquire({ agentId: "p", provider: "x", inputTokens: 10, maxTokens: 100 }).catch((x) => x);
    expect(e.code).toBe(-32004);
    expect(e.data.budget_of).toBe("p");
  });

  test("grandchildren are bounded by every ancestor", async () => {
    const clock = new VirtualClock();
    const s = new Scheduler({ max_concurrency: 100 }, clock);
    s.register({ id: "r", parentId: null, priority: 0, weight: 1, budget: { max_tokens: 2000, period: "lifetime" } });
    s.register({ id: "m", parentId: "r", priority: 0, weight: 1, budget: { max_tokens: 1500, period: "lifetime" } });
    s.register({ id: "l1", parentId: "m", priority: 0, weight: 1, budget: { max_tokens: 700, period: "lifetime" } });
    s.register({ id: "l2", parentId: "m", priority: 0, weight: 1 });
    const rnd = mulberry32(3);
    let spent = 0;
    for (let i = 0; i < 200; i++) {
      const who = ["r", "m", "l1", "l2"][Math.floor(rnd() * 4)]!;
      const r = await s.acquire({ agentId: who, provider: "p", inputTokens: 20, maxTokens: 80 }).catch((e) => e);
      if (r instanceof KernelError) continue;
      const u = { input_tokens: 20, output_tokens: Math.floor(rnd() * (r.maxTokens + 1)) };
      spent += 40;
      r.settle(u);
    }
    const st = s.status();
    const used = (id: string) => st.agents.find((a) => a.agent_id === id)!.budget?.used ?? 0;
    expect(used("r")).toBeLessThanOrEqual(2000);
    expect(used("m")).toBeLessThanOrEqual(1500);
    expect(used("l1")).toBeLessThanOrEqual(700);
    expect(spent).toBeGreaterThan(0);
  });

  test("a periodic budget starts again in the next window", async () => {
    const clock = new VirtualClock();
    const s = new Scheduler({}, clock);
    s.register({ id: "a", parentId: null, priority: 0, weight: 1, budget: { max_tokens: 200, period: "1m" } });
    const g = await s.acquire({ agentId: "a", provider: "p", inputTokens: 50, maxTokens: 150 });
    g.settle({ input_tokens: 50, output_tokens: 150 });
    const e = await s.acquire({ agentId: "a", provider: "p", inputTokens: 50, maxTokens: 150 }).catch((x) => x);
    expect(e.code).toBe(-32004);
    expect(typeof e.data.resets_at).toBe("string");
    clock.advanceTo(clock.now() + 60_000);
    const g2 = await s.acquire({ agentId: "a", provider: "p", inputTokens: 50, maxTokens: 150 });
    expect(g2.maxTokens).toBe(150);
  });

  test("periods parse", () => {
    expect(parsePeriod("lifetime")).toBeNull();
    expect(parsePeriod("1h")).toBe(3_600_000);
    expect(parsePeriod("90s")).toBe(90_000);
    expect(() => parsePeriod("hourly")).toThrow();
  });
});

describe("ordering", () => {
  async function blocked(s: Scheduler) {
    // occupy the single slot so that the next calls queue
    return s.acquire({ agentId: "blocker", provider: "p", inputTokens: 1, maxTokens: 1 });
  }

  test("higher priority first", async () => {
    const s = new Scheduler({ max_concurrency: 1 }, new VirtualClock());
    for (const [id, pr] of [
      ["blocker", 0],
      ["low", 0],
      ["mid", 5],
      ["high", 10],
    ] as const)
      s.register({ id, parentId: null, priority: pr, weight: 1 });
    const b = await blocked(s);
    const order: string[] = [];
    const ps = ["low", "mid", "high"].map((id) =>
      s.acquire({ agentId: id, provider: "p", inputTokens: 10, maxTokens: 10 }).then(async (g) => {
        order.push(id);
        await tick();
        g.settle({ input_tokens: 10, output_tokens: 10 });
      }),
    );
    await tick();
    expect(order).toEqual([]);
    expect(s.status().queue.map((q) => q.agent_id)).toEqual(["high", "mid", "low"]);
    b.settle({ input_tokens: 1, output_tokens: 1 });
    await Promise.all(ps);
    expect(order).toEqual(["high", "mid", "low"]);
  });

  test("aging: a low-priority call is not starved by a stream of high-priority ones", async () => {
    const clock = new VirtualClock();
    const s = new Scheduler({ max_concurrency: 1, aging_ms: 1000 }, clock);
    s.register({ id: "hi", parentId: null, priority: 3, weight: 1 });
    s.register({ id: "lo", parentId: null, priority: 0, weight: 1 });
    const start = clock.now();
    let next = s.acquire({ agentId: "hi", provider: "p", inputTokens: 10, maxTokens: 10 });
    await tick();
    let loGranted: number | null = null;
    const lo = s.acquire({ agentId: "lo", provider: "p", inputTokens: 10, maxTokens: 10 }).then((g) => {
      loGranted = clock.now();
      g.settle(null);
    });
    // the high-priority agent always has a call waiting; each call lasts 100 ms
    for (let i = 0; i < 200 && loGranted === null; i++) {
      const g = await next;
      next = s.acquire({ agentId: "hi", provider: "p", inputTokens: 10, maxTokens: 10 });
      clock.advanceTo(clock.now() + 100);
      g.settle({ input_tokens: 10, output_tokens: 10 });
      await tick();
    }
    await lo;
    expect(loGranted).not.toBeNull();
    // three levels at 1 s each: granted after about 3-4 s, not never
    expect(loGranted! - start).toBeLessThanOrEqual(4500);
    expect(loGranted! - start).toBeGreaterThanOrEqual(2900);
    s.unregister("hi");
  });

  test("equal priorities share tokens fairly (VTC), whatever their request sizes", async () => {
    const clock = new VirtualClock();
    const s = new Scheduler({ max_concurrency: 1 }, clock);
    s.register({ id: "big", parentId: null, priority: 0, weight: 1 });
    s.register({ id: "small", parentId: null, priority: 0, weight: 1 });
    s.register({ id: "heavy", parentId: null, priority: 0, weight: 2 });
    const size: Record<string, number> = { big: 1000, small: 100, heavy: 300 };
    const served: Record<string, number> = { big: 0, small: 0, heavy: 0 };
    // every agent keeps two calls waiting; the single slot serves one at a time
    let inflight: Array<Promise<Grant>> = [];
    const submit = (id: string) => {
      const p = s.acquire({ agentId: id, provider: "p", inputTokens: size[id]! / 2, maxTokens: size[id]! / 2 });
      p.then(async (g) => {
        await Promise.resolve();
        clock.advanceTo(clock.now() + size[id]!);
        served[id]! += size[id]!;
        g.settle({ input_tokens: size[id]! / 2, output_tokens: size[id]! / 2 });
        if (clock.now() < 1_700_000_000_000 + 200_000) submit(id);
      });
      inflight.push(p);
    };
    for (const id of Object.keys(size)) {
      submit(id);
      submit(id);
    }
    for (let i = 0; i < 2000 && clock.now() < 1_700_000_000_000 + 200_000; i++) await tick();
    const norm = [served.big! / 1, served.small! / 1, served.heavy! / 2];
    const jain = norm.reduce((a, b) => a + b) ** 2 / (norm.length * norm.reduce((a, b) => a + b * b, 0));
    expect(jain).toBeGreaterThan(0.98);
    inflight = [];
  });

  test("cancellation: an aborted signal and an unregistered agent reject their waiting calls", async () => {
    const s = new Scheduler({ max_concurrency: 1 }, new VirtualClock());
    s.register({ id: "blocker", parentId: null, priority: 0, weight: 1 });
    s.register({ id: "a", parentId: null, priority: 0, weight: 1 });
    const b = await blocked(s);
    const ac = new AbortController();
    const p1 = s
      .acquire({ agentId: "a", provider: "p", inputTokens: 1, maxTokens: 1, signal: ac.signal })
      .catch((e) => e);
    const p2 = s.acquire({ agentId: "a", provider: "p", inputTokens: 1, maxTokens: 1 }).catch((e) => e);
    ac.abort();
    expect(await p1).toBeInstanceOf(SchedCancelled);
    s.unregister("a");
    expect(await p2).toBeInstanceOf(SchedCancelled);
    expect(s.status().queue).toEqual([]);
    b.settle(null);
  });
});

describe("rate limits", () => {
  test("a 429 with retry-after holds every call to that provider, not others", async () => {
    const clock = new VirtualClock();
    const s = new Scheduler({ max_concurrency: 8 }, clock);
    s.register({ id: "a", parentId: null, priority: 0, weight: 1 });
    s.observe("anthropic", 429, { "retry-after": "2" });
    const held = settled(s.acquire({ agentId: "a", provider: "anthropic", inputTokens: 10, maxTokens: 10 }));
    const other = settled(s.acquire({ agentId: "a", provider: "openai:local", inputTokens: 10, maxTokens: 10 }));
    await tick();
    expect(held.done).toBe(false);
    expect(other.done).toBe(true);
    expect(s.status().limits.providers.anthropic!.paused_until).not.toBeNull();
    clock.advanceTo(clock.now() + 1999);
    await tick();
    expect(held.done).toBe(false);
    clock.advanceTo(clock.now() + 1);
    await tick();
    expect(held.done).toBe(true);
  });

  test("limit headers tighten the configured rpm and tpm", async () => {
    const clock = new VirtualClock();
    const s = new Scheduler({ max_concurrency: 8, providers: { anthropic: { rpm: 1000, tpm: 1_000_000 } } }, clock);
    s.register({ id: "a", parentId: null, priority: 0, weight: 1 });
    s.observe("anthropic", 429, {
      "anthropic-ratelimit-requests-limit": "2",
      "anthropic-ratelimit-requests-remaining": "0",
      "anthropic-ratelimit-requests-reset": new Date(clock.now() + 30_000).toISOString(),
      "anthropic-ratelimit-tokens-limit": "5000",
    });
    const lim = s.status().limits.providers.anthropic!;
    expect(lim.rpm).toBe(2);
    expect(lim.tpm).toBe(5000);
    expect(lim.rpm_configured).toBe(1000);
    const p = settled(s.acquire({ agentId: "a", provider: "anthropic", inputTokens: 10, maxTokens: 10 }));
    clock.advanceTo(clock.now() + 29_000);
    await tick();
    expect(p.done).toBe(false);
    clock.advanceTo(clock.now() + 1_000);
    await tick();
    expect(p.done).toBe(true);
    // a larger limit later does not loosen it
    s.observe("anthropic", 200, { "anthropic-ratelimit-requests-limit": "50" });
    expect(s.status().limits.providers.anthropic!.rpm).toBe(2);
  });

  test("rpm is enforced as a bucket", async () => {
    const clock = new VirtualClock();
    const s = new Scheduler({ max_concurrency: 100, providers: { p: { rpm: 60 } } }, clock);
    s.register({ id: "a", parentId: null, priority: 0, weight: 1 });
    const ps = Array.from({ length: 70 }, () =>
      settled(s.acquire({ agentId: "a", provider: "p", inputTokens: 1, maxTokens: 1 })),
    );
    await tick();
    expect(ps.filter((p) => p.done).length).toBe(60);
    clock.advanceTo(clock.now() + 5_000);
    await tick();
    expect(ps.filter((p) => p.done).length).toBe(65);
  });

  test("global concurrency limit", async () => {
    const s = new Scheduler({ max_concurrency: 3 }, new VirtualClock());
    s.register({ id: "a", parentId: null, priority: 0, weight: 1 });
    const ps = Array.from({ length: 5 }, () =>
      settled(s.acquire({ agentId: "a", provider: "p", inputTokens: 1, maxTokens: 1 })),
    );
    await tick();
    expect(ps.filter((p) => p.done).length).toBe(3);
    expect(s.status().queue.length).toBe(2);
    ps[0]!.value!.settle({ input_tokens: 1, output_tokens: 1 });
    await tick();
    expect(ps.filter((p) => p.done).length).toBe(4);
  });
});
