PYTHON ?= python

.PHONY: install test test-postgres lint typecheck check bench bench-startup bench-auth bench-fanout bench-persist bench-persist-postgres bench-search bench-calls bench-whep bench-live bench-dist bench-object-store run dist

install:
	$(PYTHON) -m pip install -e '.[test]'

test:
	$(PYTHON) -m pytest

# The whole suite with every app on PostgreSQL instead of SQLite (Debian's
# postgresql; the tests start their own server). Tests that read SQLite's own
# tables are skipped; about twenty minutes.
test-postgres:
	GORTC_TEST_DATABASE=postgresql $(PYTHON) -m pytest tests/e2e tests/integration

lint:
	$(PYTHON) -m ruff check gortc tests bench deploy
	$(PYTHON) -m ruff format --check gortc tests bench deploy

typecheck:
	$(PYTHON) -m mypy

check: lint typecheck test

run:
	$(PYTHON) -m gortc serve

# Hostile input, a long run: the hostile-input tests, whose hypothesis
# fuzzers of WebSocket frames (against a real gortc serve), SDP offers (WHIP,
# call.join), RTMP chunks and AMF0 draw FUZZ_EXAMPLES examples each instead
# of the suite's 100-200.
FUZZ_EXAMPLES ?= 2000
.PHONY: fuzz-protocols
fuzz-protocols:
	GORTC_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PYTHON) -m pytest -q -p no:cacheprovider \
		-o timeout=3600 \
		tests/e2e/test_hostile_websocket.py tests/e2e/test_hostile_sdp.py \
		tests/unit/test_rtmp_chunks.py tests/unit/test_rtmp_amf0.py

# schemathesis against a real server, every check, signed in with a Bearer
# token and then with the session cookie; API_FUZZ_EXAMPLES cases per
# operation and phase (the suite runs 5). Prints each run's report and the
# totals. 300 took 26 minutes on a loaded 2-core machine (43,881 cases).
API_FUZZ_EXAMPLES ?= 300
.PHONY: fuzz
fuzz:
	$(PYTHON) -m tests.e2e.api_fuzz --max-examples $(API_FUZZ_EXAMPLES)

# One executable, dist/gortc, that runs on a machine with no Python (same
# architecture, glibc at least as new as the build machine's, zlib); about
# 26 s of CPU, a minute or two.
dist:
	$(PYTHON) -c "import PyInstaller" 2>/dev/null || $(PYTHON) -m pip install --quiet -e '.[dist]'
	$(PYTHON) deploy/binary/build.py

bench: bench-startup bench-auth bench-persist bench-fanout bench-search bench-calls bench-live bench-whep bench-dist bench-object-store

bench-startup:
	$(PYTHON) bench/startup.py

# What a rate-limit check costs, in memory and in Redis (needs redis-server;
# about a minute).
.PHONY: bench-ratelimit
bench-ratelimit:
	$(PYTHON) bench/rate_limit_bench.py

bench-auth:
	$(PYTHON) bench/auth_requests.py

.PHONY: bench-logs
bench-logs:
	$(PYTHON) bench/log_formats.py

# Needs node, npm, golang-go and golang-github-gorilla-websocket-dev
# (see bench/fanout/README.md); about ten minutes.
bench-fanout:
	cd bench/fanout && npm ci --silent
	$(PYTHON) bench/fanout.py

# gortc's fan-out through 1, then 3 instances sharing a redis-server, a
# PostgreSQL and a data directory (all started here); needs node, npm,
# redis-server and postgresql; about ten minutes.
.PHONY: bench-fanout-instances
bench-fanout-instances:
	cd bench/fanout && npm ci --silent
	$(PYTHON) bench/fanout_instances.py

bench-persist:
	$(PYTHON) bench/persist.py

# The same on SQLite, then on PostgreSQL (Debian's postgresql), in one run.
bench-persist-postgres:
	$(PYTHON) bench/persist.py --postgresql

# The PostgreSQL driver: SQLite, then PostgreSQL through asyncpg (shipped),
# then with the message batches through psycopg 3 (bench/psycopg_store.py,
# the same statements), in one run, with ratios to SQLite; about two minutes.
.PHONY: bench-persist-drivers
bench-persist-drivers:
	$(PYTHON) -c "import psycopg_pool" 2>/dev/null || $(PYTHON) -m pip install --quiet 'psycopg[binary]>=3.2' 'psycopg-pool>=3.2'
	$(PYTHON) bench/persist.py --drivers

# Generates a 100,000-file corpus (~500 MB) and compares gortc's personal
# search with tantivy-py on it; about fifteen minutes.
bench-search:
	$(PYTHON) -m pip install --quiet tantivy
	$(PYTHON) bench/search_bench.py

# Personal search p95 on PostgreSQL against SQLite: FILES files of one user
# and half as many of 50 others, seeded through the repositories into both
# (PostgreSQL started here); half an hour to an hour at 100,000.
FILES ?= 100000
.PHONY: bench-search-postgres
bench-search-postgres:
	$(PYTHON) bench/search_postgres.py --files $(FILES)

# Group video calls: gortc's SFU against Janus's VideoRoom, same bots, same run
# (VP8 360p, calls of 2, 4 and 6; about three minutes). Needs Debian's janus
# and a C compiler (apt-get install -y janus gcc); every codec and resolution:
# python bench/calls_bench.py --all (about nine minutes).
bench-calls:
	$(PYTHON) bench/calls_bench.py

# WHIP in, WHEP out: glass-to-glass delay of a live room over WebRTC (~20 s).
bench-whep:
	$(PYTHON) bench/whep_latency.py

# Live HLS played through an instance that relays it from the ingesting one
# (two instances, redis-server, ffmpeg); about 1.5 minutes.
.PHONY: bench-live-relay
bench-live-relay:
	$(PYTHON) bench/live_relay.py --viewers 1,50,200 --seconds 12

# Live streaming: gortc's RTMP ingest + HLS against nginx-rtmp, the same ffmpeg
# publishers (1080p30 H.264 + AAC) in the same run: 1, 10 and 20 at once (about
# five minutes). Needs ffmpeg and Debian's nginx and libnginx-mod-rtmp (apt-get
# install -y ffmpeg nginx libnginx-mod-rtmp); with 50 publishers too:
# python bench/live_bench.py --streams 1,10,20,50 (about seven minutes).
bench-live:
	$(PYTHON) bench/live_bench.py

# Container image (Dockerfile) with podman, from a Debian bookworm base made
# here with mmdebstrap; image-test also runs it, and compose.yaml with
# podman-compose, and checks them from the host over loopback (what is run:
# docs/deploy.md). As root, with apt-get install -y podman mmdebstrap runc
# podman-compose; about five minutes the first time.
.PHONY: image image-test
image:
	SMOKE=0 bash deploy/image/build-and-test.sh

image-test:
	bash deploy/image/build-and-test.sh

# The single binary: size, build time, and start-up to ready against
# python -m gortc serve, twice each (about two minutes).
# Uploads and downloads, files on disk vs in SeaweedFS (docs/benchmarks.md).
bench-object-store:
	$(PYTHON) bench/object_store_bench.py

bench-dist:
	$(PYTHON) -c "import PyInstaller" 2>/dev/null || $(PYTHON) -m pip install --quiet -e '.[dist]'
	$(PYTHON) bench/dist_start.py

# Crash safety: 25 cycles of SIGKILL under WebSocket and REST sends, uploads
# and downloads, each followed by a restart that must find every acknowledged
# message and file (no seq gap, no blob without its file nor file without its
# blob); three to five minutes. The seed is printed: --seed N replays a run,
# e.g. $(PYTHON) bench/crash_cycles.py --seed 2 --cycles 40.
.PHONY: crash soak
crash:
	$(PYTHON) bench/crash_cycles.py --cycles 25

# Soak: 10,000 WebSockets (2,500 users, 4 client processes) with steady chat
# for 10 minutes, a call of two aiortc bots and an ffmpeg RTMP stream every
# 30 s; fails if RSS grows > 10 % after the 2-minute warm-up or tasks, fds or
# threads keep growing. About 12 minutes with set-up; needs ffmpeg and an fd
# hard limit of at least ~11,000 (ulimit -Hn). A quick look:
# $(PYTHON) bench/soak.py --minutes 6 --connections 2000 --users 500
soak:
	$(PYTHON) bench/soak.py --minutes 10
