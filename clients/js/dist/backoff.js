/** Reconnect delays: exponential backoff with full jitter. */
/** Counts failed attempts and picks the next delay. */
export class Backoff {
    random;
    attempt = 0;
    initialMs;
    maxMs;
    multiplier;
    maxAttempts;
    constructor(policy = {}, random = Math.random) {
        this.random = random;
        this.initialMs = policy.initialMs ?? 500;
        this.maxMs = policy.maxMs ?? 30_000;
        this.multiplier = policy.multiplier ?? 2;
        this.maxAttempts = policy.maxAttempts ?? Infinity;
    }
    /** The ceiling of attempt `n`: min(max, initial × multiplier^n). */
    ceiling(n) {
        const c = this.initialMs * Math.pow(this.multiplier, n);
        return Number.isFinite(c) ? Math.min(this.maxMs, c) : this.maxMs;
    }
    /** A delay uniform in [0, ceiling], or `null` once attempts ran out. */
    next() {
        if (this.attempt >= this.maxAttempts)
            return null;
        const d = this.ceiling(this.attempt) * this.random();
        this.attempt += 1;
        return d;
    }
    get attempts() {
        return this.attempt;
    }
    reset() {
        this.attempt = 0;
    }
}
/** The wait after `goaway`: `reconnect_ms` ± 25 %. */
export function goawayDelay(reconnectMs, random = Math.random) {
    return reconnectMs * (0.75 + 0.5 * random());
}
