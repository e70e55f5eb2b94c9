-- Files attached to messages, and upload URLs already used.

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
