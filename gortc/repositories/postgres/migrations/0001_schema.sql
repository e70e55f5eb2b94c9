-- gortc on PostgreSQL: the whole schema as of SQLite's version 10.
--
-- The same tables, columns and rules as ../../../schema.sql (SQLite), in
-- PostgreSQL's own types: timestamptz for times, boolean for flags, bigint
-- for counters. Ids stay opaque text (ULIDs). Case-insensitive uniqueness
-- (SQLite's COLLATE NOCASE) is a unique index on lower(); usernames and
-- emails are ASCII-lowered by the use cases already, so lower() agrees.
--
-- Search is PostgreSQL's, not FTS5: messages and files carry a tsvector
-- (GIN-indexed) of their folded text, people a trigram index (pg_trgm) on
-- their search keys. The three extensions ship with PostgreSQL and are
-- trusted: the database owner may create them.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- The text search configuration of every full-text column: PostgreSQL's
-- "simple" dictionary (no stemming, no stop words: a search finds the words
-- typed, as FTS5's unicode61 does on SQLite), with accents folded first
-- (unaccent), so "cafe" finds "Café". The text reaches it already cut into
-- words by gortc (repositories/postgres/search_text.py: runs of letters and
-- digits, as unicode61 cuts), not by PostgreSQL's parser, which would keep
-- "budget.txt" or "a@b.org" whole; so the vectors are written by the
-- repositories, not generated here.
CREATE TEXT SEARCH CONFIGURATION gortc_search (COPY = pg_catalog.simple);
ALTER TEXT SEARCH CONFIGURATION gortc_search
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part,
                      numword, numhword, hword_numpart
    WITH public.unaccent, pg_catalog.simple;

CREATE TABLE blobs (
    sha256   text COLLATE "C" PRIMARY KEY,
    size     bigint NOT NULL,
    refcount bigint NOT NULL CHECK (refcount >= 0)
);

CREATE TABLE users (
    id             text COLLATE "C" PRIMARY KEY,
    username       text NOT NULL,
    email          text NOT NULL,
    display_name   text NOT NULL DEFAULT '',
    password_hash  text NOT NULL,
    is_admin       boolean NOT NULL DEFAULT false,
    email_verified boolean NOT NULL DEFAULT false,
    disabled_at    timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    avatar_sha256  text COLLATE "C" REFERENCES blobs (sha256),
    avatar_type    text,
    -- People search (entities/name_search.py): the folded, padded names;
    -- empty for a disabled user, who is not found.
    search_username     text NOT NULL DEFAULT '',
    search_display_name text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX users_username ON users (lower(username));
CREATE UNIQUE INDEX users_email ON users (lower(email));
-- Username prefixes, compared bytewise whatever the database's locale.
CREATE INDEX users_username_prefix ON users (lower(username) COLLATE "C");
CREATE INDEX users_search ON users
    USING gin (search_username gin_trgm_ops, search_display_name gin_trgm_ops);

CREATE TABLE sessions (
    id          text COLLATE "C" PRIMARY KEY,
    user_id     text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('token', 'cookie')),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    user_agent  text NOT NULL DEFAULT '',
    ip          text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash        text COLLATE "C" PRIMARY KEY,
    session_id        text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    access_jti        text COLLATE "C" NOT NULL,
    access_expires_at timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    used_at           timestamptz
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE revoked_tokens (
    jti        text COLLATE "C" PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);

CREATE TABLE one_time_tokens (
    token_hash text COLLATE "C" PRIMARY KEY,
    user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    email      text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX one_time_tokens_by_user ON one_time_tokens (user_id, purpose);

CREATE TABLE invites (
    id         text COLLATE "C" PRIMARY KEY,
    code_hash  text COLLATE "C" NOT NULL UNIQUE,
    created_by text COLLATE "C" REFERENCES users (id) ON DELETE SET NULL,
    note       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_by    text COLLATE "C" REFERENCES users (id) ON DELETE SET NULL,
    used_at    timestamptz
);

-- last_seq and last_change are bumped in the transaction that stores or
-- changes a message, under the group row's lock: that lock, not a process's
-- own, is what keeps seq gap-free when several instances write at once.
CREATE TABLE groups (
    id          text COLLATE "C" PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('group', 'direct')),
    owner_id    text COLLATE "C" REFERENCES users (id) ON DELETE SET NULL,
    direct_key  text COLLATE "C" UNIQUE,
    last_seq    bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL,
    last_change bigint NOT NULL DEFAULT 0
);

CREATE TABLE members (
    group_id  text COLLATE "C" NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id   text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at timestamptz NOT NULL,
    read_seq  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id, group_id);

CREATE TABLE invitations (
    id         text COLLATE "C" PRIMARY KEY,
    group_id   text COLLATE "C" NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    inviter_id text COLLATE "C" REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (group_id, user_id)
);
CREATE INDEX invitations_by_user ON invitations (user_id);

CREATE TABLE messages (
    id                 text COLLATE "C" PRIMARY KEY,
    group_id           text COLLATE "C" NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    seq                bigint NOT NULL,
    sender_id          text COLLATE "C" REFERENCES users (id) ON DELETE SET NULL,
    body               text NOT NULL,
    created_at         timestamptz NOT NULL,
    edited_at          timestamptz,
    deleted_at         timestamptz,
    client_id          text COLLATE "C",
    change_seq         bigint NOT NULL DEFAULT 0,
    created_change_seq bigint NOT NULL DEFAULT 0,
    reply_to_id        text COLLATE "C",
    -- Message search: the words of the body, rewritten with it.
    body_search        tsvector NOT NULL,
    -- The order messages were stored in, across groups: search's "newest
    -- first" and its page cursor (SQLite's rowid).
    position           bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    UNIQUE (group_id, seq)
);
CREATE UNIQUE INDEX messages_by_client_id ON messages (group_id, sender_id, client_id)
    WHERE client_id IS NOT NULL;
CREATE UNIQUE INDEX messages_by_change ON messages (group_id, change_seq);
CREATE INDEX messages_search ON messages USING gin (body_search);

CREATE TABLE files (
    doc_id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                    text COLLATE "C" NOT NULL UNIQUE,
    owner_id              text COLLATE "C" NOT NULL REFERENCES users (id),
    name                  text NOT NULL,
    size                  bigint NOT NULL CHECK (size >= 0),
    content_type          text NOT NULL,
    sha256                text COLLATE "C" NOT NULL REFERENCES blobs (sha256),
    searchable            boolean NOT NULL,
    not_searchable_reason text,
    index_truncated       boolean NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL
);
CREATE INDEX files_by_owner ON files (owner_id, id);
CREATE INDEX files_by_sha256 ON files (sha256);

-- The indexed name and text of each searchable file. The owner is copied
-- in and leads the GIN index (btree_gin): a search reads the entries of
-- one owner's files only, as SQLite's search shards do, however many files
-- other people keep (a common word costs what it costs in one's own files).
CREATE TABLE file_texts (
    doc_id   bigint PRIMARY KEY REFERENCES files (doc_id) ON DELETE CASCADE,
    owner_id text COLLATE "C" NOT NULL,
    name     text NOT NULL,
    body     text NOT NULL,
    -- The words of the name weigh A, those of the text B: name:/body:
    -- filters select by weight.
    search   tsvector NOT NULL
);
CREATE INDEX file_texts_search ON file_texts USING gin (owner_id, search);

CREATE TABLE message_files (
    message_id text COLLATE "C" NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    file_id    text COLLATE "C" NOT NULL,
    group_id   text COLLATE "C" NOT NULL,
    position   integer NOT NULL,
    PRIMARY KEY (message_id, file_id)
);
CREATE INDEX message_files_by_file ON message_files (file_id, group_id);

CREATE TABLE used_upload_urls (
    nonce      text COLLATE "C" PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE TABLE stream_keys (
    user_id    text COLLATE "C" PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    nonce      text COLLATE "C" NOT NULL,
    key_hash   text COLLATE "C" NOT NULL UNIQUE,
    title      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    public     boolean NOT NULL DEFAULT false
);

-- added_order replaces SQLite's rowid: the order reactions were added in.
CREATE TABLE message_reactions (
    message_id  text COLLATE "C" NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id     text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji       text NOT NULL,
    created_at  timestamptz NOT NULL,
    added_order bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (message_id, user_id, emoji)
);
