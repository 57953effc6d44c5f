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
export declare class Backoff {
    private readonly random;
    private attempt;
    private readonly initialMs;
    private readonly maxMs;
    private readonly multiplier;
    private readonly maxAttempts;
    constructor(policy?: ReconnectPolicy, random?: () => number);
    /** The ceiling of attempt `n`: min(max, initial × multiplier^n). */
    ceiling(n: number): number;
    /** A delay uniform in [0, ceiling], or `null` once attempts ran out. */
    next(): number | null;
    get attempts(): number;
    reset(): void;
}
/** The wait after `goaway`: `reconnect_ms` ± 25 %. */
export declare function goawayDelay(reconnectMs: number, random?: () => number): number;
