#!/usr/bin/env bash
# Learning curves of Lightbulb's simulator against the scikit-learn baseline on the demo
# datasets; appends markdown tables to bench/results/learning_curves.md.
#
#   bench/learning_curves.sh [learning_curves.py options...]
#   e.g. bench/learning_curves.sh --strategies entropy,sk-entropy --extra-args "--head mlp"
#
# Needs the release binary ($CARGO_TARGET_DIR/release/lightbulb, CARGO_TARGET_DIR defaulting
# to ~/.cache/lightbulb/target), the demo data under .deps/ (scripts/setup.sh), and for the
# sk-* rows the venv described in bench/sklearn_baseline.py. Options given here go to every
# dataset's run. Runs are sequential; all 5 datasets x 6 strategies x 3 seeds take a while.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=bench/results/learning_curves.md
mkdir -p "$(dirname "$OUT")"
printf '\n# Learning curves, %s\n\n' "$(date -u +%Y-%m-%dT%H:%MZ)" >>"$OUT"

# config | truth | title
DATASETS=(
  "config/examples/mnist_3v8.yml|.deps/data/mnist/truth-3v8.csv|MNIST 3 vs 8 (binary, images)"
  "config/examples/mnist.yml|.deps/data/mnist/truth-10class.csv|MNIST (10 classes, images)"
  "config/examples/rotten_tomatoes.yml|.deps/data/rotten_tomatoes/truth-sentiment.csv|Rotten Tomatoes sentiment (binary, text)"
  "config/examples/rotten_tomatoes_3class.yml|.deps/data/rotten_tomatoes/truth-3class.csv|Rotten Tomatoes fresh/rotten/plot (3 classes, text)"
  "config/examples/newsgroups_4topic.yml|.deps/data/newsgroups/truth-4topic.csv|20 Newsgroups by topic (4 classes, text)"
)

status=0
for entry in "${DATASETS[@]}"; do
  IFS='|' read -r config truth title <<<"$entry"
  if [[ ! -f "$config" || ! -f "$truth" ]]; then
    echo "skipping $title: $config or $truth is missing" >&2
    status=1
    continue
  fi
  echo "== $title" >&2
  python3 bench/learning_curves.py --config "$config" --truth "$truth" --title "$title" \
    --out "$OUT" --runs-jsonl bench/results/learning_curves_runs.jsonl "$@" || status=1
done
echo "tables appended to $OUT" >&2
exit $status
