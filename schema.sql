-- gortc database schema: the one truth about tables.
--
-- A new database is created from this file and stamped with the latest
-- migration number (PRAGMA user_version). An older database is brought here
-- by the numbered files in gortc/repositories/migrations/; a test checks
-- that both roads end at the same tables, columns and indexes.
--
-- Ids are opaque strings (ULIDs: sortable by creation time). Timestamps are
-- RFC 3339 UTC text of fixed width, so they sort and compare as text.

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name   TEXT NOT NULL DEFAULT '',
    password_hash  TEXT NOT NULL,
    is_admin       INTEGER NOT NULL DEFAULT 0,
    email_verified INTEGER NOT NULL DEFAULT 0,
    disabled_at    TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    avatar_sha256  TEXT REFERENCES blobs (sha256),
    avatar_type    TEXT
);

-- A sign-in: a family of refresh tokens (kind 'token') or a browser's
-- cookie session (kind 'cookie'). Revoking it ends every token of the family.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('token', 'cookie')),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT,
    user_agent  TEXT NOT NULL DEFAULT '',
    ip          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Refresh tokens are stored as SHA-256 of the token, never the token.
-- used_at is set when the token is rotated; presenting it again is reuse.
-- access_jti is the access token issued with it, revoked with the family.
CREATE TABLE refresh_tokens (
    token_hash        TEXT PRIMARY KEY,
    session_id        TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    access_jti        TEXT NOT NULL,
    access_expires_at TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    used_at           TEXT
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

-- Access tokens (JWT ids) that stop working before they expire.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);

-- Content-addressed blobs on disk, counted so the last reference removes one.
CREATE TABLE blobs (
    sha256   TEXT PRIMARY KEY,
    size     INTEGER NOT NULL,
    refcount INTEGER NOT NULL CHECK (refcount >= 0)
) WITHOUT ROWID;

-- Single-use mailed tokens (email verification, password reset), hashed.
CREATE TABLE one_time_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    email      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) WITHOUT ROWID;
CREATE INDEX one_time_tokens_by_user ON one_time_tokens (user_id, purpose);

-- Invite codes for the 'invite' sign-up policy, hashed, single use.
CREATE TABLE invites (
    id         TEXT PRIMARY KEY,
    code_hash  TEXT NOT NULL UNIQUE,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    note       TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_by    TEXT REFERENCES users (id) ON DELETE SET NULL,
    used_at    TEXT
);

-- A conversation: a group, or the direct conversation of two users (kind
-- 'direct', unique per pair through direct_key). last_seq is the seq of its
-- newest message; it is bumped in the transaction that stores messages.
-- last_change counts every creation, edit and deletion of its messages
-- (last in the table because migration 0004 added it).
CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('group', 'direct')),
    owner_id    TEXT REFERENCES users (id) ON DELETE SET NULL,
    direct_key  TEXT UNIQUE,
    last_seq    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    last_change INTEGER NOT NULL DEFAULT 0
);

-- read_seq: the newest message this member has read.
CREATE TABLE members (
    group_id  TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at TEXT NOT NULL,
    read_seq  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members (user_id, group_id);

CREATE TABLE invitations (
    id         TEXT PRIMARY KEY,
    group_id   TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    inviter_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    UNIQUE (group_id, user_id)
);
CREATE INDEX invitations_by_user ON invitations (user_id);

-- seq grows by one per message in its group, with no gaps. A deleted
-- message keeps its row (body emptied, deleted_at set) so seq stays whole.
-- client_id is the sender's own id for the message: a send repeating it
-- (same group and sender) gives back this row instead of a second one.
-- change_seq and created_change_seq are the group's last_change at the
-- message's latest change and at its creation: sync by change reads
-- messages_by_change from a client's last known change onwards.
CREATE TABLE messages (
    id                 TEXT PRIMARY KEY,
    group_id           TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    seq                INTEGER NOT NULL,
    sender_id          TEXT REFERENCES users (id) ON DELETE SET NULL,
    body               TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    edited_at          TEXT,
    deleted_at         TEXT,
    client_id          TEXT,
    change_seq         INTEGER NOT NULL DEFAULT 0,
    created_change_seq INTEGER NOT NULL DEFAULT 0,
    UNIQUE (group_id, seq)
);
CREATE UNIQUE INDEX messages_by_client_id ON messages (group_id, sender_id, client_id)
    WHERE client_id IS NOT NULL;
CREATE UNIQUE INDEX messages_by_change ON messages (group_id, change_seq);
