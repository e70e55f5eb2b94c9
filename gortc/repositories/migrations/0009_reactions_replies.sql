-- Reactions to messages, and replies.
--
-- message_reactions: one row per (message, user, emoji); the rowid keeps the
-- order they were added in, which is the order reactions are shown (each
-- emoji where it was first used, its users in the order they came). The
-- primary key finds a message's rows, which go with their message.
CREATE TABLE message_reactions (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);

-- messages.reply_to_id: the message (of the same group) this one answers.
-- No foreign key on purpose: a message row is never removed but with its
-- whole group, and ON DELETE SET NULL would need an index on this column to
-- avoid scanning the table once per message removed.
ALTER TABLE messages ADD COLUMN reply_to_id TEXT;
