"""Shared constants for the mpk tests (a uniquely named module, so that it
does not clash with other suites' conftest.py)."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FIXTURES = os.environ.get("MPK_FIXTURES", "/work/shared/fixtures")
if not os.path.isdir(FIXTURES):
    FIXTURES = os.path.join(REPO, "tests", "fixtures")


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


def count_batches(monkeypatch, template_cls):
    """A list that gets, per load, how many items template_cls.build built
    (0 when it refused the batch)."""
    built = []
    orig = template_cls.build

    def build(self, *args):
        r = orig(self, *args)
        built.append(0 if r is None else len(r))
        return r
    monkeypatch.setattr(template_cls, "build", build)
    return built
