-- Live streaming: each user's stream key (gortc/repositories/stream_keys.py).
-- The key itself is never stored: it is an HMAC, under a key derived from the
-- server secret, of the user id and nonce (so its owner can be shown it
-- again), and key_hash (SHA-256 of the key) finds its owner when OBS
-- presents it. A new nonce makes a new key and retires the old one.
CREATE TABLE stream_keys (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    nonce      TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    title      TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
) WITHOUT ROWID;
