#!/usr/bin/python3
"""A long mutation run of mpk.load and mpk.loads (not part of the suite).

    tests/fuzz/mpk_mutate.py [SECONDS] [SEED]          (default: 300 s, seed 1)

Saves a dozen fitted models of different kinds (forests and boosting
ensembles, whose trees mpk decodes in lockstep; HistGradientBoosting; a
TF-IDF vocabulary; an MLP; a pipeline; an encoder; a KD-tree; a Gaussian
process; an SVC), in both array modes, then loads random mutations of them
until SECONDS have passed: bytes set (often to a MsgPack type byte),
cut off, copied from elsewhere in the archive or inserted. Each mutation is
loaded from bytes and from a file. Every load must give a model or
mpk.FormatError; anything else is printed with its traceback and the input
is kept as mpk-fail-SEED-N.mpk in the current directory. Exits 1 if any.

Run it against mpk's C part built with AddressSanitizer and UBSan, as
tests/run builds it (build-san/), so that a memory error stops the run:

    LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0:hard_rss_limit_mb=4000 \\
        MPK_BUILD=build-san/python tests/fuzz/mpk_mutate.py 1200 1

(ASan reserves terabytes of address space, so a `prlimit --as` cap cannot
be used with it; hard_rss_limit_mb stops a run that allocates too much.)
A failure found here becomes a test in tests/python (its input made by
editing a saved model, as the hostile tests there do).
"""

import os
import random
import sys
import tempfile
import time
import traceback
import warnings

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.join(_REPO, "python"), os.path.join(_REPO, os.environ.get("MPK_BUILD", "build/python"))]

import numpy as np  # noqa: E402

import mpk  # noqa: E402
from mpk import _unpack  # noqa: E402

# MsgPack type bytes a mutation often sets: containers, long bins, wide ints
TYPE_BYTES = (0x00, 0x7f, 0x80, 0xc0, 0xc6, 0xcf, 0xd3, 0xdc, 0xdd, 0xde, 0xdf, 0xff)


def models():
    from sklearn.ensemble import (ExtraTreesRegressor, GradientBoostingClassifier,
                                  HistGradientBoostingClassifier, RandomForestClassifier)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    rng = np.random.RandomState(0)
    X = rng.rand(80, 4)
    y = (X[:, 0] > .5).astype(int)
    return [RandomForestClassifier(6, max_depth=4, random_state=0).fit(X, y),
            ExtraTreesRegressor(5, max_depth=3, random_state=0).fit(X, X[:, 1]),
            GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0).fit(X, y),
            HistGradientBoostingClassifier(max_iter=5).fit(X, y),
            TfidfVectorizer().fit(["a b c d", "b c e f g", "hh ii jj a"]),
            MLPClassifier((5,), max_iter=5, random_state=0).fit(X, y),
            make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
            OneHotEncoder().fit([["a", 1], ["b", 2], ["a", 3]]),
            KNeighborsClassifier(3, algorithm="kd_tree").fit(X, y),
            GaussianProcessRegressor().fit(X[:20], X[:20, 0]),
            SVC(probability=True, random_state=0).fit(X, y),
            # two outputs: classes_ a list of arrays, batched with the trees
            RandomForestClassifier(5, max_depth=3, random_state=1).fit(X, np.c_[y, np.arange(len(y)) % 2])]


def mutate(rnd, d):
    for _ in range(rnd.randint(1, 4)):
        i = rnd.randrange(len(d) + 1)
        op = rnd.random()
        if op < 0.7 and i < len(d):
            d[i] = rnd.choice(TYPE_BYTES) if rnd.random() < 0.4 else rnd.randrange(256)
        elif op < 0.8:
            del d[i:]
        elif op < 0.9 and d:
            j = rnd.randrange(len(d))
            d[i:i] = d[j:j + rnd.randint(1, 64)]       # another part's bytes: plausible structure
        else:
            d[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 6)))
    return bytes(d)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 300
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    warnings.simplefilter("ignore")
    print(f"mpk C part: {'in use' if _unpack.ACCELERATED else 'not built (python3-msgpack)'}")
    bases = [mpk.dumps(m, arrays=a) for m in models() for a in ("compact", "nested")]
    rnd = random.Random(seed)
    scratch = tempfile.TemporaryDirectory(prefix="mpk-mutate-")     # never in the checkout
    path = os.path.join(scratch.name, "input.mpk")
    loads = loaded = refused = failed = 0
    end = time.monotonic() + seconds
    with scratch:
        while time.monotonic() < end:
            data = mutate(rnd, bytearray(rnd.choice(bases)))
            with open(path, "wb") as f:
                f.write(data)
            for how, load in (("bytes", lambda: mpk.loads(data)), ("file", lambda: mpk.load(path))):
                loads += 1
                try:
                    load()
                    loaded += 1
                except mpk.FormatError:
                    refused += 1
                except Exception:
                    failed += 1
                    keep = f"mpk-fail-{seed}-{loads}.mpk"
                    with open(keep, "wb") as f:
                        f.write(data)
                    print(f"not a FormatError, from {how}; input kept as {keep}", file=sys.stderr)
                    traceback.print_exc()
    print(f"seed {seed}: {loads} loads, {loaded} loaded, {refused} FormatError, {failed} other")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
