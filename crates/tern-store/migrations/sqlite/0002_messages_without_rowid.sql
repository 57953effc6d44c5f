-- messages keyed by (conv, seq) alone (WITHOUT ROWID): the row lives in the
-- primary-key b-tree, so storing a message touches two b-trees (the key and
-- the (sender, cmid) index) instead of three.

CREATE TABLE messages_by_seq (
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
) WITHOUT ROWID;

INSERT INTO messages_by_seq (conv, seq, mid, sender, body, kind, ts, cmid, meta)
SELECT conv, seq, mid, sender, body, kind, ts, cmid, meta FROM messages;

DROP TABLE messages;

ALTER TABLE messages_by_seq RENAME TO messages;

CREATE UNIQUE INDEX messages_sender_cmid ON messages (sender, cmid);
