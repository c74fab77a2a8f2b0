#!/usr/bin/env python3
"""BAIT in the proxy of `design_bound.py`, with the weights a strategy actually has.

The oracle greedy of `design_bound.py` picks with every item's Fisher weight `s_i` from a model
trained on every label. A strategy has only the current model's. This loop starts from
`--start` random labels and then, round by round (`--step` labels each, up to `--budget`):
fits a logistic model on the labels so far, takes its `s` over the pool, and picks greedily
by BAIT's criterion under those weights. It reports the oracle's R (`design_bound.py`) of
the final set, so it can be set beside random sets and the oracle's own greedy set.

`--weights`: `plain` (the model at `--c`), `c=X` (the model at C = X: sharper or flatter
probabilities), `committee` (the mean probabilities of 5 models on bootstrap resamples
of the labels), `spread` (label spreading over a 10-neighbour cosine graph of the pool, as
`ml::semi`), `mix` (the mean of `plain` and `spread`), or `semi` (the model fitted on the
labels plus spreading's confident guesses, at most 10 per label, weight 0.5 x confidence, as
`model.semi_supervised`).

    python bench/bait_proxy_loop.py --cache outputs/newsgroups_20class/models/embeddings/minilm_l6_53aa5117 \\
        --truth .deps/data/newsgroups/truth-20class.csv --max-rows 3000 --weights plain --seed 0

One JSON line on stdout. Flat Fisher only. R, not accuracy: `design_accuracy.py` trains on the
picks and scores held-out items (its `loop` is this loop's `plain` weights).
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


NEIGHBOURS = 10
SPREAD_ALPHA = 0.99
SPREAD_ITERS = 30


def knn_graph(z):
    """Symmetrically normalised `D^-1/2 W D^-1/2` of the 10-neighbour cosine graph (dense)."""
    x = z[:, :-1] / np.linalg.norm(z[:, :-1], axis=1, keepdims=True)
    sim = x @ x.T
    np.fill_diagonal(sim, -2.0)
    nearest = np.argpartition(-sim, NEIGHBOURS, axis=1)[:, :NEIGHBOURS]
    w = np.zeros_like(sim)
    rows = np.arange(len(z))[:, None]
    w[rows, nearest] = np.maximum(sim[rows, nearest], 0.0)
    w = np.maximum(w, w.T)
    d = 1.0 / np.sqrt(np.maximum(w.sum(axis=1), 1e-12))
    return w * d[:, None] * d[None, :]


def spread(graph, y, rows, classes):
    """Label spreading (Zhou et al. 2004): row-normalised `F = (1-a) sum (aS)^t Y`; rows the
    spreading does not reach get the labelled class frequencies."""
    seed = np.zeros((graph.shape[0], classes))
    seed[rows, y[rows]] = 1.0
    f = seed.copy()
    for _ in range(SPREAD_ITERS):
        f = SPREAD_ALPHA * graph @ f + (1.0 - SPREAD_ALPHA) * seed
    mass = f.sum(axis=1, keepdims=True)
    prior = np.bincount(y[rows], minlength=classes) / len(rows)
    return np.where(mass > 1e-12, f / np.maximum(mass, 1e-12), prior)


def current_probabilities(z, y, rows, classes, c, weights, rng, graph=None):
    """Class probabilities over the pool from the labelled `rows`, as `--weights` says."""

    def fit(fit_rows, fit_c, fit_y=None, sample_weight=None):
        fit_y = y[fit_rows] if fit_y is None else fit_y
        model = LogisticRegression(C=fit_c, max_iter=500, fit_intercept=False)
        model.fit(z[fit_rows], fit_y, sample_weight=sample_weight)
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
    if weights == "spread":
        return spread(graph, y, rows, classes)
    if weights == "mix":
        return (fit(rows, c) + spread(graph, y, rows, classes)) / 2.0
    if weights == "semi":
        guess = spread(graph, y, rows, classes)
        confidence = guess.max(axis=1)
        confidence[rows] = -1.0
        extra = np.argsort(-confidence)[: 10 * len(rows)]
        extra = extra[confidence[extra] > 0]
        fit_rows = np.concatenate([rows, extra])
        fit_y = np.concatenate([y[rows], guess[extra].argmax(axis=1)])
        sample_weight = np.concatenate([np.ones(len(rows)), 0.5 * confidence[extra]])
        return fit(fit_rows, c, fit_y, sample_weight)
    raise SystemExit(f"--weights: unknown `{weights}`; expected plain, c=X, committee, spread, mix or semi")


def bait_loop(z, lam, start, step, budget, rng, probabilities):
    """The rows BAIT labels (a boolean mask over `z`): `start` uniform random ones, then the
    rounds of `bait_rounds`."""
    taken = np.zeros(len(z), bool)
    taken[bait_rounds(z, lam, rng.choice(len(z), start, replace=False), step, budget, probabilities)] = True
    return taken


def bait_rounds(z, lam, first, step, budget, probabilities):
    """The rows of `z` BAIT labels, in order: the rows `first`, then rounds of `step`, each
    picked greedily under the weights of `probabilities(labelled rows)` (the pool's class
    probabilities from a model of those labels) with ridge `lam`, up to `budget` rows."""
    order = [int(r) for r in first]
    taken = np.zeros(len(z), bool)
    taken[order] = True
    while len(order) < budget:
        rows = np.array(order)
        probs = probabilities(rows)
        s = (1.0 - (probs * probs).sum(axis=1)) / 2.0
        pick_fisher = (z * s[:, None]).T @ z / len(z)
        inv = np.linalg.inv((z[rows] * s[rows, None]).T @ z[rows] + lam)
        for _ in range(min(step, budget - len(order))):
            order.append(db.bait_pick(z, s, pick_fisher, inv, taken))
    return order


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    db.add_problem_args(ap, max_rows=3000)
    ap.add_argument("--start", type=int, default=20, help="random labels before the first round")
    ap.add_argument("--step", type=int, default=10)
    ap.add_argument("--budget", type=int, default=250)
    ap.add_argument("--weights", default="plain")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="")
    args = ap.parse_args()

    problem = db.oracle_problem(args.cache, args.truth, args.dataset_dir, args.max_rows, args.c, args.oracle_c)
    z, y, oracle, fisher, lam = problem.z, problem.y, problem.fisher_model, problem.fisher, problem.lam

    graph = knn_graph(z) if args.weights in ("spread", "mix", "semi") else None
    rng = np.random.default_rng(args.seed)
    taken = bait_loop(z, lam, args.start, args.step, args.budget, rng,
                      lambda rows: current_probabilities(z, y, rows, len(problem.classes), args.c, args.weights,
                                                         rng, graph))
    value = db.risk(fisher, oracle.information(taken.astype(float)) + lam)[0]
    print(json.dumps({"name": args.name, "weights": args.weights, "seed": args.seed, "rows": len(problem.keep),
                      "labels": int(taken.sum()), "risk": value}))


if __name__ == "__main__":
    main()
