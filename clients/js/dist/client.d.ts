/**
 * `TernClient`: one real-time session that survives disconnects. It
 * authenticates by itself, matches replies to requests by id, keeps unacked
 * sends in an outbox (re-sent with the same `cmid` after a reconnect),
 * reconnects with exponential backoff and full jitter, honours `goaway`,
 * drops duplicate pushes by (conv, seq) and fills gaps with `sync`.
 */
import { type ReconnectPolicy } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { TernError } from "./errors.js";
import { TernHttp, type TokenSource } from "./http.js";
import type { Ack, ConvSummary, Frame, GroupEvent, Message, MessagePage, PageQuery, PresenceItem, Receipt, Session, Typing } from "./types.js";
/** Where the client is: `open` means authenticated. */
export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";
export interface StateChange {
    state: ConnectionState;
    /** The close code that caused it, when a connection ended. */
    code?: number;
    reason?: string;
    /** Delay before the next attempt, ms (state `reconnecting`). */
    retryInMs?: number;
}
/** Minimal WebSocket constructor (browsers, Node ≥ 22, or the `ws` package). */
export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocket;
export interface ClientOptions {
    /** Server URL: `http://host:port` (the SDK uses `/ws` on it) or `ws://host:port/ws`. */
    url: string;
    /** A token, or a function returning a fresh one (called on every connect). */
    token: TokenSource;
    /** Free text sent in the `auth` frame. */
    device?: string;
    /** Reconnect policy; `false` disables reconnecting. */
    reconnect?: ReconnectPolicy | false;
    /** How long a request waits for its reply, ms (default 15000). */
    requestTimeoutMs?: number;
    /** Messages per `sync` page when filling gaps (default 100). */
    syncPageSize?: number;
    /** At most one `typing` frame per conversation this often, ms (default 3000). */
    typingIntervalMs?: number;
    /** WebSocket implementation (default: the global `WebSocket`). */
    WebSocket?: WebSocketCtor;
    /** fetch implementation for `client.http` (default: the global `fetch`). */
    fetch?: typeof fetch;
}
/** Events of [`TernClient`]: `client.on("message", m => …)`. */
export interface ClientEvents {
    /** A new message, deduplicated and in seq order per conversation. */
    message: Message;
    receipt: Receipt;
    typing: Typing;
    /** One user's presence (after `presence()`, on every change and reconnect). */
    presence: PresenceItem;
    group: GroupEvent;
    state: StateChange;
    /** Every successful authentication (first connect and reconnects). */
    session: Session;
    /** The conversation list, after every (re)connect and `resync` push. */
    convs: ConvSummary[];
    goaway: {
        reconnect_ms: number;
    };
    /** An outbox send was stored. */
    ack: Ack;
    /** An outbox send was refused for good (not retryable). */
    sendFailed: {
        cmid: string;
        error: TernError;
    };
    /** An `error` frame that answered no pending request. */
    error: TernError;
}
/** What `send` takes: exactly one of `to` / `conv`. */
export interface OutgoingMessage {
    to?: string;
    conv?: string;
    body: string;
    kind?: "text" | "e2e";
    meta?: Record<string, unknown>;
    /** Your own client message id; default: a random UUID. */
    cmid?: string;
}
export declare class TernClient extends Emitter<ClientEvents> {
    /** The HTTP API, with the same token. */
    readonly http: TernHttp;
    readonly wsUrl: string;
    private readonly opts;
    private readonly WS;
    private readonly backoff;
    private readonly tracker;
    private readonly pending;
    private readonly outbox;
    private readonly watched;
    private readonly lastTyping;
    private ws;
    private current;
    private sessionInfo;
    private nextId;
    private chain;
    private heartbeat?;
    private reconnectTimer?;
    private goawayTimer?;
    private openTimer?;
    private goawayPending;
    private lastRx;
    private badTokens;
    private firstConnect?;
    constructor(opts: ClientOptions);
    /** The connection state. */
    get state(): ConnectionState;
    /** The authenticated user, once connected. */
    get user(): string | undefined;
    /** The current session, once connected. */
    get session(): Session | null;
    /** Connects and authenticates; resolves with the first session. */
    connect(): Promise<Session>;
    /** Closes for good with a clean WebSocket close (1000). Unacked sends are rejected. */
    close(): Promise<void>;
    /**
     * Sends a message. Resolves with the ack once it is stored; while the
     * client is disconnected it waits in the outbox and is re-sent (same
     * `cmid`) after reconnecting, until acked or refused for good.
     */
    send(msg: OutgoingMessage): Promise<Ack>;
    /** The `cmid`s of sends not acknowledged yet. */
    unacked(): string[];
    /** Your conversations, most recent first. */
    convs(): Promise<ConvSummary[]>;
    /** One page of history (see `PageQuery`); emits nothing. */
    sync(conv: string, q?: PageQuery): Promise<MessagePage>;
    /** Moves your read pointer in `conv` to `seq`. */
    read(conv: string, seq: number): Promise<void>;
    /** Tells the other members you are typing (throttled per conversation). */
    typing(conv: string): void;
    /** Watches users' presence: the current state now, `presence` events later (renewed after reconnects). */
    presence(users: string[]): Promise<PresenceItem[]>;
    /** Stops watching users. */
    unwatchPresence(users: string[]): Promise<void>;
    /** Application-level ping; resolves with the round trip in ms. */
    ping(): Promise<number>;
    /**
     * Declares that the app has every message of `conv` up to `lastSeq` (e.g.
     * after loading history): later pushes are checked against it, and after a
     * reconnect the client fetches what came after it.
     */
    track(conv: string, lastSeq: number): void;
    /** Stops tracking `conv` (e.g. after leaving a group). */
    untrack(conv: string): void;
    /** The highest seq delivered without gaps in `conv`, if tracked. */
    lastSeen(conv: string): number | undefined;
    /**
     * Runs `convs`, emits `convs`, and fetches the missed messages of every
     * tracked conversation whose `last_seq` is above what the client has.
     * Done after every reconnect and on a `resync` push.
     */
    resync(): Promise<void>;
    /** Sends any request frame and resolves with its reply frame. */
    request(frame: Frame): Promise<Frame>;
    private setState;
    private open;
    /** The socket is gone (or given up on): reconnect or stop. */
    private lost;
    /** Detaches the socket and fails what waited on it. */
    private teardown;
    private onAuthOk;
    /** Heartbeat: a `ping`, or give up on a server silent for three periods. */
    private beat;
    private sendFrame;
    private onFrame;
    private onGoaway;
    private transmit;
    private onSendReply;
    /** Runs `fn` after everything queued before it (pushes stay in order). */
    private serial;
    /** Emits `m` if new; fills a gap before it first. */
    private deliver;
    private offerFilled;
    /** Fetches `after+1 …` page by page (below `upto` when given), emitting in order. */
    private fill;
}
/** A fresh client message id (a UUID where available). */
export declare function newCmid(): string;
