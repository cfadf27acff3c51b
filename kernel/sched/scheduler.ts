// The inference scheduler: every LLM call is admitted here, as a CPU
// scheduler admits a process to a core.
//
// A call waits in one queue until all of these hold:
//   - a global slot is free (max_concurrency calls in flight),
//   - its provider's rate limits allow it (rpm/tpm buckets, pauses),
//   - its agent's budget chain can reserve input estimate + max_tokens.
// Among waiting calls: higher priority first (a priority class rises by one
// level for every aging_ms its oldest call has waited, so nothing starves);
// among equal
// priorities the agent with the smallest virtual token counter (tokens served
// divided by weight — VTC, Sheng et al., "Fairness in Serving Large Language
// Models", OSDI '24) goes first; then arrival order.

import { ErrorCode, KernelError } from "../errors.ts";
import { BudgetNode, headroom, reserve, settle, type BudgetSpec } from "./budget.ts";
import { realClock, type Clock } from "./clock.ts";
import { parsePeriod } from "./period.ts";
import { ProviderLimiter, type ProviderLimitsConfig } from "./ratelimit.ts";

export interface SchedConfig {
  max_concurrency: number;
  /** a waiting call gains one priority level per aging_ms (0 disables aging) */
  aging_ms: number;
  /** smallest max_tokens worth sending; below it the budget counts as exhausted */
  min_output_tokens: number;
  providers: Record<string, ProviderLimitsConfig>;
}

export const DEFAULT_SCHED_CONFIG: SchedConfig = {
  max_concurrency: 4,
  aging_ms: 30_000,
  min_output_tokens: 16,
  providers: {},
};

export interface SchedAgent {
  id: string;
  name?: string;
  parentId: string | null;
  priority: number;
  weight: number;
  budget?: { max_tokens: number; period: string } | undefined;
  /** tokens it used before (a persistent agent resumed after a reboot): counted by its meter and a lifetime budget */
  used?: { input_tokens: number; output_tokens: number } | undefined;
}

export interface AcquireRequest {
  agentId: string;
  provider: string;
  /** upper bound of the input tokens of the call */
  inputTokens: number;
  /** max_tokens the caller would like */
  maxTokens: number;
  signal?: AbortSignal | undefined;
}

/**
 * Tokens a model call used, as its provider reported them. The scheduler is
 * the one meter of an agent's usage (settle() counts every call, retries and
 * partial calls included); agent.status reads it from here.
 */
export interface Usage {
  input_tokens: number;
  output_tokens: number;
}

export interface Grant {
  readonly id: number;
  readonly agentId: string;
  readonly provider: string;
  /** max_tokens to send: what was asked, or less when the budget is nearly spent */
  readonly maxTokens: number;
  /** tokens reserved on the budget chain: inputTokens + maxTokens */
  readonly reserved: number;
  readonly queuedMs: number;
  /** settle with the usage the provider reported (null: nothing known, charge nothing) */
  settle(usage: Usage | null): void;
}

/** the call was cancelled while it waited (agent stopped, signal aborted) */
export class SchedCancelled extends Error {
  constructor(message = "inference call cancelled") {
    super(message);
    this.name = "SchedCancelled";
  }
}

interface AgentEntry {
  spec: SchedAgent;
  node: BudgetNode;
  vtc: number;
  usage: { input_tokens: number; output_tokens: number; requests: number };
  queued: number;
  inFlight: number;
  live: boolean;
}

interface Waiter {
  seq: number;
  req: AcquireRequest;
  agent: AgentEntry;
  enqueuedAt: number;
  resolve(g: Grant): void;
  reject(e: unknown): void;
  cleanup(): void;
}

interface Flight {
  id: number;
  agent: AgentEntry;
  provider: ProviderLimiter;
  reserved: number;
  inputEstimate: number;
  startedAt: number;
  maxTokens: number;
}

/** stopped agents whose usage stays queryable (the process table keeps as many) */
export const GONE_LIMIT = 1000;

export class Scheduler {
  readonly cfg: SchedConfig;
  private readonly clock: Clock;
  private readonly agents = new Map<string, AgentEntry>();
  /** usage of agents that have gone, for status queries after stop */
  private readonly gone = new Map<string, { input_tokens: number; output_tokens: number; requests: number }>();
  private readonly providers = new Map<string, ProviderLimiter>();
  private queue: Waiter[] = [];
  private readonly flights = new Map<number, Flight>();
  private seq = 0;
  private grantSeq = 0;
  private wake: { at: number; cancel: () => void } | null = null;
  private totalServed = 0;
  /** counters for benchmarks and status */
  readonly stats = { granted: 0, rejectedBudget: 0, cancelled: 0 };

  constructor(cfg: Partial<SchedConfig> = {}, clock: Clock = realClock) {
    this.cfg = { ...DEFAULT_SCHED_CONFIG, ...cfg, providers: { ...(cfg.providers ?? {}) } };
    if (!(this.cfg.max_concurrency >= 1)) throw new Error("max_concurrency must be at least 1");
    this.clock = clock;
  }

  // ---- agents --------------------------------------------------------------

  /**
   * Register an agent. A child's budget is carved out of its nearest budgeted
   * ancestors: throws KernelError -32004 when they cannot cover it.
   */
  register(a: SchedAgent): void {
    if (this.agents.get(a.id)?.live) throw new Error(`agent ${a.id} already registered`);
    const now = this.clock.now();
    const parent = a.parentId ? this.agents.get(a.parentId) : undefined;
    let spec: BudgetSpec | null = null;
    if (a.budget) {
      const periodMs = parsePeriod(a.budget.period);
      if (!(Number.isInteger(a.budget.max_tokens) && a.budget.max_tokens > 0))
        throw new KernelError(ErrorCode.InvalidParams, "budget.max_tokens must be a positive integer");
      spec = { max_tokens: a.budget.max_tokens, periodMs };
      if (parent) {
        const h = headroom(parent.node, now);
        if (h.limitedBy && a.budget.max_tokens > h.now) {
          throw new KernelError(
            ErrorCode.BudgetExhausted,
            `budget exhausted: parent ${parent.spec.id} cannot cover a child budget of ${a.budget.max_tokens} tokens (${h.now} available)`,
            { agent_id: a.id, parent_id: parent.spec.id, requested: a.budget.max_tokens, available: h.now },
          );
        }
      }
    }
    const node = new BudgetNode(a.id, parent?.node ?? null, spec, now);
    const before = (a.used?.input_tokens ?? 0) + (a.used?.output_tokens ?? 0);
    node.lifetimeUsed = before;
    if (spec && spec.periodMs === null) node.used = before;
    parent?.node.children.add(node);
    // a newcomer starts at the smallest counter among active agents of its
    // priority: it gets its share from now on, not credit for the past
    const entry: AgentEntry = {
      spec: { ...a, weight: a.weight > 0 ? a.weight : 1 },
      node,
      vtc: this.minActiveVtc(a.priority) ?? 0,
      usage: { input_tokens: a.used?.input_tokens ?? 0, output_tokens: a.used?.output_tokens ?? 0, requests: 0 },
      queued: 0,
      inFlight: 0,
      live: true,
    };
    this.agents.set(a.id, entry);
  }

  /** cancel the agent's waiting calls; its unspent carve returns to its parent */
  unregister(agentId: string): void {
    const a = this.agents.get(agentId);
    if (!a) return;
    a.live = false;
    a.node.live = false;
    for (const w of this.queue.filter((w) => w.agent === a)) this.cancelWaiter(w, new SchedCancelled("agent stopped"));
    // bounded like the process table: the oldest stopped agents are forgotten
    this.gone.set(agentId, a.usage);
    while (this.gone.size > GONE_LIMIT) this.gone.delete(this.gone.keys().next().value!);
    if (a.inFlight === 0) this.forget(a);
    this.dispatch();
  }

  private forget(a: AgentEntry): void {
    this.agents.delete(a.spec.id);
    // keep the node in its parent's tree (its spending is part of the
    // parent's window); it holds nothing any more since it is not live
  }

  /** registered and not stopped */
  has(agentId: string): boolean {
    return this.agents.get(agentId)?.live === true;
  }

  usage(agentId: string): { input_tokens: number; output_tokens: number; requests: number } | undefined {
    return this.agents.get(agentId)?.usage ?? this.gone.get(agentId);
  }

  /** tokens this agent could still reserve, and its ceiling (null: unlimited) */
  budgetLeft(agentId: string): { now: number; ceiling: number } | null {
    const a = this.agents.get(agentId);
    if (!a) return null;
    const h = headroom(a.node, this.clock.now());
    return h.limitedBy ? { now: h.now, ceiling: h.ceiling } : null;
  }

  // ---- admission -------------------------------------------------------------

  acquire(req: AcquireRequest): Promise<Grant> {
    const a = this.agents.get(req.agentId);
    if (!a || !a.live) return Promise.reject(new SchedCancelled(`agent ${req.agentId} is not registered`));
    if (req.signal?.aborted) return Promise.reject(new SchedCancelled());
    this.provider(req.provider);
    return new Promise<Grant>((resolve, reject) => {
      const w: Waiter = {
        seq: this.seq++,
        req,
        agent: a,
        enqueuedAt: this.clock.now(),
        resolve,
        reject,
        cleanup: () => {},
      };
      if (req.signal) {
        const onAbort = () => this.cancelWaiter(w, new SchedCancelled());
        req.signal.addEventListener("abort", onAbort, { once: true });
        w.cleanup = () => req.signal!.removeEventListener("abort", onAbort);
      }
      // VTC counter lift: an agent that was idle rejoins at the smallest
      // counter of the agents already active at its priority
      if (a.queued === 0 && a.inFlight === 0) {
        const m = this.minActiveVtc(a.spec.priority, a);
        if (m !== undefined && m > a.vtc) a.vtc = m;
      }
      a.queued++;
      this.queue.push(w);
      this.dispatch();
    });
  }

  /** tell the scheduler what a provider's response headers said (429 tightening) */
  observe(provider: string, status: number | undefined, headers: Headers | Record<string, string> | undefined): void {
    this.provider(provider).observe(status, headers, this.clock.now());
    this.dispatch();
  }

  provider(name: string): ProviderLimiter {
    let p = this.providers.get(name);
    if (!p) {
      p = new ProviderLimiter(name, this.cfg.providers[name] ?? {}, this.clock.now());
      this.providers.set(name, p);
    }
    return p;
  }

  private minActiveVtc(priority: number, except?: AgentEntry): number | undefined {
    let m: number | undefined;
    for (const a of this.agents.values()) {
      if (a === except || !a.live || a.spec.priority !== priority) continue;
      if (a.queued === 0 && a.inFlight === 0) continue;
      if (m === undefined || a.vtc < m) m = a.vtc;
    }
    return m;
  }

  private cancelWaiter(w: Waiter, err: unknown): void {
    const i = this.queue.indexOf(w);
    if (i < 0) return;
    this.queue.splice(i, 1);
    w.agent.queued--;
    w.cleanup();
    this.stats.cancelled++;
    w.reject(err);
    this.dispatch();
  }

  /**
   * Aging lifts a whole priority class, not single calls: every call of a
   * class gains one level per aging_ms its oldest waiting call has waited.
   * Calls of one class therefore always compare by VTC among themselves
   * (a per-call boost would turn long waits into FIFO order), and a class
   * that waits long enough overtakes any higher one: nothing starves.
   */
  private classBoosts(now: number): Map<number, number> {
    const oldest = new Map<number, number>();
    for (const w of this.queue) {
      const p = w.agent.spec.priority;
      const o = oldest.get(p);
      if (o === undefined || w.enqueuedAt < o) oldest.set(p, w.enqueuedAt);
    }
    const boosts = new Map<number, number>();
    for (const [p, t] of oldest) boosts.set(p, this.cfg.aging_ms > 0 ? Math.floor((now - t) / this.cfg.aging_ms) : 0);
    return boosts;
  }

  private ordered(now: number): Array<{ w: Waiter; p: number }> {
    const boosts = this.classBoosts(now);
    return this.queue
      .map((w) => ({ w, p: w.agent.spec.priority + (boosts.get(w.agent.spec.priority) ?? 0) }))
      .sort((x, y) => y.p - x.p || x.w.agent.vtc - y.w.agent.vtc || x.w.seq - y.w.seq);
  }

  private dispatching = false;

  /** grant every call that can go now, best first */
  private dispatch(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      this.dispatchLoop();
    } finally {
      this.dispatching = false;
    }
  }

  private dispatchLoop(): void {
    const now = this.clock.now();
    let wakeAt = Infinity;
    if (this.queue.length === 0) return this.setWake(Infinity);
    // order: effective priority desc, vtc asc, arrival asc
    const order = this.ordered(now);
    const blockedProviders = new Set<string>();
    for (const { w } of order) {
      const req = w.req;
      // budget: how much could this call ever get, and can it reserve it now?
      const h = headroom(w.agent.node, now);
      let maxTokens = req.maxTokens;
      if (h.limitedBy) {
        const ceilingOut = h.ceiling - req.inputTokens;
        if (ceilingOut < Math.min(this.cfg.min_output_tokens, req.maxTokens)) {
          this.rejectBudget(
            w,
            h.limitedBy,
            req.inputTokens + Math.min(this.cfg.min_output_tokens, req.maxTokens),
            h.ceiling,
          );
          continue;
        }
        maxTokens = Math.min(req.maxTokens, ceilingOut);
        if (req.inputTokens + maxTokens > h.now) continue; // waits for calls in flight to settle
      }
      if (this.flights.size >= this.cfg.max_concurrency) {
        // no slot: nothing else can go either; a settle will dispatch again
        break;
      }
      if (blockedProviders.has(req.provider)) continue;
      const p = this.provider(req.provider);
      const cost = req.inputTokens + maxTokens;
      const wait = p.waitFor(cost, now);
      if (wait > 0) {
        // lower-ranked calls to the same provider must not overtake this one
        blockedProviders.add(req.provider);
        wakeAt = Math.min(wakeAt, now + wait);
        continue;
      }
      this.grant(w, p, maxTokens, now);
    }
    this.setWake(wakeAt);
  }

  private rejectBudget(w: Waiter, by: BudgetNode, need: number, ceiling: number): void {
    const i = this.queue.indexOf(w);
    if (i >= 0) this.queue.splice(i, 1);
    w.agent.queued--;
    w.cleanup();
    this.stats.rejectedBudget++;
    const resets = by.resetsAt();
    w.reject(
      new KernelError(
        ErrorCode.BudgetExhausted,
        by.id === w.agent.spec.id
          ? `budget exhausted: agent ${w.agent.spec.id} has ${ceiling} of ${by.limit} tokens left, a call needs ${need}`
          : `budget exhausted: ancestor ${by.id} of agent ${w.agent.spec.id} has ${ceiling} of ${by.limit} tokens left, a call needs ${need}`,
        {
          agent_id: w.agent.spec.id,
          budget_of: by.id,
          max_tokens: by.limit,
          used: by.used,
          needed: need,
          resets_at: resets ? new Date(resets).toISOString() : null,
        },
      ),
    );
  }

  private grant(w: Waiter, p: ProviderLimiter, maxTokens: number, now: number): void {
    const i = this.queue.indexOf(w);
    if (i >= 0) this.queue.splice(i, 1);
    w.cleanup();
    const a = w.agent;
    a.queued--;
    a.inFlight++;
    const reserved = w.req.inputTokens + maxTokens;
    reserve(a.node, reserved, now);
    p.take(reserved, now);
    // VTC: charge the input now, the output when it is known
    a.vtc += w.req.inputTokens / a.spec.weight;
    const id = ++this.grantSeq;
    const flight: Flight = {
      id,
      agent: a,
      provider: p,
      reserved,
      inputEstimate: w.req.inputTokens,
      startedAt: now,
      maxTokens,
    };
    this.flights.set(id, flight);
    this.stats.granted++;
    let settled = false;
    const grant: Grant = {
      id,
      agentId: a.spec.id,
      provider: p.name,
      maxTokens,
      reserved,
      queuedMs: now - w.enqueuedAt,
      settle: (usage) => {
        if (settled) return;
        settled = true;
        this.settle(flight, usage);
      },
    };
    w.resolve(grant);
  }

  private settle(f: Flight, usage: Usage | null): void {
    const now = this.clock.now();
    this.flights.delete(f.id);
    const inp = Math.max(0, Math.floor(usage?.input_tokens ?? 0));
    const out = Math.max(0, Math.floor(usage?.output_tokens ?? 0));
    const used = inp + out;
    settle(f.agent.node, f.reserved, used, now);
    f.provider.refund(f.reserved - used, now);
    const a = f.agent;
    a.inFlight--;
    a.vtc += (used - f.inputEstimate) / a.spec.weight;
    a.usage.input_tokens += inp;
    a.usage.output_tokens += out;
    if (usage) a.usage.requests++;
    this.totalServed += used;
    if (!a.live && a.inFlight === 0) this.forget(a);
    this.dispatch();
  }

  private setWake(at: number): void {
    if (this.wake && this.wake.at === at) return;
    if (this.wake) {
      this.wake.cancel();
      this.wake = null;
    }
    if (at === Infinity) return;
    const cancel = this.clock.setTimer(() => {
      this.wake = null;
      this.dispatch();
    }, at - this.clock.now());
    this.wake = { at, cancel };
  }

  // ---- status ----------------------------------------------------------------

  status() {
    const now = this.clock.now();
    const byPriority = new Map<number, number>();
    for (const a of this.agents.values()) {
      if (a.live) byPriority.set(a.spec.priority, (byPriority.get(a.spec.priority) ?? 0) + a.spec.weight);
    }
    const order = this.ordered(now);
    return {
      queue: order.map(({ w, p }) => ({
        agent_id: w.agent.spec.id,
        provider: w.req.provider,
        priority: w.agent.spec.priority,
        effective_priority: p,
        waiting_ms: now - w.enqueuedAt,
        input_tokens_estimate: w.req.inputTokens,
        max_tokens: w.req.maxTokens,
      })),
      in_flight: [...this.flights.values()].map((f) => ({
        agent_id: f.agent.spec.id,
        provider: f.provider.name,
        reserved: f.reserved,
        max_tokens: f.maxTokens,
        running_ms: now - f.startedAt,
      })),
      agents: [...this.agents.values()]
        .filter((a) => a.live)
        .map((a) => {
          const h = headroom(a.node, now);
          const served = a.usage.input_tokens + a.usage.output_tokens;
          return {
            agent_id: a.spec.id,
            name: a.spec.name ?? null,
            parent_id: a.spec.parentId,
            priority: a.spec.priority,
            weight: a.spec.weight,
            usage: { ...a.usage, total_tokens: served },
            budget: a.node.spec
              ? {
                  max_tokens: a.node.spec.max_tokens,
                  period: a.spec.budget?.period ?? "lifetime",
                  used: a.node.used,
                  reserved: a.node.reserved,
                  held_for_children: a.node.held(true),
                  remaining: h.now,
                  resets_at: a.node.resetsAt() ? new Date(a.node.resetsAt()!).toISOString() : null,
                }
              : null,
            /** tokens this agent could reserve now through its whole chain (null: unlimited) */
            available: h.limitedBy ? h.now : null,
            share: {
              /** fraction of all tokens served so far that went to this agent */
              served: this.totalServed > 0 ? served / this.totalServed : 0,
              /** its weight's fraction among live agents of its priority */
              entitled: a.spec.weight / (byPriority.get(a.spec.priority) ?? a.spec.weight),
              virtual_tokens: Math.round(a.vtc),
            },
            queued: a.queued,
            in_flight: a.inFlight,
          };
        }),
      limits: {
        max_concurrency: this.cfg.max_concurrency,
        in_flight: this.flights.size,
        aging_ms: this.cfg.aging_ms,
        providers: Object.fromEntries([...this.providers.entries()].map(([n, p]) => [n, p.status(now)])),
      },
      stats: { ...this.stats },
    };
  }
}
