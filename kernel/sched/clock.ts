// Time for the scheduler: injectable so tests and benchmarks can run it on a
// virtual clock. Wall-clock milliseconds, because rate-limit reset headers
// are wall-clock times.

export interface Clock {
  now(): number;
  /** run fn after ms; returns a cancel function */
  setTimer(fn: () => void, ms: number): () => void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(t);
  },
};

/**
 * A virtual clock for simulations: timers run in time order when the owner
 * calls runNext()/runUntilIdle(); nothing happens by itself.
 */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Array<{ at: number; seq: number; fn: () => void; live: boolean }> = [];

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, live: true };
    // keep sorted by (at, seq): binary insertion
    let lo = 0;
    let hi = this.timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = this.timers[mid]!;
      if (m.at < timer.at || (m.at === timer.at && m.seq < timer.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.timers.splice(lo, 0, timer);
    return () => {
      timer.live = false;
    };
  }

  pending(): number {
    return this.timers.filter((t) => t.live).length;
  }

  /** advance to the next live timer and run it; false when none is left */
  runNext(): boolean {
    while (this.timers.length) {
      const next = this.timers.shift()!;
      if (!next.live) continue;
      if (next.at > this.t) this.t = next.at;
      next.fn();
      return true;
    }
    return false;
  }

  /** advance time without running timers past `to` */
  advanceTo(to: number): void {
    while (this.timers.length && this.timers[0]!.at <= to) this.runNext();
    if (to > this.t) this.t = to;
  }
}
