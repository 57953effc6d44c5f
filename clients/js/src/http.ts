/** The HTTP API (`/api/v1`): accounts, history, groups, presence. */

import { TernError } from "./errors.js";
import type { Ack, ConvSummary, Group, MessagePage, PageQuery, PresenceItem } from "./types.js";

/** A token, or a function that returns a current one (for refresh). */
export type TokenSource = string | (() => string | Promise<string>);

export interface HttpOptions {
  /** Server base URL, e.g. `http://127.0.0.1:8080` (a `ws://…/ws` URL works too). */
  url: string;
  /** The bearer token for authenticated calls. */
  token?: TokenSource;
  /** A `fetch` implementation (default: the global one). */
  fetch?: typeof fetch;
}

export interface Login {
  token: string;
  expires_at: number;
  user: string;
}

/** The base `http(s)://host[:port]` of a server URL given as http(s) or ws(s). */
export function httpBase(url: string): string {
  let u = url.trim().replace(/\/+$/, "");
  u = u.replace(/^ws(s?):\/\//i, "http$1://");
  return u.replace(/\/ws$/, "");
}

const enc = encodeURIComponent;

export class TernHttp {
  readonly base: string;
  private token?: TokenSource;
  private readonly fetchFn: typeof fetch;

  constructor(opts: HttpOptions) {
    this.base = httpBase(opts.url);
    this.token = opts.token;
    const f = opts.fetch ?? globalThis.fetch;
    if (!f) throw new TernError("bad_request", "no fetch() available: pass options.fetch");
    this.fetchFn = f.bind(globalThis);
  }

  /** Replaces the token used by authenticated calls. */
  setToken(token: TokenSource | undefined): void {
    this.token = token;
  }

  /** Calls `method path` with an optional JSON body; parses the JSON answer. */
  async request<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth) {
      const t = typeof this.token === "function" ? await this.token() : this.token;
      if (!t) throw new TernError("unauthorized", "no token: log in first");
      headers["authorization"] = `Bearer ${t}`;
    }
    let res: Response;
    try {
      res = await this.fetchFn(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new TernError("unavailable", `cannot reach ${this.base}: ${String(e)}`);
    }
    const text = await res.text();
    let json: unknown = undefined;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string; retry_after_ms?: number } } | undefined)?.error;
      throw new TernError(err?.code ?? "internal", err?.message ?? `HTTP ${res.status}`, {
        status: res.status,
        retryAfterMs: err?.retry_after_ms,
      });
    }
    return json as T;
  }

  /** Creates a built-in account. */
  register(username: string, password: string): Promise<{ user: string }> {
    return this.request("POST", "/api/v1/register", { username, password }, false);
  }

  /** Logs in; the token is also kept for this object's later calls. */
  async login(username: string, password: string): Promise<Login> {
    const r = await this.request<Login>("POST", "/api/v1/login", { username, password }, false);
    this.token = r.token;
    return r;
  }

  me(): Promise<{ user: string; created_at: number }> {
    return this.request("GET", "/api/v1/me");
  }

  async conversations(): Promise<ConvSummary[]> {
    return (await this.request<{ items: ConvSummary[] }>("GET", "/api/v1/conversations")).items;
  }

  /** History of a conversation, paged like `sync`. */
  async history(conv: string, q: PageQuery = {}): Promise<MessagePage> {
    const p = new URLSearchParams();
    if (q.after !== undefined) p.set("after", String(q.after));
    if (q.before !== undefined) p.set("before", String(q.before));
    if (q.limit !== undefined) p.set("limit", String(q.limit));
    const qs = p.toString();
    const r = await this.request<{ items: MessagePage["items"]; more: boolean }>(
      "GET",
      `/api/v1/conversations/${enc(conv)}/messages${qs ? "?" + qs : ""}`,
    );
    return { conv, items: r.items, more: r.more };
  }

  /** Moves the read pointer. */
  async markRead(conv: string, seq: number): Promise<void> {
    await this.request("POST", `/api/v1/conversations/${enc(conv)}/read`, { seq });
  }

  /** Sends over HTTP (pushed to every online session, the sender's too). */
  async sendMessage(msg: { to?: string; conv?: string; cmid: string; body: string; kind?: string; meta?: unknown }): Promise<Ack> {
    const ack = await this.request<Omit<Ack, "cmid">>("POST", "/api/v1/messages", msg);
    return { ...ack, cmid: msg.cmid };
  }

  presence(user: string): Promise<PresenceItem> {
    return this.request("GET", `/api/v1/users/${enc(user)}/presence`);
  }

  createGroup(name: string, members: string[] = []): Promise<Group> {
    return this.request("POST", "/api/v1/groups", { name, members });
  }

  async groups(): Promise<Group[]> {
    return (await this.request<{ items: Group[] }>("GET", "/api/v1/groups")).items;
  }

  group(id: string): Promise<Group> {
    return this.request("GET", `/api/v1/groups/${enc(id)}`);
  }

  renameGroup(id: string, name: string): Promise<Group> {
    return this.request("PATCH", `/api/v1/groups/${enc(id)}`, { name });
  }

  async deleteGroup(id: string): Promise<void> {
    await this.request("DELETE", `/api/v1/groups/${enc(id)}`);
  }

  addMembers(id: string, users: string[]): Promise<Group> {
    return this.request("POST", `/api/v1/groups/${enc(id)}/members`, { users });
  }

  /** Removes a member (or leaves, when `user` is yourself). */
  async removeMember(id: string, user: string): Promise<void> {
    await this.request("DELETE", `/api/v1/groups/${enc(id)}/members/${enc(user)}`);
  }

  addAdmins(id: string, users: string[]): Promise<Group> {
    return this.request("POST", `/api/v1/groups/${enc(id)}/admins`, { users });
  }

  async removeAdmin(id: string, user: string): Promise<void> {
    await this.request("DELETE", `/api/v1/groups/${enc(id)}/admins/${enc(user)}`);
  }
}
