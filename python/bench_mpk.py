#!/usr/bin/python3
"""Benchmark mpk against pickle and joblib (not a test).

    nice /usr/bin/python3 python/bench_mpk.py [--repeat N] [--fresh ROUNDS] [--only mlp,tfidf,forest,hgb,gb]
    nice /usr/bin/python3 python/bench_mpk.py --scaling BATCHES
    nice /usr/bin/python3 python/bench_mpk.py --big ROUNDS

Five models: an MLPClassifier with hidden layers (256, 128) on 500 features
(trained briefly on random data; convergence does not matter), a
TfidfVectorizer with about 100k terms (synthetic documents), a 50-tree
RandomForestClassifier (5,000 samples, 20 features, full-depth trees), a
HistGradientBoostingClassifier (100 iterations, 3 classes, so 300 tree
predictors) and a GradientBoostingClassifier (100 iterations, 3 classes: 300
decision trees, 2,000 samples).  For each it writes the model with

  mpk compact   mpk.save(m, arrays="compact"), loaded with mpk's C part
                (python/mpk/_cmpk.c) where it is built (build/python)
  mpk no C      the same file, loaded without the C part (python3-msgpack
                and numpy only, as where it is not built)
  mpk nested    mpk.save(m, arrays="nested")
  msgpack only  the mpk compact file through msgpack.unpackb alone (as
                mpk.load parses it), no checks, no estimator: the floor
                for any loader that reads MsgPack with python3-msgpack
  pickle        pickle protocol 5 of the whole estimator
  pickle dict   pickle protocol 5 of a dict with the archive's content
                (same keys, numpy arrays as arrays) -- loading it does not
                rebuild an estimator, so it is a floor for "plain data"
  joblib        joblib.dump of the whole estimator (no compression)

and reports the file size, the median time to load it from a (warm) file,
the minimum CPU time of a load and the median number of page faults a load
took (memory the kernel mapped in afresh: several microseconds each on this
kind of machine), with ratios relative to mpk compact, then mpk compact
against pickle.  The formats are timed in turn, round after round, so that
load from other jobs on the machine falls on all of them alike, each round
in an order of its own (shuffled, with a fixed seed), so that each follows
every other about as often: a load pays for the heap the load before it
left (see bench()).

That is one regime: a process that has loaded, built and freed a lot, whose
allocator has grown its thresholds.  With --fresh ROUNDS each format is
timed instead in processes of its own (ROUNDS of them, each timing its
first load and then --repeat more), as in a program that loads one model:
there the allocator is at its defaults and maps, page-faults in and unmaps again
whatever a load allocates in big pieces, every time.  There the table
gives the first load in each process (its median, its minimum CPU time and
its page faults: what a program that loads its model pays), and "again ms"
the median of the later loads in that process; the last lines add the
ratios of the first loads' quartiles, mpk's over pickle's, since a first
load varies by tens of percent from one process to the next.

--scaling BATCHES splits the forest's load time into a cost per tree and
a fixed cost, for mpk and pickle (see scaling()): where a gap comes from.

--big ROUNDS times large models, where a load's time and memory are felt:
a RandomForestRegressor of 100 full-depth trees on 30,000 samples (about
3.8M nodes), an MLPClassifier (2048, 2048) on 2,000 features and a
HistGradientBoostingClassifier of 300 iterations and 10 classes (3,000
predictors).  Each format (mpk compact, pickle) is loaded in a fresh
process, ROUNDS each, in turn, and the table gives the median wall time,
the minimum CPU time and the median peak memory a load added (the
process's maximum resident set size after the load less before it): what
a program that loads such a model pays (see big()).
"""

import argparse
import os
import pickle
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import joblib
import msgpack
import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.append(os.path.join(os.path.dirname(_HERE), "build", "python"))    # mpk's C part, if built
import mpk  # noqa: E402
from mpk import _arrays  # noqa: E402
from mpk import _unpack as _mpk_unpack  # noqa: E402


def load_pure(p):
    """mpk.load without its C part (python3-msgpack and numpy only)."""
    saved = _mpk_unpack._cmpk, _mpk_unpack.tree_columns
    _mpk_unpack._cmpk, _mpk_unpack.tree_columns = None, None
    try:
        return mpk.load(p)
    finally:
        _mpk_unpack._cmpk, _mpk_unpack.tree_columns = saved


def make_mlp():
    from sklearn.neural_network import MLPClassifier
    rng = np.random.RandomState(0)
    X = rng.rand(300, 500)
    y = rng.randint(0, 10, 300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLPClassifier((256, 128), max_iter=3, random_state=0).fit(X, y), X[:50]


def make_tfidf(n_terms=100_000, n_docs=2_000, per_doc=60):
    from sklearn.feature_extraction.text import TfidfVectorizer
    rng = np.random.RandomState(0)
    terms = np.array([f"t{i:06d}" for i in range(n_terms)])
    ids = np.concatenate([rng.permutation(n_terms), rng.randint(0, n_terms, n_docs * per_doc - n_terms)])
    docs = [" ".join(terms[ids[i::n_docs]]) for i in range(n_docs)]
    vec = TfidfVectorizer().fit(docs)
    return vec, docs[:50]


def make_forest(n_trees=50):
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    X, y = make_classification(5000, 20, n_informative=10, random_state=0)
    return RandomForestClassifier(n_trees, random_state=0).fit(X, y), X[:200]


def make_gb():
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier
    X, y = make_classification(2000, 20, n_informative=10, n_classes=3, random_state=0)
    return GradientBoostingClassifier(n_estimators=100, random_state=0).fit(X, y), X[:200]


def make_hgb():
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    X, y = make_classification(5000, 20, n_informative=10, n_classes=3, random_state=0)
    return HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=0).fit(X, y), X[:200]


def make_big_forest():
    from sklearn.ensemble import RandomForestRegressor
    rng = np.random.RandomState(0)
    X = rng.rand(30_000, 20)
    rf = RandomForestRegressor(100, random_state=0, n_jobs=2).fit(X, X[:, 0] + rng.rand(30_000))
    return rf.set_params(n_jobs=None), X[:200]     # (threads sum the trees in any order: not bit-exact)


def make_big_mlp():
    from sklearn.neural_network import MLPClassifier
    rng = np.random.RandomState(0)
    X = rng.rand(500, 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLPClassifier((2048, 2048), max_iter=1, random_state=0).fit(X, rng.randint(0, 10, 500)), X[:50]


def make_big_hgb():
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    X, y = make_classification(20_000, 30, n_informative=15, n_classes=10, random_state=0)
    return HistGradientBoostingClassifier(max_iter=300, early_stopping=False, random_state=0).fit(X, y), X[:200]


def plain_content(obj):
    """The archive's content with compact arrays turned into numpy arrays."""
    if isinstance(obj, dict):
        if _arrays.is_compact(obj):
            return _arrays.decode_compact(obj, "")
        return {k: plain_content(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain_content(v) for v in obj]
    return obj


def _msgpack_only(path):
    with open(path, "rb") as f:
        return msgpack.unpackb(f.read(), raw=True, strict_map_key=False)


def _pickle_load(path):
    with open(path, "rb") as f:
        return pickle.load(f)


# how each format is loaded, by its row label
LOADERS = {"mpk compact": mpk.load, "mpk no C": load_pure, "mpk nested": mpk.load,
           "msgpack only": _msgpack_only, "pickle": _pickle_load, "pickle dict": _pickle_load,
           "joblib": joblib.load}


def bench(name, est, sample, d, repeat, fresh):
    paths = {}
    paths["mpk compact"] = p = os.path.join(d, f"{name}_compact.mpk")
    mpk.save(est, p, arrays="compact")
    if _mpk_unpack.ACCELERATED:
        paths["mpk no C"] = p
    paths["mpk nested"] = p = os.path.join(d, f"{name}_nested.mpk")
    mpk.save(est, p, arrays="nested")
    paths["msgpack only"] = paths["mpk compact"]
    paths["pickle"] = p = os.path.join(d, f"{name}.pkl")
    with open(p, "wb") as f:
        pickle.dump(est, f, protocol=5)
    content = plain_content(msgpack.unpackb(mpk.dumps(est), strict_map_key=False))
    paths["pickle dict"] = p = os.path.join(d, f"{name}_dict.pkl")
    with open(p, "wb") as f:
        pickle.dump(content, f, protocol=5)
    paths["joblib"] = p = os.path.join(d, f"{name}.joblib")
    joblib.dump(est, p)

    # sanity: every full-estimator format predicts the same
    ref = est.transform(sample) if hasattr(est, "transform") else est.predict_proba(sample)
    for label in ("mpk compact", "mpk no C", "mpk nested", "pickle", "joblib"):
        if label in paths:
            m = LOADERS[label](paths[label])
            got = m.transform(sample) if hasattr(m, "transform") else m.predict_proba(sample)
            diff = (got != ref)
            assert (diff.nnz if hasattr(diff, "nnz") else diff.sum()) == 0, label

    labels = list(paths)
    size = {label: os.path.getsize(paths[label]) for label in labels}
    if fresh:
        runs = {label: [] for label in labels}
        for r in range(fresh):
            for label in labels[r % len(labels):] + labels[:r % len(labels)]:
                runs[label].append(_fresh_load(label, paths[label], repeat))
        return [(label, size[label], statistics.median(r[0] for r in runs[label]), min(r[1] for r in runs[label]),
                 statistics.median(r[2] for r in runs[label]), statistics.median(r[3] for r in runs[label]),
                 [r[0] for r in runs[label]])
                for label in labels]
    for label in labels:
        LOADERS[label](paths[label])  # warm the page cache
    times = {label: [] for label in labels}
    cpu = {label: [] for label in labels}
    faults = {label: [] for label in labels}
    # Each round in a shuffled order.  A load right after one that left
    # glibc's heap trimmed (joblib's) page-faults in afresh what it
    # allocates above the heap's top: mpk's TF-IDF load, 907 faults after
    # joblib's and none after most others; pickle's, 1,376 after joblib's
    # and none after msgpack's.  Rounds that only rotated one fixed order
    # kept every format after the same other (mpk compact always after
    # joblib, pickle after msgpack only), which biased whole rows.
    order = random.Random(0)
    for _ in range(repeat):
        this_round = labels[:]
        order.shuffle(this_round)
        for label in this_round:
            f, c, t = _faults(), time.process_time(), time.perf_counter()
            LOADERS[label](paths[label])
            times[label].append(time.perf_counter() - t)
            cpu[label].append(time.process_time() - c)
            faults[label].append(_faults() - f)
    return [(label, size[label], statistics.median(times[label]), min(cpu[label]),
             statistics.median(faults[label]), None, None) for label in labels]


def _fresh_load(label, path, repeat):
    """_load_only's numbers for path, loaded as label in a process of its own."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--load", label, path, "--repeat", str(repeat)],
                         capture_output=True, text=True, check=True)
    return tuple(map(float, out.stdout.split()))


def _faults():
    """Page faults so far in this process (minor: memory mapped in afresh)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _load_only(label, path, repeat):
    """--load: in a process of its own, as a program that loads its model
    does, the first load of the file, timed: prints its wall time, CPU time
    and page faults, then the median wall time of repeat more.  The page
    cache holds the file (the parent wrote and loaded it; it is not read
    here, which would change this process's heap) and the scikit-learn
    modules either format imports are imported, so that the first load
    pays what a program's does beyond those: its memory, page-faulted in,
    and the loader's own first-time work."""
    import sklearn.ensemble, sklearn.feature_extraction.text, sklearn.neural_network, sklearn.tree  # noqa: E401,F401
    rss = _reset_peak_rss()
    f, c, t = _faults(), time.process_time(), time.perf_counter()
    LOADERS[label](path)
    first, first_cpu, first_faults = time.perf_counter() - t, time.process_time() - c, _faults() - f
    peak = _status("VmHWM") - rss
    walls = []
    for _ in range(repeat):
        t = time.perf_counter()
        LOADERS[label](path)
        walls.append(time.perf_counter() - t)
    print(first, first_cpu, first_faults, statistics.median(walls) if walls else 0.0, peak)


def _status(field):
    """A size in this process's /proc/self/status, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak_rss():
    """This process's resident set size, its peak (VmHWM) reset to it.
    (getrusage's ru_maxrss is no good here: it carries over fork and exec,
    so a child of a big parent starts at its parent's size.)"""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass            # (a kernel without it: the peak may then be the imports')
    return _status("VmRSS")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated subset: mlp,tfidf,forest,hgb,gb")
    ap.add_argument("--repeat", type=int, default=15, help="load repetitions (median is reported)")
    ap.add_argument("--fresh", type=int, metavar="ROUNDS", default=0,
                    help="time each format in processes of its own, ROUNDS per format, not all in this one")
    ap.add_argument("--scaling", type=int, metavar="BATCHES", default=0,
                    help="the forest only: split its load time into a cost per tree and a fixed cost")
    ap.add_argument("--big", type=int, metavar="ROUNDS", default=0,
                    help="large models, each load in a fresh process: time and peak memory")
    ap.add_argument("--load", nargs=2, metavar=("FORMAT", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load:
        return _load_only(args.load[0], args.load[1], args.repeat)
    if args.scaling:
        return scaling(args.scaling)
    if args.big:
        return big(args.big)
    import sklearn
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, sklearn {sklearn.__version__}, "
          f"msgpack {'.'.join(map(str, msgpack.version))}, joblib {joblib.__version__}")
    print("mpk C part (_cmpk): " + (f"in use, {_mpk_unpack._cmpk.__file__}" if _mpk_unpack.ACCELERATED else
                                    "not built or MPK_PURE set: mpk uses python3-msgpack (meson compile -C build)"))
    print(f"each format in {args.fresh} fresh processes of its own per model" if args.fresh else
          "all formats in this one process, each round in a shuffled order")
    results = []
    with tempfile.TemporaryDirectory() as d:
        only = set(args.only.split(",")) if args.only else {"mlp", "tfidf", "forest", "hgb", "gb"}
        if "mlp" in only:
            mlp, xs = make_mlp()
            results.append(("MLP 500-256-128-10", bench("mlp", mlp, xs, d, args.repeat, args.fresh)))
        if "tfidf" in only:
            vec, docs = make_tfidf()
            label = f"TF-IDF {len(vec.vocabulary_) // 1000}k terms"
            results.append((label, bench("tfidf", vec, docs, d, args.repeat, args.fresh)))
        if "forest" in only:
            rf, xs = make_forest()
            results.append(("RandomForest 50 trees", bench("forest", rf, xs, d, args.repeat, args.fresh)))
        if "hgb" in only:
            hgb, xs = make_hgb()
            results.append(("HistGB 100 it, 3 cl", bench("hgb", hgb, xs, d, args.repeat, args.fresh)))
        if "gb" in only:
            gb, xs = make_gb()
            results.append(("GradBoost 100 it, 3 cl", bench("gb", gb, xs, d, args.repeat, args.fresh)))
    print()
    again = " again ms" if args.fresh else ""
    line = "-" * (94 + len(again))
    print(f"{'model':<22} {'format':<12} {'size':>12} {'size/mpk':>9} {'load ms':>10} {'load/mpk':>9} "
          f"{'cpu ms':>8} {'faults':>6}{again}")
    print(line)
    for model, rows in results:
        base_size, base_time = rows[0][1], rows[0][2]
        for label, size, t, c, f, a, _ in rows:
            print(f"{model:<22} {label:<12} {size:>12,} {size / base_size:>9.2f} {t * 1e3:>10.2f} "
                  f"{t / base_time:>9.2f} {c * 1e3:>8.2f} {f:>6.0f}" + (f" {a * 1e3:>8.2f}" if a is not None else ""))
        print(line)
    what = "the first load in a fresh process" if args.fresh else "median wall time"
    print(f"\nmpk.load / pickle.load (protocol 5): {what}, minimum CPU time; file size")
    for model, rows in results:
        by = {row[0]: row[1:] for row in rows}
        (ms, mt, mc, _, ma, mf), (ps, pt, pc, _, pa, pf) = by["mpk compact"], by["pickle"]
        print(f"  {model:<22} load {mt / pt:5.2f}x (cpu {mc / pc:5.2f}x)   size {ms / ps:5.2f}x" +
              (f"   again {ma / pa:5.2f}x" if ma is not None else "") +
              (f"   quartiles {_quartile_ratios(mf, pf)}" if mf is not None else ""))
    if args.fresh:
        print("\n(quartiles: the first loads' lower quartile, median and upper quartile, mpk's over\n"
              "pickle's: a first load varies from process to process by tens of percent, so a ratio\n"
              "near 1 needs many rounds)")


def scaling(batches, sizes=(5, 20, 50), per_batch=10):
    """--scaling: the 50-tree forest and its first 5 and 20 trees (the same
    fit) saved by mpk and by pickle, loaded in this process in batches of
    per_batch loads, every file in turn (a shuffled order each time), batches
    times; a file's time is its fastest batch's mean (noise on a shared
    machine only adds).  A straight
    line through 5 and 50 trees gives each loader's cost per tree and its
    fixed cost (the forest itself, its first tree: what does not grow with
    the trees)."""
    import copy
    rf, _ = make_forest(max(sizes))
    loads = {}
    with tempfile.TemporaryDirectory() as d:
        for k in sizes:
            part = copy.copy(rf)
            part.estimators_, part.n_estimators = rf.estimators_[:k], k
            mpk.save(part, os.path.join(d, f"{k}.mpk"))
            with open(os.path.join(d, f"{k}.pkl"), "wb") as f:
                pickle.dump(part, f, protocol=5)
            loads["mpk", k] = lambda p=os.path.join(d, f"{k}.mpk"): mpk.load(p)
            loads["pickle", k] = lambda p=os.path.join(d, f"{k}.pkl"): _pickle_load(p)
        best = dict.fromkeys(loads, float("inf"))
        for f in loads.values():
            f()
        order, rng = list(loads.items()), random.Random(0)
        for _ in range(batches):
            rng.shuffle(order)      # each file after every other about as often (see bench())
            for key, f in order:
                t = time.perf_counter()
                for _ in range(per_batch):
                    f()
                best[key] = min(best[key], (time.perf_counter() - t) / per_batch)
    lo, hi = min(sizes), max(sizes)
    print(f"RandomForest, its first {', '.join(map(str, sizes))} trees: the fastest of {batches} batches "
          f"of {per_batch} loads each, ms")
    for fmt in ("mpk", "pickle"):
        per = (best[fmt, hi] - best[fmt, lo]) / (hi - lo)
        print(f"  {fmt:<7}" + "".join(f" {k:>3} trees {best[fmt, k] * 1e3:6.3f}" for k in sizes) +
              f"   per tree {per * 1e6:5.1f} us, fixed {(best[fmt, lo] - lo * per) * 1e3:6.3f} ms")
    print(f"mpk.load / pickle.load at {hi} trees: {best['mpk', hi] / best['pickle', hi]:.2f}x")


def big(rounds):
    """--big: each large model saved by mpk (compact) and pickle, each file
    loaded in rounds fresh processes (_load_only), the two in turn; the same
    predictions checked first."""
    models = (("RandomForest 100 deep", make_big_forest), ("MLP 2000-2048-2048", make_big_mlp),
              ("HistGB 300 it, 10 cl", make_big_hgb))
    print(f"each format in {rounds} fresh processes of its own per model: the load's wall time (median),"
          f" CPU time (minimum) and the peak memory it added (median)\n")
    print(f"{'model':<22} {'format':<12} {'size MB':>9} {'load s':>8} {'cpu s':>7} {'peak MB':>8}")
    ratios = []
    with tempfile.TemporaryDirectory() as d:
        for model, make in models:
            est, sample = make()
            paths = {"mpk compact": os.path.join(d, "big.mpk"), "pickle": os.path.join(d, "big.pkl")}
            mpk.save(est, paths["mpk compact"])
            with open(paths["pickle"], "wb") as f:
                pickle.dump(est, f, protocol=5)
            ref = est.predict(sample)
            del est
            for label, p in paths.items():
                assert (LOADERS[label](p).predict(sample) == ref).all(), label
            runs = {label: [] for label in paths}
            for r in range(rounds):
                for label in (list(paths) if r % 2 == 0 else list(paths)[::-1]):
                    runs[label].append(_fresh_load(label, paths[label], 0))
            row = {}
            for label, p in paths.items():
                r = runs[label]
                row[label] = (os.path.getsize(p), statistics.median(x[0] for x in r), min(x[1] for x in r),
                              statistics.median(x[4] for x in r))
                size, t, c, peak = row[label]
                print(f"{model:<22} {label:<12} {size / 1e6:>9.1f} {t:>8.3f} {c:>7.3f} {peak / 1e6:>8.1f}")
            ratios.append((model, row["mpk compact"], row["pickle"]))
    print("\nmpk.load / pickle.load (protocol 5): first load in a fresh process; peak memory; file size")
    for model, (ms, mt, mc, mp), (ps, pt, pc, pp) in ratios:
        print(f"  {model:<22} load {mt / pt:5.2f}x (cpu {mc / pc:5.2f}x)   peak {mp / pp:5.2f}x   size {ms / ps:5.2f}x")


def _quartile_ratios(a, b):
    """'q1/q2/q3' of a over b's: their quartiles' ratios (two rounds at least)."""
    if min(len(a), len(b)) < 2:
        return "n/a"
    qa, qb = statistics.quantiles(a, n=4), statistics.quantiles(b, n=4)
    return "/".join(f"{x / y:.2f}" for x, y in zip(qa, qb))


if __name__ == "__main__":
    main()
