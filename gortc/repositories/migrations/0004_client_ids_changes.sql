-- Idempotent sends and a per-group change counter (sync by change).
--
-- messages.client_id: the sender's own id for a message; sending again with
-- the same (group, sender, client_id) gives back the stored message.
-- groups.last_change: every creation, edit and deletion of a message of the
-- group takes its next value; a message keeps the number of its latest
-- change (change_seq) and of its creation (created_change_seq).
--
-- Columns are added at the end (ALTER TABLE can do nothing else), so
-- schema.sql lists them last too. Existing messages get their seq for both
-- numbers and each group's counter starts at its last_seq: before this
-- version nobody held a change number, so any increasing numbering will do.
ALTER TABLE groups ADD COLUMN last_change INTEGER NOT NULL DEFAULT 0;

ALTER TABLE messages ADD COLUMN client_id TEXT;
ALTER TABLE messages ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN created_change_seq INTEGER NOT NULL DEFAULT 0;

UPDATE messages SET change_seq = seq, created_change_seq = seq;
UPDATE groups SET last_change = last_seq;

CREATE UNIQUE INDEX messages_by_client_id ON messages (group_id, sender_id, client_id)
    WHERE client_id IS NOT NULL;
CREATE UNIQUE INDEX messages_by_change ON messages (group_id, change_seq);
