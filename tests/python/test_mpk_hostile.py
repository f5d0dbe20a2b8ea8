"""Hostile and malformed archives: every one is refused with mpk.FormatError
naming the place in the archive; nothing is unpickled, imported or called."""

import glob
import os
import pickle
import random
import sys
import warnings

import msgpack
import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import mpk
from mpk_testutil import FIXTURES

X = np.random.RandomState(0).rand(30, 4)
Y = np.arange(30) % 3


def _mlp():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLPClassifier((5, 3), max_iter=5, random_state=0).fit(X, Y)


def _tfidf():
    return TfidfVectorizer().fit(["a bb cc dd", "bb cc ee", "ff gg bb"])


def archive(est, arrays="compact"):
    return msgpack.unpackb(mpk.dumps(est, arrays), strict_map_key=False)


def refuse(obj, path_prefix, *fragments):
    data = obj if isinstance(obj, bytes) else msgpack.packb(obj, use_bin_type=True)
    with pytest.raises(mpk.FormatError) as ei:
        mpk.loads(data)
    msg = str(ei.value)
    assert msg.startswith(path_prefix), msg
    for f in fragments:
        assert f in msg, msg
    return ei.value


class Boom:
    """Unpickling this would create a file: proves nothing is unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickled_object_array_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    m = archive(_mlp())
    m["weights"]["coefs_"][1] = {b"nd": True, b"type": "|O", b"kind": b"", b"shape": [1],
                                 b"data": pickle.dumps(Boom(str(marker)))}
    refuse(m, "weights/coefs_/1/type: ", "not allowed")
    m["weights"]["coefs_"][1][b"type"] = "O"
    refuse(m, "weights/coefs_/1/type: ")
    assert not marker.exists()


def test_skip_pickled_of_one_thread_does_not_relax_another(tmp_path, monkeypatch):
    """skip_pickled=True is an option of one load: a load with it that
    starts in another thread while this thread's load runs does not make
    this one drop the pickle."""
    import threading
    marker = tmp_path / "pwned"
    est = LogisticRegression().fit(X, Y)
    m = archive(est)
    m["xtra"]["n_iter_"] = {b"nd": True, b"type": "|O", b"kind": b"O", b"shape": [1],
                            b"data": pickle.dumps(Boom(str(marker)))}
    data = msgpack.packb(m, use_bin_type=True)
    main = threading.current_thread()
    main_in, worker_in, release, got = threading.Event(), threading.Event(), threading.Event(), []
    real_build = mpk._model._build

    def build(*a, **k):         # the first model of each load waits for the other thread
        t = threading.current_thread()
        if t is main and not main_in.is_set():
            main_in.set()
            worker_in.wait(30)
        elif t is worker and not worker_in.is_set():
            worker_in.set()
            release.wait(30)
        return real_build(*a, **k)

    def other():
        main_in.wait(30)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got.append(mpk.loads(data, skip_pickled=True))

    monkeypatch.setattr(mpk._model, "_build", build)
    worker = threading.Thread(target=other)
    worker.start()
    try:
        with pytest.raises(mpk.FormatError, match="xtra/n_iter_: pickled"):
            mpk.loads(data)
    finally:
        release.set()
        worker.join(30)
    assert worker_in.is_set() and got and not hasattr(got[0], "n_iter_") and not marker.exists()


def test_structured_and_datetime_dtypes_refused():
    m = archive(LogisticRegression().fit(X, Y))
    m["weights"]["coef_"] = {b"nd": True, b"type": "<f8", b"kind": b"V", b"shape": [0], b"data": b""}
    refuse(m, "weights/coef_/kind: ")
    for t in ("<M8[s]", "|V8", "<m8", "x", ""):
        m["weights"]["coef_"] = {b"nd": True, b"type": t, b"kind": b"", b"shape": [1], b"data": b"\0" * 8}
        refuse(m, "weights/coef_/type: ", "not allowed")


@pytest.mark.parametrize("cname", ["os.system", "posix.system", "builtins.eval", "subprocess.Popen",
                                   "sklearn.linear_model.LogisticRegression", "GridSearchCV",
                                   "RandomizedSearchCV", "antigravity", "__import__", "", "Kernel",
                                   "AdamOptimizer", "interp1d", "_CFNode", "builtins.object"])
def test_unknown_class_refused(cname):
    before = set(sys.modules)
    m = archive(LogisticRegression().fit(X, Y))
    m["class_name"] = cname
    refuse(m, "class_name: ", "not on the allow-list")
    assert "antigravity" not in sys.modules
    assert set(sys.modules) - before == set()


def test_class_name_wrong_type():
    m = archive(LogisticRegression().fit(X, Y))
    m["class_name"] = ["os", "system"]
    refuse(m, "class_name: ", "expected")
    m["class_name"] = b"\xff\xfe"
    refuse(m, "class_name: ", "UTF-8")
    del m["class_name"]
    refuse(m, "class_name: ", "missing")


@pytest.mark.parametrize("section,name", [("xtra", "__class__"), ("xtra", "__dict__"),
                                          ("weights", "__reduce__"), ("xtra", "predict"),
                                          ("xtra", "_optimizer"), ("weights", "fit"),
                                          ("xtra", "_label_binarizer")])
def test_bogus_attribute_refused(section, name):
    m = archive(_mlp())
    m[section][name] = [1.0]
    refuse(m, f"{section}/{name}: ", "not an allowed attribute")


@pytest.mark.parametrize("name", ["__class__", "__init__", "fit", "coefs_"])
def test_bogus_param_refused(name):
    m = archive(_mlp())
    m["params"][name] = 1
    refuse(m, f"params/{name}: ", "not a parameter")


@pytest.mark.parametrize("name,value", [("alpha", -1.0), ("activation", "nope"), ("hidden_layer_sizes", "x"),
                                        ("max_iter", 0), ("random_state", 1.5), ("solver", b"\xff")])
def test_parameter_value_outside_its_constraints_refused(name, value):
    """A value scikit-learn's constraints refuse: a FormatError at params
    with scikit-learn's message, every time (the values accepted before are
    remembered, never the refused), and the valid value still loads."""
    m = archive(_mlp())
    good = m["params"][name]
    m["params"][name] = value
    for _ in range(2):
        refuse(m, "params", name)
    m["params"][name] = good
    mpk.loads(msgpack.packb(m, use_bin_type=True))


def test_a_nan_parameter_is_validated_once_and_a_refused_nan_every_time(monkeypatch):
    """scikit-learn's parameter validation runs once per accepted value
    (_model._VALID_PARAMS): a NaN is equal to no other NaN, so that a model
    with missing_values=nan (SimpleImputer, 0.13 of its 0.19 ms) was
    validated afresh at every load; it now is once, and a NaN where the
    constraints refuse one is refused at every load."""
    from sklearn.impute import SimpleImputer
    calls = []
    orig = SimpleImputer._validate_params
    monkeypatch.setattr(SimpleImputer, "_validate_params", lambda self: calls.append(1) or orig(self))
    data = mpk.dumps(SimpleImputer().fit(X))
    assert np.isnan(mpk.loads(data).missing_values)
    calls.clear()
    for _ in range(3):
        assert np.isnan(mpk.loads(data).missing_values)
    assert calls == []
    m = archive(LogisticRegression().fit(X, Y))
    m["params"]["C"] = float("nan")                 # outside (0, inf]
    for _ in range(2):
        refuse(m, "params: ", "'C' parameter", "Got nan")


def test_a_parameter_set_that_passed_is_one_key_and_another_type_is_validated_again(monkeypatch):
    """A class's whole parameter set that passed is one key of the memo
    (_model._VALID_SETS: names, types and values): a later load with the
    same set is not validated again; one whose value has another type
    (3.0 for 3) or that holds a NaN is not that key."""
    from sklearn.base import BaseEstimator

    from mpk import _model
    calls = []
    orig = BaseEstimator._validate_params
    monkeypatch.setattr(BaseEstimator, "_validate_params", lambda self: calls.append(type(self)) or orig(self))
    m = archive(LogisticRegression(max_iter=77).fit(X, Y))
    mpk.loads(msgpack.packb(m, use_bin_type=True))
    key = _model._params_key(LogisticRegression, LogisticRegression(max_iter=77).get_params())
    assert key in _model._VALID_SETS
    calls.clear()
    mpk.loads(msgpack.packb(m, use_bin_type=True))
    assert calls == []
    m["params"]["max_iter"] = 77.0                  # an int parameter: a float is refused
    for _ in range(2):
        refuse(m, "params: ", "'max_iter' parameter")
    m["params"]["max_iter"] = 77
    m["params"]["tol"] = float("nan")               # a NaN where one is refused: at every load
    for _ in range(2):
        refuse(m, "params: ", "'tol' parameter")
    from sklearn.impute import SimpleImputer        # a NaN that passes: never a whole set's key
    mpk.loads(mpk.dumps(SimpleImputer().fit(X)))
    assert not any(v != v for k in _model._VALID_SETS for v in k[-1])


@pytest.mark.parametrize("which", ["Lars", "SelectKBest", "TransformedTargetRegressor", "HGB"])
def test_numpy_scalar_and_function_parameters_are_validated_once(which, monkeypatch):
    """A numpy scalar (Lars's eps), an allow-listed function (SelectKBest's
    score_func) or ufunc (np.log1p), a list of scalars (HistGradientBoosting's
    categorical_features) as a parameter value is one key of the validation
    memo: scikit-learn validates it at the first load of a process, not at
    every one."""
    from sklearn.base import BaseEstimator
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_selection import SelectKBest
    from sklearn.linear_model import Lars
    make = {"Lars": lambda: Lars().fit(X, X[:, 0]), "SelectKBest": lambda: SelectKBest(k=2).fit(X, Y),
            "TransformedTargetRegressor": lambda: TransformedTargetRegressor(
                func=np.log1p, inverse_func=np.expm1).fit(X, X[:, 0]),
            "HGB": lambda: HistGradientBoostingClassifier(max_iter=3, categorical_features=[0]).fit(
                np.c_[np.arange(len(X)) % 4, X], Y)}[which]
    calls = []
    orig = BaseEstimator._validate_params
    monkeypatch.setattr(BaseEstimator, "_validate_params", lambda self: calls.append(type(self)) or orig(self))
    data = mpk.dumps(make())
    mpk.loads(data)
    calls.clear()
    mpk.loads(data)
    assert calls == []


def test_estimator_parameters_are_checked_with_the_constraints_made_once(monkeypatch):
    """A meta-estimator's parameter that holds an estimator (no memo key)
    is checked on its own against its constraint objects, made once per
    class: scikit-learn's own validation, which makes them all again, runs
    only for a refusal, whose message it gives, at every load."""
    from sklearn.base import BaseEstimator
    from sklearn.multiclass import OneVsRestClassifier
    calls = []
    orig = BaseEstimator._validate_params
    monkeypatch.setattr(BaseEstimator, "_validate_params", lambda self: calls.append(type(self)) or orig(self))
    data = mpk.dumps(OneVsRestClassifier(LogisticRegression()).fit(X, Y))
    mpk.loads(data)
    calls.clear()
    back = mpk.loads(data)
    assert calls == [] and type(back.estimator) is LogisticRegression
    m = archive(OneVsRestClassifier(LogisticRegression()).fit(X, Y))
    m["params"]["estimator"] = "not an estimator"
    for _ in range(2):
        refuse(m, "params: ", "'estimator' parameter of OneVsRestClassifier", "fit")


def test_unknown_top_level_key_refused():
    m = archive(_mlp())
    m["__reduce__"] = "os.system"
    refuse(m, "__reduce__: ", "unexpected")


@pytest.mark.parametrize("bad,fragment", [("hello", "expected array"), (None, "expected array"),
                                          ({"a": 1}, "expected array"), ([[1, 2], [3]], "expected array"),
                                          ([["a", 1]], "expected array"), (3.5, "expected array"),
                                          ([[1.0, None]], "expected array")])
def test_wrong_weight_type(bad, fragment):
    m = archive(_mlp())
    m["weights"]["coefs_"][1] = bad
    refuse(m, "weights/coefs_/1: ", fragment)


def test_wrong_types_elsewhere():
    base = archive(_mlp())
    cases = [
        (("weights", "coefs_"), "x", "weights/coefs_: ", "expected list of arrays"),
        (("xtra", "n_layers_"), 3.5, "xtra/n_layers_: ", "expected int"),
        (("xtra", "n_layers_"), "4", "xtra/n_layers_: ", "expected int"),
        (("xtra", "out_activation_"), 1, "xtra/out_activation_: ", "expected string"),
        (("xtra", "out_activation_"), "os.system", "xtra/out_activation_: ", "not one of"),
        (("xtra", "n_outputs_"), 7, "xtra/n_outputs_: ", "does not match"),
        (("xtra", "loss_"), "x", "xtra/loss_: ", "expected float"),
        (("xtra", "loss_curve_"), [1.0, "x"], "xtra/loss_curve_/1: ", "expected number"),
        (("xtra", "classes_"), {"a": 1}, "xtra/classes_: ", "expected array"),
        (("params", "alpha"), "abc", "params: ", "alpha"),
        (("params", "activation"), "os.system", "params: ", "activation"),
        (("params", "hidden_layer_sizes"), "x", "params/hidden_layer_sizes: ", "expected list"),
        (("types", "classes_"), "pickle", "types/classes_: ", "unknown type name"),
        (("weights", "intercepts_"), [[0.0] * 5, [0.0] * 4, [0.0] * 3], "weights/intercepts_/1: ", "does not match"),
    ]
    for (sec, key), val, prefix, frag in cases:
        m = archive(_mlp())
        m[sec][key] = val
        refuse(m, prefix, frag)
    assert base == archive(_mlp())


def test_shape_chain_checked():
    m = archive(_mlp(), "nested")
    m["weights"]["coefs_"][1] = [[0.0] * 3] * 4          # (4, 3) after (4, 5)
    refuse(m, "weights/coefs_/1: ", "previous layer")


def test_compact_array_checks():
    m = archive(LogisticRegression().fit(X, Y))
    good = m["weights"]["coef_"]
    for change, prefix in [({b"data": good[b"data"][:-1]}, "weights/coef_/data: "),
                           ({b"shape": [3, -4]}, "weights/coef_/shape/1: "),
                           ({b"shape": [2**62, 2**62]}, "weights/coef_/data: "),
                           ({b"shape": "3,4"}, "weights/coef_/shape: "),
                           ({b"nd": 1}, "weights/coef_/nd: "),
                           ({b"data": "text"}, "weights/coef_/data: "),
                           ({b"evil": 1}, "weights/coef_/evil: ")]:
        bad = {**good, **change}
        m["weights"]["coef_"] = bad
        refuse(m, prefix)


def test_compact_odd_dtypes_and_shapes():
    m = archive(LogisticRegression().fit(X, Y))
    for t, shape, data, prefix in [("<U0", [2**40], b"", "xtra/classes_/type: "),
                                   ("|S0", [5], b"", "xtra/classes_/type: "),
                                   ("<f8", [2**62, 0], b"", "xtra/classes_: "),
                                   ("<U2", [1], b"\xff" * 8, "xtra/classes_/data: "),
                                   ("<i8", [0], b"", "xtra/classes_: "),
                                   ("<i8", [1], b"\0" * 8, "xtra/classes_: ")]:
        m["xtra"]["classes_"] = {b"nd": True, b"type": t, b"kind": b"", b"shape": shape, b"data": data}
        refuse(m, prefix)
    m = archive(LogisticRegression().fit(X, Y))
    m["xtra"]["classes_"] = [0, 1]               # 3 rows of coef_
    refuse(m, "weights/coef_: ", "does not match 2 classes")


def test_missing_required_attribute():
    m = archive(LogisticRegression().fit(X, Y))
    del m["weights"]["coef_"]
    refuse(m, "weights/coef_: ", "missing")
    m = archive(_tfidf())
    del m["transformer"]
    refuse(m, "transformer: ", "missing")


def test_csr_checks():
    m = archive(_tfidf(), "nested")
    diag = m["transformer"]["xtra"]["_idf_diag"]
    diag["arg1"][1][2] = 10**6                        # column index out of bounds
    refuse(m, "transformer/xtra/_idf_diag: ", "invalid csr_matrix")
    m = archive(_tfidf(), "nested")
    m["transformer"]["xtra"]["_idf_diag"]["arg1"][2] = [0, 1]
    refuse(m, "transformer/xtra/_idf_diag: ", "invalid csr_matrix")
    m = archive(_tfidf())
    m["transformer"]["xtra"]["_idf_diag"]["dtype"] = "object"
    refuse(m, "transformer/xtra/_idf_diag/dtype: ", "not allowed")
    m = archive(_tfidf())
    m["transformer"]["xtra"]["_idf_diag"]["class_name"] = "bsr_matrix"
    refuse(m, "transformer/xtra/_idf_diag/class_name: ")
    m = archive(_tfidf())
    m["transformer"]["class_name"] = "TfidfVectorizer"
    refuse(m, "transformer/")


def test_vocabulary_checks():
    m = archive(_tfidf())
    m["xtra"]["vocabulary_"]["bb"] = 10**9
    refuse(m, "xtra/vocabulary_: ", "permutation")
    m["xtra"]["vocabulary_"]["bb"] = "1"
    refuse(m, "xtra/vocabulary_/bb: ", "expected int")


def _vocab_archive(vocab, raw_keys=()):
    """A TfidfVectorizer archive whose vocabulary is vocab; keys in raw_keys
    are written as these raw bytes (bin), the rest as str."""
    m = archive(_tfidf())
    m["xtra"]["vocabulary_"] = vocab
    idf = m["transformer"]["xtra"]["_idf_diag"]
    n = len(vocab)
    idf["shape"] = [n, n]
    idf["arg1"] = [{b"nd": True, b"type": "<f8", b"kind": b"", b"shape": [n], b"data": np.ones(n).tobytes()},
                   {b"nd": True, b"type": "<i4", b"kind": b"", b"shape": [n], b"data": np.arange(n, dtype="<i4").tobytes()},
                   {b"nd": True, b"type": "<i4", b"kind": b"", b"shape": [n + 1],
                    b"data": np.arange(n + 1, dtype="<i4").tobytes()}]
    return m


@pytest.mark.parametrize("vocab,prefix,fragment", [
    ({"a": 0, "b": 1, "c": 1}, "xtra/vocabulary_: ", "permutation"),          # an index twice
    ({"a": 0, "b": 1, "c": 3}, "xtra/vocabulary_: ", "permutation"),          # out of range
    ({"a": 0, "b": -1, "c": 2}, "xtra/vocabulary_: ", "permutation"),
    ({"a": 0, "b": 2**64 - 1, "c": 2}, "xtra/vocabulary_: ", "permutation"),  # too big for int64
    ({"a": 0, "b": True, "c": 2}, "xtra/vocabulary_/b: ", "expected int"),    # a bool is not an index
    ({"a": 0, "b": 1.0, "c": 2}, "xtra/vocabulary_/b: ", "expected int"),
    ({"a": 0, "b": None, "c": 2}, "xtra/vocabulary_/b: ", "expected int"),
    ({"a": 0, 7: 1, "c": 2}, "xtra/vocabulary_: ", "expected str key"),       # an int key
])
def test_vocabulary_checked_in_bulk_and_named(vocab, prefix, fragment):
    refuse(_vocab_archive(vocab), prefix, fragment)


def test_vocabulary_odd_terms():
    """Terms holding NUL, non-ASCII text, bin keys and the empty string load
    as they are; a term that is not UTF-8 is refused naming the map."""
    vocab = {"a\x00b": 0, "\u00e9t\u00e9": 1, "": 2, "\x00": 3, "z": 4}
    got = mpk.loads(msgpack.packb(_vocab_archive(vocab), use_bin_type=True))
    assert got.vocabulary_ == vocab
    m = _vocab_archive({"a": 0, "b": 1})
    m["xtra"]["vocabulary_"] = {b"a": 0, b"\xc3\xa9": 1}        # bin keys, UTF-8
    assert mpk.loads(msgpack.packb(m, use_bin_type=True)).vocabulary_ == {"a": 0, "\u00e9": 1}
    m["xtra"]["vocabulary_"] = {b"a": 0, b"\xff": 1}             # not UTF-8
    refuse(m, "xtra/vocabulary_: ", "not UTF-8")
    m = _vocab_archive({})
    assert mpk.loads(msgpack.packb(m, use_bin_type=True)).vocabulary_ == {}


def test_nested_model_errors_have_full_path():
    pipe = Pipeline([("s", StandardScaler()), ("c", LogisticRegression())]).fit(X, Y)
    m = archive(pipe)
    m["params"]["steps"][1][1]["weights"]["coef_"] = "x"
    refuse(m, "params/steps/1/1/weights/coef_: ", "expected array")
    m = archive(pipe)
    m["params"]["steps"][0][1]["class_name"] = "os.system"
    refuse(m, "params/steps/0/1/class_name: ", "allow-list")
    m = archive(pipe)
    m["params"]["memory"] = "/tmp/cachedir"
    refuse(m, "params/memory: ")
    m = archive(pipe)
    m["params"]["steps"][0][1] = "os.system"
    refuse(m, "params/steps/0/1: ")


def test_pipeline_nesting_bomb():
    m = archive(LogisticRegression().fit(X, Y))
    for _ in range(100):
        m = {"class_name": "Pipeline", "types": {}, "params": {"steps": [["p", m]], "memory": None,
                                                               "verbose": False}}
    refuse(m, "params/steps/0/1/", "nested too deeply")


def test_bad_dtypes_entry():
    m = archive(LogisticRegression().fit(X, Y), "nested")
    m["dtypes"]["coef_"] = "|O"
    refuse(m, "dtypes/coef_: ", "not allowed")
    m["dtypes"]["coef_"] = "<i4"
    refuse(m, "weights/coef_: ", "not integers")
    m = archive(LogisticRegression().fit(X, Y), "nested")
    m["dtypes"]["classes_"] = "|u1"
    m["xtra"]["classes_"] = [0, 1, 300]
    refuse(m, "xtra/classes_: ", "do not fit")


def test_an_empty_array_with_a_bytes_dtype_loads_empty():
    """An empty nested array whose dtypes entry names a bytes dtype
    (numpy makes [] float64): the empty array of that dtype, or the class's
    own error -- not the TypeError np.char.encode raised on it (found by
    tests/fuzz/mpk_mutate.py, seed 11, in a HistGradientBoosting bitset)."""
    for value, dt in (([], "|S3"), ([[]], "|S1")):
        a = mpk._arrays.decode_nested(value, "p", dt, "dp")
        assert a.dtype == np.dtype(dt) and a.size == 0 and a.shape == np.array(value).shape
    m = archive(LogisticRegression().fit(X, Y), "nested")
    m["dtypes"]["classes_"] = "|S2"
    m["xtra"]["classes_"] = []
    try:
        mpk.loads(msgpack.packb(m, use_bin_type=True))
    except mpk.FormatError:
        pass            # refused by the class's own checks: what matters is that it is a FormatError


def test_ext_and_odd_values():
    m = archive(_mlp())
    m["params"]["alpha"] = msgpack.ExtType(5, b"xx")
    refuse(m, "params/alpha: ", "unsupported")
    m = archive(_mlp())
    m["xtra"]["n_iter_"] = msgpack.ExtType(1, b"\0")
    refuse(m, "xtra/n_iter_: ")


def test_not_a_map_and_garbage():
    refuse(b"", "(archive): ")
    refuse(msgpack.packb([1, 2]), "(archive): ", "model map")
    refuse(msgpack.packb({"a": 1}), "class_name: ", "missing")
    refuse(mpk.dumps(_mlp()) + b"\0", "(archive): ", "after the end")
    refuse(b"\xc1", "(archive): ")


def test_truncated_everywhere():
    data = mpk.dumps(_tfidf())
    for n in list(range(0, 200)) + list(range(200, len(data), 37)):
        with pytest.raises(mpk.FormatError):
            mpk.loads(data[:n])


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("arrays", ["compact", "nested"])
def test_fuzz_byte_flips(arrays):
    """Random corruption: either a FormatError or a model -- never another
    exception, never a crash."""
    rnd = random.Random(1234)
    pipe = Pipeline([("s", StandardScaler()), ("c", LogisticRegression())]).fit(X, Y)
    for est, sample in ((_mlp(), X), (_tfidf(), ["bb cc zz", "a ff"]), (pipe, X)):
        data = bytearray(mpk.dumps(est, arrays))
        for _ in range(300):
            d = bytearray(data)
            for _ in range(rnd.randint(1, 3)):
                i = rnd.randrange(len(d))
                d[i] = rnd.choice([0x00, 0xFF, 0xC0, 0xC1, 0x90, 0x80, 0xA0, 0x7F, rnd.randrange(256)])
            try:
                m = mpk.loads(bytes(d))
            except mpk.FormatError:
                continue
            try:     # a model that loads must not crash the interpreter
                (m.transform if hasattr(m, "transform") else m.predict)(sample)
            except Exception:
                pass


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(FIXTURES, "bad_*.mpk")))
                         + [os.path.join(FIXTURES, "edge_values.mpk")])
def test_bad_fixtures_refused(path):
    with pytest.raises(mpk.FormatError) as ei:
        mpk.load(path)
    assert ": " in str(ei.value)


# ------------------------------------------------- the generic codec (issue 9)

from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier  # noqa: E402
from sklearn.feature_selection import SelectKBest  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.svm import SVC  # noqa: E402


def _forest():
    return RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, Y)


def _tree_map(m, i=0):
    return m["weights"]["estimators_"][i]["weights"]["tree_"]


def test_sklearn_class_not_on_allow_list():
    before = set(sys.modules)
    m = archive(LogisticRegression().fit(X, Y))
    for cname in ("GridSearchCV", "HalvingGridSearchCV", "RandomizedSearchCV", "AdamOptimizer"):
        m["class_name"] = cname
        refuse(m, "class_name: ", "not on the allow-list")
    assert set(sys.modules) - before == set()


@pytest.mark.parametrize("func,tag", [("os.system", None), ("os.system", "function"),
                                      ("posix.system", "function"), ("builtins.eval", "function"),
                                      ("sklearn.feature_selection.f_classif", "function"),
                                      ("os.system", "type"), (["os", "system"], "tuple")])
def test_function_transformer_with_func_refused(func, tag):
    m = archive(FunctionTransformer().fit(X))
    m["params"]["func"] = func
    if tag:
        m["types"]["func"] = tag
    e = refuse(m, "params")
    assert "func" in str(e) or "function" in str(e) or "type" in str(e)


def test_callable_param_cannot_be_saved(tmp_path):
    with pytest.raises(TypeError, match="callables cannot be stored"):
        mpk.dumps(FunctionTransformer(func=lambda x: x).fit(X))
    with pytest.raises(TypeError, match="callables cannot be stored"):
        mpk.dumps(SelectKBest(score_func=lambda X, y: (X[0], X[0]), k=2).fit(X, Y))


def test_module_path_as_param_refused():
    m = archive(SelectKBest(k=2).fit(X, Y))
    assert m["types"]["score_func"] == "function" and m["params"]["score_func"] == "f_classif"
    m["params"]["score_func"] = "subprocess.check_output"
    refuse(m, "params/score_func: ", "not on the allow-list")
    m["types"]["score_func"] = "module"
    refuse(m, "params/score_func: ", "unknown type tag")
    del m["types"]["score_func"]
    refuse(m, "params", "score_func")           # a str is not a callable: sklearn's validation


def test_object_array_in_generic_model_refused(tmp_path):
    marker = tmp_path / "pwned"
    m = archive(_forest())
    t = _tree_map(m)
    t["weights"]["threshold"] = {b"nd": True, b"type": "|O", b"kind": b"", b"shape": [1],
                                 b"data": pickle.dumps(Boom(str(marker)))}
    refuse(m, "weights/estimators_/0/weights/tree_/weights/threshold/type: ", "not allowed")
    m = archive(_forest())
    m["xtra"]["classes_"] = {b"nd": True, b"type": "<f8", b"kind": b"O", b"shape": [1],
                             b"data": pickle.dumps(Boom(str(marker)))}
    e = refuse(m, "xtra/classes_: ")  # named, never unpickled (issue 11)
    assert "pickled object array" in str(e) and "prediction needs it" in str(e)
    assert not marker.exists()


def test_self_containing_model_refused():
    inner = archive(_forest())
    m = inner
    for _ in range(120):        # a model holding itself, deeper than any real model
        m = {"class_name": "BaggingClassifier", "types": {}, "params": {}, "xtra": {},
             "weights": {"estimators_": [m]}}
    e = refuse(m, "")
    assert "nested too deeply" in str(e)


@pytest.mark.parametrize("shape", [[2**62, 2**62], [2**32, 2**32, 2**32], [-1], [2**64 - 1], [1] * 40])
def test_shape_overflow_refused(shape):
    m = archive(_forest())
    t = _tree_map(m)
    t["weights"]["threshold"] = {b"nd": True, b"type": "<f8", b"kind": b"", b"shape": shape, b"data": b"\0" * 8}
    refuse(m, "weights/estimators_/0/weights/tree_/weights/threshold")


@pytest.mark.parametrize("shape", [[2**62, 0], [0, 2**62], [2**40, 2**40], [2**64 - 1, 1]])
def test_object_array_shape_overflow_refused(shape):
    from sklearn.ensemble import GradientBoostingClassifier
    m = archive(GradientBoostingClassifier(n_estimators=2, max_depth=1).fit(X, Y))
    assert m["types"]["estimators_"][0] == "object_array"
    m["types"]["estimators_"][1] = shape
    refuse(m, "weights/estimators_")


def _set_tree_col(m, col, i, v):
    t = _tree_map(m)
    a = np.array(mpk._arrays.decode_compact(t["weights"][col], "x"))
    a[i] = v
    t["weights"][col] = {b"nd": True, b"type": a.dtype.str, b"kind": b"", b"shape": list(a.shape),
                         b"data": a.tobytes()}
    return m


@pytest.mark.parametrize("col,i,v,what", [
    ("children_left", 0, 10**6, "outside the node table"),
    ("children_right", 0, -5, "outside the node table"),
    ("children_left", 1, 0, "cycle"),               # node 1 points back at the root
    ("children_left", 0, 0, "cycle"),               # the root is its own child
    ("children_right", 0, 1, "outside the node table"),   # both children the same node
    ("children_right", 1, -1, "only one child"),
    ("feature", 0, 99, "feature index"),
    ("feature", 0, -3, "feature index"),
])
def test_bad_tree_links_refused(col, i, v, what):
    m = _set_tree_col(archive(_forest()), col, i, v)
    e = refuse(m, "weights/estimators_/0/weights/tree_/weights")
    assert what in str(e), str(e)


def test_shared_tree_node_refused():
    m = archive(_forest())
    t = _tree_map(m)
    left = mpk._arrays.decode_compact(t["weights"]["children_left"], "x")
    right = mpk._arrays.decode_compact(t["weights"]["children_right"], "x")
    inner = np.flatnonzero(left != -1)
    a, b = inner[0], inner[1]          # two inner nodes: make b's left child a's left child
    assert left[b] > left[a] or True
    m = _set_tree_col(m, "children_left", b, left[a]) if left[a] > b else _set_tree_col(m, "children_right", b, right[a])
    e = refuse(m, "weights/estimators_/0/weights/tree_/weights")
    assert "parent" in str(e) or "cycle" in str(e), str(e)


def test_tree_value_shape_and_node_count_checked():
    m = archive(_forest())
    t = _tree_map(m)
    t["xtra"]["node_count"] += 1
    refuse(m, "weights/estimators_/0/weights/tree_/weights/", "node_count")
    m = archive(_forest())
    _tree_map(m)["params"]["n_features"] = 2
    refuse(m, "weights/estimators_/0/weights/tree_")


def test_huge_node_count_allocates_nothing():
    """node_count is a number in the file: a tree claiming 2**31 nodes with
    arrays of a few is refused without allocating a node table that big."""
    for n in (2**31, 2**40):
        m = archive(_forest())
        _tree_map(m)["xtra"]["node_count"] = n
        refuse(m, "weights/estimators_/0/weights/tree_/weights/children_left", "node_count")


def test_hgb_predictor_links_refused():
    est = HistGradientBoostingRegressor(max_iter=3, min_samples_leaf=2, random_state=0).fit(X, X[:, 0])
    m = archive(est)
    pred = m["weights"]["_predictors"][0][0]
    left = np.array(mpk._arrays.decode_compact(pred["weights"]["left"], "x"))
    left[0] = 10**6
    pred["weights"]["left"] = {b"nd": True, b"type": left.dtype.str, b"kind": b"", b"shape": list(left.shape),
                               b"data": left.tobytes()}
    refuse(m, "weights/_predictors/0/0/weights", "outside the node table")


def test_svm_inconsistent_support_refused():
    m = archive(SVC().fit(X, Y))
    m["xtra"]["_n_support"] = [1, 1, 1]
    m["types"]["_n_support"] = "ndarray"
    refuse(m, "xtra/_n_support: ")


def test_mutated_forest_never_crashes(tmp_path):
    """Random changes to node tables: every archive is refused or loads and
    predicts; run in a child process so that a crash fails the test."""
    import subprocess
    path = tmp_path / "f.mpk"
    mpk.save(_forest(), path)
    code = r'''
import random, sys, numpy as np, msgpack, mpk
from mpk import _arrays
raw = open(sys.argv[1], "rb").read()
rng = random.Random(0)
X = np.random.RandomState(1).rand(20, 4)
loaded = refused = 0
for k in range(300):
    m = msgpack.unpackb(raw, strict_map_key=False)
    t = m["weights"]["estimators_"][rng.randrange(3)]["weights"]["tree_"]
    col = rng.choice(["children_left", "children_right", "feature", "threshold", "value"])
    a = np.array(_arrays.decode_compact(t["weights"][col], "x"))
    flat = a.reshape(-1)
    flat[rng.randrange(flat.size)] = rng.choice([-2, -1, 0, 1, 2, 3, 5, 7, 50, 2**31, -2**40, 2**62])
    t["weights"][col] = {b"nd": True, b"type": a.dtype.str, b"kind": b"", b"shape": list(a.shape), b"data": a.tobytes()}
    try:
        est = mpk.loads(msgpack.packb(m, use_bin_type=True))
    except mpk.FormatError:
        refused += 1
        continue
    est.predict(X); est.predict_proba(X); est.apply(X); est.decision_path(X)
    loaded += 1
print(loaded, refused)
'''
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=os.path.dirname(mpk.__path__[0])))
    assert r.returncode == 0, r.stderr[-2000:]
    loaded, refused = map(int, r.stdout.split())
    assert loaded > 0 and refused > 0


def test_pickled_array_seen_in_every_encoding_of_kind_O(tmp_path):
    """Pickled object arrays are found where the decoder reads each value
    (no separate walk, no byte pre-scan): whatever encoding its kind "O"
    has (fixstr, str 8/16/32, old raw, bin 8/16/32), an attribute holding
    one is refused naming it, or dropped with skip_pickled=True when
    prediction does not need it; in a parameter it is always refused."""
    marker = tmp_path / "pwned"
    encodings = [msgpack.packb("O"), msgpack.packb(b"O", use_bin_type=True),
                 msgpack.packb(b"O", use_bin_type=False),
                 b"\xd9\x01O", b"\xda\x00\x01O", b"\xdb\x00\x00\x00\x01O",
                 b"\xc4\x01O", b"\xc5\x00\x01O", b"\xc6\x00\x00\x00\x01O"]
    placeholder = b"KIND-PLACEHOLDER"
    est = LogisticRegression().fit(X, Y)
    for section, name in (("xtra", "classes_"), ("xtra", "n_iter_"), ("params", "class_weight")):
        m = archive(est)
        m[section][name] = {b"nd": True, b"type": "|O", b"kind": placeholder, b"shape": [1],
                            b"data": pickle.dumps(Boom(str(marker)))}
        data = msgpack.packb(m, use_bin_type=True)
        packed = msgpack.packb(placeholder, use_bin_type=True)
        assert data.count(packed) == 1
        for e in encodings:
            d = data.replace(packed, e)
            with pytest.raises(mpk.FormatError) as ei:
                mpk.loads(d)
            assert ei.value.path == f"{section}/{name}", (e, str(ei.value))
            assert "pickled object array" in str(ei.value), (e, str(ei.value))
            if name == "n_iter_":
                with pytest.warns(UserWarning, match="xtra/n_iter_: pickled"):
                    got = mpk.loads(d, skip_pickled=True)
                assert not hasattr(got, "n_iter_") and (got.predict(X) == est.predict(X)).all()
            else:
                with pytest.raises(mpk.FormatError, match=f"{section}/{name}: pickled"):
                    mpk.loads(d, skip_pickled=True)
    assert not marker.exists()

def test_many_keys_do_not_fill_the_key_cache_for_good():
    """Map keys are decoded through a bounded cache; a map with more keys
    than it holds (a hostile or just big DictVectorizer vocabulary) starts
    it over instead of leaving it full of its own terms."""
    from mpk import _arrays
    for i in range(3 * _arrays._KEY_CACHE_MAX):
        assert _arrays.key_text(b"term%d" % i, "x") == "term%d" % i
    assert len(_arrays._KEY_CACHE) <= _arrays._KEY_CACHE_MAX
    assert _arrays._KEY_CACHE.get(b"term%d" % (3 * _arrays._KEY_CACHE_MAX - 1)) is not None
    m = archive(_mlp())
    assert (mpk.loads(msgpack.packb(m, use_bin_type=True)).predict(X) == _mlp().predict(X)).all()


def _bool_arrays(m, path=""):
    """(parent, key, path) of every compact bool array in an archive map."""
    if isinstance(m, dict):
        if m.get(b"nd") is True and m.get(b"type") in ("|b1", b"|b1"):
            return [(None, None, path)]
        out = []
        for k, v in m.items():
            p = f"{path}/{k.decode() if isinstance(k, bytes) else k}".lstrip("/")
            for parent, key, q in _bool_arrays(v, p):
                out.append((m, k, q) if parent is None else (parent, key, q))
        return out
    if isinstance(m, list):
        return [t for i, v in enumerate(m) for t in _bool_arrays(v, f"{path}/{i}")]
    return []


def test_bool_array_with_bytes_other_than_0_and_1_refused():
    from sklearn.feature_selection import RFE
    m = archive(RFE(LogisticRegression(), n_features_to_select=2).fit(X, Y))
    found = _bool_arrays(m)
    assert found, "RFE keeps support_ as a bool array"
    parent, key, path = found[0]
    a = dict(parent[key])
    a[b"data"] = bytes([2]) + a[b"data"][1:]
    parent[key] = a
    refuse(m, path + "/data: ", "a bool holds a byte other than 0 or 1")
    a[b"data"] = bytes([1]) + a[b"data"][1:]      # 0 and 1 are bools
    mpk.loads(msgpack.packb(m, use_bin_type=True))


@pytest.mark.parametrize("make", ["forest", "knn"])
def test_multi_output_classes_that_do_not_match_the_model_never_crash(make):
    """A multi-output classifier whose first output's class array is cut
    to one class (its trees or its neighbours' labels still index two or
    three): loading it is as mpk's checks say, and predicting raises a
    Python error, never reads outside the array."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    Xm = np.random.RandomState(0).rand(60, 4)
    Ym = np.c_[np.arange(60) % 3, np.arange(60) % 2]
    est = (RandomForestClassifier(5, max_depth=3, random_state=0) if make == "forest"
           else KNeighborsClassifier()).fit(Xm, Ym)
    m = archive(est)
    c = m["weights"]["classes_"][0]
    c[b"shape"], c[b"data"] = [1], c[b"data"][:8]
    back = mpk.loads(msgpack.packb(m, use_bin_type=True))
    with pytest.raises(IndexError):
        back.predict(Xm[:5])
