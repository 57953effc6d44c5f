/**
 * tern-client: the TypeScript SDK of the tern messaging server, for browsers
 * and Node ≥ 18. No runtime dependencies.
 *
 * ```ts
 * import { TernClient, TernHttp } from "tern-client";
 * const http = new TernHttp({ url: "http://127.0.0.1:8080" });
 * const { token } = await http.login("alice", "correct-horse");
 * const client = new TernClient({ url: "http://127.0.0.1:8080", token });
 * client.on("message", (m) => console.log(m.from, m.body));
 * await client.connect();
 * await client.send({ to: "bob", body: "hi" });
 * ```
 */

export { TernClient, newCmid } from "./client.js";
export type { ClientEvents, ClientOptions, ConnectionState, OutgoingMessage, StateChange, WebSocketCtor } from "./client.js";
export { TernHttp, httpBase } from "./http.js";
export type { HttpOptions, Login, TokenSource } from "./http.js";
export { TernError, isRetryable } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export { Backoff, goawayDelay } from "./backoff.js";
export type { ReconnectPolicy } from "./backoff.js";
export { SeqTracker } from "./seq.js";
export type { SeqCheck } from "./seq.js";
export { Emitter } from "./emitter.js";
export type { Listener } from "./emitter.js";
export * from "./types.js";

/** Direct conversation id of two users (`d:<a>:<b>` with a ≤ b in byte order). */
export function directConv(a: string, b: string): string {
  return a <= b ? `d:${a}:${b}` : `d:${b}:${a}`;
}
