-- tern schema v1 (PostgreSQL): users, conversations with their gap-free seq
-- counter, memberships with read pointers, messages, groups.

CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    banned        BOOLEAN NOT NULL DEFAULT FALSE,
    last_seen     BIGINT
);

CREATE TABLE conversations (
    conv       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    last_seq   BIGINT NOT NULL DEFAULT 0,
    last_ts    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE conv_members (
    conv      TEXT NOT NULL REFERENCES conversations (conv) ON DELETE CASCADE,
    username  TEXT NOT NULL,
    read_seq  BIGINT NOT NULL DEFAULT 0,
    role      TEXT NOT NULL DEFAULT 'member',
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (conv, username)
);

CREATE INDEX conv_members_by_user ON conv_members (username);

CREATE TABLE messages (
    conv   TEXT NOT NULL REFERENCES conversations (conv) ON DELETE CASCADE,
    seq    BIGINT NOT NULL,
    mid    TEXT NOT NULL,
    sender TEXT NOT NULL,
    body   TEXT NOT NULL,
    kind   TEXT NOT NULL,
    ts     BIGINT NOT NULL,
    cmid   TEXT NOT NULL,
    meta   TEXT,
    PRIMARY KEY (conv, seq),
    CONSTRAINT messages_sender_cmid UNIQUE (sender, cmid)
);

CREATE TABLE groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
