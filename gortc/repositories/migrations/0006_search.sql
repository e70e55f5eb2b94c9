-- Search over messages and people (see gortc/repositories/message_index.py
-- and user_index.py), filled from the rows already stored.
--
-- messages_fts indexes message bodies; its content is the messages table
-- itself (snippet() reads messages.body), so 'rebuild' indexes every row.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    body,
    content = 'messages',
    content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');

-- users_fts holds the search keys (folded, padded names) of enabled users.
-- gortc_search_key() is entities.name_search.search_key, which gortc
-- registers on the connection that migrates.
CREATE VIRTUAL TABLE users_fts USING fts5(
    user_id UNINDEXED,
    username,
    display_name,
    tokenize = 'trigram'
);
INSERT INTO users_fts (rowid, user_id, username, display_name)
    SELECT rowid, id, gortc_search_key(username), gortc_search_key(display_name)
    FROM users WHERE disabled_at IS NULL;
