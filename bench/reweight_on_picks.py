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
import argparse
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import design_accuracy as da
import design_bound as db
from engine_vs_loop import read_picks

ap = argparse.ArgumentParser()
ap.add_argument("--cache", required=True); ap.add_argument("--truth", required=True)
ap.add_argument("--picks", nargs="+", required=True); ap.add_argument("--labels", default="150,250")
ap.add_argument("--random", type=int, default=500); ap.add_argument("--draws", type=int, default=2)
args = ap.parse_args()
ids, keep, class_names, y, z = db.labelled_rows(args.cache, args.truth, None, 10**9)
position = {ids[k]: i for i, k in enumerate(keep)}
K = len(class_names); X = z[:, :-1]

def lr(c, cw="balanced"):
    return LogisticRegression(C=c, max_iter=3000, class_weight=cw)

def domain_weights(rows, pool, alpha, dc=0.1):
    lab = np.zeros(len(pool), bool); idx = {r: i for i, r in enumerate(pool)}
    for r in rows: lab[idx[r]] = True
    m = LogisticRegression(C=dc, max_iter=2000, class_weight="balanced").fit(X[pool], lab)
    p = m.predict_proba(X[rows])[:, 1]
    w = ((1 - p) / np.maximum(p, 1e-6)) ** alpha
    w = np.clip(w / w.mean(), 0.1, 10); return w / w.mean()

def em_prior(P, iters=50):
    prior0 = np.full(P.shape[1], 1.0 / P.shape[1]); pr = prior0.copy()
    for _ in range(iters):
        Q = P * (pr / prior0); Q /= Q.sum(1, keepdims=True); pr = Q.mean(0)
    return Q

def bw(yy):
    cnt = np.bincount(yy, minlength=K).astype(float); w = len(yy) / (np.count_nonzero(cnt) * cnt[yy]); return w

scores = {}
def add(name, setn, acc): scores.setdefault(name, {}).setdefault(setn, []).append(acc)
for path in args.picks:
    train, test = read_picks(path, position)
    pool = np.setdiff1d(np.arange(len(y)), test)
    rng = np.random.default_rng(0)
    sets = {f"picks@{n}": [train[:n]] for n in map(int, args.labels.split(","))}
    sets[f"random@{args.random}"] = [rng.choice(pool, args.random, replace=False) for _ in range(args.draws)]
    for sn, rs in sets.items():
        for rows in rs:
            c = da.choose_c(lr, X[rows], y[rows]) or 0.1
            m = lr(c).fit(X[rows], y[rows]); P = m.predict_proba(X[test])
            add("bal", sn, (P.argmax(1) == y[test]).mean())
            add("bal+EMprior", sn, (em_prior(P).argmax(1) == y[test]).mean())
            mu = lr(c, None).fit(X[rows], y[rows])
            add("unbal", sn, (mu.predict(X[test]) == y[test]).mean())
            for a in (0.5, 1.0):
                w = domain_weights(rows, pool, a)
                mw = lr(c).fit(X[rows], y[rows], sample_weight=w)
                Pw = mw.predict_proba(X[test])
                add(f"bal+IW{a}", sn, (Pw.argmax(1) == y[test]).mean())
                add(f"bal+IW{a}+EM", sn, (em_prior(Pw).argmax(1) == y[test]).mean())
    print(path, flush=True)
for name, by in scores.items():
    print(f"{name:16s}", {k: round(float(np.mean(v)), 4) for k, v in by.items()})
