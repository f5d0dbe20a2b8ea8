"""mpk.load of archives written by msgpack-numpy itself (issue 11):
string classes_ and numpy scalars are read; pickled object arrays are never
unpickled: refused with FormatError naming them, or, with skip_pickled=True,
dropped with a warning when prediction does not need them."""

import pickle
import warnings

import msgpack
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import mpk

msgpack_numpy = pytest.importorskip("msgpack_numpy")

X = np.random.RandomState(0).rand(30, 4)
Y = np.array(["setosa", "versicolor", "virginica"])[np.arange(30) % 3]


@pytest.fixture(scope="module")
def fitted():
    return LogisticRegression(max_iter=200).fit(X, Y)


def peer_archive(tmp_path, model, **changes):
    """MODEL as a msgpack-numpy user writes it: mpk's map, its arrays and
    numbers as numpy objects, packed with default=msgpack_numpy.encode."""
    tree = msgpack.unpackb(mpk.dumps(model), raw=False, strict_map_key=False)
    tree.pop("dtypes", None)
    tree["xtra"]["classes_"] = model.classes_
    tree["xtra"]["n_iter_"] = model.n_iter_
    tree["xtra"]["n_features_in_"] = np.int64(model.n_features_in_)
    tree["params"]["C"] = np.float32(0.5)
    tree["params"]["max_iter"] = np.int32(200)
    for section, name, value in changes.get("set", ()):
        tree[section][name] = value
    path = tmp_path / "peer.mpk"
    path.write_bytes(msgpack.packb(tree, default=msgpack_numpy.encode))
    return path


def names(n=4):
    return np.array([f"f{i}" for i in range(n)], dtype=object)


def test_string_classes_and_numpy_scalars(tmp_path, fitted):
    path = peer_archive(tmp_path, fitted)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = mpk.load(path)
    assert got.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert got.classes_.dtype.kind == "U"
    assert got.C == 0.5 and got.max_iter == 200
    assert got.n_features_in_ == 4
    assert (got.predict(X) == fitted.predict(X)).all()


def test_pickled_object_array_is_refused_naming_it(tmp_path, fitted, monkeypatch):
    path = peer_archive(tmp_path, fitted, set=[("xtra", "feature_names_in_", names())])
    unpickled = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: unpickled.append(a))
    with pytest.raises(mpk.FormatError) as e:
        mpk.load(path)
    assert e.value.path == "xtra/feature_names_in_"
    assert "pickle" in str(e.value) and "skip_pickled" in str(e.value)
    assert not unpickled, "a pickle was unpickled"


def test_skip_pickled_drops_what_prediction_does_not_need(tmp_path, fitted):
    path = peer_archive(tmp_path, fitted, set=[("xtra", "feature_names_in_", names())])
    with pytest.warns(UserWarning, match="xtra/feature_names_in_") as record:
        got = mpk.load(path, skip_pickled=True)
    assert len([w for w in record if "pickle" in str(w.message)]) == 1
    assert not hasattr(got, "feature_names_in_")
    assert (got.predict(X) == fitted.predict(X)).all()


def test_skip_pickled_names_each_one_dropped(tmp_path, fitted):
    path = peer_archive(tmp_path, fitted, set=[
        ("xtra", "feature_names_in_", names()),
        ("xtra", "n_iter_", np.array([fitted.n_iter_[0]], dtype=object))])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        mpk.load(path, skip_pickled=True)
    dropped = sorted(str(w.message).split(":")[0] for w in record
                     if "pickle" in str(w.message))
    assert dropped == ["xtra/feature_names_in_", "xtra/n_iter_"]


def test_skip_pickled_still_refuses_what_prediction_needs(tmp_path, fitted):
    classes = np.array(list(fitted.classes_), dtype=object)
    path = peer_archive(tmp_path, fitted, set=[("xtra", "classes_", classes),
                                               ("xtra", "feature_names_in_", names())])
    with pytest.raises(mpk.FormatError) as e:
        mpk.load(path, skip_pickled=True)
    assert e.value.path == "xtra/classes_"
    assert "prediction needs it" in str(e.value)
    coef = np.array(fitted.coef_.tolist(), dtype=object)
    path = peer_archive(tmp_path, fitted, set=[("weights", "coef_", coef)])
    with pytest.raises(mpk.FormatError, match="weights/coef_"):
        mpk.load(path, skip_pickled=True)


def test_pickle_anywhere_else_is_refused(tmp_path, fitted):
    """In params (or deeper), a pickle is never an attribute to drop."""
    path = peer_archive(tmp_path, fitted, set=[("params", "class_weight", names())])
    for skip in (False, True):
        with pytest.raises(mpk.FormatError) as e:
            mpk.load(path, skip_pickled=skip)
        assert e.value.path == "params/class_weight"


def test_the_peer_fixture_is_refused_cleanly():
    """The shared fixture holds attributes no LogisticRegression has (a
    zoo of dtypes): a FormatError, never a crash or an unpickling."""
    import os
    from pathlib import Path
    fixtures = Path(os.environ.get("MPFS_FIXTURES", Path(__file__).parents[3] / "shared" / "fixtures"))
    path = fixtures / "peers" / "msgpack_numpy_logreg.mpk"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    with pytest.raises(mpk.FormatError):
        mpk.load(path, skip_pickled=True)
