"""Full loop: train -> mpk.save -> mount with mpfs -> read (and, later, edit)
-> unmount -> mpk.load.

Needs /dev/fuse and the mpfs binary ($MPFS_BIN, default <repo>/build/mpfs);
skipped otherwise.  The write half edits a param and a weight through the
mount and checks that mpk.load sees both.
"""

import json
import os
import subprocess
import time
import warnings

import msgpack
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import mpk
from mpk_testutil import REPO

MPFS_BIN = os.environ.get("MPFS_BIN", os.path.join(REPO, "build", "mpfs"))

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="/dev/fuse is not available"),
    pytest.mark.skipif(not os.access(MPFS_BIN, os.X_OK),
                       reason=f"mpfs binary not found at {MPFS_BIN} (set MPFS_BIN or build it)"),
]

X = np.random.RandomState(0).rand(40, 6)
Y = np.arange(40) % 3


def _models():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "logreg": LogisticRegression(C=0.5, class_weight={0: 1.0, 1: 2.5}).fit(X, Y),
            "mlp": MLPClassifier((8, 4), max_iter=10, random_state=0).fit(X, Y),
            "scaler": StandardScaler().fit(X),
        }


class Mount:
    def __init__(self, archive, mnt, readonly=True):
        self.archive, self.mnt = str(archive), str(mnt)
        args = [MPFS_BIN, self.archive, self.mnt, "-f"]
        if readonly:
            args += ["-o", "ro"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                pytest.fail(f"mpfs exited with {self.proc.returncode}: {err.decode(errors='replace')}")
            if time.monotonic() > deadline:
                self._stop()
                pytest.fail("mount did not appear within 10 s")
            time.sleep(0.05)

    def unmount(self):
        r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._stop()
            pytest.fail("mpfs did not exit after fusermount3 -u")
        assert r.returncode == 0, r.stderr
        return self.proc.returncode

    def _stop(self):
        if os.path.ismount(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        if self.proc.poll() is None:
            self.proc.kill()          # only the process this test started
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None or os.path.ismount(self.mnt):
            if exc[0] is None:
                self.unmount()
            else:
                self._stop()


def expected_array_files(est, archive_bytes):
    """(relative path, ndarray) for every array the tree must show, derived
    from the archive layout: weights/NAME.npy, weights/NAME/I.npy for lists of
    arrays, xtra/NAME.npy where types names NAME ndarray."""
    m = msgpack.unpackb(archive_bytes, strict_map_key=False)
    out = []
    for name, value in m.get("weights", {}).items():
        v = getattr(est, name)
        if isinstance(v, list):
            out += [(f"weights/{name}/{i}.npy", a) for i, a in enumerate(v)]
        elif isinstance(v, np.ndarray):
            out.append((f"weights/{name}.npy", v))
    for name, t in m["types"].items():
        if t == "ndarray" and name in m["xtra"]:
            out.append((f"xtra/{name}.npy", getattr(est, name)))
    return out


def seed_dtype(a):
    """The dtype mpfs infers for a nested-list array (DESIGN section 2); the
    exact dtype lives only in mpk's own ``dtypes`` map, which mpfs ignores."""
    k = a.dtype.kind
    if k == "b":
        return np.dtype(bool)
    if k in "iu":
        return np.dtype(np.uint64) if a.size and a.max() > np.iinfo(np.int64).max else np.dtype(np.int64)
    return np.dtype(np.float64)


@pytest.mark.parametrize("arrays", ["compact", "nested"])
@pytest.mark.parametrize("name", ["logreg", "mlp", "scaler"])
def test_mount_readonly_shows_weights(name, arrays, tmp_path):
    est = _models()[name]
    archive = tmp_path / "model.mpk"
    mpk.save(est, archive, arrays=arrays)
    before = archive.read_bytes()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    files = expected_array_files(est, before)
    assert files
    with Mount(archive, mnt) as mount:
        top = set(os.listdir(mnt))
        assert {"class_name", "types", "params", "xtra"} <= top
        with open(mnt / "class_name") as f:
            assert json.loads(f.read()) == type(est).__name__
        for rel, want in files:
            got = np.load(mnt / rel)
            assert got.dtype == (want.dtype if arrays == "compact" else seed_dtype(want)), rel
            assert got.shape == want.shape, rel
            assert np.array_equal(got, want), rel
            mm = np.load(mnt / rel, mmap_mode="r")
            assert np.array_equal(mm, want), rel
            del mm
        for pname, pval in est.get_params(deep=False).items():
            p = mnt / "params" / pname
            if isinstance(pval, (bool, int, float, str)) and os.path.isfile(p):
                with open(p) as f:
                    assert json.loads(f.read()) == pval, pname
        assert mount.unmount() == 0
    assert archive.read_bytes() == before
    back = mpk.load(archive)
    assert np.array_equal(back.transform(X) if name == "scaler" else back.predict(X),
                          est.transform(X) if name == "scaler" else est.predict(X))


@pytest.mark.parametrize("arrays", ["compact", "nested"])
def test_mount_edit_param_and_weight(arrays, tmp_path):
    est = _models()["logreg"]
    archive = tmp_path / "model.mpk"
    mpk.save(est, archive, arrays=arrays)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    new_coef = est.coef_ * 2.0 + 0.125
    with Mount(archive, mnt, readonly=False) as mount:
        subprocess.run(["bash", "-c", 'echo 0.25 > "$1/params/C"', "bash", str(mnt)], check=True)
        np.save(mnt / "weights" / "coef_.npy", new_coef)
        with open(mnt / "params" / "C") as f:
            assert json.loads(f.read()) == 0.25
        assert np.array_equal(np.load(mnt / "weights" / "coef_.npy"), new_coef)
        assert mount.unmount() == 0
    back = mpk.load(archive)
    assert back.C == 0.25
    assert back.coef_.dtype == np.float64
    assert np.array_equal(back.coef_, new_coef)
    assert np.array_equal(back.intercept_, est.intercept_)
    assert back.class_weight == {0: 1.0, 1: 2.5}
    # The edited weight drives predictions: scores follow the new coef_.
    expect = X @ new_coef.T + est.intercept_
    assert np.allclose(back.decision_function(X), expect)
    assert not np.array_equal(back.decision_function(X), est.decision_function(X))


def _forest():
    from sklearn.ensemble import RandomForestClassifier
    return RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, Y)


@pytest.mark.parametrize("arrays", ["compact", "nested"])
def test_mount_forest_walk_and_edit_thresholds(arrays, tmp_path):
    """The second loop model: a forest.  Its trees are directories a user can
    walk (weights/estimators_/3/weights/tree_/weights/threshold.npy); editing
    one tree's thresholds with numpy.save through the mount changes the
    loaded forest's predictions."""
    est = _forest()
    archive = tmp_path / "forest.mpk"
    mpk.save(est, archive, arrays=arrays)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    tree = est.estimators_[3].tree_
    tdir = mnt / "weights" / "estimators_" / "3" / "weights" / "tree_"
    inner = tree.children_left != -1
    new_thr = np.where(inner, tree.threshold + 10.0, tree.threshold)   # every sample goes left
    with Mount(archive, mnt, readonly=False) as mount:
        with open(mnt / "weights" / "estimators_" / "3" / "class_name") as f:
            assert json.loads(f.read()) == "DecisionTreeClassifier"
        with open(tdir / "class_name") as f:
            assert json.loads(f.read()) == "Tree"
        for col in ("children_left", "children_right", "feature", "threshold", "impurity",
                    "n_node_samples", "weighted_n_node_samples", "value"):
            got = np.load(tdir / "weights" / f"{col}.npy")
            want = getattr(tree, col)
            assert got.shape == want.shape and np.array_equal(got, want), col
        np.save(tdir / "weights" / "threshold.npy", new_thr)
        assert np.array_equal(np.load(tdir / "weights" / "threshold.npy"), new_thr)
        assert mount.unmount() == 0
    back = mpk.load(archive)
    assert np.array_equal(back.estimators_[3].tree_.threshold, new_thr)
    for i in (0, 1, 2, 4):
        assert np.array_equal(back.estimators_[i].tree_.threshold, est.estimators_[i].tree_.threshold)
    assert not np.array_equal(back.predict_proba(X), est.predict_proba(X))
    assert np.array_equal(back.estimators_[3].apply(X), np.full(len(X), np.flatnonzero(
        _leftmost_leaf(tree))[0]))


def _leftmost_leaf(tree):
    node = 0
    while tree.children_left[node] != -1:
        node = tree.children_left[node]
    out = np.zeros(tree.node_count, dtype=bool)
    out[node] = True
    return out
