#!/usr/bin/env bash
# What `npm test` needs from the system, installed when missing (Debian's
# packages): real peers (openssl, curl), loopback capture (tcpdump), load
# generators for the serving benchmark (wrk, h2load), and what the UML
# harness needs on the host (iproute2, patchelf, kmod). Root, or sudo.
set -euo pipefail
packages=(openssl curl tcpdump iproute2 patchelf kmod ca-certificates wrk nghttp2-client)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
if ! command -v apt-get >/dev/null; then
  echo "[provision] missing ${missing[*]}, and no apt-get here: install them by hand" >&2
  exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "[provision] missing ${missing[*]}: run as root or install sudo" >&2; exit 1; }
  sudo=(sudo)
fi
echo "[provision] apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
