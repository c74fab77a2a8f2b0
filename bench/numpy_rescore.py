#!/usr/bin/env python3
"""NumPy baseline for re-scoring a pool of 1,000,000 x 1280-d embeddings with a linear
10-class head, to run beside `cargo bench --bench heads` (bench/README-heads.md).

Two figures: the f32 matrix product alone on rows already in f32 (5 GB in memory; what "numpy
does about 1.5 M vectors/s" refers to), and the same work as the engine's `Head::score`
(f16 rows widened, L2-normalised, multiplied, softmaxed) in 64k-row chunks.

    $HOME/.cache/lightbulb/sklearn-venv/bin/python bench/numpy_rescore.py
"""
import time

import numpy as np

ROWS, DIM, CLASSES, CHUNK = 1_000_000, 1280, 10, 65_536


def best_of(runs, fn):
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def score_f16(x16, w):
    out = np.empty((len(x16), w.shape[1]), np.float32)
    for s in range(0, len(x16), CHUNK):
        x = x16[s : s + CHUNK].astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        z = x @ w
        z -= z.max(1, keepdims=True)
        np.exp(z, out=z)
        out[s : s + CHUNK] = z / z.sum(1, keepdims=True)
    return out


def main():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((DIM, CLASSES)).astype(np.float32)
    x32 = rng.random((ROWS, DIM), dtype=np.float32) * 2
    s = best_of(3, lambda: x32 @ w)
    print(f"numpy f32 matmul only: {s:.3f} s, {ROWS / s:,.0f} rows/s")
    x16 = x32.astype(np.float16)
    del x32
    s = best_of(3, lambda: score_f16(x16, w))
    print(f"numpy f16 widen + L2 + matmul + softmax, 64k chunks: {s:.3f} s, {ROWS / s:,.0f} rows/s")


if __name__ == "__main__":
    main()
