-- Live streaming: a streamer may make their room public (PUT /api/v1/live/public),
-- so that anyone plays its HLS without signing in and its hls_url carries
-- no viewer token. Off by default: rooms are for signed-in users.
ALTER TABLE stream_keys ADD COLUMN public INTEGER NOT NULL DEFAULT 0;
