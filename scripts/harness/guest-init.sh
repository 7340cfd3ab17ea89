#!/bin/bash
# PID 1 of the User-Mode Linux guest (root = the host's / over hostfs).
# The runner passes KTLS_HARNESS_JOB=<dir> and KTLS_HARNESS_MODULES=<dir with
# <uname -r>/ in it> on the kernel command line (they reach us as env). <dir> holds
#   job.env  (written by the runner: exports, cwd, cmd array)
# and receives
#   log      (the command's output, also sent to the console)
#   status   (the command's exit status; 97 = kTLS unavailable, 98 = bad job)
# Mounts made here live in the guest only; the host filesystem is shared
# read-write, so this script never deletes anything.
set -uo pipefail
export PATH=/root/.cargo/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
# UML 7.2 panics tearing down an io_uring ring (io_ring_exit_work, "Segfault
# with no mm"); Node 22+'s libuv uses io_uring for files. Keep libuv on epoll
# and its thread pool, as on kernels without io_uring.
export UV_USE_IO_URING=0

say() { echo "[guest] $*"; }

finish() {
  echo "$1" > "$KTLS_HARNESS_JOB/status"
  sync
  halt -f || echo o > /proc/sysrq-trigger
  sleep 10
}

mount_if_absent() {
  local type=$1 dir=$2
  mountpoint -q "$dir" || mount -t "$type" "$type" "$dir"
}

mount_pseudo_fs() {
  mount -t proc proc /proc
  mount -t sysfs sysfs /sys
  # A private /dev, so /dev/shm and /dev/pts do not land on the host's.
  if grep -qw devtmpfs /proc/filesystems; then
    mount_if_absent devtmpfs /dev
    mkdir -p /dev/shm /dev/pts
    mount_if_absent devpts /dev/pts
  fi
  mount -t tmpfs tmpfs /dev/shm
  mount -t tmpfs tmpfs /run
}

# modprobe looks in /lib/modules/$(uname -r), which the host may lack, and the
# package ships modules elsewhere: give modprobe (ours and the kernel's
# on-demand requests) a guest-only root under /run.
setup_modprobe() {
  mkdir -p /run/ktls/lib/modules
  mount --bind "$KTLS_HARNESS_MODULES" /run/ktls/lib/modules
  printf '#!/bin/sh\nexec /sbin/modprobe -d /run/ktls "$@"\n' > /run/ktls/modprobe
  chmod +x /run/ktls/modprobe
  echo /run/ktls/modprobe > /proc/sys/kernel/modprobe
}

load_modules() {
  setup_modprobe
  ip link set lo up
  if ! /run/ktls/modprobe tls; then
    say "FATAL: 'modprobe tls' failed on $(uname -r): kTLS unavailable, not running the suite"
    return 1
  fi
  # Ciphers the kernel would request on demand; loaded early so a missing one shows here.
  local m
  for m in gcm ccm ctr ghash-generic aes chacha20poly1305 chacha20 poly1305; do
    /run/ktls/modprobe -q "$m" 2>/dev/null || true
  done
  say "kernel $(uname -r); modules: $(awk '{print $1}' /proc/modules | sort | tr '\n' ' ')"
}

# For the runner's report: which kernel ran, and how long it took to get here.
report_boot() {
  uname -r > "$KTLS_HARNESS_JOB/kernel"
  cut -d' ' -f1 /proc/uptime > "$KTLS_HARNESS_JOB/boot-seconds"
}

run_job() {
  # The kernel hands init TERM=linux, which makes node tools print ASCII symbols.
  export HOME=/root TERM=dumb
  local cmd=()
  # shellcheck source=/dev/null
  source "$KTLS_HARNESS_JOB/job.env" && (( ${#cmd[@]} )) || return 98
  # After the job's exports, so the host cannot turn these off.
  KTLS_HARNESS_KERNEL=$(uname -r)
  # KTLS_HARNESS_GUEST: tests may change this disposable kernel's state
  # (unload a module); they never do that on a host.
  export KTLS_HARNESS_KERNEL KTLS_REQUIRE=1 KTLS_HARNESS_GUEST=1
  say "running in $PWD: ${cmd[*]}"
  "${cmd[@]}" < /dev/null 2>&1 | tee "$KTLS_HARNESS_JOB/log"
  return "${PIPESTATUS[0]}"
}

main() {
  if [[ -z "${KTLS_HARNESS_JOB:-}" || ! -f "$KTLS_HARNESS_JOB/job.env" ]]; then
    say "FATAL: no job (KTLS_HARNESS_JOB='${KTLS_HARNESS_JOB:-}')"
    halt -f
  fi
  mount_pseudo_fs
  local status=0
  report_boot
  if load_modules; then
    run_job || status=$?
  else
    status=97
  fi
  say "exit status $status"
  finish "$status"
}

main
