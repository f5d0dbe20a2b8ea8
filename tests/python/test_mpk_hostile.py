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


def test_structured_and_datetime_dtypes_refused():
    m = archive(LogisticRegression().fit(X, Y))
    m["weights"]["coef_"] = {b"nd": True, b"type": "<f8", b"kind": b"V", b"shape": [0], b"data": b""}
    refuse(m, "weights/coef_/kind: ")
    for t in ("<M8[s]", "|V8", "<m8", "x", ""):
        m["weights"]["coef_"] = {b"nd": True, b"type": t, b"kind": b"", b"shape": [1], b"data": b"\0" * 8}
        refuse(m, "weights/coef_/type: ", "not allowed")


@pytest.mark.parametrize("cname", ["os.system", "posix.system", "builtins.eval", "subprocess.Popen",
                                   "sklearn.linear_model.LogisticRegression", "GridSearchCV",
                                   "SparseCoder", "antigravity", "__import__", "", "Kernel",
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


needs_fixtures = pytest.mark.skipif(not os.path.isdir(FIXTURES), reason="fixtures not found")


@needs_fixtures
@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(FIXTURES, "bad_*.mpk")))
                         + [os.path.join(FIXTURES, "edge_values.mpk")])
def test_bad_fixtures_refused(path):
    with pytest.raises(mpk.FormatError) as ei:
        mpk.load(path)
    assert ": " in str(ei.value)
