#!/usr/bin/env bash
# Builds gortc's container image with podman from a Debian bookworm base made
# here with mmdebstrap (no container registry needed), then smoke-tests it
# from the host over loopback: /healthz, the web client, sign-up and sign-in,
# RTMP in and HLS out, a restart that keeps the /data volume, the image's own
# HEALTHCHECK, a graceful stop; then the same through compose.yaml with
# Redis. Everything it starts is removed. Run as root: `make image` (build) or
# `make image-test` (build + smoke test). Needs: apt-get install -y mmdebstrap
# podman (runc where podman's default runtime cannot run here; podman-compose
# for the compose.yaml step).
#
# Settings (environment):
#   IMAGE       the image to build             (default localhost/gortc:dev)
#   BASE_IMAGE  the base; made if it is ours   (default localhost/debian-bookworm-mmdebstrap:latest)
#   PORT        host port for the smoke test   (default 18080)
#   RTMP_PORT   host port for its RTMP ingest  (default 11935)
#   SMOKE       1: run the smoke test          (default 1)
#   COMPOSE     1: then compose.yaml too, if podman-compose is installed
#               (default 1; its Redis image is built here from the same base)
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${IMAGE:-localhost/gortc:dev}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian-bookworm-mmdebstrap:latest}
PORT=${PORT:-18080}
RTMP_PORT=${RTMP_PORT:-11935}
SMOKE=${SMOKE:-1}
COMPOSE=${COMPOSE:-1}
WORK=build/image
NAME=gortc-image-test-$$
mkdir -p "$WORK"

say() { printf '\n--- %s\n' "$*"; }
elapsed() { echo "$(( $(date +%s) - $1 )) s"; }

for tool in podman mmdebstrap; do
    command -v "$tool" >/dev/null || { echo "image: $tool is missing (apt-get install -y mmdebstrap podman)" >&2; exit 2; }
done

# 1. The base: Debian's minbase variant, the packages from the mirror this
#    machine's apt already uses (its deb822 sources on stdin), with the same
#    slimming as debian:bookworm-slim (no man pages, docs or translations).
if [[ "$BASE_IMAGE" == localhost/debian-bookworm-mmdebstrap:* ]] && ! podman image exists "$BASE_IMAGE"; then
    say "base image $BASE_IMAGE with mmdebstrap"
    started=$(date +%s)
    sources=/etc/apt/sources.list.d/debian.sources
    [[ -r $sources ]] || sources=/etc/apt/sources.list
    mmdebstrap --variant=minbase --mode=root --format=tar \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-include=/usr/share/locale/locale.alias' \
        --aptopt='APT::Install-Recommends "false"' \
        bookworm "$WORK/base.tar" - < "$sources"
    podman import --change 'CMD ["bash"]' "$WORK/base.tar" "$BASE_IMAGE" >/dev/null
    rm -f "$WORK/base.tar"
    echo "base image made in $(elapsed "$started"): $(podman image inspect --format '{{.Size}}' "$BASE_IMAGE") bytes"
fi

# Podman's defaults first. Where they cannot run a container (this was
# written in a VM sandbox whose cgroup v1/v2 hybrid crun refuses, and where
# even root may not set RLIMIT_NPROC above 32768 or RLIMIT_NOFILE above its
# own hard limit, nor hold CAP_SYS_RESOURCE), fall back to runc and
# to limits no higher than this shell's own.
RUNTIME=()
RUN_LIMITS=()
if ! podman run --rm "$BASE_IMAGE" true >/dev/null 2>"$WORK/podman-probe.err"; then
    command -v runc >/dev/null || { echo "image: podman cannot run a container here and runc is missing (apt-get install -y runc)" >&2; exit 2; }
    nproc=$(ulimit -Hu); [[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
    RUNTIME=(--runtime runc)
    RUN_LIMITS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=$nproc:$nproc")
    echo "podman's defaults cannot run a container here ($(tail -n 1 "$WORK/podman-probe.err"));"
    echo "using: ${RUNTIME[*]} ${RUN_LIMITS[*]}"
    podman "${RUNTIME[@]}" run --rm "${RUN_LIMITS[@]}" "$BASE_IMAGE" true
fi

# 2. The image. --network host: apt and pip inside the build reach Debian's
#    mirror and PyPI the way this machine does. --format docker keeps the
#    HEALTHCHECK (the OCI format has no such field).
say "image $IMAGE from $BASE_IMAGE"
started=$(date +%s)
# This machine reaches PyPI through a proxy that re-signs TLS with a CA only
# its own bundle trusts: lend pip that bundle (read-only, for the build
# stage only; nothing of it ends up in the image).
CA_ARGS=()
if [[ -n "${PIP_CERT:-}" && -r "${PIP_CERT}" ]]; then
    CA_ARGS=(-v "$PIP_CERT:/run/build-ca.crt:ro" --build-arg PIP_CA_BUNDLE=/run/build-ca.crt)
fi
podman "${RUNTIME[@]}" build --network host --format docker "${RUN_LIMITS[@]}" "${CA_ARGS[@]}" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$IMAGE" -f Dockerfile .
echo "image built in $(elapsed "$started"): $(podman image inspect --format '{{.Size}}' "$IMAGE") bytes"
[[ "$SMOKE" == 1 ]] || exit 0

# 3. Smoke test, everything on loopback.
say "smoke test: container $NAME on 127.0.0.1:$PORT"
cleanup() {
    podman rm -f -t 15 "$NAME" >/dev/null 2>&1 || true
    podman volume rm -f "$NAME-data" >/dev/null 2>&1 || true
}
trap cleanup EXIT
podman volume create "$NAME-data" >/dev/null
podman "${RUNTIME[@]}" run -d "${RUN_LIMITS[@]}" --name "$NAME" -p "127.0.0.1:$PORT:8080" -p "127.0.0.1:$RTMP_PORT:1935" \
    -v "$NAME-data:/data" "$IMAGE" >/dev/null
python3 deploy/image/smoke.py "http://127.0.0.1:$PORT" --rtmp-port "$RTMP_PORT"

say "restart: the account is still there (the /data volume)"
podman "${RUNTIME[@]}" restart -t 20 "$NAME" >/dev/null
python3 deploy/image/smoke.py "http://127.0.0.1:$PORT" --sign-in-only

say "the image's HEALTHCHECK"
podman "${RUNTIME[@]}" healthcheck run "$NAME" && echo "healthcheck: healthy"

say "user and data directory inside the container"
podman "${RUNTIME[@]}" exec "$NAME" sh -c 'id; ls -ld /data; ls /data'
podman "${RUNTIME[@]}" exec "$NAME" gortc user list --data-dir /data

say "stop (SIGTERM, graceful)"
started=$(date +%s)
podman "${RUNTIME[@]}" stop -t 20 "$NAME" >/dev/null
echo "stopped in $(elapsed "$started"), exit status $(podman inspect --format '{{.State.ExitCode}}' "$NAME")"
podman logs "$NAME" 2>&1 | tail -n 5
trap - EXIT
cleanup
say "image test passed"

# 4. compose.yaml: gortc and Redis, as an operator starts them. No registry
#    is reachable, so its Redis comes from an image built here from the same
#    Debian base with Debian's redis-server (the official image's layout:
#    redis-server in /data as user redis); an override file names it and our
#    image, and lowers the file-descriptor limit to what this machine allows.
[[ "$COMPOSE" == 1 ]] || exit 0
if ! command -v podman-compose >/dev/null; then
    echo "compose: podman-compose is not installed (apt-get install -y podman-compose); not run"
    exit 0
fi
say "compose.yaml with podman-compose"
podman "${RUNTIME[@]}" build --network host "${RUN_LIMITS[@]}" --build-arg BASE_IMAGE="$BASE_IMAGE" \
    -t localhost/redis-debian:bookworm -f - . <<'CONTAINERFILE'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && install -d -o redis -g redis /data
WORKDIR /data
USER redis
CMD ["redis-server"]
CONTAINERFILE
cat > "$WORK/compose.override.yaml" <<OVERRIDE
services:
  gortc:
    image: $IMAGE
    environment:
      # With Redis, a live room's hls_url is built from the public URL.
      GORTC_SERVER_PUBLIC_URL: http://127.0.0.1:$PORT
    ulimits:
      nofile: $(ulimit -Hn)
  redis:
    image: localhost/redis-debian:bookworm
OVERRIDE
PROJECT=gortc-compose-test-$$
compose() {
    GORTC_HTTP_PORT="127.0.0.1:$PORT" GORTC_RTMP_PORT="127.0.0.1:$RTMP_PORT" \
        podman-compose --podman-args "${RUNTIME[*]}" --podman-run-args "${RUN_LIMITS[*]}" \
        -p "$PROJECT" -f compose.yaml -f "$WORK/compose.override.yaml" "$@"
}
compose_down() {
    compose down -v >/dev/null 2>&1 || true
    # podman-compose 1.0 leaves the project's network behind.
    podman network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
}
trap compose_down EXIT
# The single-instance services by name: podman-compose 1.0 ignores the
# "cluster" profile and would start its services too.
compose up -d gortc redis >"$WORK/compose-up.log" 2>&1 || { cat "$WORK/compose-up.log"; exit 1; }
python3 deploy/image/smoke.py "http://127.0.0.1:$PORT" --rtmp-port "$RTMP_PORT" --redis
say "compose test passed"
