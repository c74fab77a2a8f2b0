#!/usr/bin/env python3
"""Does the R of `design_bound.py` turn into accuracy? Labelled sets scored on held-out items.

`design_bound.py` ranks sets of labels by the head's expected excess log-loss R under an
oracle's probabilities, and finds that an oracle BAIT's 250 labels would beat 500 random ones
on some tasks. This checks that claim where it counts: a stratified `--test-fraction` of the
rows is held out; the oracle (the model trained on every other label, scored out of fold) and
every design see only the rest; a logistic head (C = `--c`, the same for every set) is trained
on each set and scored on the held-out rows. Sets, each at `--labels` counts:

  * `random`: `--draws` uniform random sets (mean accuracy and its standard error);
  * `oracle_greedy`: the oracle BAIT greedy set of `design_bound.py`;
  * `loop`: BAIT with the current model's probabilities, as `bait_proxy_loop.py` (`--start`
    random labels, then rounds of `--step`), i.e. what a strategy without the oracle gets;

and random sampling's accuracy at `--reference` labels. Every set is scored twice: with the head
at C = `--c` (`fixed`) and at the C its own labels choose by cross-validation (`cv`, as the
engine's head does).

    python bench/design_accuracy.py --cache outputs/newsgroups_20class/models/embeddings/minilm_l6_53aa5117 \\
        --truth .deps/data/newsgroups/truth-20class.csv --labels 250 --seed 0

One JSON line on stdout. numpy and scikit-learn (the venv of `sklearn_baseline.py`).
"""
import argparse
import json
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_predict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bait_proxy_loop as loop  # noqa: E402
import design_bound as db  # noqa: E402
from sklearn_baseline import stratified_split  # noqa: E402


C_GRID = (0.01, 0.1, 1.0)


def accuracy(z, y, rows, test, c):
    """Held-out accuracy of the head trained on `rows`: at C = `c` (`fixed`), and at the C of
    `C_GRID` with the lowest out-of-fold log-loss on `rows` (`cv`: as the engine's head chooses,
    on labels a strategy did not draw at random; 5 folds, fewer where a class has fewer labels,
    and `c` where one has a single label)."""
    def model(fit_c):
        return LogisticRegression(C=fit_c, max_iter=1000, fit_intercept=False)

    def right(fit_c):
        return float((model(fit_c).fit(z[rows], y[rows]).predict(z[test]) == y[test]).mean())

    chosen = choose_c(model, z[rows], y[rows])
    if chosen is None:
        fixed = right(c)
        return {"fixed": fixed, "cv": fixed, "cv_c": None}
    return {"fixed": right(c), "cv": right(chosen), "cv_c": chosen}


def choose_c(model, x, y):
    """The C of `C_GRID` whose `model(C)` has the lowest out-of-fold log-loss on `x, y`: as many
    stratified folds as the rarest class allows, up to 5; `None` when that is fewer than two."""
    present = np.bincount(y)
    k = min(5, int(present[present > 0].min()))
    if k < 2:
        return None
    folds = StratifiedKFold(k, shuffle=True, random_state=0)
    losses = [log_loss(y, cross_val_predict(model(grid_c), x, y, cv=folds, method="predict_proba"),
                       labels=np.unique(y)) for grid_c in C_GRID]
    return C_GRID[int(np.argmin(losses))]


def loop_set(z, y, c, start, step, budget, rng, temperature=1.0, weights_c=None):
    """BAIT's picks with the current model's probabilities (flat Fisher), as `bait_proxy_loop.py`;
    `temperature` divides the model's log-probabilities before the weights are taken (above 1:
    flatter, so BAIT's design leans less on the items the model is unsure of). `c` sets BAIT's
    ridge `I / c`; `weights_c` (default `c`) the C of the model whose probabilities weigh the rows."""
    classes = int(y.max()) + 1

    def probabilities(rows):
        probs = loop.current_probabilities(z, y, rows, classes, weights_c or c, "plain", rng) ** (1.0 / temperature)
        return probs / probs.sum(axis=1, keepdims=True)

    return np.flatnonzero(loop.bait_loop(z, db.penalty(z.shape[1], c), start, step, budget, rng, probabilities))


def greedy_sets(z, s, lam, counts):
    """The oracle greedy's first `n` picks for every `n` in `counts`."""
    order = db.greedy_order(z, s, (z * s[:, None]).T @ z / len(z), lam, max(counts))
    return {n: np.array(order[:n]) for n in counts}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    db.add_problem_args(ap, max_rows=100000)
    ap.add_argument("--labels", default="250")
    ap.add_argument("--reference", type=int, default=500)
    ap.add_argument("--test-fraction", type=float, default=0.25)
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--start", type=int, default=20)
    ap.add_argument("--step", type=int, default=10)
    ap.add_argument("--no-loop", action="store_true", help="skip the current-model BAIT loop")
    ap.add_argument("--no-oracle", action="store_true", help="skip the oracle greedy set")
    ap.add_argument("--temperature", type=float, default=1.0, help="of the loop's weights")
    ap.add_argument("--design-c", type=float, help="C of the loop's BAIT ridge (default --c)")
    ap.add_argument("--weights-c", type=float, help="C of the loop's weighting model (default --design-c)")
    ap.add_argument("--seed", type=int, default=0, help="of the test split, random sets and loop")
    ap.add_argument("--name", default="")
    args = ap.parse_args()

    _ids, _keep, classes, y_all, z_all = db.labelled_rows(args.cache, args.truth, args.dataset_dir, args.max_rows)
    rng = np.random.default_rng(args.seed)
    test, pool = stratified_split(y_all, len(classes), args.test_fraction, rng)
    test, pool = np.asarray(test), np.asarray(pool)
    z, y = z_all[pool], y_all[pool]
    p, oracle_accuracy = db.oracle_probabilities(z, y, args.oracle_c)
    s = db.FlatFisher(z, p).s
    lam = db.penalty(z.shape[1], args.c)

    def score(rows):
        return accuracy(z_all, y_all, pool[rows], test, args.c)

    def random_accuracy(n):
        draws = [score(rng.choice(len(pool), n, replace=False)) for _ in range(args.draws)]
        out = {}
        for head in ("fixed", "cv"):
            values = [d[head] for d in draws]
            out[head] = [float(np.mean(values)), float(np.std(values, ddof=1) / np.sqrt(args.draws))]
        out["cv_c"] = [d["cv_c"] for d in draws]
        return out

    counts = [int(v) for v in args.labels.split(",") if v.strip()]
    greedy = {} if args.no_oracle else greedy_sets(z, s, lam, counts)
    out = {"name": args.name, "seed": args.seed, "pool": len(pool), "test": len(test), "c": args.c,
           "oracle_oof_accuracy": round(oracle_accuracy, 4), "reference": args.reference,
           "random_at_reference": random_accuracy(args.reference), "points": []}
    for n in counts:
        point = {"labels": n, "random": random_accuracy(n), "oracle_greedy": score(greedy[n]) if greedy else None}
        if not args.no_loop:
            point["loop"] = score(loop_set(z, y, args.design_c or args.c, args.start, args.step, n, rng, args.temperature,
                                     args.weights_c))
        out["points"].append(point)
        print(json.dumps(point), file=sys.stderr, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
