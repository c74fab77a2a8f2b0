#!/usr/bin/env python3
"""Does the Laplace evidence choose the head's C better than folds do on labels a strategy chose?

Cross-validation over actively chosen labels estimates the loss on items like the picks, not
on the pool, so it can prefer the wrong C (lc-adaptive.md, "Other heads on religion's picks").
The likelihood does not depend on how items were chosen when the choice looks only at items
and earlier labels, so the marginal likelihood of C (type-II maximum likelihood) is unbiased by
the design where folds are not. This script measures that offline on `simulate --picks` files.

For each training set (the first n picks, and uniform random draws of the pool) and each C of
`--grid`, it fits the engine's head (softmax regression on the pool-standardised features,
balanced weights, L2 `|W|^2 / 2C`, bias unpenalised) and computes its Laplace log-evidence

    log Z(C) = sum_i w_i log p(y_i | x_i, W) - |W|^2 / 2C - 1/2 log det(I + C H),

`H` the weighted Hessian of the log-likelihood at the fit, `exact` (the full
`(diag p - p p^T) kron x x^T`, through its n K x n K dual) and `diag` (one block per class,
`sum_i w_i p_ic (1 - p_ic) x_i x_i^T`: what a cheap implementation would use). It prints, per
set, the test accuracy at every C and at the C each criterion chooses.

    python bench/evidence_on_picks.py --cache outputs/unseen-religion/models/embeddings/minilm_l6-w16_53aa5117 \\
        --truth bench/unseen/truth-religion.csv --picks /tmp/p0.csv /tmp/p1.csv --labels 150,250
"""
import json

import numpy as np

from heads_on_picks import balanced_weights, picks_arguments, softmax_weights, training_sets

GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
BIAS_VARIANCE = 10.0


def softmax(logits):
    logits = logits - logits.max(1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(1, keepdims=True)


def log_evidence(z, y, weights, c, w):
    """(exact, diag) Laplace log-evidence of the fit `weights` at `c`."""
    n, classes = len(y), weights.shape[1]
    p = softmax(z @ weights)
    fit_term = (w * np.log(np.maximum(p[np.arange(n), y], 1e-300))).sum() - (weights[:-1] ** 2).sum() / (2 * c)
    # Prior scales folded into the features: sqrt(C) on the penalised ones, the bias's own.
    scaled = np.hstack([z[:, :-1] * np.sqrt(c), z[:, -1:] * np.sqrt(BIAS_VARIANCE)])
    gram = scaled @ scaled.T * np.sqrt(np.outer(w, w))
    # Exact: I + A^T A with blocks sqrt(w_i w_j) (x_i . x_j) L_i^T L_j, L_i L_i^T = diag p_i - p_i p_i^T.
    roots = []
    for pi in p:
        vals, vecs = np.linalg.eigh(np.diag(pi) - np.outer(pi, pi))
        roots.append(vecs * np.sqrt(np.clip(vals, 0, None)))
    roots = np.stack(roots)  # n x K x K, L_i
    dual = np.einsum("ij,iak,jal->ikjl", gram, roots, roots).reshape(n * classes, n * classes)
    exact = fit_term - 0.5 * np.linalg.slogdet(np.eye(n * classes) + dual)[1]
    diag = fit_term
    for k in range(classes):
        s = np.sqrt(p[:, k] * (1 - p[:, k]))
        diag -= 0.5 * np.linalg.slogdet(np.eye(n) + gram * np.outer(s, s))[1]
    return exact, diag


def main():
    args, (_ids, _keep, class_names, y, z), position = picks_arguments(__doc__)
    classes = len(class_names)
    results = []
    for path in args.picks:
        test, sets = training_sets(path, position, len(y), args.labels, args.random, args.draws)
        for set_name, row_sets in sets.items():
            for rows in row_sets:
                w = balanced_weights(y[rows], classes)
                row = {"picks": path, "set": set_name, "accuracy": {}, "exact": {}, "diag": {}}
                for c in GRID:
                    weights = softmax_weights(z[rows], y[rows], classes, c, w)
                    row["accuracy"][c] = float(((z[test] @ weights).argmax(1) == y[test]).mean())
                    row["exact"][c], row["diag"][c] = log_evidence(z[rows], y[rows], weights, c, w)
                for criterion in ("exact", "diag"):
                    row[f"c_{criterion}"] = max(GRID, key=lambda c: row[criterion][c])
                print(json.dumps(row), flush=True)
                results.append(row)
    names = sorted({r["set"] for r in results})
    for name in names:
        rows = [r for r in results if r["set"] == name]
        line = {f"C={c}": round(float(np.mean([r["accuracy"][c] for r in rows])), 4) for c in GRID}
        for criterion in ("exact", "diag"):
            line[criterion] = round(float(np.mean([r["accuracy"][r[f"c_{criterion}"]] for r in rows])), 4)
            line[f"{criterion} chose"] = [r[f"c_{criterion}"] for r in rows]
        print(name, json.dumps(line))


if __name__ == "__main__":
    main()
