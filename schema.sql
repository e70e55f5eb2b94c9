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
-- reply_to_id is the message of the same group this one answers (no
-- foreign key: rows go only with their whole group; see migration 0009).
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
    reply_to_id        TEXT,
    UNIQUE (group_id, seq)
);
CREATE UNIQUE INDEX messages_by_client_id ON messages (group_id, sender_id, client_id)
    WHERE client_id IS NOT NULL;
CREATE UNIQUE INDEX messages_by_change ON messages (group_id, change_seq);

-- The personal file store. doc_id is the integer key the search index
-- uses (declared, so VACUUM cannot renumber it); id is the public ULID.
-- sha256 names the bytes in the blob store; several files (of anyone) may
-- share them. owner_id has no ON DELETE: removing a user must release
-- their blobs and take them out of the search index first
-- (file_index.drop).
CREATE TABLE files (
    doc_id                INTEGER PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,
    owner_id              TEXT NOT NULL REFERENCES users (id),
    name                  TEXT NOT NULL,
    size                  INTEGER NOT NULL CHECK (size >= 0),
    content_type          TEXT NOT NULL,
    sha256                TEXT NOT NULL REFERENCES blobs (sha256),
    searchable            INTEGER NOT NULL,
    not_searchable_reason TEXT,
    index_truncated       INTEGER NOT NULL DEFAULT 0,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);
CREATE INDEX files_by_owner ON files (owner_id, id);
CREATE INDEX files_by_sha256 ON files (sha256);

-- The indexed name and text of each searchable file (what the index was
-- given: removing an entry needs exactly those values). With the owner
-- token it is file_docs, the external content of every search shard.
CREATE TABLE file_texts (
    doc_id INTEGER PRIMARY KEY REFERENCES files (doc_id),
    name   TEXT NOT NULL,
    body   TEXT NOT NULL
);
CREATE VIEW file_docs AS
    SELECT t.doc_id AS doc_id, 'u' || lower(f.owner_id) AS otok, t.name AS name, t.body AS body
    FROM file_texts AS t JOIN files AS f ON f.doc_id = t.doc_id;

-- The search shards (gortc/repositories/file_index.py): FTS5 tables
-- file_shard_<id> (otok, name, body) over file_docs, which the repository
-- creates when it first needs one, so they are not in this file. A
-- 'shared' shard holds the files of many owners, an 'own' shard those of
-- one big owner. file_count and text_bytes count the indexed files and the
-- bytes of their names and texts; reserved_* is the room the owners of a
-- shared shard hold in it (the sum of theirs), which its limits bound.
CREATE TABLE search_shards (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('shared', 'own')),
    owner_id       TEXT UNIQUE REFERENCES users (id),
    file_count     INTEGER NOT NULL DEFAULT 0 CHECK (file_count >= 0),
    text_bytes     INTEGER NOT NULL DEFAULT 0 CHECK (text_bytes >= 0),
    reserved_files INTEGER NOT NULL DEFAULT 0 CHECK (reserved_files >= 0),
    reserved_bytes INTEGER NOT NULL DEFAULT 0 CHECK (reserved_bytes >= 0),
    CHECK ((kind = 'own') = (owner_id IS NOT NULL))
);

-- Which shard holds each owner's files (from their first searchable file),
-- their counts, and the room they hold in a shared shard (0 in their own).
CREATE TABLE file_search_owners (
    owner_id       TEXT PRIMARY KEY REFERENCES users (id),
    shard_id       INTEGER NOT NULL REFERENCES search_shards (id),
    file_count     INTEGER NOT NULL DEFAULT 0 CHECK (file_count >= 0),
    text_bytes     INTEGER NOT NULL DEFAULT 0 CHECK (text_bytes >= 0),
    reserved_files INTEGER NOT NULL DEFAULT 0 CHECK (reserved_files >= 0),
    reserved_bytes INTEGER NOT NULL DEFAULT 0 CHECK (reserved_bytes >= 0)
);
CREATE INDEX file_search_owners_by_shard ON file_search_owners (shard_id);

-- Search over message bodies (gortc/repositories/message_index.py): the
-- content is the messages table itself, so snippet() reads messages.body
-- and nothing is stored twice; the repository keeps it current in the
-- transaction that writes a message.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    body,
    content = 'messages',
    content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Search over people (gortc/repositories/user_index.py): the search keys
-- (folded, padded names) of enabled users, for substring and typo matches.
CREATE VIRTUAL TABLE users_fts USING fts5(
    user_id UNINDEXED,
    username,
    display_name,
    tokenize = 'trigram'
);

-- One row per file a message carries (gortc/repositories/attachments.py).
-- It lets the members of group_id read file_id: group_id is a copy of the
-- message's group, so the access check joins members directly. The rows go
-- with their message: deleting the message for everyone removes them (the
-- access ends), deleting the group cascades through messages. file_id has
-- no foreign key on purpose: when the owner deletes the file, the message
-- keeps listing its id (shown as gone), and ids (ULIDs) are never reused.
CREATE TABLE message_files (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    file_id    TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    position   INTEGER NOT NULL,
    PRIMARY KEY (message_id, file_id)
) WITHOUT ROWID;
CREATE INDEX message_files_by_file ON message_files (file_id, group_id);

-- The nonce of each signed upload URL that has stored its file: a second
-- use is refused. Kept until the URL expires (after that the expiry alone
-- refuses it), then purged with the other expired rows.
CREATE TABLE used_upload_urls (
    nonce      TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;

-- Each user's stream key, never the key itself: it is an HMAC (server
-- secret) of user_id and nonce; key_hash (SHA-256 of the key) finds its
-- owner when OBS presents it. A new nonce retires the old key.
CREATE TABLE stream_keys (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    nonce      TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    title      TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    -- 1: anyone may play the room's HLS without signing in (0010).
    public     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Reactions (gortc/repositories/reactions.py): one row per (message, user,
-- emoji). The rowid keeps the order they were added in, which is the order
-- they are shown (each emoji where it was first used, its users in turn).
CREATE TABLE message_reactions (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);
