#!/usr/bin/env bash
# Browser test: the real server on a fresh copy of the demo project (200 digits), driven by a
# real Chromium through playwright-core (frontend/tests/browser.test.mjs).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin="${CARGO_TARGET_DIR:-$HOME/.cache/lightbulb/target}/release/lightbulb"
work=$(mktemp -d)
port=${LIGHTBULB_TEST_PORT:-5099}
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
head -201 "$repo/.deps/data/mnist/truth-1000.csv" > "$work/include.csv"
cat > "$work/demo.yml" <<YAML
task:
  title: Which digit is this?
dataset:
  directory: $repo/.deps/data/mnist/images
  include: $work/include.csv
  data_type: images
  judgements_file: $work/labels.csv
label:
  type: classification
  classes: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
model:
  directory: $work/out
YAML
RUST_LOG=warn "$bin" serve --config "$work/demo.yml" --bind "127.0.0.1:$port" > "$work/server.log" 2>&1 &
pid=$!
cd "$repo/frontend"
if ! LIGHTBULB_URL="http://127.0.0.1:$port" LIGHTBULB_TEST_IMAGE="$repo/.deps/data/mnist/images/00001.png" \
  LIGHTBULB_TRUTH="$repo/.deps/data/mnist/truth-1000.csv" LIGHTBULB_SCREENSHOTS="$repo/out/browser" \
  npm run -s test:browser; then
  echo "--- server log" >&2; tail -50 "$work/server.log" >&2
  exit 1
fi
