/** Reconnect delays: exponential backoff with full jitter. */

export interface ReconnectPolicy {
  /** Ceiling of the first delay, ms (default 500). */
  initialMs?: number;
  /** Largest ceiling, ms (default 30000). */
  maxMs?: number;
  /** Growth of the ceiling per failed attempt (default 2). */
  multiplier?: number;
  /** Give up after this many failed attempts in a row (default: never). */
  maxAttempts?: number;
}

/** Counts failed attempts and picks the next delay. */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly multiplier: number;
  private readonly maxAttempts: number;

  constructor(policy: ReconnectPolicy = {}, private readonly random: () => number = Math.random) {
    this.initialMs = policy.initialMs ?? 500;
    this.maxMs = policy.maxMs ?? 30_000;
    this.multiplier = policy.multiplier ?? 2;
    this.maxAttempts = policy.maxAttempts ?? Infinity;
  }

  /** The ceiling of attempt `n`: min(max, initial × multiplier^n). */
  ceiling(n: number): number {
    const c = this.initialMs * Math.pow(this.multiplier, n);
    return Number.isFinite(c) ? Math.min(this.maxMs, c) : this.maxMs;
  }

  /** A delay uniform in [0, ceiling], or `null` once attempts ran out. */
  next(): number | null {
    if (this.attempt >= this.maxAttempts) return null;
    const d = this.ceiling(this.attempt) * this.random();
    this.attempt += 1;
    return d;
  }

  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** The wait after `goaway`: `reconnect_ms` ± 25 %. */
export function goawayDelay(reconnectMs: number, random: () => number = Math.random): number {
  return reconnectMs * (0.75 + 0.5 * random());
}
