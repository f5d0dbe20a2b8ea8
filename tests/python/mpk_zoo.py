"""Every estimator of scikit-learn's all_estimators(), built the way its own
common tests build them (sklearn.utils.estimator_checks._construct_instance),
fitted on a small dataset suited to its tags, plus a few hand-made cases
(ColumnTransformer, FeatureUnion, categorical HistGradientBoosting, ...).

The *coverage set* is what the issue counts: the estimators that construct,
fit and survive a pickle round trip.  ``zoo()`` returns, for each name, a
Case(fit, X_test) or the reason it is outside the set.

Shared by tests/python/test_mpk_estimators.py, tests/python/mpk_coverage.py
and python/gen_mpk_schema.py.
"""

import pickle
import warnings

import numpy as np

METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform",
           "score_samples")

N_TRAIN, N_TEST = 40, 12


class Case:
    def __init__(self, make, X_test):
        self.make = make          # () -> fitted estimator
        self.X_test = X_test


def _data():
    from sklearn.datasets import make_classification, make_regression
    Xc, yc = make_classification(n_samples=N_TRAIN + N_TEST, n_features=10, n_informative=4, n_redundant=0,
                                 n_classes=3, random_state=0)
    Xr, yr = make_regression(n_samples=N_TRAIN + N_TEST, n_features=10, n_targets=2, random_state=0)
    return Xc, yc, Xr, yr


WORDS = [f"w{i:02d}" for i in range(60)]


def _docs(n, seed):
    rng = np.random.RandomState(seed)
    return [" ".join(rng.choice(WORDS, 8)) for _ in range(n)]


def _dicts(n, seed):
    rng = np.random.RandomState(seed)
    return [{"a": float(rng.rand()), "b": str(rng.choice(["x", "y", "z"])), "c": int(rng.randint(5))}
            for _ in range(n)]


def _inputs(est):
    """(X_train, y_train, X_test) for an estimator, by its tags."""
    from sklearn.base import is_regressor
    from sklearn.metrics.pairwise import linear_kernel, pairwise_distances
    from sklearn.utils._tags import _safe_tags
    from sklearn.utils.estimator_checks import _enforce_estimator_tags_y, _is_pairwise_metric
    Xc, yc, Xr, yr = _data()
    tags = _safe_tags(est)
    xt = tags["X_types"]
    if "string" in xt:
        docs = _docs(N_TRAIN, 0)
        return docs, yc[:N_TRAIN], _docs(N_TEST, 1) + ["w01 unseen"]
    if "dict" in xt:
        return _dicts(N_TRAIN, 0), yc[:N_TRAIN], _dicts(N_TEST, 1)
    if "1dlabels" in xt:
        return yc[:N_TRAIN], None, yc[N_TRAIN:]
    if "2dlabels" in xt:
        return [[1, 2], [3], [2, 4], []] * 5, None, [[1], [4, 2]]
    if is_regressor(est):
        X, y = Xr, (yr if tags.get("multioutput_only") else yr[:, 0])
    else:
        X, y = Xc, yc
    if "1darray" in xt:
        X = X[:, 0]
    if tags.get("requires_positive_X") or type(est).__name__ == "SkewedChi2Sampler":
        X = X - X.min()
    if "categorical" in xt:
        X = (X - X.min()).astype(np.int32)
    y = _enforce_estimator_tags_y(est, y)
    tr, te = X[:N_TRAIN], X[N_TRAIN:]
    if _is_pairwise_metric(est):
        return pairwise_distances(tr), y[:N_TRAIN], pairwise_distances(te, tr)
    if tags.get("pairwise"):
        return linear_kernel(tr), y[:N_TRAIN], linear_kernel(te, tr)
    return tr, y[:N_TRAIN], te


def _fit_all_estimators(cls):
    from sklearn.utils._testing import set_random_state
    from sklearn.utils.estimator_checks import _construct_instance
    est = _construct_instance(cls)
    set_random_state(est, 0)
    Xtr, ytr, Xte = _inputs(est)
    if ytr is None:
        est.fit(Xtr)
    else:
        est.fit(Xtr, ytr)
    return est, Xte


def _xd(name):
    import sklearn.cross_decomposition as cd
    return getattr(cd, name)()


def _rp(name):
    import sklearn.random_projection as rp
    return getattr(rp, name)(n_components=3, random_state=0)


def _missing():
    from sklearn.impute import MissingIndicator
    return MissingIndicator()


def _sparse_coder(X):
    from sklearn.decomposition import SparseCoder
    d = X[:5] / np.linalg.norm(X[:5], axis=1, keepdims=True)
    return SparseCoder(dictionary=d, transform_algorithm="lasso_lars").fit(X)


def _extra_cases():
    """Common real-world shapes that _construct_instance does not build."""
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.ensemble import (ExtraTreesClassifier, GradientBoostingClassifier, HistGradientBoostingClassifier,
                                  HistGradientBoostingRegressor, RandomForestClassifier, StackingClassifier,
                                  VotingClassifier)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.decomposition import PCA
    from sklearn.feature_selection import SelectKBest
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KernelDensity, KNeighborsClassifier, RadiusNeighborsClassifier
    from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier
    Xc, yc, Xr, yr = _data()
    Xtr, Xte, ytr = Xc[:N_TRAIN], Xc[N_TRAIN:], yc[:N_TRAIN]
    ystr = np.array(["ham", "spam", "eggs"])[ytr]
    ymo = np.c_[ytr, (ytr + np.arange(len(ytr))) % 2]
    cat = np.c_[Xc[:, :3], (np.abs(Xc[:, 3]) * 3).astype(int) % 4].astype(float)
    cat_te = cat[N_TRAIN:]

    def ct():
        t = ColumnTransformer([("num", StandardScaler(), [0, 1, 2]),
                               ("cat", OneHotEncoder(handle_unknown="ignore"), [3])], remainder="drop")
        return make_pipeline(t, LogisticRegression()).fit(cat[:N_TRAIN], ytr)

    def ct_passthrough():
        t = ColumnTransformer([("num", StandardScaler(), slice(0, 2))], remainder="passthrough")
        return t.fit(Xtr)

    return {
        "x:ColumnTransformer+OneHot+LogReg": Case(ct, cat_te),
        "x:ColumnTransformer-passthrough": Case(ct_passthrough, Xte),
        "x:FeatureUnion": Case(lambda: FeatureUnion([("pca", PCA(2)), ("k", SelectKBest(k=3))]).fit(Xtr, ytr), Xte),
        "x:Pipeline-scaler-svc-proba": Case(lambda: make_pipeline(StandardScaler(), SVC(probability=True, random_state=0))
                                            .fit(Xtr, ytr), Xte),
        "x:RandomForest-str-labels": Case(lambda: RandomForestClassifier(n_estimators=5, random_state=0).fit(Xtr, ystr), Xte),
        "x:GradientBoosting-binary": Case(lambda: GradientBoostingClassifier(n_estimators=5, random_state=0)
                                          .fit(Xtr, ytr > 0), Xte),
        "x:HGB-categorical": Case(lambda: HistGradientBoostingClassifier(max_iter=5, categorical_features=[3],
                                                                         random_state=0).fit(cat[:N_TRAIN], ytr), cat_te),
        "x:HGB-regressor-categorical": Case(lambda: HistGradientBoostingRegressor(
            max_iter=5, categorical_features=[3], random_state=0).fit(cat[:N_TRAIN], yr[:N_TRAIN, 0]), cat_te),
        "x:HGB-regressor-nan": Case(lambda: HistGradientBoostingRegressor(max_iter=5, random_state=0).fit(
            np.where(np.arange(N_TRAIN)[:, None] % 7 == 0, np.nan, Xr[:N_TRAIN]), yr[:N_TRAIN, 0]),
            np.where(np.arange(N_TEST)[:, None] % 3 == 0, np.nan, Xr[N_TRAIN:])),
        "x:KNeighbors-kd-minkowski3": Case(lambda: KNeighborsClassifier(algorithm="kd_tree", p=3).fit(Xtr, ytr), Xte),
        "x:KernelDensity-balltree": Case(lambda: KernelDensity(algorithm="ball_tree").fit(Xtr), Xte),
        "x:Voting-soft": Case(lambda: VotingClassifier([("t", DecisionTreeClassifier(random_state=0)),
                                                        ("l", LogisticRegression())], voting="soft").fit(Xtr, ytr), Xte),
        "x:Stacking-tree": Case(lambda: StackingClassifier([("t", DecisionTreeClassifier(random_state=0)),
                                                            ("k", KNeighborsClassifier())]).fit(Xtr, ytr), Xte),
        "x:TransformedTarget-log": Case(lambda: TransformedTargetRegressor(func=np.log1p, inverse_func=np.expm1)
                                        .fit(Xtr, np.abs(Xr[:N_TRAIN, 0])), Xte),
        "x:CCA-2targets": Case(lambda: _xd("CCA").fit(Xr[:N_TRAIN], yr[:N_TRAIN]), Xr[N_TRAIN:]),
        "x:PLSCanonical-2targets": Case(lambda: _xd("PLSCanonical").fit(Xr[:N_TRAIN], yr[:N_TRAIN]), Xr[N_TRAIN:]),
        "x:PLSSVD-2targets": Case(lambda: _xd("PLSSVD").fit(Xr[:N_TRAIN], yr[:N_TRAIN]), Xr[N_TRAIN:]),
        "x:GaussianRandomProjection-3": Case(lambda: _rp("GaussianRandomProjection").fit(Xtr), Xte),
        "x:SparseRandomProjection-3": Case(lambda: _rp("SparseRandomProjection").fit(Xtr), Xte),
        "x:MissingIndicator-nan": Case(lambda: _missing().fit(np.where(Xtr > 1, np.nan, Xtr)),
                                       np.where(Xte > 0.5, np.nan, Xte)),
        "x:SparseCoder": Case(lambda: _sparse_coder(Xtr), Xte),
        "x:Pipeline-tfidf-tree": Case(lambda: Pipeline([("v", TfidfVectorizer()), ("t", DecisionTreeClassifier(random_state=0))])
                                      .fit(_docs(N_TRAIN, 0), ytr), _docs(N_TEST, 1)),
        # two outputs of 3 and 2 classes: classes_ a list of arrays
        "x:DecisionTree-multioutput": Case(lambda: DecisionTreeClassifier(random_state=0).fit(Xtr, ymo), Xte),
        "x:ExtraTree-multioutput": Case(lambda: ExtraTreeClassifier(random_state=0).fit(Xtr, ymo), Xte),
        "x:RandomForest-multioutput": Case(lambda: RandomForestClassifier(n_estimators=5, random_state=0)
                                           .fit(Xtr, ymo), Xte),
        "x:ExtraTrees-multioutput": Case(lambda: ExtraTreesClassifier(n_estimators=5, random_state=0)
                                         .fit(Xtr, ymo), Xte),
        "x:KNeighbors-multioutput": Case(lambda: KNeighborsClassifier().fit(Xtr, ymo), Xte),
        "x:RadiusNeighbors-multioutput": Case(lambda: RadiusNeighborsClassifier(radius=10.0).fit(Xtr, ymo), Xte),
    }


_CASES = {}


def names():
    """all_estimators() names, then the hand-made cases ("x:...")."""
    from sklearn.utils import all_estimators
    return [n for n, _ in all_estimators()] + sorted(_extra_cases())


def case(name):
    """The Case for a name, or a str: why it is outside the coverage set."""
    if name in _CASES:
        return _CASES[name]
    if name.startswith("x:"):
        _CASES[name] = _extra_cases()[name]
        return _CASES[name]
    from sklearn.utils import all_estimators
    cls = dict(all_estimators())[name]

    def make(cls=cls):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _fit_all_estimators(cls)[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est, Xte = _fit_all_estimators(cls)
            pickle.loads(pickle.dumps(est))
    except Exception as e:   # construct, fit or pickle failed: not in the set
        _CASES[name] = f"{type(e).__name__}: {str(e)[:120]}"
        return _CASES[name]
    _CASES[name] = Case(make, Xte)
    _CASES[name].fitted = est
    return _CASES[name]


def zoo():
    """name -> Case, or name -> str (why it is outside the coverage set)."""
    return {n: case(n) for n in names()}


def in_set(z):
    return sorted(n for n, c in z.items() if isinstance(c, Case) and not n.startswith("x:"))


def fitted(case):
    est = getattr(case, "fitted", None)
    if est is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = case.fitted = case.make()
    return est


# ----------------------------------------------------------------- comparison

def same_output(a, b, where):
    """Identical results: same type, dtype, shape, bits (NaN where NaN)."""
    import scipy.sparse as sp
    if sp.issparse(a):
        assert sp.issparse(b) and a.format == b.format, where
        assert a.shape == b.shape and a.dtype == b.dtype, where
        a, b = a.tocsr(), b.tocsr()
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices), where
        assert a.data.tobytes() == b.data.tobytes(), where
        return
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            same_output(x, y, f"{where}[{i}]")
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (where, a.dtype, b.dtype, a.shape, b.shape)
    if a.dtype.kind == "O":
        for i, (x, y) in enumerate(zip(a.ravel(), b.ravel())):
            assert type(x) is type(y) and (x == y or (x != x and y != y)), (where, i, x, y)
    else:
        assert a.tobytes() == b.tobytes(), where


def same_state(a, b, where, skip=()):
    """The loaded object holds what the original held (bit for bit)."""
    import scipy.sparse as sp
    ta = type(a)
    assert ta is type(b) or (isinstance(a, dict) and type(b) is dict and ta.__name__ != "Bunch"), \
        (where, ta, type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, (where, a.dtype, b.dtype, a.shape, b.shape)
        if a.dtype.kind == "O":
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel())):
                same_state(x, y, f"{where}[{i}]")
        else:
            assert a.tobytes() == b.tobytes(), where
    elif sp.issparse(a):
        same_output(a, b, where)
    elif isinstance(a, (np.generic, float)):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), (where, a, b)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), (where, list(a), list(b))
        for k in a:
            same_state(a[k], b[k], f"{where}[{k!r}]")
    elif ta.__name__ == "Tree":
        sa, sb = a.__getstate__(), b.__getstate__()
        assert (a.n_features, a.n_outputs) == (b.n_features, b.n_outputs), where
        same_state(np.asarray(a.n_classes), np.asarray(b.n_classes), where + ".n_classes")
        same_state(sa, sb, where)
    elif ta.__name__ in ("KDTree", "BallTree"):
        for i, (x, y) in enumerate(zip(a.__getstate__()[:5], b.__getstate__()[:5])):
            same_state(x, y, f"{where}.state[{i}]")
    elif ta.__name__ == "RandomState":
        same_state(list(a.get_state()), list(b.get_state()), where)
    elif ta.__name__ == "BSpline":
        same_state((a.t, a.c, a.k, a.extrapolate, a.axis), (b.t, b.c, b.k, b.extrapolate, b.axis), where)
    elif ta.__module__.startswith("sklearn._loss"):
        same_state({k: v for k, v in vars(a).items() if k not in ("closs", "link", "interval_y_true", "interval_y_pred")},
                   {k: v for k, v in vars(b).items() if k not in ("closs", "link", "interval_y_true", "interval_y_pred")},
                   where)
    elif ta.__name__ == "interp1d":
        pass
    elif isinstance(a, (type, np.ufunc)) or callable(a) and not hasattr(a, "__dict__") or type(a).__name__ == "function":
        assert a is b, (where, a, b)
    elif hasattr(a, "__dict__"):
        from mpk import _registry as R
        from mpk._specs import BY_NAME
        sk = set(skip) | set(R.SKIP["*"]) | set(R.SKIP.get(ta.__name__, ()))
        va = {k: v for k, v in vars(a).items() if k not in sk}
        vb = {k: v for k, v in vars(b).items() if k not in sk}
        if ta.__name__ in BY_NAME:      # the hand-written specs leave training state out
            va = {k: v for k, v in va.items() if k in vb}
            vb = {k: v for k, v in vb.items() if k in va}
        assert sorted(va) == sorted(vb), (where, sorted(set(va) ^ set(vb)))
        for k in va:
            same_state(va[k], vb[k], f"{where}.{k}")
    else:
        assert a is b or a == b, (where, a, b)


def roundtrip(est, X_test, arrays):
    """Save and load; returns (loaded, number of methods compared)."""
    import mpk
    data = mpk.dumps(est, arrays)
    back = mpk.loads(data)
    assert type(back) is type(est)
    same_state(est, back, type(est).__name__)
    assert mpk.dumps(back, arrays) == data, "re-encoding the loaded model gives other bytes"
    n = 0
    for meth in METHODS:
        if not hasattr(est, meth):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                want = getattr(est, meth)(X_test)
            except Exception:
                continue
            got = getattr(back, meth)(X_test)
        same_output(want, got, meth)
        n += 1
    return back, n
