#!/usr/bin/env python3
"""BAIT in the proxy of `design_bound.py`, with the weights a strategy actually has.

The oracle greedy of `design_bound.py` picks with every item's Fisher weight `s_i` from a model
trained on every label. A strategy has only the current model's. This loop starts from
`--start` random labels and then, round by round (`--step` labels each, up to `--budget`):
fits a logistic model on the labels so far, takes its `s` over the pool, and picks greedily
by BAIT's criterion under those weights. It reports the oracle's R (`design_bound.py`) of
the final set, so it can be set beside random sets and the oracle's own greedy set.

`--weights`: `plain` (the model at `--c`), `c=X` (the model at C = X: sharper or flatter
probabilities), or `committee` (the mean probabilities of 5 models on bootstrap resamples
of the labels).

    python bench/bait_proxy_loop.py --cache outputs/newsgroups_20class/models/embeddings/minilm_l6_53aa5117 \\
        --truth .deps/data/newsgroups/truth-20class.csv --max-rows 3000 --weights plain --seed 0

One JSON line on stdout. Flat Fisher only.
"""
import argparse
import json
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import design_bound as db  # noqa: E402

COMMITTEE = 5


def current_probabilities(z, y, rows, classes, c, weights, rng):
    """Class probabilities over the pool from the labelled `rows`, as `--weights` says."""

    def fit(fit_rows, fit_c):
        model = LogisticRegression(C=fit_c, max_iter=500, fit_intercept=False).fit(z[fit_rows], y[fit_rows])
        # Classes not labelled yet get a vanishing probability, as in the engine's head.
        p = np.full((len(z), classes), 1e-9)
        p[:, model.classes_] = model.predict_proba(z)
        return p / p.sum(axis=1, keepdims=True)

    if weights == "plain":
        return fit(rows, c)
    if weights.startswith("c="):
        return fit(rows, float(weights[2:]))
    if weights == "committee":
        return np.mean([fit(rng.choice(rows, len(rows), replace=True), c) for _ in range(COMMITTEE)], axis=0)
    raise SystemExit(f"--weights: unknown `{weights}`; expected plain, c=X or committee")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--dataset-dir")
    ap.add_argument("--max-rows", type=int, default=3000)
    ap.add_argument("--c", type=float, default=0.1)
    ap.add_argument("--oracle-c", type=float, default=1.0)
    ap.add_argument("--start", type=int, default=20, help="random labels before the first round")
    ap.add_argument("--step", type=int, default=10)
    ap.add_argument("--budget", type=int, default=250)
    ap.add_argument("--weights", default="plain")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="")
    args = ap.parse_args()

    problem = db.oracle_problem(args.cache, args.truth, args.dataset_dir, args.max_rows, args.c, args.oracle_c)
    z, y, oracle, fisher, lam = problem.z, problem.y, problem.fisher_model, problem.fisher, problem.lam

    rng = np.random.default_rng(args.seed)
    taken = np.zeros(len(z), bool)
    taken[rng.choice(len(z), args.start, replace=False)] = True
    while taken.sum() < args.budget:
        rows = np.flatnonzero(taken)
        probs = current_probabilities(z, y, rows, len(problem.classes), args.c, args.weights, rng)
        s = (1.0 - (probs * probs).sum(axis=1)) / 2.0
        pick_fisher = (z * s[:, None]).T @ z / len(z)
        inv = np.linalg.inv((z[rows] * s[rows, None]).T @ z[rows] + lam)
        for _ in range(min(args.step, args.budget - len(rows))):
            db.bait_pick(z, s, pick_fisher, inv, taken)
    value = db.risk(fisher, oracle.information(taken.astype(float)) + lam)[0]
    print(json.dumps({"name": args.name, "weights": args.weights, "seed": args.seed, "rows": len(problem.keep),
                      "labels": int(taken.sum()), "risk": value}))


if __name__ == "__main__":
    main()
