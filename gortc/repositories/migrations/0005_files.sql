-- The personal file store and the tables of its search index. The FTS5
-- search shards are created when first needed, not here.

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
