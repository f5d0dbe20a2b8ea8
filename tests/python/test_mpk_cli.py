"""python3 -m mpk info|check|convert, run as a user would (subprocesses
with PYTHONPATH=python)."""

import glob
import os
import pickle
import subprocess
import sys

import msgpack
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import mpk
from mpk_testutil import FIXTURES, REPO

X = np.random.RandomState(0).rand(40, 4)
Y = np.arange(40) % 2


def run(*args):
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "python"))
    return subprocess.run([sys.executable, "-m", "mpk", *args], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture(scope="module")
def forest(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli") / "forest.mpk"
    mpk.save(RandomForestClassifier(3, max_depth=3, random_state=0).fit(X, Y), p)
    return str(p)


def test_info_saved_model(forest):
    r = run("info", forest)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "class RandomForestClassifier" in out
    assert "n_estimators: 3" in out
    assert "estimators_: list of 3" in out
    assert "tree_: model Tree" in out
    assert "threshold: array <f8 (" in out
    assert "value: array <f8 (" in out


@pytest.mark.parametrize("mode", ["compact", "nested"])
def test_info_shapes(tmp_path, mode):
    p = str(tmp_path / "lr.mpk")
    mpk.save(LogisticRegression(C=0.5).fit(X, Y), p, arrays=mode)
    r = run("info", p)
    assert r.returncode == 0, r.stderr
    assert "class LogisticRegression" in r.stdout and "C: 0.5" in r.stdout
    assert ("coef_: array <f8 (1, 4)" if mode == "compact" else "coef_: array <f8 (1, 4) (nested lists)") \
        in r.stdout


def test_info_builds_nothing(tmp_path):
    """info walks the MsgPack data: a class mpk would refuse is shown, not built."""
    d = {"class_name": "os.system", "params": {"command": "touch " + str(tmp_path / "pwned")},
         "weights": {"w": {b"nd": True, b"type": "O", b"kind": b"O", b"shape": [1],
                           b"data": pickle.dumps(["x"])}}}
    p = tmp_path / "evil.mpk"
    p.write_bytes(msgpack.packb(d, use_bin_type=True))
    r = run("info", str(p))
    assert r.returncode == 0, r.stderr
    assert "class os.system" in r.stdout and "pickled object array" in r.stdout
    assert not (tmp_path / "pwned").exists()


FIXTURE_FILES = sorted(glob.glob(os.path.join(FIXTURES, "*.mpk")) +
                       glob.glob(os.path.join(FIXTURES, "peers", "*.mpk")))


def test_the_shared_fixtures_are_there():
    """CI has ../shared beside the checkout: no fixture is a broken setup,
    not a reason to test less."""
    assert FIXTURE_FILES, f"no fixtures in {FIXTURES} (../shared beside the checkout, or MPFS_FIXTURES)"


def test_info_fixtures():
    """One run over every fixture (a process start costs ~2 s here): the
    good ones are described, each bad one is described or refused with a
    one-line message, never a traceback."""
    r = run("info", *FIXTURE_FILES)
    assert "Traceback" not in r.stderr, r.stderr
    refused = {line.split(": ")[1] for line in r.stderr.splitlines()}
    blocks = {}
    for block in r.stdout.split("== ")[1:]:
        path, _, rest = block.partition("\n")
        blocks[path] = rest
    cls = {"mlp": "MLPClassifier", "logreg": "LogisticRegression", "tfidf": "TfidfVectorizer"}
    for path in FIXTURE_FILES:
        name = os.path.basename(path)
        if path in refused:
            assert name.startswith("bad_"), r.stderr
            continue
        assert path in blocks, path
        assert blocks[path].splitlines()[1].startswith("class "), blocks[path]
        if name.split("_")[0] in cls:
            assert f"class {cls[name.split('_')[0]]}" in blocks[path]
    assert r.returncode == (1 if refused else 0)
    assert "class LogisticRegression" in blocks[os.path.join(FIXTURES, "peers", "msgpack_numpy_logreg.mpk")] \
        if os.path.join(FIXTURES, "peers", "msgpack_numpy_logreg.mpk") in blocks else True


def test_check_ok(forest):
    r = run("check", forest)
    assert r.returncode == 0, r.stderr
    assert "ok, RandomForestClassifier" in r.stdout


def test_check_fixtures():
    good = [p for p in FIXTURE_FILES if os.path.basename(p).startswith(("mlp_", "logreg_", "tfidf_"))]
    r = run("check", *good)
    assert r.returncode == 0, r.stderr
    # every bad archive in one run (a run imports scikit-learn: a second
    # each): exit 1, each named on a line of its own, the good ones as ok
    bad = sorted(glob.glob(os.path.join(FIXTURES, "bad_*.mpk")))
    r = run("check", *bad, good[0])
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    for p in bad:
        assert sum(line.startswith(f"mpk check: {p}: ") for line in lines) == 1, p
    assert len(lines) == len(bad), r.stderr
    assert r.stdout.startswith(f"{good[0]}: ok, ") and r.stdout.count("\n") == 1, r.stdout


def test_check_hostile(tmp_path, forest):
    """A disallowed class and a pickled object array: exit 1, the
    FormatError (naming the path) on stderr, nothing run."""
    d = msgpack.unpackb(open(forest, "rb").read(), strict_map_key=False)
    d["weights"]["estimators_"][1]["class_name"] = "GridSearchCV"
    p = tmp_path / "hostile.mpk"
    p.write_bytes(msgpack.packb(d, use_bin_type=True))
    r = run("check", str(p))
    assert r.returncode == 1
    assert r.stderr.startswith(f"mpk check: {p}: weights/estimators_/1")
    assert "GridSearchCV" in r.stderr and r.stdout == ""

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    d = {"class_name": "LogisticRegression", "params": {},
         "xtra": {"classes_": {b"nd": True, b"type": "|O", b"kind": b"O", b"shape": [1],
                               b"data": pickle.dumps(Evil())}}}
    p2 = tmp_path / "pickled.mpk"
    p2.write_bytes(msgpack.packb(d, use_bin_type=True))
    r = run("check", str(p2))
    assert r.returncode == 1 and "pickled object array" in r.stderr
    assert not marker.exists()


def test_check_missing_file(tmp_path):
    r = run("check", str(tmp_path / "nope.mpk"))
    assert r.returncode == 1 and "No such file" in r.stderr


@pytest.mark.parametrize("mode", ["compact", "nested"])
def test_convert_round_trip(tmp_path, mode):
    est = RandomForestClassifier(4, random_state=0).fit(X, Y)
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(pickle.dumps(est, protocol=5))
    out = tmp_path / "model.mpk"
    r = run("convert", str(pkl), str(out), "--arrays", mode)
    assert r.returncode == 0, r.stderr
    assert "RUNS ANY CODE" in r.stderr
    got = mpk.load(out)
    assert type(got) is RandomForestClassifier
    np.testing.assert_array_equal(got.predict_proba(X), est.predict_proba(X))
    r = run("check", str(out))
    assert r.returncode == 0


def test_convert_refuses_unknown_class(tmp_path):
    from sklearn.model_selection import GridSearchCV
    pkl = tmp_path / "gs.pkl"
    gs = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(X, Y)
    pkl.write_bytes(pickle.dumps(gs, protocol=5))
    out = tmp_path / "gs.mpk"
    r = run("convert", str(pkl), str(out))
    assert r.returncode == 1 and "cannot save GridSearchCV" in r.stderr
    assert "RUNS ANY CODE" in r.stderr and not out.exists()
