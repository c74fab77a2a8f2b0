#!/usr/bin/env python3
"""Three head-side corrections for the bias of actively chosen labels, tried on the engine's own
picks (`lightbulb simulate --picks FILE`) against uniform random sets of `--random` rows of the
same pool, scored on the picks file's test set (scikit-learn logistic regression, C by
out-of-fold log-loss as in `heads_on_picks.py`):

  * `bal`: balanced class weights (what the engine's head does);
  * `unbal`: no class weights;
  * `+EMprior`: the balanced model's test probabilities re-weighted to the class prior that EM
    (Saerens et al. 2002) estimates on them;
  * `+IWa`: importance weights for the sampling bias, `(P(pool|x) / P(labelled|x))^a`, from a
    logistic classifier of labelled against pool rows (clipped to 0.1-10, mean 1).

    python bench/reweight_on_picks.py --cache outputs/rotten_tomatoes_3class/models/embeddings/minilm_l6_53aa5117 \\
        --truth .deps/data/rotten_tomatoes/truth-3class.csv --picks /tmp/p0.csv /tmp/p1.csv

Prints one line per variant: mean accuracy per set. Results: `bench/results/lc-adaptive.md`,
"Three head-side corrections on RT 3-class's picks".
"""
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import design_accuracy as da  # noqa: E402
import design_bound as db  # noqa: E402
from heads_on_picks import picks_arguments, training_sets  # noqa: E402


def lr(c, class_weight="balanced"):
    return LogisticRegression(C=c, max_iter=3000, class_weight=class_weight)


def importance_weights(features, rows, pool, alpha, c=0.1):
    """`(P(pool|x) / P(labelled|x))^alpha` for the labelled `rows`, from a balanced logistic
    classifier of labelled against pool rows; clipped to 0.1-10 around a mean of 1."""
    labelled = np.isin(pool, rows)
    odds = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(features[pool], labelled)
    p = odds.predict_proba(features[rows])[:, 1]
    w = ((1 - p) / np.maximum(p, 1e-6)) ** alpha
    w = np.clip(w / w.mean(), 0.1, 10)
    return w / w.mean()


def em_prior(probs, iterations=50):
    """Probabilities re-weighted to the class prior EM estimates on them (the model's own prior
    taken as uniform: balanced class weights)."""
    uniform = np.full(probs.shape[1], 1.0 / probs.shape[1])
    prior, adjusted = uniform.copy(), probs
    for _ in range(iterations):
        adjusted = probs * (prior / uniform)
        adjusted /= adjusted.sum(1, keepdims=True)
        prior = adjusted.mean(0)
    return adjusted


def main():
    args, (_ids, _keep, _classes, y, z), position = picks_arguments(__doc__)
    features = z[:, :-1]
    scores = {}

    def add(name, set_name, predicted, test):
        scores.setdefault(name, {}).setdefault(set_name, []).append(float((predicted == y[test]).mean()))

    for path in args.picks:
        test, sets = training_sets(path, position, len(y), args.labels, args.random, args.draws)
        pool = np.setdiff1d(np.arange(len(y)), test)
        for set_name, row_sets in sets.items():
            for rows in row_sets:
                c = da.choose_c(lr, features[rows], y[rows]) or 0.1
                probs = lr(c).fit(features[rows], y[rows]).predict_proba(features[test])
                add("bal", set_name, probs.argmax(1), test)
                add("bal+EMprior", set_name, em_prior(probs).argmax(1), test)
                add("unbal", set_name, lr(c, None).fit(features[rows], y[rows]).predict(features[test]), test)
                for alpha in (0.5, 1.0):
                    w = importance_weights(features, rows, pool, alpha)
                    add(f"bal+IW{alpha}", set_name,
                        lr(c).fit(features[rows], y[rows], sample_weight=w).predict(features[test]), test)
        print(path, file=sys.stderr, flush=True)
    for name, by_set in scores.items():
        print(f"{name:12s}", {k: round(float(np.mean(v)), 4) for k, v in by_set.items()})


if __name__ == "__main__":
    main()
