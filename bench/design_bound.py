#!/usr/bin/env python3
"""How much could a label-choosing strategy save, at best? An optimal-design analysis.

For a logistic head on frozen embeddings, the expected excess log-loss over the pool after
training on a labelled set is, to second order (the Laplace posterior that BAIT minimises),

    R(set) = tr(F H^-1) / 2,   H = sum_{i in set} I_i + Lambda,

where `z` are the head's features (rows L2-scaled to unit RMS, standardised by the pool's
statistics, plus a bias column), `I_i = s_i z_i z_i^T` an item's Fisher information with
`s_i = (1 - sum_c p_ic^2) / 2` (BAIT's flat model of the softmax Fisher, exact for two classes;
`--exact` uses the full `(diag p_i - p_i p_i^T) kron z_i z_i^T` for the continuous design),
`F` the pool mean of `I_i`, and `Lambda = I / C` the head's L2 penalty (none on the bias). The
probabilities `p_i` are an oracle's: the model trained on every label, each item scored out of
fold. A strategy only has the current model's.

At every label count `n` asked for it reports:

  * `random`: mean and standard error of R over `--draws` uniform random sets of `n` items
    (random sampling). Not `tr(F (n F + Lambda)^-1) / 2`: with fewer labels than features
    an actual set leaves directions uncovered and R is about twice that;
  * `greedy`: R of the set an oracle BAIT builds, one item at a time, each the one that cuts R
    the most (an actual set of `n` labels: an upper bound on the best one); with
    `--uninformed`, also `greedy_uninformed`, the same built without the oracle's
    probabilities (every item weighted alike: what a strategy with no model could do);
  * `design`, `bound`: the minimum of R over *continuous* designs (`n sum q_i I_i + Lambda`, q
    on the simplex; a convex problem, solved by the multiplicative algorithm), as the value
    found and the Frank-Wolfe linearisation bound `R(q) + min_j g_j - g.q`. Every actual set
    is such a design, so `bound` is a certified lower bound on R for any `n` labels, but a
    loose one: a continuous design spreads over more items than it has labels;
  * `support`: exp(entropy of that design) over the pool size (1: uniform; small: it
    concentrates on few items);

and `random_at_reference`, random sampling's R at `--reference` labels (500). With `--picks`,
R of the first `--at` labels each simulation's strategy actually chose (`lightbulb simulate
--picks`), next to `random_at_picks`, random sampling's R with as many; pass `--max-rows`
above the pool size so that every picked item is among the rows analysed.

    python bench/design_bound.py \\
        --cache outputs/rotten_tomatoes/models/embeddings/minilm_l6_53aa5117 \\
        --truth .deps/data/rotten_tomatoes/truth-sentiment.csv --labels 250,300,500 \\
        --c 0.1 --max-rows 3000

One JSON object on stdout (each point also on stderr as it is done). numpy and scikit-learn
(the venv of `sklearn_baseline.py`). A proxy, not a proof about accuracy: R is the expected
excess log-loss under the Laplace approximation, with the oracle's probabilities held fixed.
It ranks sets near random ones (a strategy's picks, random sets) as accuracy does, but its
optimum does not carry over: trained on, the oracle greedy sets are 4-15 points less accurate
than random sets of the same size (`design_accuracy.py`), so `greedy`, `design` and `bound`
bound R only, not what a strategy could save in accuracy.
Results: `bench/results/lc-adaptive.md`, "How much could a strategy save?".
"""
import argparse
import csv
import json
import os
import sys
from collections import namedtuple

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklearn_baseline import load_cache, load_truth, match_truth  # noqa: E402


def head_features(vectors):
    """The engine's `L2Standard` features over the whole pool (its pool statistics) + bias."""
    d = vectors.shape[1]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    z = vectors / np.maximum(norms, 1e-12) * np.sqrt(d)
    std = z.std(axis=0, ddof=1)
    z = (z - z.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return np.hstack([z, np.ones((z.shape[0], 1))]).astype(np.float64)


def oracle_probabilities(z, y, c):
    """Class probabilities of the model fitted on every label (the oracle), each item's out of
    fold: a model scoring its own training rows is surer of them than of new items (on 4,000
    posts of four topics it fits 99.98 % of them), which would hand the design a few uncertain
    items to concentrate on that do not exist. Returns (probabilities, their accuracy)."""
    model = LogisticRegression(C=c, max_iter=2000, fit_intercept=False)
    p = cross_val_predict(model, z, y, cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")
    return p, float((p.argmax(axis=1) == y).mean())


class FlatFisher:
    """BAIT's model of the softmax Fisher: `s_i z_i z_i^T` with `s = (1 - sum p^2) / 2` (exact
    for two classes); parameters are one weight vector of the head's dimension."""

    def __init__(self, z, p):
        self.z, self.s = z, (1.0 - (p * p).sum(axis=1)) / 2.0

    def information(self, weights):
        return (self.z * (weights * self.s)[:, None]).T @ self.z

    def leverage(self, a):
        """`tr(I_i A)` for every row's Fisher `I_i`."""
        return ((self.z @ a) * self.z).sum(axis=1) * self.s

    def penalty(self, c):
        return penalty(self.z.shape[1], c)


class BlockFisher:
    """The exact softmax Fisher `(diag p_i - p_i p_i^T) kron z_i z_i^T`, parameters one weight
    vector per class (K d of them; for few classes: the cost grows with K^2)."""

    def __init__(self, z, p):
        self.z, self.p = z, p
        self.k, self.d = p.shape[1], z.shape[1]

    def block(self, c, c2):
        """Per-row entry `(c, c2)` of `diag p - p p^T`."""
        return (self.p[:, c] if c == c2 else 0.0) - self.p[:, c] * self.p[:, c2]

    def information(self, weights):
        k, d = self.k, self.d
        m = np.empty((k, d, k, d))
        for c in range(k):
            for c2 in range(c, k):
                blk = (self.z * (weights * self.block(c, c2))[:, None]).T @ self.z
                m[c, :, c2, :], m[c2, :, c, :] = blk, blk.T
        return m.reshape(k * d, k * d)

    def leverage(self, a):
        k, d = self.k, self.d
        a4 = a.reshape(k, d, k, d)
        return sum(self.block(c, c2) * ((self.z @ a4[c, :, c2, :]) * self.z).sum(axis=1)
                   for c in range(k) for c2 in range(k))

    def penalty(self, c):
        # Every class's bias gets a vanishing penalty: adding one constant to every logit
        # changes nothing, so that direction has no information and needs one to be invertible.
        return np.kron(np.eye(self.k), penalty(self.d, c))


def penalty(dim, c):
    lam = np.full(dim, 1.0 / c)
    lam[-1] = 1e-9  # the bias is (all but) not penalised
    return np.diag(lam)


def risk(fisher, precision):
    """tr(F H^-1) / 2 with H symmetric positive definite."""
    chol = np.linalg.cholesky(precision)
    inv = np.linalg.solve(chol.T, np.linalg.solve(chol, np.eye(len(precision))))
    return 0.5 * float(np.sum(fisher * inv)), inv


def optimal_design(fisher_model, fisher, lam, n, iters):
    """Multiplicative algorithm for min_q tr(F (n sum q_i I_i + Lambda)^-1) / 2 on the simplex.

    Returns (best R found, best certified lower bound, iterations run, the design's effective
    support: exp(entropy of q) over the number of rows, 1 for a uniform design)."""
    rows = fisher_model.z.shape[0]
    q = np.full(rows, 1.0 / rows)
    best, bound = np.inf, -np.inf
    for it in range(iters):
        value, inv = risk(fisher, n * fisher_model.information(q) + lam)
        # d R / d q_i = -n tr(I_i H^-1 F H^-1) / 2
        leverage = fisher_model.leverage(inv @ fisher @ inv) * n * 0.5
        grad = -leverage
        best = min(best, value)
        bound = max(bound, value + grad.min() - float(grad @ q))
        if best - bound <= 1e-4 * best:
            return best, bound, it + 1, support(q)
        q = q * leverage
        q /= q.sum()
    return best, bound, iters, support(q)


def support(q):
    nz = q[q > 0]
    return float(np.exp(-(nz * np.log(nz)).sum()) / len(q))


def add_problem_args(ap, max_rows):
    """The arguments of `oracle_problem`, shared by the scripts built on it."""
    ap.add_argument("--cache", required=True, help="embedding cache directory (holds meta.json)")
    ap.add_argument("--truth", required=True, help="path,label CSV")
    ap.add_argument("--dataset-dir", help="the config's dataset directory, to resolve truth paths (image and .txt tasks)")
    ap.add_argument("--max-rows", type=int, default=max_rows, help="uniform subsample of the pool above this")
    ap.add_argument("--c", type=float, default=0.1, help="the head's C")
    ap.add_argument("--oracle-c", type=float, default=1.0, help="C of the model trained on every label")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_problem_args(ap, max_rows=12000)
    ap.add_argument("--labels", default="250,500", help="label counts to bound")
    ap.add_argument("--reference", type=int, default=500, help="random sampling's label count to compare with")
    ap.add_argument("--iters", type=int, default=300, help="of the continuous design; 0 skips it")
    ap.add_argument("--uninformed", action="store_true", help="also the greedy set picked without the oracle's probabilities")
    ap.add_argument("--draws", type=int, default=10, help="random sets averaged for random sampling's R")
    ap.add_argument("--exact", action="store_true", help="the exact softmax Fisher instead of BAIT's flat one")
    ap.add_argument("--picks", nargs="*", default=[],
                    help="`lightbulb simulate --picks` CSVs: R of each one's first --at training labels")
    ap.add_argument("--at", type=int, default=250, help="training labels of each picks file to evaluate")
    ap.add_argument("--name", default="", help="label for the JSON line")
    args = ap.parse_args()

    problem = oracle_problem(args.cache, args.truth, args.dataset_dir, args.max_rows, args.c, args.oracle_c,
                             BlockFisher if args.exact else FlatFisher)
    ids, keep, classes, z = problem.ids, problem.keep, problem.classes, problem.z
    fisher_model, fisher, lam = problem.fisher_model, problem.fisher, problem.lam
    oracle_accuracy = problem.oracle_accuracy

    counts = [int(v) for v in args.labels.split(",") if v.strip()]
    reference = sampled_risk(fisher_model, fisher, lam, args.reference, args.draws)
    out = {"name": args.name, "rows": len(keep), "classes": len(classes), "dim": z.shape[1] - 1,
           "c": args.c, "fisher": "exact" if args.exact else "flat", "oracle_oof_accuracy": round(oracle_accuracy, 4),
           "reference": args.reference, "random_at_reference": reference, "points": []}
    flat = counts and not args.exact
    greedy = greedy_design(fisher_model, fisher, lam, set(counts)) if flat else {}
    uninformed = greedy_design(fisher_model, fisher, lam, set(counts), informed=False) if flat and args.uninformed else {}
    for n in counts:
        point = {"labels": n, "random": sampled_risk(fisher_model, fisher, lam, n, args.draws),
                 "greedy": greedy.get(n), "greedy_uninformed": uninformed.get(n)}
        if args.iters > 0:
            design, bound, iters, spread = optimal_design(fisher_model, fisher, lam, n, args.iters)
            point.update({"design": design, "bound": bound, "iters": iters, "support": spread})
        out["points"].append(point)
        print(json.dumps(out["points"][-1]), file=sys.stderr, flush=True)
    position = {ids[i]: k for k, i in enumerate(keep)}
    if args.picks:
        out["random_at_picks"] = sampled_risk(fisher_model, fisher, lam, args.at, args.draws)
    out["picks"] = [picks_risk(path, position, args.at, fisher_model, fisher, lam) for path in args.picks]
    print(json.dumps(out))


Problem = namedtuple("Problem", "ids keep classes y z fisher_model fisher lam oracle_accuracy")


Rows = namedtuple("Rows", "ids keep classes y z")


def labelled_rows(cache, truth, dataset_dir, max_rows):
    """The rows of the cache that have a truth label (a uniform subsample of `max_rows` above
    that): the cache's ids, the kept rows' indices into them, the class names, each kept row's
    class and its head features."""
    _meta, ids, vectors = load_cache(cache)
    labels = match_truth(load_truth(truth), ids, truth, dataset_dir)
    keep = [i for i, item in enumerate(ids) if item in labels]
    if len(keep) > max_rows:
        keep = sorted(np.random.default_rng(0).choice(keep, max_rows, replace=False))
    classes = sorted({labels[ids[i]] for i in keep})
    y = np.array([classes.index(labels[ids[i]]) for i in keep])
    return Rows(ids, keep, classes, y, head_features(vectors[keep]))


def oracle_problem(cache, truth, dataset_dir, max_rows, c, oracle_c, fisher_kind=None):
    """`labelled_rows`, the oracle's Fisher model over them (`fisher_kind`, flat by default),
    the pool's mean Fisher `F` and the head's penalty at `c`."""
    ids, keep, classes, y, z = labelled_rows(cache, truth, dataset_dir, max_rows)
    p, oracle_accuracy = oracle_probabilities(z, y, oracle_c)
    fisher_model = (fisher_kind or FlatFisher)(z, p)
    fisher = fisher_model.information(np.full(len(keep), 1.0 / len(keep)))
    return Problem(ids, keep, classes, y, z, fisher_model, fisher, fisher_model.penalty(c), oracle_accuracy)


def bait_pick(z, s, pick_fisher, inv, taken):
    """BAIT's greedy step: marks in `taken` the row not yet taken whose label cuts
    `tr(pick_fisher H^-1)` the most under weights `s`, and updates `inv` (`H^-1`) in place by
    Sherman-Morrison. Returns the row."""
    b = z @ inv
    cut = s * ((b @ pick_fisher) * b).sum(axis=1) / (1.0 + s * (b * z).sum(axis=1))
    cut[taken] = -np.inf
    i = int(np.argmax(cut))
    taken[i] = True
    u = inv @ z[i]
    inv -= s[i] * np.outer(u, u) / (1.0 + s[i] * float(z[i] @ u))
    return i


def greedy_design(fisher_model, fisher, lam, counts, informed=True):
    """R after each of `counts` labels, picked one at a time, each the row that cuts R the most
    given the ones before (BAIT's greedy step, with the oracle's probabilities): actual sets of
    labels an oracle strategy could ask for, so upper bounds on the best such sets. Flat Fisher
    only. Not `informed`: every row's weight is the pool's mean `s` while picking (a design in
    feature space alone, which a strategy could build without any model); R is still measured
    with the oracle's."""
    z = fisher_model.z
    s = fisher_model.s if informed else np.full(len(z), fisher_model.s.mean())
    pick_fisher = fisher if informed else (z * s[:, None]).T @ z / len(z)
    order = greedy_order(z, s, pick_fisher, lam, max(counts))
    path = {}
    for n in counts:
        weights = np.zeros(len(z))
        weights[order[:n]] = 1.0
        # Recomputed from the rows rather than read off BAIT's running inverse: no drift.
        path[n] = risk(fisher, fisher_model.information(weights) + lam)[0]
    return path


def greedy_order(z, s, pick_fisher, lam, n):
    """The first `n` rows BAIT's greedy step picks, in order, starting from no labels (ridge
    `lam`) under weights `s` and the pool Fisher `pick_fisher`."""
    inv = np.linalg.inv(lam)
    taken = np.zeros(len(z), bool)
    return [bait_pick(z, s, pick_fisher, inv, taken) for _ in range(n)]


def sampled_risk(fisher_model, fisher, lam, n, draws, seed=0):
    """Mean and standard error of R over `draws` uniform random sets of `n` rows: what random
    sampling actually gets. Below about as many labels as features, `tr(F (n F + Lambda)^-1)`
    (the information of `n` random labels in expectation) is far smaller, because an actual set
    of `n` rows leaves directions uncovered, where only the penalty holds the weights."""
    rng = np.random.default_rng(seed)
    rows = fisher_model.z.shape[0]
    values = []
    for _ in range(draws):
        weights = np.zeros(rows)
        weights[rng.choice(rows, n, replace=False)] = 1.0
        values.append(risk(fisher, fisher_model.information(weights) + lam)[0])
    return float(np.mean(values)), float(np.std(values, ddof=1) / np.sqrt(draws))


def read_picks(path):
    """The rows of a `lightbulb simulate --picks` CSV: (the `train` rows in the order the
    strategy asked for them, the `test` rows), each a dict of `path,label,set,order`."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    train = sorted((row for row in rows if row["set"] == "train"), key=lambda row: int(row["order"]))
    return train, [row for row in rows if row["set"] == "test"]


def picks_risk(path, position, at, fisher_model, fisher, lam):
    """R of the first `at` training labels a simulation asked for (the design a strategy chose)."""
    train, _test = read_picks(path)
    if len(train) < at:
        raise SystemExit(f"{path}: {len(train)} training labels, fewer than --at {at}")
    missing = [row["path"] for row in train[:at] if row["path"] not in position]
    if missing:
        raise SystemExit(f"{path}: {len(missing)} picked items (first: {missing[0]}) are not among the rows "
                         "analysed; raise --max-rows to keep every row")
    weights = np.zeros(len(position))
    weights[[position[row["path"]] for row in train[:at]]] = 1.0
    return {"file": path, "labels": at, "risk": risk(fisher, fisher_model.information(weights) + lam)[0]}


if __name__ == "__main__":
    main()
