// Token budgets as a tree of ledgers.
//
// Every agent has a node; a node has a limit (or none) for a period window
// (or its lifetime). Tokens an agent spends are charged to its node AND to
// every ancestor's node, so a subtree can never spend more than the budget of
// any node above it. A child's own budget is carved out of its parent's: the
// part of a live child's allowance it has not spent yet is *held* by the
// parent, so the parent cannot spend it itself, and a spawn is refused when
// the parent cannot cover the child's allowance.
//
// A call reserves (input estimate + max_tokens) on every node of its chain
// before it is sent and settles the actual usage afterwards. The invariant,
// checked on every reservation, is for each node with a limit:
//
//     used_in_window + reserved + held_for_children <= limit
//
// and since a model never returns more than max_tokens output tokens and the
// input estimate is an upper bound, used never exceeds the limit, whatever
// the number of concurrent calls.

export interface BudgetSpec {
  max_tokens: number;
  /** ms, or null for lifetime */
  periodMs: number | null;
}

export class BudgetNode {
  readonly children = new Set<BudgetNode>();
  /** tokens settled in the current window (own + descendants) */
  used = 0;
  /** tokens reserved by calls in flight (own + descendants) */
  reserved = 0;
  /** lifetime tokens settled (own + descendants) */
  lifetimeUsed = 0;
  windowStart: number;
  live = true;

  constructor(
    readonly id: string,
    readonly parent: BudgetNode | null,
    readonly spec: BudgetSpec | null,
    now: number,
  ) {
    this.windowStart = now;
  }

  get limit(): number | null {
    return this.spec ? this.spec.max_tokens : null;
  }

  /** start a new window when the period has passed */
  roll(now: number): void {
    const p = this.spec?.periodMs;
    if (!p) return;
    if (now >= this.windowStart + p) {
      const k = Math.floor((now - this.windowStart) / p);
      this.windowStart += k * p;
      this.used = 0;
    }
  }

  resetsAt(): number | null {
    const p = this.spec?.periodMs;
    return p ? this.windowStart + p : null;
  }

  /** allowance of live children with a budget that they have not spent: the parent may not use it */
  held(withReservations: boolean): number {
    let h = 0;
    for (const c of this.children) if (c.live && c.limit !== null) h += c.unspentOwn(withReservations);
    return h;
  }

  /** unspent counting this node's own holdings as spendable by its subtree */
  private unspentOwn(withReservations: boolean): number {
    if (this.limit === null) return 0;
    return Math.max(0, this.limit - this.used - (withReservations ? this.reserved : 0));
  }

  chain(): BudgetNode[] {
    const out: BudgetNode[] = [];
    for (let n: BudgetNode | null = this; n; n = n.parent) out.push(n);
    return out;
  }
}

export interface Headroom {
  /** tokens a call by this node could reserve now */
  now: number;
  /** tokens it could reserve if every call in flight settled at zero: its ceiling */
  ceiling: number;
  /** the node that limits the most (for messages), null when unlimited */
  limitedBy: BudgetNode | null;
}

/**
 * How much a call of `node` may reserve: the minimum over its chain of
 * limit - used - reserved - (held for other children). The child on the path
 * may spend what its parent holds for it, so that part is not subtracted.
 */
export function headroom(node: BudgetNode, now: number): Headroom {
  let hNow = Infinity;
  let hCeil = Infinity;
  let limitedBy: BudgetNode | null = null;
  let below: BudgetNode | null = null;
  for (const n of node.chain()) {
    n.roll(now);
    if (n.limit !== null) {
      const heldNow = n.held(true) - (below && below.live && below.limit !== null ? ownUnspent(below, true) : 0);
      const heldCeil = n.held(false) - (below && below.live && below.limit !== null ? ownUnspent(below, false) : 0);
      const a = n.limit - n.used - n.reserved - heldNow;
      const c = n.limit - n.used - heldCeil;
      if (c < hCeil) limitedBy = n;
      hNow = Math.min(hNow, a);
      hCeil = Math.min(hCeil, c);
    }
    below = n;
  }
  return { now: Math.max(0, hNow), ceiling: Math.max(0, hCeil), limitedBy };
}

function ownUnspent(n: BudgetNode, withReservations: boolean): number {
  if (n.limit === null) return 0;
  return Math.max(0, n.limit - n.used - (withReservations ? n.reserved : 0));
}

export function reserve(node: BudgetNode, tokens: number, now: number): void {
  for (const n of node.chain()) {
    n.roll(now);
    n.reserved += tokens;
  }
}

/** release a reservation and charge what was really used */
export function settle(node: BudgetNode, reserved: number, used: number, now: number): void {
  for (const n of node.chain()) {
    n.roll(now);
    n.reserved = Math.max(0, n.reserved - reserved);
    n.used += used;
    n.lifetimeUsed += used;
  }
}
