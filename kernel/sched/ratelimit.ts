// Per-provider rate limits: requests per minute and tokens per minute as two
// token buckets, plus a pause (retry-after, or a limit's reset time) that
// holds every call to the provider. Configured limits are tightened — never
// loosened — by what the provider's response headers say.

export interface ProviderLimitsConfig {
  rpm?: number | undefined;
  tpm?: number | undefined;
}

class Bucket {
  level: number;
  last: number;
  constructor(
    public capacity: number,
    now: number,
  ) {
    this.level = capacity;
    this.last = now;
  }
  refill(now: number): void {
    if (now > this.last) {
      this.level = Math.min(this.capacity, this.level + ((now - this.last) * this.capacity) / 60_000);
      this.last = now;
    }
  }
  /** ms until `cost` is available (a cost above capacity needs a full bucket) */
  waitFor(cost: number, now: number): number {
    this.refill(now);
    const need = Math.min(cost, this.capacity);
    if (this.level >= need) return 0;
    return Math.ceil(((need - this.level) * 60_000) / this.capacity);
  }
  take(cost: number, now: number): void {
    this.refill(now);
    this.level -= cost;
  }
  give(tokens: number, now: number): void {
    this.refill(now);
    this.level = Math.min(this.capacity, this.level + tokens);
  }
  setCapacity(cap: number, now: number): void {
    this.refill(now);
    this.capacity = cap;
    this.level = Math.min(this.level, cap);
  }
}

function header(h: Headers | Record<string, string> | undefined, name: string): string | undefined {
  if (!h) return undefined;
  if (typeof (h as Headers).get === "function") return (h as Headers).get(name) ?? undefined;
  const rec = h as Record<string, string>;
  return rec[name] ?? rec[name.toLowerCase()];
}

/** retry-after / retry-after-ms as milliseconds from now */
export function retryAfterMs(h: Headers | Record<string, string> | undefined, now = Date.now()): number | undefined {
  const ms = header(h, "retry-after-ms");
  if (ms !== undefined && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = header(h, "retry-after");
  if (ra === undefined) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(ra)) return Math.max(0, Number(ra) * 1000);
  const t = Date.parse(ra);
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
}

/** "6m0s", "1.5s", "250ms", "20" (seconds) → ms */
function goDuration(s: string): number | undefined {
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  let total = 0;
  let matched = false;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    matched = true;
    const v = Number(m[1]);
    total += m[2] === "ms" ? v : m[2] === "s" ? v * 1000 : m[2] === "m" ? v * 60_000 : v * 3_600_000;
  }
  return matched ? total : undefined;
}

function resetAt(v: string | undefined, now: number): number | undefined {
  if (!v) return undefined;
  const t = Date.parse(v);
  if (Number.isFinite(t) && /\d{4}-\d\d-\d\d/.test(v)) return t;
  const d = goDuration(v);
  return d === undefined ? undefined : now + d;
}

export class ProviderLimiter {
  readonly configured: ProviderLimitsConfig;
  private req: Bucket | null;
  private tok: Bucket | null;
  pausedUntil = 0;
  /** how many times headers tightened a limit or paused the provider */
  tightenings = 0;

  constructor(
    readonly name: string,
    cfg: ProviderLimitsConfig,
    now: number,
  ) {
    this.configured = { rpm: cfg.rpm, tpm: cfg.tpm };
    this.req = cfg.rpm ? new Bucket(cfg.rpm, now) : null;
    this.tok = cfg.tpm ? new Bucket(cfg.tpm, now) : null;
  }

  get rpm(): number | null {
    return this.req?.capacity ?? null;
  }
  get tpm(): number | null {
    return this.tok?.capacity ?? null;
  }

  /** ms to wait before a call costing `tokens` may start (0: now) */
  waitFor(tokens: number, now: number): number {
    let w = Math.max(0, this.pausedUntil - now);
    if (this.req) w = Math.max(w, this.req.waitFor(1, now));
    if (this.tok) w = Math.max(w, this.tok.waitFor(tokens, now));
    return w;
  }

  take(tokens: number, now: number): void {
    this.req?.take(1, now);
    this.tok?.take(tokens, now);
  }

  /** a call reserved more tokens than it used: give the difference back */
  refund(tokens: number, now: number): void {
    if (tokens > 0) this.tok?.give(tokens, now);
  }

  pause(untilMs: number): void {
    if (untilMs > this.pausedUntil) {
      this.pausedUntil = untilMs;
      this.tightenings++;
    }
  }

  /**
   * Learn from a response's headers (success or error). Anthropic sends
   * anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset};
   * OpenAI-compatible servers send x-ratelimit-{limit,remaining,reset}-{requests,tokens}.
   * A 429/503/529 with retry-after pauses the provider for that long.
   */
  observe(status: number | undefined, h: Headers | Record<string, string> | undefined, now: number): void {
    if (!h) return;
    const num = (name: string) => {
      const v = header(h, name);
      return v !== undefined && v !== "" && Number.isFinite(Number(v)) ? Number(v) : undefined;
    };
    const reqLimit = num("anthropic-ratelimit-requests-limit") ?? num("x-ratelimit-limit-requests");
    const tokLimit =
      num("anthropic-ratelimit-tokens-limit") ??
      num("anthropic-ratelimit-input-tokens-limit") ??
      num("x-ratelimit-limit-tokens");
    const reqRemaining = num("anthropic-ratelimit-requests-remaining") ?? num("x-ratelimit-remaining-requests");
    const tokRemaining =
      num("anthropic-ratelimit-tokens-remaining") ??
      num("anthropic-ratelimit-input-tokens-remaining") ??
      num("x-ratelimit-remaining-tokens");
    const reqReset = resetAt(
      header(h, "anthropic-ratelimit-requests-reset") ?? header(h, "x-ratelimit-reset-requests"),
      now,
    );
    const tokReset = resetAt(
      header(h, "anthropic-ratelimit-tokens-reset") ??
        header(h, "anthropic-ratelimit-input-tokens-reset") ??
        header(h, "x-ratelimit-reset-tokens"),
      now,
    );

    if (reqLimit !== undefined && reqLimit > 0 && (this.req === null || reqLimit < this.req.capacity)) {
      if (this.req) this.req.setCapacity(reqLimit, now);
      else this.req = new Bucket(reqLimit, now);
      this.tightenings++;
    }
    if (tokLimit !== undefined && tokLimit > 0 && (this.tok === null || tokLimit < this.tok.capacity)) {
      if (this.tok) this.tok.setCapacity(tokLimit, now);
      else this.tok = new Bucket(tokLimit, now);
      this.tightenings++;
    }
    if (reqRemaining !== undefined && this.req && reqRemaining < this.req.level)
      this.req.level = Math.max(0, reqRemaining);
    if (tokRemaining !== undefined && this.tok && tokRemaining < this.tok.level)
      this.tok.level = Math.max(0, tokRemaining);
    if (reqRemaining === 0 && reqReset !== undefined) this.pause(reqReset);
    if (tokRemaining === 0 && tokReset !== undefined) this.pause(tokReset);

    if (status === 429 || status === 503 || status === 529) {
      const ra = retryAfterMs(h, now);
      if (ra !== undefined) this.pause(now + ra);
    }
  }

  status(now: number) {
    return {
      rpm: this.rpm,
      tpm: this.tpm,
      rpm_configured: this.configured.rpm ?? null,
      tpm_configured: this.configured.tpm ?? null,
      paused_until: this.pausedUntil > now ? new Date(this.pausedUntil).toISOString() : null,
      requests_available: this.req ? Math.floor((this.req.refill(now), this.req.level)) : null,
      tokens_available: this.tok ? Math.floor((this.tok.refill(now), this.tok.level)) : null,
      tightenings: this.tightenings,
    };
  }
}
