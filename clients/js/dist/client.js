/**
 * `TernClient`: one real-time session that survives disconnects. It
 * authenticates by itself, matches replies to requests by id, keeps unacked
 * sends in an outbox (re-sent with the same `cmid` after a reconnect),
 * reconnects with exponential backoff and full jitter, honours `goaway`,
 * drops duplicate pushes by (conv, seq) and fills gaps with `sync`.
 */
import { Backoff, goawayDelay } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { isRetryable, TernError } from "./errors.js";
import { httpBase, TernHttp } from "./http.js";
import { SeqTracker } from "./seq.js";
/** Close codes after which reconnecting is pointless. */
const BAD_TOKEN = 4001;
const KICKED = 4011;
export class TernClient extends Emitter {
    /** The HTTP API, with the same token. */
    http;
    wsUrl;
    opts;
    WS;
    backoff;
    tracker = new SeqTracker();
    pending = new Map();
    outbox = new Map();
    watched = new Set();
    lastTyping = new Map();
    ws = null;
    current = "idle";
    sessionInfo = null;
    nextId = 1;
    chain = Promise.resolve();
    heartbeat;
    reconnectTimer;
    goawayTimer;
    openTimer;
    goawayPending = false;
    lastRx = 0;
    badTokens = 0;
    firstConnect;
    constructor(opts) {
        super();
        this.opts = opts;
        const WS = opts.WebSocket ?? globalThis.WebSocket;
        if (!WS) {
            throw new TernError("bad_request", "no WebSocket available: use Node ≥ 22 (or node --experimental-websocket), or pass options.WebSocket");
        }
        this.WS = WS;
        this.backoff = new Backoff(opts.reconnect === false ? { maxAttempts: 0 } : opts.reconnect);
        this.wsUrl = /^wss?:\/\//i.test(opts.url) ? opts.url : httpBase(opts.url).replace(/^http/i, "ws") + "/ws";
        this.http = new TernHttp({ url: opts.url, token: opts.token, fetch: opts.fetch });
    }
    /** The connection state. */
    get state() {
        return this.current;
    }
    /** The authenticated user, once connected. */
    get user() {
        return this.sessionInfo?.user;
    }
    /** The current session, once connected. */
    get session() {
        return this.sessionInfo;
    }
    /** Connects and authenticates; resolves with the first session. */
    connect() {
        if (this.current === "closed")
            return Promise.reject(new TernError("closed", "client is closed"));
        if (this.current === "open" && this.sessionInfo)
            return Promise.resolve(this.sessionInfo);
        return new Promise((resolve, reject) => {
            const prev = this.firstConnect;
            this.firstConnect = {
                resolve: (s) => { prev?.resolve(s); resolve(s); },
                reject: (e) => { prev?.reject(e); reject(e); },
            };
            if (this.current === "idle")
                void this.open();
        });
    }
    /** Closes for good with a clean WebSocket close (1000). Unacked sends are rejected. */
    async close() {
        if (this.current === "closed")
            return;
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
        if (!ws)
            return;
        await new Promise((resolve) => {
            const t = setTimeout(resolve, 1000);
            ws.onclose = () => { clearTimeout(t); resolve(); };
            try {
                ws.close(1000, "bye");
            }
            catch {
                resolve();
            }
        });
    }
    /**
     * Sends a message. Resolves with the ack once it is stored; while the
     * client is disconnected it waits in the outbox and is re-sent (same
     * `cmid`) after reconnecting, until acked or refused for good.
     */
    send(msg) {
        if (this.current === "closed")
            return Promise.reject(new TernError("closed", "client is closed"));
        if ((msg.to === undefined) === (msg.conv === undefined)) {
            return Promise.reject(new TernError("bad_request", "give exactly one of to / conv"));
        }
        const cmid = msg.cmid ?? newCmid();
        const frame = { type: "send", cmid, body: msg.body };
        if (msg.to !== undefined)
            frame.to = msg.to;
        if (msg.conv !== undefined)
            frame.conv = msg.conv;
        if (msg.kind)
            frame.kind = msg.kind;
        if (msg.meta)
            frame.meta = msg.meta;
        return new Promise((resolve, reject) => {
            const entry = { cmid, frame, resolve, reject };
            this.outbox.set(cmid, entry);
            this.transmit(entry);
        });
    }
    /** The `cmid`s of sends not acknowledged yet. */
    unacked() {
        return [...this.outbox.keys()];
    }
    /** Your conversations, most recent first. */
    async convs() {
        return (await this.request({ type: "convs" })).items;
    }
    /** One page of history (see `PageQuery`); emits nothing. */
    async sync(conv, q = {}) {
        const r = await this.request({ type: "sync", conv, ...q });
        return { conv, items: r.items, more: r.more };
    }
    /** Moves your read pointer in `conv` to `seq`. */
    async read(conv, seq) {
        await this.request({ type: "read", conv, seq });
    }
    /** Tells the other members you are typing (throttled per conversation). */
    typing(conv) {
        const now = Date.now();
        const last = this.lastTyping.get(conv) ?? 0;
        if (now - last < (this.opts.typingIntervalMs ?? 3000) || this.current !== "open")
            return;
        this.lastTyping.set(conv, now);
        this.sendFrame({ type: "typing", conv });
    }
    /** Watches users' presence: the current state now, `presence` events later (renewed after reconnects). */
    async presence(users) {
        for (const u of users)
            this.watched.add(u);
        return (await this.request({ type: "presence_sub", users })).items;
    }
    /** Stops watching users. */
    async unwatchPresence(users) {
        for (const u of users)
            this.watched.delete(u);
        await this.request({ type: "presence_unsub", users });
    }
    /** Application-level ping; resolves with the round trip in ms. */
    async ping() {
        const t = Date.now();
        await this.request({ type: "ping" });
        return Date.now() - t;
    }
    /**
     * Declares that the app has every message of `conv` up to `lastSeq` (e.g.
     * after loading history): later pushes are checked against it, and after a
     * reconnect the client fetches what came after it.
     */
    track(conv, lastSeq) {
        this.tracker.track(conv, lastSeq);
    }
    /** Stops tracking `conv` (e.g. after leaving a group). */
    untrack(conv) {
        this.tracker.untrack(conv);
    }
    /** The highest seq delivered without gaps in `conv`, if tracked. */
    lastSeen(conv) {
        return this.tracker.lastSeen(conv);
    }
    /**
     * Runs `convs`, emits `convs`, and fetches the missed messages of every
     * tracked conversation whose `last_seq` is above what the client has.
     * Done after every reconnect and on a `resync` push.
     */
    resync() {
        return this.serial(async () => {
            const items = await this.convs();
            this.emit("convs", items);
            for (const c of items) {
                const seen = this.tracker.lastSeen(c.conv);
                if (seen !== undefined && c.last_seq > seen)
                    await this.fill(c.conv, seen);
            }
        });
    }
    /** Sends any request frame and resolves with its reply frame. */
    request(frame) {
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
    setState(s) {
        this.current = s.state;
        this.emit("state", s);
    }
    async open() {
        this.setState({ state: this.sessionInfo ? "reconnecting" : "connecting" });
        let token;
        try {
            token = typeof this.opts.token === "function" ? await this.opts.token() : this.opts.token;
        }
        catch (e) {
            this.lost(1006, `token provider failed: ${String(e)}`);
            return;
        }
        if (this.current === "closed")
            return;
        let ws;
        try {
            ws = new this.WS(this.wsUrl, "tern.json");
        }
        catch (e) {
            this.lost(1006, String(e));
            return;
        }
        this.ws = ws;
        this.lastRx = Date.now();
        ws.onopen = () => {
            const auth = { type: "auth", id: 0, token };
            if (this.opts.device)
                auth.device = this.opts.device;
            ws.send(JSON.stringify(auth));
        };
        ws.onmessage = (ev) => {
            if (this.ws !== ws)
                return;
            this.lastRx = Date.now();
            if (typeof ev.data !== "string")
                return;
            let frame;
            try {
                frame = JSON.parse(ev.data);
            }
            catch {
                return;
            }
            this.onFrame(frame);
        };
        // Browsers follow an error with a close event; some WebSocket
        // implementations (Node 20's) do not when the handshake fails.
        ws.onerror = () => {
            if (this.ws === ws)
                this.lost(1006, "connection failed");
        };
        // A handshake or authentication that hangs counts as a failed attempt.
        clearTimeout(this.openTimer);
        this.openTimer = setTimeout(() => {
            if (this.ws === ws && this.current !== "open")
                this.lost(1006, "connect timed out");
        }, this.opts.requestTimeoutMs ?? 15_000);
        ws.onclose = (ev) => {
            if (this.ws === ws)
                this.lost(ev.code, ev.reason || "connection closed");
        };
    }
    /** The socket is gone (or given up on): reconnect or stop. */
    lost(code, reason) {
        const hadSession = this.current === "open";
        this.teardown();
        if (this.current === "closed")
            return;
        if (code === BAD_TOKEN)
            this.badTokens += 1;
        const terminal = code === KICKED ||
            (code === BAD_TOKEN && (typeof this.opts.token !== "function" || this.badTokens >= 2));
        let delay = null;
        if (!terminal) {
            if (this.goawayPending) {
                this.goawayPending = false;
                delay = 0;
                this.backoff.reset();
            }
            else if (hadSession) {
                // First retry of a session that was up: short and jittered.
                this.backoff.reset();
                delay = this.backoff.next();
            }
            else {
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
    teardown() {
        clearInterval(this.heartbeat);
        clearTimeout(this.reconnectTimer);
        clearTimeout(this.goawayTimer);
        clearTimeout(this.openTimer);
        const ws = this.ws;
        this.ws = null;
        if (ws && ws.readyState <= 1) {
            try {
                ws.close(1000, "bye");
            }
            catch { /* already closing */ }
        }
        for (const p of this.pending.values()) {
            clearTimeout(p.timer);
            p.reject(new TernError("disconnected", "connection lost before the reply"));
        }
        this.pending.clear();
        for (const e of this.outbox.values())
            e.reqId = undefined;
    }
    onAuthOk(f) {
        const s = {
            user: String(f.user), session: String(f.session),
            heartbeat_ms: Number(f.heartbeat_ms) || 25_000, server_time: Number(f.server_time),
        };
        this.sessionInfo = s;
        this.badTokens = 0;
        this.backoff.reset();
        this.setState({ state: "open" });
        this.emit("session", s);
        this.heartbeat = setInterval(() => this.beat(s.heartbeat_ms), Math.max(50, s.heartbeat_ms));
        for (const e of this.outbox.values())
            this.transmit(e);
        if (this.watched.size > 0) {
            this.presence([...this.watched]).then((items) => items.forEach((i) => this.emit("presence", i)), () => { });
        }
        this.resync().catch(() => { });
        this.firstConnect?.resolve(s);
        this.firstConnect = undefined;
    }
    /** Heartbeat: a `ping`, or give up on a server silent for three periods. */
    beat(heartbeatMs) {
        if (Date.now() - this.lastRx > heartbeatMs * 3) {
            this.lost(1006, "server silent for three heartbeats");
            return;
        }
        this.sendFrame({ type: "ping" });
    }
    sendFrame(f) {
        try {
            this.ws?.send(JSON.stringify(f));
        }
        catch {
            // The close event reports it.
        }
    }
    // ---- incoming frames ----
    onFrame(f) {
        if (f.type === "auth_ok")
            return this.onAuthOk(f);
        if (f.type === "error" && (f.id === 0 || f.close !== undefined) && this.current !== "open") {
            return; // the auth failure; its close code follows
        }
        if (typeof f.id === "number" && f.id !== 0) {
            const p = this.pending.get(f.id);
            if (p) {
                this.pending.delete(f.id);
                clearTimeout(p.timer);
                if (f.type === "error")
                    p.reject(frameError(f));
                else
                    p.resolve(f);
                return;
            }
            for (const e of this.outbox.values()) {
                if (e.reqId === f.id)
                    return this.onSendReply(e, f);
            }
            return;
        }
        switch (f.type) {
            case "msg": {
                const { type: _t, ...m } = f;
                void this.serial(() => this.deliver(m));
                return;
            }
            case "receipt":
                void this.serial(async () => this.emit("receipt", { conv: String(f.conv), user: String(f.user), seq: Number(f.seq) }));
                return;
            case "typing":
                this.emit("typing", { conv: String(f.conv), user: String(f.user) });
                return;
            case "presence":
                for (const i of f.items ?? [])
                    this.emit("presence", i);
                return;
            case "group": {
                const ev = f;
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
                this.resync().catch(() => { });
                return;
            case "error":
                this.emit("error", frameError(f));
                return;
            default:
                return; // pong, and push types added later
        }
    }
    onGoaway(reconnectMs) {
        this.emit("goaway", { reconnect_ms: reconnectMs });
        clearTimeout(this.goawayTimer);
        this.goawayTimer = setTimeout(() => {
            this.goawayPending = true;
            this.lost(1001, "goaway");
        }, goawayDelay(reconnectMs));
    }
    // ---- sends ----
    transmit(e) {
        if (this.current !== "open" || !this.ws || e.reqId !== undefined)
            return;
        e.reqId = this.nextId++;
        this.sendFrame({ ...e.frame, id: e.reqId });
    }
    onSendReply(e, f) {
        e.reqId = undefined;
        if (f.type === "ack") {
            this.outbox.delete(e.cmid);
            const ack = { conv: String(f.conv), seq: Number(f.seq), mid: String(f.mid), ts: Number(f.ts), cmid: e.cmid };
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
    serial(fn) {
        const run = this.chain.then(fn);
        this.chain = run.catch(() => undefined);
        return run;
    }
    /** Emits `m` if new; fills a gap before it first. */
    async deliver(m) {
        const v = this.tracker.accept(m.conv, m.seq);
        if (v.kind === "duplicate")
            return;
        if (v.kind !== "gap") {
            this.emit("message", m);
            return;
        }
        try {
            await this.fill(m.conv, v.after, m.seq);
        }
        catch {
            return; // not recorded: the next gap or reconnect fetches it again
        }
        this.offerFilled(m);
    }
    offerFilled(m) {
        const v = this.tracker.accept(m.conv, m.seq);
        if (v.kind === "gap") {
            // The server has nothing in between: step over the hole.
            this.tracker.track(m.conv, m.seq - 1);
            this.tracker.accept(m.conv, m.seq);
        }
        else if (v.kind === "duplicate") {
            return;
        }
        this.emit("message", m);
    }
    /** Fetches `after+1 …` page by page (below `upto` when given), emitting in order. */
    async fill(conv, after, upto) {
        const limit = this.opts.syncPageSize ?? 100;
        for (;;) {
            const page = await this.sync(conv, { after, limit });
            for (const m of page.items) {
                if (upto !== undefined && m.seq >= upto)
                    break;
                this.offerFilled(m);
            }
            const last = page.items.at(-1)?.seq;
            if (!page.more || last === undefined || last <= after || (upto !== undefined && last >= upto))
                return;
            after = last;
        }
    }
}
function frameError(f) {
    return new TernError(String(f.code ?? "internal"), String(f.message ?? "error"), {
        retryAfterMs: typeof f.retry_after_ms === "number" ? f.retry_after_ms : undefined,
    });
}
/** A fresh client message id (a UUID where available). */
export function newCmid() {
    const c = globalThis.crypto;
    if (c?.randomUUID)
        return c.randomUUID();
    return `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}
