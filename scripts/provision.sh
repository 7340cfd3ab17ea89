#!/usr/bin/env bash
# What `npm test` needs from the system, installed when missing (Debian's
# packages): real peers (openssl, curl), loopback capture (tcpdump), load
# generators for the serving benchmark (wrk, h2load), and what the UML
# harness needs on the host (iproute2, patchelf, kmod); then tlslite-ng (PyPI)
# in .cache/py for the record-layer probes. Root, or sudo, for the packages.
set -euo pipefail
cd "$(dirname "$0")/.."

provision_packages() {
  local packages=(openssl curl tcpdump iproute2 patchelf kmod ca-certificates wrk nghttp2-client)
  command -v python3 >/dev/null || packages+=(python3 python3-venv)
  local missing=()
  for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if ! command -v apt-get >/dev/null; then
    echo "[provision] missing ${missing[*]}, and no apt-get here: install them by hand" >&2
    return 1
  fi
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "[provision] missing ${missing[*]}: run as root or install sudo" >&2; return 1; }
    sudo=(sudo)
  fi
  echo "[provision] apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# tlslite-ng builds the records no TLS library sends (__test__/probes).
provision_tlslite() {
  local venv=.cache/py
  if [[ -x $venv/bin/python ]] && "$venv/bin/python" -c 'import tlslite' 2>/dev/null; then return 0; fi
  echo "[provision] tlslite-ng into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'tlslite-ng==0.8.2'
}

provision_packages
provision_tlslite
