"""Round trips: every allow-listed class, both array encodings, bit-for-bit
equal predictions and restored dtypes; and the independent writer's fixtures."""

import os
import warnings

import msgpack
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import LinearSVC

import mpk
from mpk_testutil import FIXTURES

RNG = np.random.RandomState(0)
X = RNG.rand(60, 7)
X32 = X.astype(np.float32)
Y3 = (np.arange(60) % 3)
Y2 = (X[:, 0] + X[:, 1] > 1).astype(int)
YSTR = np.where(Y2 == 1, "spam", "ham")
YR = X @ np.arange(7.0) + 0.1 * RNG.rand(60)
YR2 = np.c_[YR, -YR]
XT = np.random.RandomState(1).rand(25, 7)

WORDS = [f"w{i:03d}" for i in range(120)]
DOCS = [" ".join(np.random.RandomState(i).choice(WORDS, 12)) for i in range(40)]
DOCS_Y = np.arange(40) % 2
DOCS_T = [" ".join(np.random.RandomState(100 + i).choice(WORDS + ["unseen"], 10)) for i in range(10)]


def _fit(est, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(*args)


def _cases():
    counts = CountVectorizer().fit_transform(DOCS)
    return {
        "mlp_clf": (lambda: _fit(MLPClassifier((8, 5), max_iter=20, random_state=0), X, Y3), XT),
        "mlp_clf_str_labels": (lambda: _fit(MLPClassifier((6,), max_iter=20, random_state=0), X, YSTR), XT),
        "mlp_clf_float32": (lambda: _fit(MLPClassifier((6,), max_iter=10, random_state=0), X32, Y2), XT.astype(np.float32)),
        "mlp_reg": (lambda: _fit(MLPRegressor((8,), max_iter=20, random_state=0), X, YR), XT),
        "mlp_reg_multi": (lambda: _fit(MLPRegressor((4,), activation="tanh", max_iter=20, random_state=0), X, YR2), XT),
        "logreg": (lambda: _fit(LogisticRegression(C=0.5, class_weight={0: 1.0, 1: 2.5}), X, Y2), XT),
        "logreg_multi": (lambda: _fit(LogisticRegression(), X, Y3), XT),
        "linreg": (lambda: _fit(LinearRegression(), X, YR), XT),
        "linreg_multi": (lambda: _fit(LinearRegression(), X, YR2), XT),
        "ridge": (lambda: _fit(Ridge(alpha=0.3), X, YR), XT),
        "ridge_float32": (lambda: _fit(Ridge(alpha=0.3), X32, YR.astype(np.float32)), XT.astype(np.float32)),
        "sgd": (lambda: _fit(SGDClassifier(loss="log_loss", random_state=0, max_iter=20), X, Y3), XT),
        "linsvc": (lambda: _fit(LinearSVC(random_state=0), X, Y2), XT),
        "std_scaler": (lambda: _fit(StandardScaler(), X), XT),
        "std_scaler_nomean": (lambda: _fit(StandardScaler(with_mean=False), X), XT),
        "minmax": (lambda: _fit(MinMaxScaler(feature_range=(-1, 2)), X), XT),
        "pca": (lambda: _fit(PCA(3, whiten=True), X), XT),
        "kmeans": (lambda: _fit(KMeans(3, n_init=1, random_state=0), X), XT),
        "count": (lambda: _fit(CountVectorizer(ngram_range=(1, 2)), DOCS), DOCS_T),
        "tfidf": (lambda: _fit(TfidfVectorizer(), DOCS), DOCS_T),
        "tfidf_f32_sublinear": (lambda: _fit(TfidfVectorizer(dtype=np.float32, sublinear_tf=True, norm="l1"), DOCS), DOCS_T),
        "tfidf_transformer": (lambda: _fit(TfidfTransformer(), counts), CountVectorizer().fit(DOCS).transform(DOCS_T)),
        "tfidf_char_wb": (lambda: _fit(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3)), DOCS + ["and nd"]), DOCS_T),
        "count_fixed_vocab": (lambda: _fit(CountVectorizer(vocabulary={"nd": 0, "w001": 1, "w002": 2}), DOCS), DOCS_T),
        "count_stop_maxfeat": (lambda: _fit(CountVectorizer(stop_words=["w001", "w002"], max_features=30, binary=True,
                                                            dtype=np.int32), DOCS), DOCS_T),
        "pca_mle": (lambda: _fit(PCA("mle"), X), XT),
        "sgd_str_labels": (lambda: _fit(SGDClassifier(random_state=0, max_iter=20), X, YSTR), XT),
        "mlp_multilabel": (lambda: _fit(MLPClassifier((5,), max_iter=10, random_state=0), X, (X[:, :3] > 0.5).astype(int)), XT),
        "mlp_early_stop": (lambda: _fit(MLPClassifier((5,), max_iter=15, early_stopping=True, random_state=0), X, Y3), XT),
        "pipe_scaler_logreg": (lambda: _fit(Pipeline([("s", StandardScaler()), ("p", PCA(4)), ("c", LogisticRegression())]), X, Y3), XT),
        "pipe_tfidf_sgd": (lambda: _fit(Pipeline([("v", TfidfVectorizer()), ("skip", "passthrough"),
                                                  ("c", SGDClassifier(random_state=0))]), DOCS, DOCS_Y), DOCS_T),
        "pipe_nested": (lambda: _fit(Pipeline([("inner", Pipeline([("m", MinMaxScaler())])), ("r", Ridge())]), X, YR), XT),
    }


CASES = _cases()
METHODS = ("predict", "predict_proba", "decision_function", "transform")


def _same(a, b):
    if sp.issparse(a):
        assert sp.issparse(b)
        a, b = a.tocsr(), b.tocsr()
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
        assert a.data.tobytes() == b.data.tobytes()
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.dtype.kind in "fc":
        assert a.tobytes() == b.tobytes()      # bit for bit (NaN-safe)
    else:
        assert np.array_equal(a, b)


_FITTED = {}


def fitted(name):
    if name not in _FITTED:
        _FITTED[name] = CASES[name][0]()
    return _FITTED[name]


@pytest.mark.parametrize("arrays", ["compact", "nested"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_roundtrip_predictions(name, arrays, tmp_path):
    est = fitted(name)
    data = CASES[name][1]
    path = tmp_path / "m.mpk"
    mpk.save(est, path, arrays=arrays)
    back = mpk.load(path)
    assert type(back) is type(est)
    assert back.get_params(deep=False).keys() == est.get_params(deep=False).keys()
    n = 0
    for meth in METHODS:
        if not hasattr(est, meth):
            continue
        try:
            want = getattr(est, meth)(data)
        except (AttributeError, ValueError):
            continue
        _same(want, getattr(back, meth)(data))
        n += 1
    assert n > 0
    # the file re-encodes to the same bytes
    assert mpk.dumps(back, arrays) == path.read_bytes()


@pytest.mark.parametrize("arrays", ["compact", "nested"])
def test_dtypes_restored(arrays, tmp_path):
    for name in ("ridge_float32", "logreg", "tfidf_f32_sublinear", "mlp_clf_str_labels", "std_scaler"):
        est = fitted(name)
        mpk.save(est, tmp_path / "m.mpk", arrays=arrays)
        back = mpk.load(tmp_path / "m.mpk")
        for k, v in vars(est).items():
            if isinstance(v, np.ndarray) and k in vars(back):
                assert vars(back)[k].dtype == v.dtype, (name, k)
                assert np.array_equal(vars(back)[k], v), (name, k)
            elif isinstance(v, (np.floating, np.integer)) and k in vars(back):
                assert type(vars(back)[k]) is type(v), (name, k)
        if name == "logreg":
            assert back.n_iter_.dtype == np.int32
            assert back.class_weight == {0: 1.0, 1: 2.5}
        if name == "tfidf_f32_sublinear":
            assert back.dtype is np.float32
            assert back._tfidf._idf_diag.indices.dtype == est._tfidf._idf_diag.indices.dtype


def test_layout_matches_fixture_conventions(tmp_path):
    est = fitted("mlp_clf")
    raw = mpk.dumps(est)
    m = msgpack.unpackb(raw, strict_map_key=False)
    assert list(m)[:5] == ["class_name", "types", "params", "xtra", "weights"]
    assert m["class_name"] == "MLPClassifier"
    assert m["types"]["hidden_layer_sizes"] == "tuple"
    assert m["types"]["classes_"] == "ndarray"
    assert m["types"]["loss_"] == "float64"
    assert m["label_binarizer_classes_"] == [0, 1, 2]
    c0 = m["weights"]["coefs_"][0]
    assert c0[b"nd"] is True and c0[b"type"] == "<f8" and c0[b"kind"] == b"" and c0[b"shape"] == [7, 8]
    assert isinstance(c0[b"data"], bytes) and len(c0[b"data"]) == 7 * 8 * 8
    for left_out in ("_optimizer", "loss_curve_", "t_", "_no_improvement_count", "_random_state"):
        assert left_out not in m["xtra"]

    m = msgpack.unpackb(mpk.dumps(fitted("mlp_clf"), "nested"), strict_map_key=False)
    assert m["weights"]["coefs_"][0] == est.coefs_[0].tolist()
    assert m["dtypes"]["coefs_"] == ["<f8"] * 3

    m = msgpack.unpackb(mpk.dumps(fitted("tfidf")), strict_map_key=False)
    assert "weights" not in m and "stop_words_" not in m["xtra"]
    assert m["types"] == {"dtype": "type", "ngram_range": "tuple"}
    assert m["params"]["dtype"] == "float64"
    t = m["transformer"]
    assert t["class_name"] == "TfidfTransformer" and t["types"] == {"_idf_diag": "csr_matrix"}
    d = t["xtra"]["_idf_diag"]
    assert d["class_name"] == "csr_matrix" and d["dtype"] == "float64" and len(d["arg1"]) == 3

    m = msgpack.unpackb(mpk.dumps(fitted("logreg")), strict_map_key=False)
    assert m["params"]["class_weight"] == {0: 1.0, 1: 2.5}   # int keys stay ints


def test_save_refuses_unsupported(tmp_path):
    from sklearn.model_selection import GridSearchCV
    with pytest.raises(TypeError, match="not supported"):
        mpk.save(_fit(GridSearchCV(Ridge(), {"alpha": [1.0, 2.0]}, cv=2), X, YR), tmp_path / "t.mpk")
    with pytest.raises(ValueError, match="not fitted"):
        mpk.save(LogisticRegression(), tmp_path / "t.mpk")
    with pytest.raises(TypeError, match="callable"):
        mpk.save(_fit(CountVectorizer(tokenizer=str.split), DOCS), tmp_path / "t.mpk")
    with pytest.raises(ValueError):
        mpk.save(fitted("logreg"), tmp_path / "t.mpk", arrays="pickle")
    assert not os.path.exists(tmp_path / "t.mpk")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------- fixtures

@pytest.mark.parametrize("enc", ["seed", "compact"])
def test_fixture_mlp(enc):
    m = mpk.load(os.path.join(FIXTURES, f"mlp_{enc}.mpk"))
    assert isinstance(m, MLPClassifier)
    assert m.hidden_layer_sizes == (16, 8)
    assert [c.shape for c in m.coefs_] == [(20, 16), (16, 8), (8, 3)]
    assert all(c.dtype == np.float64 for c in m.coefs_)
    assert m.classes_.tolist() == [0, 1, 2]
    assert isinstance(m.loss_, np.float64)
    Xf = np.random.RandomState(3).rand(10, 20)
    p = m.predict_proba(Xf)
    assert p.shape == (10, 3) and np.allclose(p.sum(1), 1)
    assert set(m.predict(Xf)) <= {0, 1, 2}


def test_fixture_seed_equals_compact():
    Xf = np.random.RandomState(4).rand(10, 20)
    a = mpk.load(os.path.join(FIXTURES, "mlp_seed.mpk"))
    b = mpk.load(os.path.join(FIXTURES, "mlp_compact.mpk"))
    _same(a.predict_proba(Xf), b.predict_proba(Xf))
    a = mpk.load(os.path.join(FIXTURES, "logreg_seed.mpk"))
    b = mpk.load(os.path.join(FIXTURES, "logreg_compact.mpk"))
    assert a.class_weight == {0: 1.0, 1: 2.5} and a.C == 0.5
    _same(a.predict_proba(Xf[:, :6]), b.predict_proba(Xf[:, :6]))
    a = mpk.load(os.path.join(FIXTURES, "tfidf_seed.mpk"))
    b = mpk.load(os.path.join(FIXTURES, "tfidf_compact.mpk"))
    docs = ["w00001 w00002 w00002 w00377", "nothing known", "w00399 w00000"]
    _same(a.transform(docs), b.transform(docs))
    assert a.transform(docs).shape == (3, 380)
    assert a.ngram_range == (1, 1) and a.dtype is np.float64


@pytest.mark.parametrize("name", ["mlp_seed", "mlp_compact", "logreg_seed", "logreg_compact",
                                  "tfidf_seed", "tfidf_compact"])
def test_fixture_resave_roundtrip(name, tmp_path):
    m = mpk.load(os.path.join(FIXTURES, name + ".mpk"))
    for arrays in ("compact", "nested"):
        mpk.save(m, tmp_path / "r.mpk", arrays=arrays)
        back = mpk.load(tmp_path / "r.mpk")
        for k, v in vars(m).items():
            if isinstance(v, np.ndarray):
                assert vars(back)[k].dtype == v.dtype and np.array_equal(vars(back)[k], v)
