#!/usr/bin/env bash
# Browser test of hosted mode: the real server with accounts on (a random signing key), no
# --config, a fresh SQLite database and data directory; two organisations sign up in a real
# Chromium, create a project each by uploading files, and must not see each other's; a labeller
# joins by invitation link (frontend/tests/hosted.test.mjs).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin="${CARGO_TARGET_DIR:-$HOME/.cache/lightbulb/target}/release/lightbulb"
if [[ ! -x "$bin" ]]; then
  echo "no server binary at $bin: build it first (cargo build --release)" >&2
  exit 1
fi
work=$(mktemp -d)
port=${LIGHTBULB_TEST_PORT:-5098}
pid=
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
# A fresh signing key each run: 48 hex characters from the kernel's random source.
secret=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
mkdir -p "$work/data"
RUST_LOG=${RUST_LOG:-warn} "$bin" serve --bind "127.0.0.1:$port" --jwt-key "k1:$secret" \
  --data-dir "$work/data" --database-url "sqlite://$work/lb.db?mode=rwc" > "$work/server.log" 2>&1 &
pid=$!
cd "$repo/frontend"
if ! LIGHTBULB_URL="http://127.0.0.1:$port" LIGHTBULB_IMAGES="$repo/.deps/data/mnist/images" \
  LIGHTBULB_TRUTH="$repo/.deps/data/mnist/truth-10class.csv" LIGHTBULB_SCREENSHOTS="$repo/out/browser-hosted" \
  npm run -s test:hosted; then
  echo "--- server log" >&2; tail -50 "$work/server.log" >&2
  exit 1
fi
