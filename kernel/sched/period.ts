// Budget periods: "lifetime" or a duration such as "90s", "15m", "1h", "1d", "1w".

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** milliseconds of a period, or null for "lifetime"; throws on anything else */
export function parsePeriod(period: string | undefined): number | null {
  if (period === undefined || period === "lifetime") return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/.exec(period);
  if (!m) throw new Error(`invalid budget period "${period}": use "lifetime" or a duration like 30s, 15m, 1h, 1d, 1w`);
  const ms = Number(m[1]) * UNITS[m[2]!]!;
  if (!(ms >= 1)) throw new Error(`invalid budget period "${period}": must be longer than 0`);
  return Math.round(ms);
}

export function isValidPeriod(period: string): boolean {
  try {
    parsePeriod(period);
    return true;
  } catch {
    return false;
  }
}
