/**
 * The wire types of the tern protocol (docs/protocol.md), as the JSON codec
 * carries them. Every timestamp is in milliseconds since the Unix epoch.
 */

/** A conversation id: `d:<a>:<b>` (direct, a ≤ b) or `g:<group id>`. */
export type ConvId = string;

/** A stored message (pushes, `sync` pages, HTTP history, `convs.last`). */
export interface Message {
  conv: ConvId;
  seq: number;
  mid: string;
  from: string;
  body: string;
  kind: "text" | "system" | "e2e";
  ts: number;
  cmid: string;
  meta?: Record<string, unknown>;
}

/** The answer to a send: the stored message's place. */
export interface Ack {
  conv: ConvId;
  seq: number;
  mid: string;
  ts: number;
  /** The client message id the send carried. */
  cmid: string;
}

/** One entry of `convs` / `GET /conversations`. */
export interface ConvSummary {
  conv: ConvId;
  kind: "direct" | "group";
  /** Direct conversations: the other party (yourself for notes to self). */
  peer?: string;
  /** Groups: the group's name. */
  name?: string;
  last_seq: number;
  read_seq: number;
  unread: number;
  last?: Message;
}

/** A page of history. */
export interface MessagePage {
  conv: ConvId;
  items: Message[];
  more: boolean;
}

export interface PresenceItem {
  user: string;
  online: boolean;
  last_seen: number | null;
}

export interface Group {
  id: string;
  name: string;
  owner: string;
  admins: string[];
  members: string[];
  created_at: number;
}

export interface Receipt {
  conv: ConvId;
  user: string;
  seq: number;
}

export interface Typing {
  conv: ConvId;
  user: string;
}

export interface GroupEvent {
  event: "member_added" | "member_removed" | "updated" | "deleted";
  group: Group;
  users: string[];
}

/** The session the server opened (`auth_ok`). */
export interface Session {
  user: string;
  session: string;
  heartbeat_ms: number;
  server_time: number;
}

/** Paging of `sync` and HTTP history: at most one of `after` / `before`. */
export interface PageQuery {
  after?: number;
  before?: number;
  limit?: number;
}

/** A frame as it travels: an object with a `type`. */
export type Frame = { type: string; id?: number | string } & Record<string, unknown>;
