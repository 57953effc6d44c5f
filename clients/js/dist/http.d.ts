/** The HTTP API (`/api/v1`): accounts, history, groups, presence. */
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
export declare function httpBase(url: string): string;
export declare class TernHttp {
    readonly base: string;
    private token?;
    private readonly fetchFn;
    constructor(opts: HttpOptions);
    /** Replaces the token used by authenticated calls. */
    setToken(token: TokenSource | undefined): void;
    /** Calls `method path` with an optional JSON body; parses the JSON answer. */
    request<T>(method: string, path: string, body?: unknown, auth?: boolean): Promise<T>;
    /** Creates a built-in account. */
    register(username: string, password: string): Promise<{
        user: string;
    }>;
    /** Logs in; the token is also kept for this object's later calls. */
    login(username: string, password: string): Promise<Login>;
    me(): Promise<{
        user: string;
        created_at: number;
    }>;
    conversations(): Promise<ConvSummary[]>;
    /** History of a conversation, paged like `sync`. */
    history(conv: string, q?: PageQuery): Promise<MessagePage>;
    /** Moves the read pointer. */
    markRead(conv: string, seq: number): Promise<void>;
    /** Sends over HTTP (pushed to every online session, the sender's too). */
    sendMessage(msg: {
        to?: string;
        conv?: string;
        cmid: string;
        body: string;
        kind?: string;
        meta?: unknown;
    }): Promise<Ack>;
    presence(user: string): Promise<PresenceItem>;
    createGroup(name: string, members?: string[]): Promise<Group>;
    groups(): Promise<Group[]>;
    group(id: string): Promise<Group>;
    renameGroup(id: string, name: string): Promise<Group>;
    deleteGroup(id: string): Promise<void>;
    addMembers(id: string, users: string[]): Promise<Group>;
    /** Removes a member (or leaves, when `user` is yourself). */
    removeMember(id: string, user: string): Promise<void>;
    addAdmins(id: string, users: string[]): Promise<Group>;
    removeAdmin(id: string, user: string): Promise<void>;
}
