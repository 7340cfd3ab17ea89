#!/usr/bin/env bash
# The fuzz targets in fuzz/ (the post-handshake record rules; the
# handshake's record-exact reads), each for SECONDS (default 20, the smoke
# `npm test` runs; `npm run fuzz` runs longer). cargo-fuzz is installed into
# .cache on first use; without a sanitizer the stable toolchain builds them.
# New inputs go to a scratch corpus: fuzz/corpus/ changes only by hand
# (`cargo fuzz cmin`). A crash fails the run and is kept in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
tools=$PWD/.cache/cargo-fuzz
if [[ ! -x $tools/bin/cargo-fuzz ]]; then
  echo "[fuzz] installing cargo-fuzz into .cache/cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet --root "$tools"
fi
export PATH=$tools/bin:$PATH
cd fuzz
for target in control_records record_boundaries; do
  scratch=$(mktemp -d)
  log=$(mktemp)
  echo "[fuzz] $target: ${seconds}s from fuzz/corpus/$target"
  if ! cargo fuzz run --sanitizer none "$target" "$scratch" "corpus/$target" -- \
    -max_total_time="$seconds" >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "[fuzz] $target FAILED; the input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
  grep -E "^Done [0-9]+ runs" "$log" | sed "s/^/[fuzz] $target: /"
  rm -rf "$scratch" "$log"
done
