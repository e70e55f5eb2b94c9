#!/usr/bin/env bash
# Re-creates every vendored file from the npm registry, checking each
# package's integrity against the registry's own record. Run from the
# repository root: bash static/vendor/vendor.sh (needs npm and tar).
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name version file-in-package destination
FILES=(
  "hls.js 1.7.4 dist/hls.light.min.mjs static/vendor/hls.light.min.mjs"
  "hls.js 1.7.4 dist/hls.worker.js static/vendor/hls.worker.js"
  "hls.js 1.7.4 LICENSE static/vendor/hls.js.LICENSE"
  "markdown-it 15.0.3 dist/browser/markdown-it.esm.min.mjs static/vendor/markdown-it.esm.min.mjs"
  "markdown-it 15.0.3 LICENSE static/vendor/markdown-it.LICENSE"
  "axe-core 4.14.1 axe.min.js tests/vendor/axe.min.js"
  "axe-core 4.14.1 LICENSE tests/vendor/axe-core.LICENSE"
)

for entry in "${FILES[@]}"; do
  read -r name version inner destination <<<"$entry"
  tarball="$work/$name-$version.tgz"
  if [ ! -f "$tarball" ]; then
    packed=$(cd "$work" && npm pack --silent "$name@$version")
    [ "$work/$packed" = "$tarball" ] || mv "$work/$packed" "$tarball"
    expected=$(npm view "$name@$version" dist.integrity)
    actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
    [ "$expected" = "$actual" ] || { echo "$name@$version: integrity mismatch" >&2; exit 1; }
    mkdir -p "$work/$name-$version"
    tar xzf "$tarball" -C "$work/$name-$version"
  fi
  cp "$work/$name-$version/package/$inner" "$destination"
  echo "$destination <- $name@$version/$inner"
done
