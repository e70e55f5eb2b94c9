-- Mailed tokens, invite codes, and profile pictures in the blob store.
CREATE TABLE blobs (
    sha256   TEXT PRIMARY KEY,
    size     INTEGER NOT NULL,
    refcount INTEGER NOT NULL CHECK (refcount >= 0)
) WITHOUT ROWID;

ALTER TABLE users ADD COLUMN avatar_sha256 TEXT REFERENCES blobs (sha256);
ALTER TABLE users ADD COLUMN avatar_type TEXT;

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
