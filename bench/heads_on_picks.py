#!/usr/bin/env python3
"""Other heads on the engine's own picks: is the logistic head what keeps a strategy's labels
from matching random sampling's accuracy at twice the labels?

`lightbulb simulate --picks FILE` writes the labels a strategy asked for, in order, and the
test set. For each picks file this script trains, on the first n picks (`--labels`) and on
`--draws` uniform random sets of `--random` rows of the same pool, and scores on that test set:

  * `lr_cv`: scikit-learn's multinomial logistic regression on the engine's pool-standardised
    features, balanced class weights, C by out-of-fold log-loss (`design_accuracy.choose_c`);
  * `lda`: linear discriminant analysis with Ledoit-Wolf shrinkage and uniform priors;
  * `ncm`: nearest class mean by cosine on the L2-normalised embeddings (prototypes);
  * `offset s=S C=C`: the engine's head (softmax regression, balanced weights, L2 1/C on
    the standardised features, bias free) fitted on top of a fixed prototype score
    `S cos(x, mean of class c)`, so the L2 penalty pulls towards the nearest-class-mean
    classifier instead of towards zero; `s=0` is the plain head.

    python bench/heads_on_picks.py --cache outputs/newsgroups_20class/models/embeddings/minilm_l6_53aa5117 \\
        --truth .deps/data/newsgroups/truth-20class.csv --picks /tmp/p0.csv /tmp/p1.csv --labels 150,250

Prints one line per head: mean accuracy per set. numpy, scipy and scikit-learn (the venv of
`sklearn_baseline.py`).
"""
import argparse
import os
import sys

import numpy as np
from scipy.optimize import minimize
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import design_accuracy as da  # noqa: E402
import design_bound as db  # noqa: E402
from engine_vs_loop import read_picks  # noqa: E402

OFFSET_GRID = ((0, 0.01), (0, 0.1), (10, 0.01), (20, 0.01), (20, 0.003), (40, 0.01))


def balanced_weights(y, classes):
    counts = np.bincount(y, minlength=classes).astype(float)
    w = len(y) / (np.count_nonzero(counts) * counts[y])
    return w / w.mean()


def prototypes(unit, y, classes):
    mu = np.stack([unit[y == c].mean(0) if (y == c).any() else np.zeros(unit.shape[1]) for c in range(classes)])
    return mu / np.maximum(np.linalg.norm(mu, axis=1, keepdims=True), 1e-12)


def softmax_weights(z, y, classes, c, w, offset=0.0, maxiter=1000):
    """Weights (`z`'s columns x classes; the last column of `z` is the bias, unpenalised) of the
    engine's head, softmax regression with sample weights `w` and L2 `|W|^2 / 2c`, fitted on
    top of the fixed logits `offset` (at most `maxiter` L-BFGS iterations)."""
    targets = np.eye(classes)[y]

    def objective(v):
        weights = v.reshape(z.shape[1], classes)
        logits = z @ weights + offset
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        nll = -(w * np.log(np.maximum((p * targets).sum(1), 1e-300))).sum()
        grad = z.T @ ((p - targets) * w[:, None])
        grad[:-1] += weights[:-1] / c
        return nll + (weights[:-1] ** 2).sum() / (2 * c), grad.ravel()

    return minimize(objective, np.zeros(z.shape[1] * classes), jac=True, method="L-BFGS-B",
                    options={"maxiter": maxiter}).x.reshape(z.shape[1], classes)


def fit_offset(z, unit, y, classes, s, c):
    """Softmax regression on `z` (last column the bias, unpenalised) over the fixed logits
    `s cos(x, prototype)`; returns a scoring function."""
    mu = prototypes(unit, y, classes) if s > 0 else np.zeros((classes, unit.shape[1]))
    v = softmax_weights(z, y, classes, c, balanced_weights(y, classes), s * unit @ mu.T, maxiter=500)
    return lambda zt, ut: (zt @ v + s * ut @ mu.T).argmax(1)


def training_sets(path, position, rows, labels, random, draws):
    """(test rows, {set name: [row sets]}) of one `--picks` file: its first n picks for each n
    of `labels` ("150,250"), and `draws` uniform draws of `random` rows of its pool (the `rows`
    rows outside its test set; the same draws for a given file every run)."""
    train, test = read_picks(path, position)
    pool = np.setdiff1d(np.arange(rows), test)
    rng = np.random.default_rng(0)
    sets = {f"picks@{n}": [train[:n]] for n in map(int, labels.split(","))}
    sets[f"random@{random}"] = [rng.choice(pool, random, replace=False) for _ in range(draws)]
    return test, sets


def picks_arguments(doc):
    """The command line shared by the scripts that refit heads on `--picks` files: the parsed
    arguments, then `labelled_rows` of the cache and each item's row (by id)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--dataset-dir", default=None)
    ap.add_argument("--picks", nargs="+", required=True)
    ap.add_argument("--labels", default="150,250")
    ap.add_argument("--random", type=int, default=500)
    ap.add_argument("--draws", type=int, default=2)
    args = ap.parse_args()
    rows = db.labelled_rows(args.cache, args.truth, args.dataset_dir, 10**9)
    return args, rows, {rows.ids[k]: i for i, k in enumerate(rows.keep)}


def main():
    args, (_ids, _keep, class_names, y, z), position = picks_arguments(__doc__)
    classes = len(class_names)
    features = z[:, :-1]
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)

    def lr(c):
        return LogisticRegression(C=c, max_iter=2000, class_weight="balanced")

    def lr_cv(rows, test):
        chosen = da.choose_c(lr, features[rows], y[rows]) or 0.1
        return lr(chosen).fit(features[rows], y[rows]).predict(features[test])

    def lda(rows, test):
        model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto", priors=np.full(classes, 1 / classes))
        return model.fit(features[rows], y[rows]).predict(features[test])

    def ncm(rows, test):
        return (unit[test] @ prototypes(unit[rows], y[rows], classes).T).argmax(1)

    heads = {"lr_cv": lr_cv, "lda": lda, "ncm": ncm}
    for s, c in OFFSET_GRID:
        heads[f"offset s={s} C={c}"] = (lambda s, c: lambda rows, test: fit_offset(
            z[rows], unit[rows], y[rows], classes, s, c)(z[test], unit[test]))(s, c)

    scores = {name: {} for name in heads}
    for path in args.picks:
        test, sets = training_sets(path, position, len(y), args.labels, args.random, args.draws)
        for set_name, row_sets in sets.items():
            for name, head in heads.items():
                for rows in row_sets:
                    scores[name].setdefault(set_name, []).append(float((head(rows, test) == y[test]).mean()))
    for name, by_set in scores.items():
        print(name, {k: round(float(np.mean(v)), 4) for k, v in by_set.items()})


if __name__ == "__main__":
    main()
