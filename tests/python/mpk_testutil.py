"""Shared constants for the mpk tests (a uniquely named module, so that it
does not clash with other suites' conftest.py)."""

import os

import numpy as np
import pytest

from mpk._nodes import _COLS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ../shared/fixtures beside the checkout (tests/run exports its path), as
# in CI; a machine path here once made a fresh clone elsewhere test no
# fixture at all, silently (test_mpk_cli checks that there are some)
FIXTURES = os.environ.get("MPFS_FIXTURES") or os.path.join(os.path.dirname(REPO), "shared", "fixtures")


# for the tests that run_capped: AddressSanitizer (tests/run's sanitizer
# stage preloads it) reserves more address space than the cap allows
CAPPED = pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                            reason="AddressSanitizer reserves more address space than the limit")


def run_capped(prog, cwd, timeout=60):
    """python3 -c PROG in a child process whose address space is capped at
    1 GiB (code that allocated by a claimed size would die there, not
    raise), with this process's sys.path, in folder CWD; the finished
    subprocess.CompletedProcess (text output)."""
    import subprocess
    import sys
    cap = "import resource\nresource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
    return subprocess.run([sys.executable, "-c", cap + prog], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), cwd=cwd)


def load_capped(cwd, count, timeout=120):
    """mpk.load of 0.mpk .. {count-1}.mpk in folder cwd, in a child process
    capped at 1 GiB (run_capped), printing 'FormatError <message>' for each
    refused; the finished process."""
    return run_capped("import mpk\n"
                      f"for k in range({count}):\n"
                      "    try:\n"
                      "        mpk.load(f'{k}.mpk')\n"
                      "    except mpk.FormatError as e:\n"
                      "        print('FormatError', e)\n", cwd, timeout=timeout)


# ------------------------------------------------ batched loaders (test_mpk_forest.py, test_mpk_predictors.py)

def archive(est):
    """est saved, as the str-keyed map msgpack gives back (to be edited)."""
    import msgpack

    import mpk
    return msgpack.unpackb(mpk.dumps(est), strict_map_key=False)


def pack(m):
    import msgpack
    return msgpack.packb(m, use_bin_type=True)


def load_outcome(data, batched):
    """("refused", error text, warnings) or ("loaded", re-encoded bytes,
    warnings) of loading data with the batched loaders (_forest.py,
    _predictors.py) on or off."""
    import warnings

    import mpk
    from mpk import _forest as F
    F._ENABLED[0] = batched
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            try:
                est = mpk.loads(data)
            except mpk.FormatError as e:
                return ("refused", str(e), [str(x.message) for x in w])
            return ("loaded", mpk.dumps(est), [str(x.message) for x in w])
    finally:
        F._ENABLED[0] = True


def same_both_ways(m):
    """The outcome of loading m (bytes, or a map to pack) batched, asserted
    to be the generic way's."""
    data = m if isinstance(m, bytes) else pack(m)
    a, b = load_outcome(data, True), load_outcome(data, False)
    assert a == b
    return a


def count_batches(monkeypatch, template_cls, method="build"):
    """A list that gets, per load, how many items template_cls.method built
    (0 when it refused the batch)."""
    built = []
    orig = getattr(template_cls, method)

    def build(self, *args):
        r = orig(self, *args)
        built.append(0 if r is None else len(r))
        return r
    monkeypatch.setattr(template_cls, method, build)
    return built


# ----------------------------------------------------------------- node tables
# Decision trees' node tables as mpk writes them, for the C part's tests
# (test_mpk_cmpk.py, test_mpk_maker.py).

GOOD = ([1, 3, -1, -1, -1], [2, 4, -1, -1, -1])
KEYS = tuple(_COLS)
INTS = (b"children_left", b"children_right", b"feature", b"n_node_samples")


def compact(a):
    return {b"nd": True, b"kind": b"", b"type": a.dtype.str.encode(), b"shape": list(a.shape), b"data": a.tobytes()}


def tree_weights(i, left, right, widths=(8, 8, 8), nout=1, ncls=2):
    """A Tree map's weights for the links (left, right), feature 0, 1, ..
    on its nodes (tree i: i, i + 1, ..), its int columns as wide as
    widths says (left, right, feature; n_node_samples int32)."""
    n = len(left)
    cols = {}
    for c, key in enumerate(KEYS):
        w = widths[c] if c < 3 else 4
        dt = f"<i{w}" if key in INTS else "<f8"
        v = {b"children_left": left, b"children_right": right}.get(key, [i + j for j in range(n)])
        if key == b"value":
            v = np.arange(n * nout * ncls, dtype=dt).reshape(n, nout, ncls) + i
        cols[key] = compact(np.asarray(v, dtype=dt))
    return cols


def dtypes_of(weights):
    return tuple(weights[k][b"type"] for k in KEYS)


AT = tuple(range(16))       # (shape, data) of each array in turn


def caps_of(w):
    return tuple(x for k in KEYS for x in (w[k][b"shape"], w[k][b"data"]))


def node_array_mutations():
    """(what, mutate(weights)) for one array of a tree's weights: each
    leaves it not exactly the compact layout of its node count."""
    def setk(key, k, v):
        return lambda w: w[key].__setitem__(k, v)
    yield "nd 1", setk(b"feature", b"nd", 1)
    yield "kind", setk(b"threshold", b"kind", b"V")
    yield "type", setk(b"impurity", b"type", b"<f4")
    yield "type str", setk(b"impurity", b"type", "<f8")
    yield "shape long", setk(b"threshold", b"shape", [5, 1])
    yield "shape bool", setk(b"children_left", b"shape", [True])
    yield "shape int as float", setk(b"children_left", b"shape", [5.0])
    yield "shape tuple", setk(b"children_left", b"shape", (5,))
    yield "shape n+1", setk(b"children_right", b"shape", [6])
    yield "value shape", setk(b"value", b"shape", [5, 2, 1])
    yield "value shape 2d", setk(b"value", b"shape", [5, 2])
    yield "data short", lambda w: w[b"threshold"].__setitem__(b"data", w[b"threshold"][b"data"][:-1])
    yield "data long", lambda w: w[b"value"].__setitem__(b"data", w[b"value"][b"data"] + b"\0" * 8)
    yield "data memoryview", lambda w: w[b"feature"].__setitem__(b"data", memoryview(w[b"feature"][b"data"]))
    yield "data str", lambda w: w[b"feature"].__setitem__(b"data", w[b"feature"][b"data"].decode("latin-1"))
    yield "extra key", setk(b"feature", b"extra", 1)
    yield "missing key", lambda w: w[b"feature"].pop(b"kind")
    yield "str keys", lambda w: w.__setitem__(b"feature", {k.decode(): v for k, v in w[b"feature"].items()})
    yield "not a map", lambda w: w.__setitem__(b"impurity", [1.0] * 5)
    yield "array missing", lambda w: w.pop(b"n_node_samples")
