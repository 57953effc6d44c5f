-- tern schema v1 (SQLite): users, conversations with their gap-free seq
-- counter, memberships with read pointers, messages, groups.

CREATE TABLE users (
    username      TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT,
    created_at    INTEGER NOT NULL,
    banned        INTEGER NOT NULL DEFAULT 0,
    last_seen     INTEGER
) WITHOUT ROWID;

CREATE TABLE conversations (
    conv       TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    last_seq   INTEGER NOT NULL DEFAULT 0,
    last_ts    INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE conv_members (
    conv      TEXT NOT NULL REFERENCES conversations (conv) ON DELETE CASCADE,
    username  TEXT NOT NULL,
    read_seq  INTEGER NOT NULL DEFAULT 0,
    role      TEXT NOT NULL DEFAULT 'member',
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (conv, username)
) WITHOUT ROWID;

CREATE INDEX conv_members_by_user ON conv_members (username);

CREATE TABLE messages (
    conv   TEXT NOT NULL REFERENCES conversations (conv) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    mid    TEXT NOT NULL,
    sender TEXT NOT NULL,
    body   TEXT NOT NULL,
    kind   TEXT NOT NULL,
    ts     INTEGER NOT NULL,
    cmid   TEXT NOT NULL,
    meta   TEXT,
    PRIMARY KEY (conv, seq)
);

CREATE UNIQUE INDEX messages_sender_cmid ON messages (sender, cmid);

CREATE TABLE groups (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
