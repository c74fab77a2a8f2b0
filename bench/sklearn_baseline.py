#!/usr/bin/env python3
"""Plain scikit-learn active-learning baseline, run under Lightbulb's simulation protocol.

The baseline is "a plain scikit-learn LogisticRegression with max-entropy (or margin, or
random) sampling on the same embeddings": it reads the embedding cache that Lightbulb wrote
for a dataset, simulates a labeller who answers from a truth CSV, and prints a learning
curve in the same JSON shape as `lightbulb simulate --json`, so `bench/learning_curves.py`
can put both side by side.

Set-up (once; a venv outside the repository, only numpy and scikit-learn are needed):

    python3 -m venv $HOME/.cache/lightbulb/sklearn-venv
    $HOME/.cache/lightbulb/sklearn-venv/bin/pip install numpy scikit-learn

Run:

    $HOME/.cache/lightbulb/sklearn-venv/bin/python bench/sklearn_baseline.py \\
        --cache outputs/mnist_3v8/models/embeddings/<encoder id>/ \\
        --truth .deps/data/mnist/truth-3v8.csv --strategy entropy --seed 0 --json

Inputs
  * Embedding cache (written by `src/ml/cache.rs`): `meta.json` =
    `{"format": 1, "encoder": {"id", "modality", "dim": D}}`; `vectors.f16` = raw
    little-endian float16 rows of width D, row-major; `keys.jsonl` = one JSON array
    `["item id", "fingerprint"]` per row, in row order. Only the first
    min(#keys, #complete vectors) rows count (a torn tail is ignored, as in Rust); when an
    id occurs twice the later row wins.
  * Truth CSV with header `path,label`; `path` is the item id. For a directory dataset the
    truth file may instead list paths relative to its own directory (`images/00003.png` for
    the item `00003.png`); give `--dataset-dir` to resolve those exactly as Lightbulb does,
    otherwise an entry that is not an id is matched by dropping leading path components
    until it names a cached id.

Protocol (mirrors Lightbulb's simulator)
  1. Items = ids in both the truth and the cache, sorted by id. Classes = `--classes` (the
     config's `label.classes`, in its order), else the sorted distinct labels of the truth
     file (C of them).
  2. Stratified test split: for each class (in class order) its members are shuffled with
     the seeded RNG and round(n * F) of them go to the test set; the rest form the pool.
     `--split rust` (the default) uses the simulator's own RNG and shuffle
     (`bench/rust_split.py`), so seed S holds out exactly the test set of
     `lightbulb simulate --seed S`, provided the item and class orders are Lightbulb's:
     items sorted by id is Lightbulb's order for directory datasets and for rows files whose
     rows are sorted by id (the demo datasets), and the class order must be the config's
     (pass `--classes`; `bench/learning_curves.py` does). `--split numpy` draws the split
     from numpy's RNG instead (the older behaviour: same distribution, other test sets).
  3. Labelling proceeds in steps until `budget` pool items are labelled (or the pool runs
     out). Each step stops at min(next multiple of `step`, next checkpoint of
     20/50/78/100/200/500, budget).
  4. While fewer than 2 classes are labelled there is no model and the step's items are
     drawn uniformly at random. Afterwards the model is refit on all labelled items and
     the whole unlabelled pool is scored; the step takes the top items by entropy
     (-sum p log p), by margin (1 - (p1 - p2)), or uniformly at random (`random`).
  5. Model: StandardScaler (fit on the labelled embeddings only) followed by
     `LogisticRegression(max_iter=1000)` with scikit-learn's defaults (lbfgs, C=1.0,
     multinomial for C > 2). `--no-scale` drops the scaler.
  6. After each step the model is refit and evaluated on the test set: accuracy and
     macro-F1 (`f1_score(average="macro", labels=range(C), zero_division=0)`, i.e. over all
     classes of the truth, so a class never predicted counts as 0). With a single class
     labelled, the "model" predicts that class for everything.
  7. `ceiling` = the same model fit on the whole pool with its true labels.

Output (`--json`): one object
    {"strategy", "seed", "items", "test_items",
     "curve": [{"labels", "accuracy", "macro_f1"}, ...],
     "ceiling": {"accuracy", "macro_f1"}, "seconds", ...extra fields}
Without `--json` the same numbers are printed as a small table. Apart from the Rust split,
randomness (the draws before a model exists, the `random` strategy) comes from numpy's RNG,
so those draws are comparable to the Rust engine's in distribution, not item for item.
"""
import argparse
import csv
import json
import math
import os
import sys
import time
import warnings

import numpy as np
import rust_split  # bench/rust_split.py, beside this script
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

CHECKPOINTS = (20, 50, 78, 100, 200, 500)
STRATEGIES = ("random", "entropy", "margin")


# ------------------------------------------------------------------------------ inputs
def load_cache(directory):
    """Returns (meta, ids, vectors as float32 [n, dim]) with one row per distinct id."""
    with open(os.path.join(directory, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("format") != 1:
        raise SystemExit(f"{directory}/meta.json: unsupported cache format {meta.get('format')!r}")
    dim = int(meta["encoder"]["dim"])

    vec_path = os.path.join(directory, "vectors.f16")
    raw = np.fromfile(vec_path, dtype="<f2") if os.path.exists(vec_path) else np.zeros(0, "<f2")
    complete = raw.size // dim

    keys = []
    key_path = os.path.join(directory, "keys.jsonl")
    with open(key_path if os.path.exists(key_path) else os.devnull, encoding="utf-8") as f:
        for line in f:
            # Like the Rust loader: a line without its newline, or one that does not parse,
            # was torn by a crash; it and everything after it are ignored.
            if not line.endswith("\n"):
                break
            try:
                item_id, _fingerprint = json.loads(line)
            except (ValueError, TypeError):
                break
            keys.append(str(item_id))

    rows = min(len(keys), complete)
    matrix = raw[: rows * dim].reshape(rows, dim)
    # A later row for the same id supersedes an earlier one.
    row_of = {}
    for row, item_id in enumerate(keys[:rows]):
        row_of[item_id] = row
    ids = sorted(row_of)
    vectors = matrix[[row_of[i] for i in ids]].astype(np.float32) if ids else np.zeros((0, dim), np.float32)
    if not np.isfinite(vectors).all():
        raise SystemExit(f"{directory}: the cache holds non-finite values")
    return meta, ids, vectors


def load_truth(path):
    """Returns [(entry, label)] from a `path,label` CSV (a repeated entry: the last wins)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "path" not in reader.fieldnames or "label" not in reader.fieldnames:
            raise SystemExit(f"{path}: expected a header with the columns path,label")
        truth = {}
        for row in reader:
            entry, label = (row["path"] or "").strip(), (row["label"] or "").strip()
            if entry and label:
                truth[entry.replace("\\", "/")] = label
    return list(truth.items())


def match_truth(truth, cached_ids, truth_path, dataset_dir):
    """Maps truth entries to cached ids; returns {id: label}."""
    cached = set(cached_ids)
    truth_dir = os.path.dirname(os.path.abspath(truth_path))
    data_dir = os.path.normpath(os.path.abspath(dataset_dir)) if dataset_dir else None
    labels = {}
    for entry, label in truth:
        item_id = entry if entry in cached else None
        if item_id is None and data_dir is not None:
            # Lightbulb's rule: the entry as a path relative to the truth file's directory,
            # taken relative to the dataset directory.
            full = os.path.normpath(os.path.join(truth_dir, entry))
            if full.startswith(data_dir + os.sep):
                rel = os.path.relpath(full, data_dir).replace(os.sep, "/")
                item_id = rel if rel in cached else None
        if item_id is None and data_dir is None:
            # Without the dataset directory: drop leading components (`images/00003.png`
            # -> `00003.png`) until the rest is a cached id.
            parts = entry.split("/")
            for k in range(1, len(parts)):
                candidate = "/".join(parts[k:])
                if candidate in cached:
                    item_id = candidate
                    break
        if item_id is not None:
            labels[item_id] = label
    return labels


# ---------------------------------------------------------------------------- protocol
def round_half_up(x):
    """Rust's f64::round for non-negative values (Python's round() rounds half to even)."""
    return int(math.floor(x + 0.5))


def stratified_split(y, n_classes, fraction, rng):
    """Indices (test, pool): per class, shuffled, round(n * fraction) to the test set."""
    test, pool = [], []
    for c in range(n_classes):
        members = np.flatnonzero(y == c)
        members = members[rng.permutation(members.size)]
        k = round_half_up(members.size * fraction)
        test.extend(members[:k].tolist())
        pool.extend(members[k:].tolist())
    return np.array(sorted(test), dtype=np.int64), np.array(sorted(pool), dtype=np.int64)


def next_stop(labelled, step, budget):
    """The next label count at which to stop and evaluate."""
    next_multiple = (labelled // step + 1) * step
    next_checkpoint = min((c for c in CHECKPOINTS if c > labelled), default=budget)
    return min(next_multiple, next_checkpoint, budget)


class Model:
    """StandardScaler + LogisticRegression, or a constant when only one class is known."""

    def __init__(self, x, y, scale):
        self.classes = np.unique(y)
        self.pipeline = None
        if self.classes.size >= 2:
            steps = [StandardScaler()] if scale else []
            self.pipeline = make_pipeline(*steps, LogisticRegression(max_iter=1000))
            self.pipeline.fit(x, y)

    def predict(self, x):
        if self.pipeline is None:
            return np.full(len(x), self.classes[0])
        return self.pipeline.predict(x)

    def proba(self, x):
        return self.pipeline.predict_proba(x)


def evaluate(model, x, y, n_classes):
    pred = model.predict(x)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=list(range(n_classes)), average="macro", zero_division=0)),
    }


def query(strategy, model, x_unlabelled, k, rng):
    """Positions (into x_unlabelled) of the k items to label next."""
    n = len(x_unlabelled)
    if strategy == "random" or model is None or model.pipeline is None:
        return rng.choice(n, size=k, replace=False)
    p = model.proba(x_unlabelled)
    if strategy == "entropy":
        score = -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=1)
    else:  # margin: 1 - (p1 - p2), largest when the top two classes are closest
        top2 = np.sort(p, axis=1)[:, -2:]
        score = 1.0 - (top2[:, 1] - top2[:, 0])
    # Stable sort: ties keep pool order (sorted by id), so runs are deterministic.
    return np.argsort(-score, kind="stable")[:k]


def simulate(x, y, n_classes, args):
    rng = np.random.default_rng(args.seed)
    if args.split == "rust":
        test, pool = rust_split.stratified_split(y, args.test_fraction, args.seed)
        test, pool = np.array(test, dtype=np.int64), np.array(pool, dtype=np.int64)
    else:
        test, pool = stratified_split(y, n_classes, args.test_fraction, rng)
    budget = min(args.budget, pool.size)
    labelled = np.zeros(0, dtype=np.int64)  # indices into x
    unlabelled = pool.copy()
    model = None
    curve = []
    while labelled.size < budget:
        k = next_stop(labelled.size, args.step, budget) - labelled.size
        picked = query(args.strategy, model, x[unlabelled], k, rng)
        labelled = np.concatenate([labelled, unlabelled[picked]])
        unlabelled = np.delete(unlabelled, picked)
        # Refit on everything labelled so far; this model is evaluated and also picks the
        # next step's items.
        model = Model(x[labelled], y[labelled], args.scale)
        point = {"labels": int(labelled.size)}
        point.update(evaluate(model, x[test], y[test], n_classes))
        curve.append(point)
        if args.verbose:
            print(f"  {point['labels']:4d} labels  acc {point['accuracy']:.4f}  "
                  f"macro-F1 {point['macro_f1']:.4f}", file=sys.stderr)
    ceiling = evaluate(Model(x[pool], y[pool], args.scale), x[test], y[test], n_classes)
    return test.size, curve, ceiling


# ------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", required=True, help="embedding cache directory (holds meta.json)")
    p.add_argument("--truth", required=True, help="truth CSV with header path,label")
    p.add_argument("--strategy", choices=STRATEGIES, default="entropy")
    p.add_argument("--budget", type=int, default=500, help="labels to spend (default 500)")
    p.add_argument("--step", type=int, default=10, help="labels per step (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-fraction", type=float, default=0.25, help="share held out per class (default 0.25)")
    p.add_argument("--split", choices=("rust", "numpy"), default="rust",
                   help="test split RNG: rust = the simulator's test set for the same seed (default), "
                        "numpy = the older numpy-drawn split")
    p.add_argument("--classes", help="comma-separated classes in the config's order (label.classes); "
                                     "the Rust split depends on it (default: sorted truth labels)")
    p.add_argument("--dataset-dir", help="dataset directory, to resolve truth paths relative to the truth file")
    p.add_argument("--no-scale", dest="scale", action="store_false", help="skip the StandardScaler")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--verbose", action="store_true", help="print each curve point to stderr as it comes")
    args = p.parse_args(argv)
    if args.budget < 1 or args.step < 1:
        p.error("--budget and --step must be positive")
    if not 0.0 <= args.test_fraction < 1.0:
        p.error("--test-fraction must be in [0, 1)")
    return args


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    meta, ids, vectors = load_cache(args.cache)
    truth = load_truth(args.truth)
    found = sorted({label for _, label in truth})
    if args.classes:
        classes = [c.strip() for c in args.classes.split(",") if c.strip()]
        unknown = [c for c in found if c not in classes]
        if unknown:
            raise SystemExit(f"{args.truth}: labels {unknown} are not among --classes {classes}")
    else:
        classes = found
        if args.split == "rust":
            # The Rust split shuffles the classes in the config's order; sorted is a guess.
            print("note: no --classes; the test set is the simulator's only if the config "
                  "lists the classes in sorted order", file=sys.stderr)
    labels = match_truth(truth, ids, args.truth, args.dataset_dir)
    if not labels:
        raise SystemExit(f"no id of {args.truth} is in the cache {args.cache} ({len(ids)} cached ids)")
    row = {item_id: i for i, item_id in enumerate(ids)}
    items = sorted(labels)
    x = vectors[[row[i] for i in items]]
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[labels[i]] for i in items], dtype=np.int64)
    missing = [c for i, c in enumerate(classes) if not (y == i).any()]
    if missing:
        print(f"warning: truth classes with no cached item (macro-F1 counts them as 0): {missing}",
              file=sys.stderr)
    if len(truth) != len(items):
        print(f"note: {len(items)} of {len(truth)} truth entries are in the cache", file=sys.stderr)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        test_items, curve, ceiling = simulate(x, y, len(classes), args)
    not_converged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)

    result = {
        "strategy": args.strategy,
        "seed": args.seed,
        "items": len(items),
        "test_items": int(test_items),
        "curve": curve,
        "ceiling": ceiling,
        "seconds": round(time.time() - started, 3),
        # Extras (not in Lightbulb's output).
        "baseline": "sklearn LogisticRegression" + ("" if args.scale else " (no scaler)"),
        "encoder": meta["encoder"].get("id"),
        "dim": int(meta["encoder"]["dim"]),
        "classes": classes,
        "split": args.split,
        "not_converged": not_converged,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"sklearn baseline, {args.strategy}, seed {args.seed}: {len(items)} items "
          f"({test_items} test), {len(classes)} classes, encoder {result['encoder']} ({result['dim']}-d)")
    print(f"{'labels':>6}  {'accuracy':>8}  {'macro-F1':>8}")
    for point in curve:
        print(f"{point['labels']:6d}  {point['accuracy']:8.4f}  {point['macro_f1']:8.4f}")
    print(f"{'all':>6}  {ceiling['accuracy']:8.4f}  {ceiling['macro_f1']:8.4f}   (ceiling: the whole pool)")
    print(f"{result['seconds']:.1f} s" + (f", {not_converged} fits did not converge" if not_converged else ""))


if __name__ == "__main__":
    main()
