/** Errors of the SDK: every failure carries a protocol `code`. */

/**
 * The protocol's error codes plus the SDK's own: `timeout` (no reply in
 * time), `disconnected` (the connection dropped before the reply) and
 * `closed` (the client was closed).
 */
export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "too_large"
  | "rate_limited"
  | "conflict"
  | "unavailable"
  | "internal"
  | "timeout"
  | "disconnected"
  | "closed";

/** A refused request: an `error` frame, an HTTP error, or an SDK failure. */
export class TernError extends Error {
  readonly code: ErrorCode | string;
  /** HTTP status, for HTTP calls. */
  readonly status?: number;
  /** With `rate_limited`: how long to wait before retrying. */
  readonly retryAfterMs?: number;

  constructor(code: string, message: string, opts: { status?: number; retryAfterMs?: number } = {}) {
    super(message);
    this.name = "TernError";
    this.code = code;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/** Codes after which a send is worth repeating with the same `cmid`. */
export function isRetryable(code: string): boolean {
  return code === "unavailable" || code === "internal" || code === "rate_limited" ||
    code === "timeout" || code === "disconnected";
}
