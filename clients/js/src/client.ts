/**
 * `TernClient`: one real-time session that survives disconnects. It
 * authenticates by itself, matches replies to requests by id, keeps unacked
 * sends in an outbox (re-sent with the same `cmid` after a reconnect),
 * reconnects with exponential backoff and full jitter, honours `goaway`,
 * drops duplicate pushes by (conv, seq) and fills gaps with `sync`.
 */

import { Backoff, goawayDelay, type ReconnectPolicy } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { isRetryable, TernError } from "./errors.js";
import { httpBase, TernHttp, type TokenSource } from "./http.js";
import { SeqTracker } from "./seq.js";
import type {
  Ack, ConvSummary, Frame, GroupEvent, Message, MessagePage, PageQuery, PresenceItem, Receipt, Session, Typing,
} from "./types.js";

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
  goaway: { reconnect_ms: number };
  /** An outbox send was stored. */
  ack: Ack;
  /** An outbox send was refused for good (not retryable). */
  sendFailed: { cmid: string; error: TernError };
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

interface Pending {
  resolve: (f: Frame) => void;
  reject: (e: TernError) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface OutboxEntry {
  cmid: string;
  frame: Frame;
  reqId?: number;
  resolve: (a: Ack) => void;
  reject: (e: TernError) => void;
  retryTimer?: ReturnType<typeof setTimeout>;
}

/** Close codes after which reconnecting is pointless. */
const BAD_TOKEN = 4001;
const KICKED = 4011;

export class TernClient extends Emitter<ClientEvents> {
  /** The HTTP API, with the same token. */
  readonly http: TernHttp;
  readonly wsUrl: string;
  private readonly opts: ClientOptions;
  private readonly WS: WebSocketCtor;
  private readonly backoff: Backoff;
  private readonly tracker = new SeqTracker();
  private readonly pending = new Map<number, Pending>();
  private readonly outbox = new Map<string, OutboxEntry>();
  private readonly watched = new Set<string>();
  private readonly lastTyping = new Map<string, number>();
  private ws: WebSocket | null = null;
  private current: ConnectionState = "idle";
  private sessionInfo: Session | null = null;
  private nextId = 1;
  private chain: Promise<void> = Promise.resolve();
  private heartbeat?: ReturnType<typeof setInterval>;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private goawayTimer?: ReturnType<typeof setTimeout>;
  private openTimer?: ReturnType<typeof setTimeout>;
  private goawayPending = false;
  private lastRx = 0;
  private badTokens = 0;
  private firstConnect?: { resolve: (s: Session) => void; reject: (e: TernError) => void };

  constructor(opts: ClientOptions) {
    super();
    this.opts = opts;
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!WS) {
      throw new TernError("bad_request",
        "no WebSocket available: use Node ≥ 22 (or node --experimental-websocket), or pass options.WebSocket");
    }
    this.WS = WS;
    this.backoff = new Backoff(opts.reconnect === false ? { maxAttempts: 0 } : opts.reconnect);
    this.wsUrl = /^wss?:\/\//i.test(opts.url) ? opts.url : httpBase(opts.url).replace(/^http/i, "ws") + "/ws";
    this.http = new TernHttp({ url: opts.url, token: opts.token, fetch: opts.fetch });
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this.current;
  }

  /** The authenticated user, once connected. */
  get user(): string | undefined {
    return this.sessionInfo?.user;
  }

  /** The current session, once connected. */
  get session(): Session | null {
    return this.sessionInfo;
  }

  /** Connects and authenticates; resolves with the first session. */
  connect(): Promise<Session> {
    if (this.current === "closed") return Promise.reject(new TernError("closed", "client is closed"));
    if (this.current === "open" && this.sessionInfo) return Promise.resolve(this.sessionInfo);
    return new Promise((resolve, reject) => {
      const prev = this.firstConnect;
      this.firstConnect = {
        resolve: (s) => { prev?.resolve(s); resolve(s); },
        reject: (e) => { prev?.reject(e); reject(e); },
      };
      if (this.current === "idle") void this.open();
    });
  }

  /** Closes for good with a clean WebSocket close (1000). Unacked sends are rejected. */
  async close(): Promise<void> {
    if (this.current === "closed") return;
    const ws = this.ws;
    this.setState({ state: "closed", code: 1000, reason: "closed by the app" });
    this.teardown();
    for (const e of this.outbox.values()) {
      clearTimeout(e.retryTimer);
      e.reject(new TernError("closed", "client closed before the send was acknowledged"));
    }
    this.outbox.clear();
    this.firstConnect?.reject(new TernError("closed", "client closed"));
    this.firstConnect = undefined;
    if (!ws) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 1000);
      ws.onclose = () => { clearTimeout(t); resolve(); };
      try { ws.close(1000, "bye"); } catch { resolve(); }
    });
  }

  /**
   * Sends a message. Resolves with the ack once it is stored; while the
   * client is disconnected it waits in the outbox and is re-sent (same
   * `cmid`) after reconnecting, until acked or refused for good.
   */
  send(msg: OutgoingMessage): Promise<Ack> {
    if (this.current === "closed") return Promise.reject(new TernError("closed", "client is closed"));
    if ((msg.to === undefined) === (msg.conv === undefined)) {
      return Promise.reject(new TernError("bad_request", "give exactly one of to / conv"));
    }
    const cmid = msg.cmid ?? newCmid();
    const frame: Frame = { type: "send", cmid, body: msg.body };
    if (msg.to !== undefined) frame.to = msg.to;
    if (msg.conv !== undefined) frame.conv = msg.conv;
    if (msg.kind) frame.kind = msg.kind;
    if (msg.meta) frame.meta = msg.meta;
    return new Promise((resolve, reject) => {
      const entry: OutboxEntry = { cmid, frame, resolve, reject };
      this.outbox.set(cmid, entry);
      this.transmit(entry);
    });
  }

  /** The `cmid`s of sends not acknowledged yet. */
  unacked(): string[] {
    return [...this.outbox.keys()];
  }

  /** Your conversations, most recent first. */
  async convs(): Promise<ConvSummary[]> {
    return (await this.request({ type: "convs" })).items as ConvSummary[];
  }

  /** One page of history (see `PageQuery`); emits nothing. */
  async sync(conv: string, q: PageQuery = {}): Promise<MessagePage> {
    const r = await this.request({ type: "sync", conv, ...q });
    return { conv, items: r.items as Message[], more: r.more as boolean };
  }

  /** Moves your read pointer in `conv` to `seq`. */
  async read(conv: string, seq: number): Promise<void> {
    await this.request({ type: "read", conv, seq });
  }

  /** Tells the other members you are typing (throttled per conversation). */
  typing(conv: string): void {
    const now = Date.now();
    const last = this.lastTyping.get(conv) ?? 0;
    if (now - last < (this.opts.typingIntervalMs ?? 3000) || this.current !== "open") return;
    this.lastTyping.set(conv, now);
    this.sendFrame({ type: "typing", conv });
  }

  /** Watches users' presence: the current state now, `presence` events later (renewed after reconnects). */
  async presence(users: string[]): Promise<PresenceItem[]> {
    for (const u of users) this.watched.add(u);
    return (await this.request({ type: "presence_sub", users })).items as PresenceItem[];
  }

  /** Stops watching users. */
  async unwatchPresence(users: string[]): Promise<void> {
    for (const u of users) this.watched.delete(u);
    await this.request({ type: "presence_unsub", users });
  }

  /** Application-level ping; resolves with the round trip in ms. */
  async ping(): Promise<number> {
    const t = Date.now();
    await this.request({ type: "ping" });
    return Date.now() - t;
  }

  /**
   * Declares that the app has every message of `conv` up to `lastSeq` (e.g.
   * after loading history): later pushes are checked against it, and after a
   * reconnect the client fetches what came after it.
   */
  track(conv: string, lastSeq: number): void {
    this.tracker.track(conv, lastSeq);
  }

  /** Stops tracking `conv` (e.g. after leaving a group). */
  untrack(conv: string): void {
    this.tracker.untrack(conv);
  }

  /** The highest seq delivered without gaps in `conv`, if tracked. */
  lastSeen(conv: string): number | undefined {
    return this.tracker.lastSeen(conv);
  }

  /**
   * Runs `convs`, emits `convs`, and fetches the missed messages of every
   * tracked conversation whose `last_seq` is above what the client has.
   * Done after every reconnect and on a `resync` push.
   */
  resync(): Promise<void> {
    return this.serial(async () => {
      const items = await this.convs();
      this.emit("convs", items);
      for (const c of items) {
        const seen = this.tracker.lastSeen(c.conv);
        if (seen !== undefined && c.last_seq > seen) await this.fill(c.conv, seen);
      }
    });
  }

  /** Sends any request frame and resolves with its reply frame. */
  request(frame: Frame): Promise<Frame> {
    if (this.current !== "open" || !this.ws) {
      return Promise.reject(new TernError(this.current === "closed" ? "closed" : "disconnected", "not connected"));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TernError("timeout", `no reply to ${frame.type} in time`));
      }, this.opts.requestTimeoutMs ?? 15_000);
      this.pending.set(id, { resolve, reject, timer });
      this.sendFrame({ ...frame, id });
    });
  }

  // ---- connection life ----

  private setState(s: StateChange): void {
    this.current = s.state;
    this.emit("state", s);
  }

  private async open(): Promise<void> {
    this.setState({ state: this.sessionInfo ? "reconnecting" : "connecting" });
    let token: string;
    try {
      token = typeof this.opts.token === "function" ? await this.opts.token() : this.opts.token;
    } catch (e) {
      this.lost(1006, `token provider failed: ${String(e)}`);
      return;
    }
    if (this.current === "closed") return;
    let ws: WebSocket;
    try {
      ws = new this.WS(this.wsUrl, "tern.json");
    } catch (e) {
      this.lost(1006, String(e));
      return;
    }
    this.ws = ws;
    this.lastRx = Date.now();
    ws.onopen = () => {
      const auth: Frame = { type: "auth", id: 0, token };
      if (this.opts.device) auth.device = this.opts.device;
      ws.send(JSON.stringify(auth));
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws !== ws) return;
      this.lastRx = Date.now();
      if (typeof ev.data !== "string") return;
      let frame: Frame;
      try {
        frame = JSON.parse(ev.data) as Frame;
      } catch {
        return;
      }
      this.onFrame(frame);
    };
    // Browsers follow an error with a close event; some WebSocket
    // implementations (Node 20's) do not when the handshake fails.
    ws.onerror = () => {
      if (this.ws === ws) this.lost(1006, "connection failed");
    };
    // A handshake or authentication that hangs counts as a failed attempt.
    clearTimeout(this.openTimer);
    this.openTimer = setTimeout(() => {
      if (this.ws === ws && this.current !== "open") this.lost(1006, "connect timed out");
    }, this.opts.requestTimeoutMs ?? 15_000);
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws === ws) this.lost(ev.code, ev.reason || "connection closed");
    };
  }

  /** The socket is gone (or given up on): reconnect or stop. */
  private lost(code: number, reason: string): void {
    const hadSession = this.current === "open";
    this.teardown();
    if (this.current === "closed") return;
    if (code === BAD_TOKEN) this.badTokens += 1;
    const terminal = code === KICKED ||
      (code === BAD_TOKEN && (typeof this.opts.token !== "function" || this.badTokens >= 2));
    let delay: number | null = null;
    if (!terminal) {
      if (this.goawayPending) {
        this.goawayPending = false;
        delay = 0;
        this.backoff.reset();
      } else if (hadSession) {
        // First retry of a session that was up: short and jittered.
        this.backoff.reset();
        delay = this.backoff.next();
      } else {
        delay = this.backoff.next();
      }
    }
    if (delay === null) {
      this.setState({ state: "closed", code, reason });
      for (const e of this.outbox.values()) {
        clearTimeout(e.retryTimer);
        e.reject(new TernError(code === BAD_TOKEN ? "unauthorized" : "closed", reason));
      }
      this.outbox.clear();
      this.firstConnect?.reject(new TernError(code === BAD_TOKEN ? "unauthorized" : "closed", reason));
      this.firstConnect = undefined;
      return;
    }
    this.setState({ state: "reconnecting", code, reason, retryInMs: Math.round(delay) });
    this.reconnectTimer = setTimeout(() => void this.open(), delay);
  }

  /** Detaches the socket and fails what waited on it. */
  private teardown(): void {
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.goawayTimer);
    clearTimeout(this.openTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= 1) {
      try { ws.close(1000, "bye"); } catch { /* already closing */ }
    }
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new TernError("disconnected", "connection lost before the reply"));
    }
    this.pending.clear();
    for (const e of this.outbox.values()) e.reqId = undefined;
  }

  private onAuthOk(f: Frame): void {
    const s: Session = {
      user: String(f.user), session: String(f.session),
      heartbeat_ms: Number(f.heartbeat_ms) || 25_000, server_time: Number(f.server_time),
    };
    this.sessionInfo = s;
    this.badTokens = 0;
    this.backoff.reset();
    this.setState({ state: "open" });
    this.emit("session", s);
    this.heartbeat = setInterval(() => this.beat(s.heartbeat_ms), Math.max(50, s.heartbeat_ms));
    for (const e of this.outbox.values()) this.transmit(e);
    if (this.watched.size > 0) {
      this.presence([...this.watched]).then(
        (items) => items.forEach((i) => this.emit("presence", i)),
        () => { /* dropped again: renewed on the next session */ },
      );
    }
    this.resync().catch(() => { /* dropped again: the next session resyncs */ });
    this.firstConnect?.resolve(s);
    this.firstConnect = undefined;
  }

  /** Heartbeat: a `ping`, or give up on a server silent for three periods. */
  private beat(heartbeatMs: number): void {
    if (Date.now() - this.lastRx > heartbeatMs * 3) {
      this.lost(1006, "server silent for three heartbeats");
      return;
    }
    this.sendFrame({ type: "ping" });
  }

  private sendFrame(f: Frame): void {
    try {
      this.ws?.send(JSON.stringify(f));
    } catch {
      // The close event reports it.
    }
  }

  // ---- incoming frames ----

  private onFrame(f: Frame): void {
    if (f.type === "auth_ok") return this.onAuthOk(f);
    if (f.type === "error" && (f.id === 0 || f.close !== undefined) && this.current !== "open") {
      return; // the auth failure; its close code follows
    }
    if (typeof f.id === "number" && f.id !== 0) {
      const p = this.pending.get(f.id);
      if (p) {
        this.pending.delete(f.id);
        clearTimeout(p.timer);
        if (f.type === "error") p.reject(frameError(f));
        else p.resolve(f);
        return;
      }
      for (const e of this.outbox.values()) {
        if (e.reqId === f.id) return this.onSendReply(e, f);
      }
      return;
    }
    switch (f.type) {
      case "msg": {
        const { type: _t, ...m } = f;
        void this.serial(() => this.deliver(m as unknown as Message));
        return;
      }
      case "receipt":
        void this.serial(async () => this.emit("receipt", { conv: String(f.conv), user: String(f.user), seq: Number(f.seq) }));
        return;
      case "typing":
        this.emit("typing", { conv: String(f.conv), user: String(f.user) });
        return;
      case "presence":
        for (const i of (f.items as PresenceItem[]) ?? []) this.emit("presence", i);
        return;
      case "group": {
        const ev = f as unknown as GroupEvent;
        if (ev.event === "deleted" || (ev.event === "member_removed" && this.user && ev.users.includes(this.user))) {
          this.tracker.untrack(`g:${ev.group.id}`);
        }
        void this.serial(async () => this.emit("group", { event: ev.event, group: ev.group, users: ev.users ?? [] }));
        return;
      }
      case "goaway":
        this.onGoaway(Number(f.reconnect_ms) || 2000);
        return;
      case "resync":
        this.resync().catch(() => { /* retried after the next reconnect */ });
        return;
      case "error":
        this.emit("error", frameError(f));
        return;
      default:
        return; // pong, and push types added later
    }
  }

  private onGoaway(reconnectMs: number): void {
    this.emit("goaway", { reconnect_ms: reconnectMs });
    clearTimeout(this.goawayTimer);
    this.goawayTimer = setTimeout(() => {
      this.goawayPending = true;
      this.lost(1001, "goaway");
    }, goawayDelay(reconnectMs));
  }

  // ---- sends ----

  private transmit(e: OutboxEntry): void {
    if (this.current !== "open" || !this.ws || e.reqId !== undefined) return;
    e.reqId = this.nextId++;
    this.sendFrame({ ...e.frame, id: e.reqId });
  }

  private onSendReply(e: OutboxEntry, f: Frame): void {
    e.reqId = undefined;
    if (f.type === "ack") {
      this.outbox.delete(e.cmid);
      const ack: Ack = { conv: String(f.conv), seq: Number(f.seq), mid: String(f.mid), ts: Number(f.ts), cmid: e.cmid };
      this.tracker.recordOwn(ack.conv, ack.seq);
      this.emit("ack", ack);
      e.resolve(ack);
      return;
    }
    const err = frameError(f);
    if (isRetryable(err.code)) {
      const wait = err.retryAfterMs ?? 1000;
      e.retryTimer = setTimeout(() => this.transmit(e), wait);
      return;
    }
    this.outbox.delete(e.cmid);
    this.emit("sendFailed", { cmid: e.cmid, error: err });
    e.reject(err);
  }

  // ---- ordered delivery ----

  /** Runs `fn` after everything queued before it (pushes stay in order). */
  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Emits `m` if new; fills a gap before it first. */
  private async deliver(m: Message): Promise<void> {
    const v = this.tracker.accept(m.conv, m.seq);
    if (v.kind === "duplicate") return;
    if (v.kind !== "gap") {
      this.emit("message", m);
      return;
    }
    try {
      await this.fill(m.conv, v.after, m.seq);
    } catch {
      return; // not recorded: the next gap or reconnect fetches it again
    }
    this.offerFilled(m);
  }

  private offerFilled(m: Message): void {
    const v = this.tracker.accept(m.conv, m.seq);
    if (v.kind === "gap") {
      // The server has nothing in between: step over the hole.
      this.tracker.track(m.conv, m.seq - 1);
      this.tracker.accept(m.conv, m.seq);
    } else if (v.kind === "duplicate") {
      return;
    }
    this.emit("message", m);
  }

  /** Fetches `after+1 …` page by page (below `upto` when given), emitting in order. */
  private async fill(conv: string, after: number, upto?: number): Promise<void> {
    const limit = this.opts.syncPageSize ?? 100;
    for (;;) {
      const page = await this.sync(conv, { after, limit });
      for (const m of page.items) {
        if (upto !== undefined && m.seq >= upto) break;
        this.offerFilled(m);
      }
      const last = page.items.at(-1)?.seq;
      if (!page.more || last === undefined || last <= after || (upto !== undefined && last >= upto)) return;
      after = last;
    }
  }
}

function frameError(f: Frame): TernError {
  return new TernError(String(f.code ?? "internal"), String(f.message ?? "error"), {
    retryAfterMs: typeof f.retry_after_ms === "number" ? f.retry_after_ms : undefined,
  });
}

/** A fresh client message id (a UUID where available). */
export function newCmid(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}
