# gortc container image: Debian bookworm's python3, gortc installed from
# this source tree into a virtual environment, run as an unprivileged user
# with everything it keeps under the /data volume.
#
#   podman build --format docker -t gortc .     (or: docker build -t gortc .)
#   podman run -d -p 8080:8080 -p 1935:1935 -v gortc-data:/data gortc
#
# `make image-test` builds it from a Debian base made locally with
# mmdebstrap (BASE_IMAGE) and smoke-tests it; docs/deploy.md has the rest.
ARG BASE_IMAGE=debian:bookworm-slim

# The build stage: nothing of it but /opt/gortc reaches the image.
FROM ${BASE_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A virtual environment: Debian's python3 refuses system-wide pip installs
# (PEP 668), and the finished environment is one directory to copy.
RUN python3 -m venv /opt/gortc
COPY . /src
# Only where PyPI is reached through a TLS-intercepting proxy: the path of a
# CA bundle (mounted into the build, e.g. podman build -v) for pip to trust.
ARG PIP_CA_BUNDLE=""
# Every dependency has a manylinux wheel (PyAV bundles its own FFmpeg
# libraries), so no compiler is needed. pip compiles the .pyc files here, in
# the image, since the running user cannot write them under /opt.
RUN if [ -n "$PIP_CA_BUNDLE" ]; then export PIP_CERT="$PIP_CA_BUNDLE"; fi \
    && /opt/gortc/bin/pip install --no-cache-dir --disable-pip-version-check /src \
    && /opt/gortc/bin/gortc --version \
    && /opt/gortc/bin/pip uninstall --yes --quiet pip setuptools

FROM ${BASE_IMAGE}
# python3 only: no ffmpeg binary (PyAV's wheel carries the libraries the
# live-streaming remuxer uses), no compiler, no curl (the health check is
# Python's urllib).
# apt-get clean and the .bin caches: debian:bookworm-slim drops them by
# itself, a base made with mmdebstrap does not (80 MB).
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && groupadd --system --gid 10001 gortc \
    && useradd --system --uid 10001 --gid gortc --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin gortc \
    && mkdir /data && chown gortc:gortc /data && chmod 0750 /data
COPY --from=build /opt/gortc /opt/gortc

# Listen on every interface of the container; keep everything under /data.
# Any other setting: GORTC_<SECTION>_<KEY> (see config.toml), e.g.
# GORTC_REDIS_URL, GORTC_SERVER_PUBLIC_URL, GORTC_AUTH_SIGNUP.
ENV PATH=/opt/gortc/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GORTC_SERVER_HOST=0.0.0.0 \
    GORTC_SERVER_PORT=8080 \
    GORTC_SERVER_DATA_DIR=/data

USER gortc
WORKDIR /data
VOLUME /data
# HTTP (web client, API, WebSocket, HLS) and the RTMP ingest. Calls' media
# is UDP on ephemeral ports: see "Calls in a container" in docs/deploy.md.
EXPOSE 8080/tcp 1935/tcp
# /healthz answers 200 when the database (and Redis, if configured) answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GORTC_SERVER_PORT', '8080'), timeout=4)"]
# gortc handles SIGTERM itself (requests finish, sockets get a close frame,
# the database is checkpointed). `docker stop` waits 10 s before SIGKILL,
# no more than server.shutdown_timeout: stop with -t 20 (compose.yaml sets
# stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["gortc"]
CMD ["serve"]
