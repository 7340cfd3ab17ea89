#!/usr/bin/env bash
# Download Debian's User-Mode Linux kernel for KVER into .cache/uml/KVER, without
# touching the system's apt setup, and print two lines on stdout:
#   <path of the ready linux binary>
#   <modules dir, to bind-mount on /lib/modules in the guest>
# Idempotent: a complete cache is reused as is.
set -euo pipefail

usage() { echo "usage: $0 6.1|6.12|7.2" >&2; exit 2; }
log() { echo "[install-uml] $*" >&2; }
die() { log "error: $*"; exit 1; }

repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd; }

# KVER -> Debian suite shipping that user-mode-linux. bullseye (5.10) is not on
# the mirror here, so there is no 5.10.
suite_for() {
  case "$1" in
    6.1) echo bookworm ;;
    6.12) echo trixie ;;
    7.2) echo sid ;;
    *) usage ;;
  esac
}

# The Debian mirror the system already uses (overridable).
debian_mirror() {
  if [[ -n "${KTLS_DEBIAN_MIRROR:-}" ]]; then echo "$KTLS_DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -hoE 'https?://[^ ]*/debian/?( |$)' /etc/apt/sources.list.d/*.sources \
          /etc/apt/sources.list 2>/dev/null | head -n1 | tr -d ' ') || true
  echo "${uri:-http://deb.debian.org/debian}"
}

# Private apt: own sources list, lists and cache; empty dpkg status so nothing
# installed on the host influences resolution.
apt_private() {
  local tool=$1; shift
  "$tool" -q \
    -o Dir::Etc::sourcelist="$APT_DIR/sources.list" -o Dir::Etc::sourceparts=- \
    -o Dir::State::Lists="$APT_DIR/lists" -o Dir::Cache="$APT_DIR/cache" \
    -o Dir::State::status=/dev/null -o APT::Sandbox::User=root \
    -o Acquire::Languages=none "$@"
}

apt_setup() {
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) $SUITE main" \
    > "$APT_DIR/sources.list"
  log "apt-get update ($SUITE, private lists)"
  apt_private apt-get update >&2
}

# Exact candidate version of a package in the private index.
candidate() {
  apt_private apt-cache policy "$1" | awk '/Candidate:/ { print $2 }'
}

# Host tools from Debian, installed if missing: patchelf here, kmod's modprobe
# for the guest (which runs the host's binaries).
ensure_tool() {
  local path=$1 pkg=$2
  [[ -x "$path" ]] && return
  log "installing $pkg (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "$pkg" >&2 ||
    { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "$pkg" >&2; }
}

# Download pkg=version and unpack it into $ROOT.
fetch_and_unpack() {
  local pkg=$1 ver=$2
  log "download $pkg=$ver"
  (cd "$DEB_DIR" && apt_private apt-get download "$pkg=$ver" >&2)
  dpkg-deb -x "$DEB_DIR/${pkg}_${ver//:/%3a}_amd64.deb" "$ROOT"
}

# trixie's and sid's linux.uml need a newer glibc than the host's: point a copy of it at the
# unpacked libc6 (running it through ld.so directly breaks UML's self re-exec).
make_binary() {
  local libdir="$ROOT/usr/lib/x86_64-linux-gnu"
  if [[ -n "$LIBC_VERSION" ]]; then
    ensure_tool /usr/bin/patchelf patchelf
    patchelf --set-interpreter "$libdir/ld-linux-x86-64.so.2" --set-rpath "$libdir" \
      --output "$DIR/linux" "$ROOT/usr/bin/linux.uml"
  else
    cp "$ROOT/usr/bin/linux.uml" "$DIR/linux"
  fi
}

modules_dir() { echo "$ROOT/usr/lib/uml/modules"; }

cache_complete() {
  [[ -f "$STAMP" && -x "$DIR/linux" ]] && grep -qxF "dir=$DIR" "$STAMP"
}

install() {
  rm -rf "${DIR:?}/root" "${DIR:?}/debs" "$DIR/linux" "$STAMP"
  mkdir -p "$ROOT" "$DEB_DIR"
  apt_setup
  UML_VERSION=$(candidate user-mode-linux)
  [[ "$UML_VERSION" == "${KVER}um"* ]] ||
    die "$SUITE offers user-mode-linux '${UML_VERSION:-none}', not ${KVER}.x"
  fetch_and_unpack user-mode-linux "$UML_VERSION"
  LIBC_VERSION=""
  if [[ "$SUITE" != bookworm ]]; then
    LIBC_VERSION=$(candidate libc6)
    fetch_and_unpack libc6 "$LIBC_VERSION"
  fi
  make_binary
  local kernel
  kernel=$(ls "$(modules_dir)")
  [[ -f "$(modules_dir)/$kernel/kernel/net/tls/tls.ko" ]] || die "no tls.ko in $SUITE's package"
  printf 'dir=%s\nsuite=%s\nuser-mode-linux=%s\nlibc6=%s\nkernel=%s\n' \
    "$DIR" "$SUITE" "$UML_VERSION" "${LIBC_VERSION:-host}" "$kernel" > "$STAMP"
  rm -rf "${DIR:?}/debs" "${DIR:?}/apt"  # only the unpacked tree is needed from now on
  log "ready: kernel $kernel from user-mode-linux $UML_VERSION ($SUITE)"
}

main() {
  [[ $# -eq 1 ]] || usage
  KVER=$1
  SUITE=$(suite_for "$KVER")
  DIR="$(repo_root)/.cache/uml/$KVER"
  APT_DIR="$DIR/apt" DEB_DIR="$DIR/debs" ROOT="$DIR/root" STAMP="$DIR/complete"
  mkdir -p "$DIR"
  # Parallel runs share the cache: one installs, the others wait.
  exec 9>"$DIR.lock"
  flock 9
  cache_complete || install
  ensure_tool /sbin/modprobe kmod
  echo "$DIR/linux"
  modules_dir
}

main "$@"
