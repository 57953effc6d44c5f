/** Errors of the SDK: every failure carries a protocol `code`. */
/** A refused request: an `error` frame, an HTTP error, or an SDK failure. */
export class TernError extends Error {
    code;
    /** HTTP status, for HTTP calls. */
    status;
    /** With `rate_limited`: how long to wait before retrying. */
    retryAfterMs;
    constructor(code, message, opts = {}) {
        super(message);
        this.name = "TernError";
        this.code = code;
        this.status = opts.status;
        this.retryAfterMs = opts.retryAfterMs;
    }
}
/** Codes after which a send is worth repeating with the same `cmid`. */
export function isRetryable(code) {
    return code === "unavailable" || code === "internal" || code === "rate_limited" ||
        code === "timeout" || code === "disconnected";
}
