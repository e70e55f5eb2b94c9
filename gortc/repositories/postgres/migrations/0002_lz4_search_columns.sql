-- Search ranks every match of a query, so each match's tsvector is read and
-- decompressed: lz4 does that several times faster than the default pglz.
-- It applies to values written from now on (a VACUUM FULL of the tables, or
-- `gortc reindex`, rewrites the others). A server built without lz4 keeps
-- pglz.
DO $$
BEGIN
    IF 'lz4' = ANY (
        SELECT unnest(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'
    ) THEN
        ALTER TABLE file_texts
            ALTER COLUMN search SET COMPRESSION lz4,
            ALTER COLUMN body SET COMPRESSION lz4;
        ALTER TABLE messages ALTER COLUMN body_search SET COMPRESSION lz4;
    END IF;
END
$$;
