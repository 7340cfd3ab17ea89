#!/usr/bin/env bash
# Run the kernel suite (or any command) where kTLS really exists: natively if the
# host kernel has it, else inside User-Mode Linux guests, one per kernel in
# KTLS_KERNELS. Exit 0 only if every kernel passed.
#
# Env: KTLS_KERNELS (default "6.1 6.12 7.2"), KTLS_NODE_LINE (run the default suite on another
# Node line, e.g. 24, fetched by scripts/node-line.sh; refused with a command of one's own), KTLS_HARNESS_TIMEOUT (seconds per kernel,
# default 1800), KTLS_HARNESS_FORCE_UML=1 (use guests even if the host has kTLS),
# KTLS_HARNESS_ENV (extra variable names to pass into the guest).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUNS="$REPO/.cache/uml/runs"
KERNEL_CONFIG=ava.kernel.config.mjs
DEFAULT_CMD=(npx ava --config "$KERNEL_CONFIG")
# Variables the guest inherits; its environment is otherwise fresh.
PASS_ENV_RE='^(KTLS_.*|NODE_OPTIONS|NODE_DEBUG|DEBUG|CI|FORCE_COLOR|NO_COLOR|AVA_.*|RUST_BACKTRACE|RUST_LOG|LANG|LC_ALL|TZ)$'

say() { echo "[harness] $*"; }

# Does setsockopt(TCP_ULP, "tls") work here? Needs a connected TCP socket.
host_has_ktls() {
  python3 - <<'PY' 2>/dev/null
import socket
srv = socket.create_server(("127.0.0.1", 0))
cli = socket.create_connection(srv.getsockname())
cli.setsockopt(socket.IPPROTO_TCP, 31, b"tls")  # 31 = TCP_ULP
PY
}

# One folder per run (job, log, status, console); the newest 20 are kept.
new_job_dir() {
  mkdir -p "$RUNS"
  # shellcheck disable=SC2012 # names come from mktemp below
  ls -1dt "$RUNS"/*/ 2>/dev/null | tail -n +20 | xargs -r rm -rf --
  mktemp -d "$RUNS/$1.XXXXXX"
}

# job.env: sourced by guest-init.sh; %q keeps every value literal.
write_job() {
  local job=$1; shift
  local name
  {
    printf 'cd -- %q\n' "$PWD"
    for name in $(compgen -e); do
      [[ "$name" =~ $PASS_ENV_RE || " ${KTLS_HARNESS_ENV:-} " == *" $name "* ]] || continue
      printf 'export %s=%q\n' "$name" "${!name}"
    done
    printf 'cmd=(%s)\n' "$(printf '%q ' "$@")"
  } > "$job/job.env"
}

# Boot one guest. Its console (boot messages and the command's output) goes to
# console.log, followed live by tail; stdin is /dev/null and stdout a file, so
# UML never touches the host terminal's settings.
# A UML guest's process is one host process whose every guest page range is
# a host mapping: Node 24 (V8's heap, a heap snapshot) passes the default
# limit of 65,530, and the host's mmap then fails with ENOMEM, which UML
# answers by killing the guest process (SIGKILL, "fix_range_common").
MAP_COUNT_NEEDED=1048576
raise_map_count() {
  local now
  now=$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 0)
  (( now < MAP_COUNT_NEEDED )) || return 0
  if echo "$MAP_COUNT_NEEDED" 2>/dev/null >/proc/sys/vm/max_map_count; then
    say "vm.max_map_count raised from $now to $MAP_COUNT_NEEDED (UML maps each guest page range on the host)"
  else
    say "warning: vm.max_map_count is $now and cannot be raised here; a guest process with many mappings may be killed (sysctl -w vm.max_map_count=$MAP_COUNT_NEEDED)"
  fi
}

boot_uml() {
  local linux=$1 modules=$2 job=$3 status=0 tail_pid
  : > "$job/console.log"  # exists before tail starts
  timeout --kill-after=15 "${KTLS_HARNESS_TIMEOUT:-1800}" \
    "$linux" mem=2G rootfstype=hostfs rootflags=/ rw quiet \
      init="$HERE/guest-init.sh" con=null ssl=null con0=fd:0,fd:1 \
      umid=ktls uml_dir="$job" \
      KTLS_HARNESS_JOB="$job" KTLS_HARNESS_MODULES="$modules" \
    < /dev/null > "$job/console.log" 2>&1 &
  GUEST_PID=$!
  tail -s 0.2 -n +1 -f --pid="$GUEST_PID" "$job/console.log" &
  tail_pid=$!
  wait "$GUEST_PID" || status=$?
  wait "$tail_pid" || true
  GUEST_PID=""
  return "$status"
}

# UML puts itself in its own session, out of reach of the terminal's Ctrl-C:
# pass the signal on (timeout forwards it to UML, which shuts down).
stop_guest() {
  if [[ -n "${GUEST_PID:-}" ]]; then
    say "interrupted: stopping the guest"
    kill -TERM "$GUEST_PID" 2>/dev/null || true
    wait || true
  fi
  exit 130
}

# "N tests passed" etc. from ava's summary; 0 when absent.
ava_count() {
  local what=$1 log=$2
  sed 's/\x1b\[[0-9;]*m//g' "$log" |
    grep -oE "[0-9]+ (tests? )?$what" | tail -n1 | grep -oE '^[0-9]+' || echo 0
}

# ava prints "N tests passed" only when nothing failed; otherwise count the ticks.
ava_passed() {
  local log=$1
  if grep -qE '[0-9]+ tests? passed' "$log"; then ava_count passed "$log"; return; fi
  grep -E '^\s+(✔|√) ' "$log" | grep -cvF '[expected fail]' || true
}

has_ava_summary() {
  grep -qE '[0-9]+ (tests? (passed|failed|skipped)|known failures?)' "$1"
}

# Report one run and decide: exit status, then ava's counts (no tests, or any
# skipped test, fails: with KTLS_REQUIRE=1 nothing may be skipped).
judge() {
  local kernel=$1 status=$2 log=$3 counted=$4
  if [[ -f "$log" ]] && { [[ $counted == 1 ]] || has_ava_summary "$log"; }; then
    local passed failed skipped known todo
    passed=$(ava_passed "$log") failed=$(ava_count failed "$log")
    skipped=$(ava_count skipped "$log") known=$(ava_count 'known failures?' "$log")
    todo=$(ava_count todo "$log")
    say "kernel $kernel: $passed tests passed, $failed failed, $skipped skipped, $known known failure, $todo todo (exit $status)"
    if (( passed + failed + known == 0 )); then
      say "FAIL on $kernel: the suite ran no tests"; return 1
    fi
    if (( skipped > 0 )); then
      say "FAIL on $kernel: $skipped test(s) skipped although kTLS was required (KTLS_REQUIRE=1)"; return 1
    fi
  else
    say "kernel $kernel: exit $status (no ava summary: judged by exit status only)"
  fi
  [[ $status == 0 ]] || { say "FAIL on $kernel: exit status $status"; return 1; }
}

run_native() {
  local counted=$1; shift
  local job kernel status=0
  kernel=$(uname -r)
  job=$(new_job_dir native)
  say "kTLS available natively on $kernel"
  KTLS_REQUIRE=1 KTLS_HARNESS_KERNEL=$kernel "$@" 2>&1 | tee "$job/log" || status=${PIPESTATUS[0]}
  # Keep the command's own status when it failed.
  judge "$kernel" "$status" "$job/log" "$counted" || return $((status ? status : 1))
}

run_kernel() {
  local kver=$1 counted=$2; shift 2
  local paths linux modules job status=0 start kernel
  paths=$(bash "$HERE/install-uml.sh" "$kver") || { say "FAIL on $kver: install-uml.sh failed"; return 1; }
  { read -r linux; read -r modules; } <<<"$paths"
  job=$(new_job_dir "$kver")
  write_job "$job" "$@"
  say "booting UML $kver (job $job)"
  start=$SECONDS
  boot_uml "$linux" "$modules" "$job" || status=$?
  kernel=$(cat "$job/kernel" 2>/dev/null || echo "$kver (did not boot)")
  say "kernel $kernel: init reached after $(cat "$job/boot-seconds" 2>/dev/null || echo ?) s, total $((SECONDS - start)) s"
  if [[ $status == 124 || $status == 137 ]]; then
    say "FAIL on $kernel: timed out after ${KTLS_HARNESS_TIMEOUT:-1800} s"; return 1
  fi
  if [[ ! -f "$job/status" ]]; then
    say "FAIL on $kernel: no status file (guest crashed or never ran the job; see $job/console.log)"; return 1
  fi
  status=$(cat "$job/status")
  [[ $status != 97 ]] || { say "FAIL on $kernel: kTLS unavailable in the guest (modprobe tls failed)"; return 1; }
  judge "$kernel" "$status" "$job/log" "$counted" || { echo "$kver $job/log" >>"$FAILED_LOGS"; return 1; }
}

# CI keeps only the tail of the output: repeat each failed kernel's failing
# tests (ava's ✘ lines and its detail blocks) after the last kernel ran.
print_failures() {
  local kver log
  while read -r kver log; do
    [[ -f $log ]] || continue
    say "failures on $kver (from $log):"
    sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '✘' | head -n 20
    sed 's/\x1b\[[0-9;]*m//g' "$log" | sed -n '/^  ─$/,$p' | head -n 120
  done <"$FAILED_LOGS"
}

main() {
  local counted=0 cmd=("$@") failed=() kver
  if [[ ${#cmd[@]} == 0 ]]; then cmd=("${DEFAULT_CMD[@]}") counted=1; fi
  # A command of one's own picks its own node; the variable would be silently ignored.
  if [[ $counted == 0 && -n "${KTLS_NODE_LINE:-}" ]]; then
    say "FAIL: KTLS_NODE_LINE applies to the default suite only; for a command of your own, run it as: bash scripts/node-line.sh $KTLS_NODE_LINE <script> [args]"
    return 2
  fi
  if [[ $counted == 1 && -n "${KTLS_NODE_LINE:-}" ]]; then
    # Fetched here: the guest has only loopback networking.
    bash "$REPO/scripts/node-line.sh" "$KTLS_NODE_LINE" --version >/dev/null
    cmd=(bash "$REPO/scripts/node-line.sh" "$KTLS_NODE_LINE" "$REPO/node_modules/ava/entrypoints/cli.mjs" --config "$KERNEL_CONFIG")
  fi
  # ava ignores a missing --config file and runs its default test set instead.
  if [[ $counted == 1 && ! -f "$KERNEL_CONFIG" ]]; then
    say "FAIL: $PWD/$KERNEL_CONFIG not found"; return 1
  fi
  if [[ "${KTLS_HARNESS_FORCE_UML:-0}" != 1 ]] && host_has_ktls; then
    run_native "$counted" "${cmd[@]}"
    return
  fi
  say "no kTLS on host kernel $(uname -r): using User-Mode Linux"
  trap stop_guest INT TERM HUP
  raise_map_count
  FAILED_LOGS=$(mktemp)
  trap 'rm -f "$FAILED_LOGS"' EXIT
  for kver in ${KTLS_KERNELS:-6.1 6.12 7.2}; do
    run_kernel "$kver" "$counted" "${cmd[@]}" || failed+=("$kver")
  done
  if (( ${#failed[@]} )); then
    print_failures
    say "FAILED on: ${failed[*]}"; return 1
  fi
  say "all kernels passed: ${KTLS_KERNELS:-6.1 6.12 7.2}"
}

main "$@"
