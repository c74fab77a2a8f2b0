#!/usr/bin/env python3
"""Learning-curve matrix: Lightbulb's simulator against a plain scikit-learn baseline.

For one dataset (task config + truth CSV), runs every strategy in `--strategies` for every
seed in `--seeds` and prints one markdown table per metric (accuracy, macro-F1): rows are
strategies, columns the mean over seeds (± standard deviation) at 20/50/78/100/200/500
labels and the ceiling (the model trained on the whole pool). Below them, per strategy,
the number of labels needed to reach the reference strategy's accuracy at the full budget
(default: `random` at 500 labels, i.e. how many labels active learning saves).

Strategy names
  * `sk-entropy`, `sk-margin`, `sk-random`: `bench/sklearn_baseline.py` (StandardScaler +
    LogisticRegression) on Lightbulb's embedding cache for the config, under the same
    protocol and, seed for seed, on the same test set (the simulator's split, reproduced
    in `bench/rust_split.py`; the config's class order is passed along). Run with
    `--python` (default: $HOME/.cache/lightbulb/sklearn-venv/bin/python, see that
    script's docstring for the venv set-up).
  * anything else (`random`, `entropy`, `margin`, `least_confidence`, `kcenter`,
    `cluster_margin`, ...): `$CARGO_TARGET_DIR/release/lightbulb simulate --config C
    --truth T --strategy S --seed N --budget B --step K --json [--extra-args]`
    (CARGO_TARGET_DIR defaults to $HOME/.cache/lightbulb/target).

Lightbulb runs go first (they fill the embedding cache the baseline reads). The cache of a
config is `<model.directory, else outputs/<config stem>>/embeddings/<encoder id>/`; it is
found by globbing `.../embeddings/*/meta.json`, or given with `--cache`. Relative paths in
configs resolve against the repository root, where every run is started.

A run that fails (non-zero exit, timeout, unreadable output) shows as `err` when no seed of
its strategy succeeded (as `(k/n seeds)` when some did); the tail of its stderr is printed.

    python3 bench/learning_curves.py --config config/examples/mnist_3v8.yml \\
        --truth .deps/data/mnist/truth-3v8.csv \\
        --strategies random,entropy,margin,sk-random,sk-entropy,sk-margin \\
        [--seeds 0,1,2] [--extra-args "--head mlp"] [--out bench/results/learning_curves.md]

Standard library only (the baseline itself needs numpy + scikit-learn in its venv).
"""
import argparse
import concurrent.futures
import datetime
import glob
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKPOINTS = (20, 50, 78, 100, 200, 500)
SK_PREFIX = "sk-"
STDERR_TAIL = 25  # lines of stderr shown for a failed run


# ------------------------------------------------------------------------ config reading
def read_config(path):
    """The few config values needed here, from a minimal reading of the YAML.

    Only `section:` lines at column 0 and `key: value` lines one level below them are read,
    the value a scalar or a list of scalars (`[a, "b"]`, or `- a` lines below the key); that
    is enough for Lightbulb's task configs (`label.classes` is a list), so no YAML library is
    needed. Deeper nesting is skipped.
    """
    unquote = lambda v: v[1:-1] if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"" else v
    values, section, key_indent, list_key = {}, None, None, None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = re.sub(r"(^|\s)#.*$", "", raw.rstrip("\n")).rstrip()
            if not line.strip() or line.strip() == "---":
                continue
            indent = len(line) - len(line.lstrip(" "))
            item = re.match(r"\s*-\s+(.*)$", line)
            if list_key and item and indent >= key_indent:
                values.setdefault(list_key, []).append(unquote(item.group(1).strip()))
                continue
            list_key = None
            m = re.match(r"\s*([A-Za-z_][\w-]*)\s*:\s*(.*)$", line)
            if indent == 0:
                section, key_indent = (m.group(1), None) if m else (None, None)
                continue
            if section is None or m is None:
                continue
            if key_indent is None:
                key_indent = indent
            if indent != key_indent:
                continue
            key, value = f"{section}.{m.group(1)}", m.group(2).strip()
            if value.startswith("[") and value.endswith("]"):
                values[key] = [unquote(v.strip()) for v in value[1:-1].split(",") if v.strip()]
            elif value:
                values[key] = unquote(value)
            else:
                list_key = key  # a block list may follow
    return values


def in_repo(path):
    return path if os.path.isabs(path) else os.path.join(REPO, path)


def output_dir(config_path, config):
    """Lightbulb's `TaskConfig::output_dir`: model.directory, else outputs/<config stem>."""
    stem = os.path.splitext(os.path.basename(config_path))[0]
    return in_repo(config.get("model.directory") or os.path.join("outputs", stem))


def find_cache(config_path, config):
    """The embedding cache directory of a config, or None if none exists yet."""
    metas = glob.glob(os.path.join(output_dir(config_path, config), "embeddings", "*", "meta.json"))
    if not metas:
        return None
    if len(metas) > 1:
        # Several encoders cached: prefer the config's (or the default for its data type).
        wanted = config.get("model.encoder") or (
            "mobilenet_v2" if config.get("dataset.data_type") == "images" else "minilm_l6")
        norm = lambda s: re.sub(r"[^a-z0-9]", "", s.lower())
        matching = [m for m in metas if norm(wanted) in norm(os.path.basename(os.path.dirname(m)))]
        metas = sorted(matching or metas, key=os.path.getmtime, reverse=True)
        print(f"note: several embedding caches, using {os.path.dirname(metas[0])}", file=sys.stderr)
    return os.path.dirname(metas[0])


# ------------------------------------------------------------------------------- running
def parse_result(stdout):
    """The JSON object of a run's stdout (the whole of it, or its last JSON line)."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except ValueError:
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    continue
    raise ValueError("no JSON object on stdout")


def test_fraction(args, config):
    """The test fraction our runs use: `--test-fraction` in --extra-args, else the config's."""
    extra = shlex.split(args.extra_args)
    for i, a in enumerate(extra):
        if a == "--test-fraction" and i + 1 < len(extra):
            return extra[i + 1]
        if a.startswith("--test-fraction="):
            return a.split("=", 1)[1]
    return config.get("model.test_fraction", "0.25")


def command_for(strategy, seed, args, config):
    if strategy.startswith(SK_PREFIX):
        cache = args.cache or find_cache(args.config, config)
        if cache is None:
            raise RuntimeError(f"no embedding cache under {output_dir(args.config, config)}/embeddings/ "
                               "(run a Lightbulb strategy first, or pass --cache)")
        cmd = [args.python, os.path.join(REPO, "bench", "sklearn_baseline.py"),
               "--cache", cache, "--truth", args.truth, "--strategy", strategy[len(SK_PREFIX):],
               "--seed", str(seed), "--budget", str(args.budget), "--step", str(args.step),
               "--test-fraction", test_fraction(args, config), "--json"]
        if config.get("dataset.directory"):
            cmd += ["--dataset-dir", in_repo(config["dataset.directory"])]
        if isinstance(config.get("label.classes"), list):
            # The config's class order decides the simulator's split; passing it lets the
            # baseline hold out the same test set for the same seed.
            cmd += ["--classes", ",".join(config["label.classes"])]
        return cmd + shlex.split(args.sk_args)
    return [args.binary, "simulate", "--config", args.config, "--truth", args.truth,
            "--strategy", strategy, "--seed", str(seed), "--budget", str(args.budget),
            "--step", str(args.step), "--json"] + shlex.split(args.extra_args)


def run_one(strategy, seed, args, config):
    """Runs one (strategy, seed); returns a dict with `result` or `error` (+ `stderr`)."""
    run = {"strategy": strategy, "seed": seed}
    started = time.time()
    try:
        cmd = command_for(strategy, seed, args, config)
        run["command"] = " ".join(shlex.quote(c) for c in cmd)
        # Own process group, so a timeout also ends whatever the run started.
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            run["stderr"] = stderr
            raise
        run["stderr"] = stderr
        if proc.returncode != 0:
            run["error"] = f"exit status {proc.returncode}"
        else:
            result = parse_result(stdout)
            if not isinstance(result, dict) or not isinstance(result.get("curve"), list):
                raise ValueError("the JSON object has no `curve` list")
            run["result"] = result
    except subprocess.TimeoutExpired:
        run["error"] = f"timed out after {args.timeout:g} s"
    except (OSError, ValueError, RuntimeError) as e:
        run["error"] = f"{type(e).__name__}: {e}"
    run["wall"] = time.time() - started
    status = "ok" if "result" in run else f"FAILED ({run['error']})"
    print(f"  {strategy:>16} seed {seed}: {status}, {run['wall']:.1f} s", file=sys.stderr, flush=True)
    return run


def run_all(args, config):
    """All runs, Lightbulb strategies first (they create the cache the baseline reads)."""
    ours = [s for s in args.strategies if not s.startswith(SK_PREFIX)]
    theirs = [s for s in args.strategies if s.startswith(SK_PREFIX)]
    runs = []
    for phase in (ours, theirs):
        jobs = [(s, seed) for s in phase for seed in args.seeds]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            runs += list(pool.map(lambda job: run_one(job[0], job[1], args, config), jobs))
    return runs


# ----------------------------------------------------------------------------- summaries
def at_labels(result, labels):
    """The curve point with exactly `labels` labels, or None."""
    for point in result["curve"]:
        if point.get("labels") == labels:
            return point
    return None


def mean_std(values):
    if not values:
        return None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def cell(stat):
    return "–" if stat is None else f"{stat[0]:.3f} ±{stat[1]:.3f}"


def summarise(runs, strategies, n_seeds, columns):
    """Per strategy: mean ± std per column and metric, the ok results, and a row label."""
    rows = {}
    for s in strategies:
        ok = [r["result"] for r in runs if r["strategy"] == s and "result" in r]
        row = {"ok": ok, "name": f"`{s}`" + ("" if len(ok) == n_seeds else f" ({len(ok)}/{n_seeds} seeds)")}
        for metric in ("accuracy", "macro_f1"):
            stats = []
            for labels in columns:
                points = [at_labels(r, labels) for r in ok]
                points = [p[metric] for p in points if p is not None and p.get(metric) is not None]
                # A column only counts if every successful seed reached that label count.
                stats.append(mean_std(points) if points and len(points) == len(ok) else None)
            ceilings = [r["ceiling"][metric] for r in ok if isinstance(r.get("ceiling"), dict)
                        and r["ceiling"].get(metric) is not None]
            stats.append(mean_std(ceilings))
            row[metric] = stats
        rows[s] = row
    return rows


def mean_curve(results, metric="accuracy"):
    """[(labels, mean metric)] over the label counts that every result has."""
    if not results:
        return []
    common = set.intersection(*({p["labels"] for p in r["curve"]} for r in results))
    return [(n, statistics.fmean(at_labels(r, n)[metric] for r in results)) for n in sorted(common)]


def markdown(args, runs, rows, columns):
    out = []
    title = args.title or f"{os.path.basename(args.config)} + {os.path.basename(args.truth)}"
    out.append(f"## {title}\n")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip() or "?"
    out.append(f"- {datetime.datetime.now().isoformat(timespec='seconds')}, commit {commit}; "
               f"config `{os.path.relpath(args.config, REPO)}`, truth `{os.path.relpath(args.truth, REPO)}`")
    out.append(f"- seeds {', '.join(map(str, args.seeds))}; budget {args.budget}, step {args.step}"
               + (f"; Lightbulb extra args `{args.extra_args}`" if args.extra_args else "")
               + (f"; baseline extra args `{args.sk_args}`" if args.sk_args else ""))
    sizes = sorted({(r["result"].get("items"), r["result"].get("test_items")) for r in runs if "result" in r},
                   key=str)
    if sizes:
        out.append("- items (test items): " + ", ".join(f"{i} ({t})" for i, t in sizes)
                   + ("  **differ between runs: not the same item set**" if len(sizes) > 1 else ""))
    encoders = sorted({str(r["result"]["encoder"]) for r in runs if "result" in r and r["result"].get("encoder")})
    if encoders:
        out.append(f"- encoder: {', '.join(encoders)}")
    out.append("- `sk-*`: scikit-learn StandardScaler + LogisticRegression(max_iter=1000) on the same "
               "embedding cache and, seed for seed, the simulator's test set (`bench/sklearn_baseline.py`, "
               "`--split rust` unless the baseline extra args say otherwise); cells: mean ±std over seeds\n")

    header = "| strategy | " + " | ".join(str(c) for c in columns) + " | ceiling |"
    rule = "|---|" + "---:|" * (len(columns) + 1)
    for metric, name in (("accuracy", "Accuracy"), ("macro_f1", "Macro-F1")):
        out.append(f"**{name}** (test set) at N labels\n")
        out += [header, rule]
        for s, row in rows.items():
            cells = ["err"] * (len(columns) + 1) if not row["ok"] else [cell(x) for x in row[metric]]
            out.append(f"| {row['name']} | " + " | ".join(cells) + " |")
        out.append("")

    # Labels needed to match the reference strategy's accuracy at the full budget.
    ref = args.reference if args.reference in rows else next(
        (s for s in ("random", "sk-random") if s in rows), None)
    if ref and rows[ref]["ok"]:
        ref_curve = mean_curve(rows[ref]["ok"])
        if ref_curve:
            ref_labels, ref_acc = ref_curve[-1]
            out.append(f"**Labels needed to reach `{ref}`@{ref_labels} accuracy ({ref_acc:.3f})**, "
                       "first N where the seed-mean accuracy is at least that:\n")
            for s, row in rows.items():
                curve = mean_curve(row["ok"])
                if not curve:
                    out.append(f"- `{s}`: err")
                    continue
                hit = next((n for n, acc in curve if acc >= ref_acc), None)
                secs = statistics.fmean(r.get("seconds", float("nan")) for r in row["ok"])
                best_n, best = max(curve, key=lambda p: p[1])
                verdict = (f"{hit} labels ({hit / ref_labels:.2f}× the labels)" if hit is not None else
                           f">{curve[-1][0]} (not reached; best {best:.3f} at {best_n})")
                out.append(f"- `{s}`: {verdict}; {secs:.1f} s per run")
            out.append("")
    elif ref is None:
        out.append("(no `random` or `sk-random` run: no labels-needed line)\n")

    failed = [r for r in runs if "error" in r]
    if failed:
        out.append("**Failed runs**\n")
        for r in failed:
            out.append(f"- `{r['strategy']}` seed {r['seed']}: {r['error']}"
                       + (f" — `{r['command']}`" if r.get("command") else ""))
            tail = "\n".join((r.get("stderr") or "").rstrip().splitlines()[-STDERR_TAIL:])
            if tail:
                out.append("\n```\n" + tail.replace("```", "'''") + "\n```")
        out.append("")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/lightbulb/target")
    venv_python = os.path.expanduser("~/.cache/lightbulb/sklearn-venv/bin/python")
    p.add_argument("--config", required=True, help="task config (YAML)")
    p.add_argument("--truth", required=True, help="truth CSV (path,label)")
    p.add_argument("--strategies", default="random,entropy,margin,sk-random,sk-entropy,sk-margin",
                   help="comma-separated; sk-* = the scikit-learn baseline")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--budget", type=int, default=500)
    p.add_argument("--step", type=int, default=10)
    p.add_argument("--extra-args", default="", help="extra arguments for `lightbulb simulate`, one string")
    p.add_argument("--sk-args", default="", help="extra arguments for sklearn_baseline.py (e.g. --no-scale)")
    p.add_argument("--cache", help="embedding cache directory for the sk-* runs (default: found from the config)")
    p.add_argument("--binary", default=os.path.join(target, "release", "lightbulb"), help="lightbulb binary")
    p.add_argument("--python", default=venv_python if os.path.exists(venv_python) else sys.executable,
                   help="interpreter with numpy + scikit-learn for the sk-* runs")
    p.add_argument("--reference", default="random", help="strategy whose accuracy at the budget sets the "
                   "labels-needed target (default random, else sk-random)")
    p.add_argument("--title", help="markdown section title (default: config + truth file names)")
    p.add_argument("--out", help="append the markdown to this file as well")
    p.add_argument("--runs-jsonl", help="append every run's raw result (or error) to this JSON-lines file")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (default 1)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per run (default 3600)")
    args = p.parse_args(argv)
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    # Runs start in the repository root: make the user's paths absolute first.
    args.config, args.truth = os.path.abspath(args.config), os.path.abspath(args.truth)
    args.cache = os.path.abspath(args.cache) if args.cache else None
    if not os.path.isfile(args.config):
        p.error(f"no config at {args.config}")
    if not os.path.isfile(args.truth):
        p.error(f"no truth file at {args.truth}")
    return args


def main(argv=None):
    args = parse_args(argv)
    config = read_config(args.config)
    columns = [c for c in CHECKPOINTS if c < args.budget] + [args.budget]
    print(f"{os.path.basename(args.config)}: {len(args.strategies)} strategies × {len(args.seeds)} seeds",
          file=sys.stderr)
    runs = run_all(args, config)
    if args.runs_jsonl:
        os.makedirs(os.path.dirname(os.path.abspath(args.runs_jsonl)), exist_ok=True)
        with open(args.runs_jsonl, "a", encoding="utf-8") as f:
            for r in runs:
                f.write(json.dumps({"config": os.path.relpath(args.config, REPO), **r}) + "\n")
    text = markdown(args, runs, summarise(runs, args.strategies, len(args.seeds), columns), columns)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    failed = sum("error" in r for r in runs)
    if failed:
        print(f"{failed} of {len(runs)} runs failed (see the table's failure list)", file=sys.stderr)
    return 1 if failed == len(runs) else 0


if __name__ == "__main__":
    sys.exit(main())
