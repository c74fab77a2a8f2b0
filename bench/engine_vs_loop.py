#!/usr/bin/env python3
"""The engine's picks and the scikit-learn BAIT loop of `design_accuracy.py`, side by side on
the engine's own split.

`lightbulb simulate --picks FILE` writes the labels a strategy asked for, in order, and the
test set. This script scores, on that test set and with the same `cv` head (`design_accuracy.
accuracy`):

  * `engine`: the engine's first n picks;
  * `loop_random_start`: the BAIT loop with the current model at C = `--design-c`, started from
    `--start` uniform random labels of the engine's pool (as `design_accuracy.py`);
  * `loop_engine_start`: the same loop started from the engine's own first `--start` picks
    (its cold start), to tell the start from the rounds;
  * `random`: `--draws` uniform random sets of the pool.

so that a gap between the engine and the loop can be put on the head (the engine's reported
accuracy against `engine` here) or on the picks (`engine` against the loops). With `--write-loop
FILE` the random-start loop's picks are written in the engine's `--picks` format, for replaying.

    python bench/engine_vs_loop.py --cache outputs/rotten_tomatoes/models/embeddings/minilm_l6_53aa5117 \\
        --truth .deps/data/rotten_tomatoes/truth-sentiment.csv --picks /tmp/rt-s0.csv --labels 100,250

One JSON line on stdout. numpy and scikit-learn (the venv of `sklearn_baseline.py`).
"""
import argparse
import csv
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bait_proxy_loop as loop  # noqa: E402
import design_accuracy as da  # noqa: E402
import design_bound as db  # noqa: E402


def read_picks(path, position):
    """(training rows in the order asked, test rows) of an engine `--picks` CSV, as row indices."""
    train, test = db.read_picks(path)
    unknown = [r["path"] for r in train + test if r["path"] not in position]
    if unknown:
        raise SystemExit(f"{path}: {len(unknown)} items (first: {unknown[0]}) are not in the cache with a truth label")
    return (np.array([position[r["path"]] for r in train], dtype=np.int64),
            np.array([position[r["path"]] for r in test], dtype=np.int64))


def bait_order(z, y, pool, first, c, step, budget):
    """The `pool` rows (indices into `z`) BAIT labels in order, from the rows `first`: the
    rounds of `bait_proxy_loop.bait_rounds` with the current model at C = `c` and ridge `I / c`."""
    zp, yp = z[pool], y[pool]
    local = {int(r): i for i, r in enumerate(pool)}
    classes = int(y.max()) + 1
    order = loop.bait_rounds(zp, db.penalty(z.shape[1], c), [local[int(r)] for r in first], step, budget,
                             lambda rows: loop.current_probabilities(zp, yp, rows, classes, c, "plain", None))
    return pool[np.array(order)]


def write_picks(path, order, test, ids, keep, classes, y):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "set", "order"])
        for n, r in enumerate(order, 1):
            w.writerow([ids[keep[r]], classes[y[r]], "train", n])
        for r in test:
            w.writerow([ids[keep[r]], classes[y[r]], "test", ""])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    db.add_problem_args(ap, max_rows=10**9)
    ap.add_argument("--picks", required=True, help="an engine `simulate --picks` CSV")
    ap.add_argument("--labels", default="50,100,150,200,250")
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--start", type=int, default=20)
    ap.add_argument("--step", type=int, default=10)
    ap.add_argument("--design-c", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0, help="of the random sets and the loop's random start")
    ap.add_argument("--write-loop", help="write the random-start loop's picks here (engine --picks format)")
    ap.add_argument("--name", default="")
    args = ap.parse_args()

    ids, keep, classes, y, z = db.labelled_rows(args.cache, args.truth, args.dataset_dir, args.max_rows)
    position = {ids[k]: i for i, k in enumerate(keep)}
    engine, test = read_picks(args.picks, position)
    pool = np.setdiff1d(np.arange(len(keep)), test)
    counts = [int(v) for v in args.labels.split(",") if v.strip()]
    budget = max(counts)
    if len(engine) < budget:
        raise SystemExit(f"{args.picks}: {len(engine)} training labels, fewer than {budget}")
    rng = np.random.default_rng(args.seed)

    def score(rows):
        return da.accuracy(z, y, rows, test, args.c)["cv"]

    random_start = bait_order(z, y, pool, rng.choice(pool, args.start, replace=False), args.design_c, args.step,
                              budget)
    engine_start = bait_order(z, y, pool, engine[: args.start], args.design_c, args.step, budget)
    if args.write_loop:
        write_picks(args.write_loop, random_start, test, ids, keep, classes, y)
    points = []
    for n in counts:
        draws = [score(rng.choice(pool, n, replace=False)) for _ in range(args.draws)]
        point = {"labels": n, "engine": score(engine[:n]), "loop_random_start": score(random_start[:n]),
                 "loop_engine_start": score(engine_start[:n]), "random": float(np.mean(draws)),
                 "random_se": float(np.std(draws, ddof=1) / np.sqrt(len(draws)))}
        points.append(point)
        print(json.dumps(point), file=sys.stderr, flush=True)
    print(json.dumps({"name": args.name, "seed": args.seed, "picks": args.picks, "pool": len(pool),
                      "test": len(test), "points": points}))


if __name__ == "__main__":
    main()
