/** The HTTP API (`/api/v1`): accounts, history, groups, presence. */
import { TernError } from "./errors.js";
/** The base `http(s)://host[:port]` of a server URL given as http(s) or ws(s). */
export function httpBase(url) {
    let u = url.trim().replace(/\/+$/, "");
    u = u.replace(/^ws(s?):\/\//i, "http$1://");
    return u.replace(/\/ws$/, "");
}
const enc = encodeURIComponent;
export class TernHttp {
    base;
    token;
    fetchFn;
    constructor(opts) {
        this.base = httpBase(opts.url);
        this.token = opts.token;
        const f = opts.fetch ?? globalThis.fetch;
        if (!f)
            throw new TernError("bad_request", "no fetch() available: pass options.fetch");
        this.fetchFn = f.bind(globalThis);
    }
    /** Replaces the token used by authenticated calls. */
    setToken(token) {
        this.token = token;
    }
    /** Calls `method path` with an optional JSON body; parses the JSON answer. */
    async request(method, path, body, auth = true) {
        const headers = {};
        if (body !== undefined)
            headers["content-type"] = "application/json";
        if (auth) {
            const t = typeof this.token === "function" ? await this.token() : this.token;
            if (!t)
                throw new TernError("unauthorized", "no token: log in first");
            headers["authorization"] = `Bearer ${t}`;
        }
        let res;
        try {
            res = await this.fetchFn(this.base + path, {
                method,
                headers,
                body: body === undefined ? undefined : JSON.stringify(body),
            });
        }
        catch (e) {
            throw new TernError("unavailable", `cannot reach ${this.base}: ${String(e)}`);
        }
        const text = await res.text();
        let json = undefined;
        if (text) {
            try {
                json = JSON.parse(text);
            }
            catch {
                json = undefined;
            }
        }
        if (!res.ok) {
            const err = json?.error;
            throw new TernError(err?.code ?? "internal", err?.message ?? `HTTP ${res.status}`, {
                status: res.status,
                retryAfterMs: err?.retry_after_ms,
            });
        }
        return json;
    }
    /** Creates a built-in account. */
    register(username, password) {
        return this.request("POST", "/api/v1/register", { username, password }, false);
    }
    /** Logs in; the token is also kept for this object's later calls. */
    async login(username, password) {
        const r = await this.request("POST", "/api/v1/login", { username, password }, false);
        this.token = r.token;
        return r;
    }
    me() {
        return this.request("GET", "/api/v1/me");
    }
    async conversations() {
        return (await this.request("GET", "/api/v1/conversations")).items;
    }
    /** History of a conversation, paged like `sync`. */
    async history(conv, q = {}) {
        const p = new URLSearchParams();
        if (q.after !== undefined)
            p.set("after", String(q.after));
        if (q.before !== undefined)
            p.set("before", String(q.before));
        if (q.limit !== undefined)
            p.set("limit", String(q.limit));
        const qs = p.toString();
        const r = await this.request("GET", `/api/v1/conversations/${enc(conv)}/messages${qs ? "?" + qs : ""}`);
        return { conv, items: r.items, more: r.more };
    }
    /** Moves the read pointer. */
    async markRead(conv, seq) {
        await this.request("POST", `/api/v1/conversations/${enc(conv)}/read`, { seq });
    }
    /** Sends over HTTP (pushed to every online session, the sender's too). */
    async sendMessage(msg) {
        const ack = await this.request("POST", "/api/v1/messages", msg);
        return { ...ack, cmid: msg.cmid };
    }
    presence(user) {
        return this.request("GET", `/api/v1/users/${enc(user)}/presence`);
    }
    createGroup(name, members = []) {
        return this.request("POST", "/api/v1/groups", { name, members });
    }
    async groups() {
        return (await this.request("GET", "/api/v1/groups")).items;
    }
    group(id) {
        return this.request("GET", `/api/v1/groups/${enc(id)}`);
    }
    renameGroup(id, name) {
        return this.request("PATCH", `/api/v1/groups/${enc(id)}`, { name });
    }
    async deleteGroup(id) {
        await this.request("DELETE", `/api/v1/groups/${enc(id)}`);
    }
    addMembers(id, users) {
        return this.request("POST", `/api/v1/groups/${enc(id)}/members`, { users });
    }
    /** Removes a member (or leaves, when `user` is yourself). */
    async removeMember(id, user) {
        await this.request("DELETE", `/api/v1/groups/${enc(id)}/members/${enc(user)}`);
    }
    addAdmins(id, users) {
        return this.request("POST", `/api/v1/groups/${enc(id)}/admins`, { users });
    }
    async removeAdmin(id, user) {
        await this.request("DELETE", `/api/v1/groups/${enc(id)}/admins/${enc(user)}`);
    }
}
