#!/usr/bin/env bash
# What a user gets from `npm install ktls`: the packed packages installed into
# an empty project by an npm whose PATH has no cargo and no C compiler, then a
# TLS round trip and `npx ktls probe`. Twice: with this platform's binary
# package (the native path), and without it (node:tls behind the same API).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "[install-test] packing"
mapfile -t tarballs < <(node scripts/pack.mjs "$work/pack" | grep '\.tgz$')
main=$(printf '%s\n' "${tarballs[@]}" | grep '/ktls-[0-9]')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

# A PATH with node, npm and a shell only: nothing to build a binary with.
mkdir -p "$work/bin"
for tool in node npm npx sh env; do ln -s "$(command -v "$tool")" "$work/bin/$tool"; done
bare() { env -i HOME="$work/home" PATH="$work/bin" npm_config_cache="$work/npm-cache" "$@"; }
if bare sh -c 'command -v cargo || command -v cc || command -v gcc' >/dev/null; then
  echo "[install-test] the bare PATH still has a compiler" >&2
  exit 1
fi

run() {
  local expect=$1; shift
  local project=$work/$expect
  mkdir -p "$project"
  echo '{"name":"install-test","version":"1.0.0","private":true}' > "$project/package.json"
  echo "[install-test] $expect: npm install $(basename -a "$@" | tr '\n' ' ')"
  (cd "$project" && bare npm install --no-audit --no-fund --loglevel=error "$@")
  (cd "$project" && bare node "$repo/scripts/install-test/roundtrip.mjs" "$expect" "$work/key.pem" "$work/cert.pem")
  (cd "$project" && bare npx --no-install ktls probe) | sed "s/^/[install-test] $expect probe: /"
}

run native "${tarballs[@]}"
# Only the main package: npm looks for the platform package in the registry,
# finds none (it is not published from here), and goes on without it.
run fallback "$main"
