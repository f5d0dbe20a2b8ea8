"""Consistency checks for what compiled code trusts without checking.

A loaded estimator may carry any values its attribute schema allows; Python
code that gets them wrong raises an exception.  Compiled code (the tree
traversals, libsvm, k-means, the neighbour trees) reads memory at indices
it takes from the model, so those indices and shapes are checked here,
before the estimator is assembled.  Neighbour trees are not read from the
archive at all: they are rebuilt from the training data (post()).
"""

import numpy as np
import scipy.sparse as sp

from ._generic import join
from .errors import FormatError

_TREES = {"DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor"}
_SVM = {"SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM"}


def _nf(attrs):
    nf = attrs.get("n_features_in_")
    if nf is None:
        return None
    return int(nf)


def _at(path, section, name):
    return join(path, f"{section}/{name}")


def _tree_of(est, at, i, nf, what):
    """est's tree_, with nf features unless nf is None; at/i is its path
    (made only for an error: a forest has many trees)."""
    t = getattr(est, "tree_", None)
    if t is None:
        raise FormatError(join(at, i), f"{what} has no tree_")
    if nf is not None and t.n_features != nf:
        raise FormatError(join(at, i), f"tree has {t.n_features} features, expected {nf}")
    return t


def check(cname, est, attrs, path):
    nf = _nf(attrs)
    if cname in _TREES and "tree_" in attrs:
        t = attrs["tree_"]
        if type(t).__name__ != "Tree":
            raise FormatError(_at(path, "weights", "tree_"), "expected a Tree")
        if nf is not None and t.n_features != nf:
            raise FormatError(_at(path, "weights", "tree_"), f"tree has {t.n_features} features, n_features_in_ is {nf}")
        if "n_outputs_" in attrs and t.n_outputs != int(attrs["n_outputs_"]):
            raise FormatError(_at(path, "weights", "tree_"), "n_outputs does not match n_outputs_")
    ests = attrs.get("estimators_")
    if ests is not None and cname.startswith("GradientBoosting"):
        p = _at(path, "weights", "estimators_")
        loss = attrs.get("_loss")
        if not isinstance(ests, np.ndarray) or ests.ndim != 2:
            raise FormatError(p, "expected a 2-d object array of trees")
        if loss is None or ests.shape[1] != getattr(loss, "K", None):
            raise FormatError(p, "columns do not match the loss's K")
        for i, e in enumerate(ests.ravel()):
            if type(e).__name__ != "DecisionTreeRegressor":
                raise FormatError(join(p, i), "expected DecisionTreeRegressor")
            t = _tree_of(e, p, i, nf, "estimator")
            if t.value.shape[1:] != (1, 1):
                raise FormatError(join(p, i), "expected a single-output regression tree")
    elif isinstance(ests, list):
        feats = attrs.get("estimators_features_")
        at = _at(path, "weights", "estimators_")
        for i, e in enumerate(ests):
            t = getattr(e, "tree_", None)
            if t is None:
                continue
            if not isinstance(feats, list) or i >= len(feats):     # the model's features (a forest)
                if nf is not None and t.n_features != nf:
                    _tree_of(e, at, i, nf, "estimator")     # (raises, naming it)
                continue
            f = feats[i]
            if not isinstance(f, np.ndarray) or f.dtype.kind not in "iu" or (nf is not None and f.size and (
                    f.min() < 0 or f.max() >= nf)):
                raise FormatError(_at(path, "xtra", f"estimators_features_/{i}"), "bad feature indices")
            _tree_of(e, at, i, f.shape[0], "estimator")
    if cname.startswith("HistGradientBoosting") and "_predictors" in attrs:
        _check_hgb(attrs, path, nf)
    if cname in _SVM and "support_vectors_" in attrs:
        _check_svm(cname, est, attrs, path, nf)
    cc = attrs.get("cluster_centers_")
    if isinstance(cc, np.ndarray) and nf is not None and (cc.ndim != 2 or cc.shape[1] != nf):
        raise FormatError(_at(path, "weights", "cluster_centers_"), f"shape {cc.shape} does not match {nf} features")
    if cname == "BisectingKMeans" and "_bisecting_tree" in attrs:
        stack = [(attrs["_bisecting_tree"], _at(path, "weights", "_bisecting_tree"))]
        while stack:
            node, p = stack.pop()
            c = getattr(node, "center", None)
            if not isinstance(c, np.ndarray) or c.ndim != 1 or (nf is not None and c.shape[0] != nf):
                raise FormatError(p, "bad cluster center")
            for side in ("left", "right"):
                child = getattr(node, side, None)
                if child is not None:
                    if type(child).__name__ != "_BisectingTree":
                        raise FormatError(join(p, side), "expected _BisectingTree")
                    stack.append((child, join(p, f"xtra/{side}")))
            if (getattr(node, "left", None) is None) != (getattr(node, "right", None) is None):
                raise FormatError(p, "a node needs both children or none")
    if cname in ("NMF", "MiniBatchNMF"):
        c = attrs.get("components_")
        if isinstance(c, np.ndarray) and nf is not None and (c.ndim != 2 or c.shape[1] != nf):
            raise FormatError(_at(path, "weights", "components_"), "shape does not match n_features_in_")
    fx = attrs.get("_fit_X")
    if fx is not None and nf is not None and cname not in ("KNNImputer",):
        if not (isinstance(fx, np.ndarray) or sp.issparse(fx)) or fx.ndim != 2 or fx.shape[1] != nf:
            raise FormatError(_at(path, "weights", "_fit_X"), f"expected a 2-d array with {nf} columns")
    fm = attrs.get("_fit_method")
    if fm is not None and fm not in ("brute", "kd_tree", "ball_tree"):
        raise FormatError(_at(path, "xtra", "_fit_method"), f"unknown method {fm!r}")


def _check_hgb(attrs, path, nf):
    p = _at(path, "weights", "_predictors")
    preds = attrs["_predictors"]
    bm = attrs.get("_bin_mapper")
    iscat = getattr(bm, "is_categorical_", None)
    ntrees = attrs.get("n_trees_per_iteration_")
    if not isinstance(preds, list):
        raise FormatError(p, "expected a list of lists of predictors")
    if not _hgb_nodes_ok(preds, ntrees, iscat, nf):
        _check_predictors(preds, p, ntrees, iscat, nf)
    if bm is not None and iscat is not None:
        if not isinstance(iscat, np.ndarray) or iscat.shape != (nf,):
            raise FormatError(_at(path, "weights", "_bin_mapper"), "is_categorical_ does not match n_features_in_")
        th = getattr(bm, "bin_thresholds_", None)
        if not isinstance(th, list) or len(th) != nf:
            raise FormatError(_at(path, "weights", "_bin_mapper"), "bin_thresholds_ does not match n_features_in_")
        for j in np.flatnonzero(iscat):
            c = th[j]
            if not isinstance(c, np.ndarray) or (c.size and (c.min() < 0 or c.max() > 255)):
                raise FormatError(_at(path, "weights", f"_bin_mapper/xtra/bin_thresholds_/{j}"),
                                  "categories must lie in 0..255")


def _hgb_nodes_ok(preds, ntrees, iscat, nf):
    """_check_predictors' rules for all predictors at once: True when every
    one passes (False sends them through _check_predictors, which names the
    first that does not)."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE as D
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    if nf is None or not all(isinstance(it, list) and (ntrees is None or len(it) == ntrees) for it in preds):
        return False
    items = [pr for it in preds for pr in it]
    if not items:
        return True
    if not all(type(pr) is TreePredictor and type(pr.nodes) is np.ndarray and pr.nodes.dtype == D
               for pr in items):
        return False
    for nodes in _node_tables(items, D):
        inner = nodes["is_leaf"] == 0
        f = nodes["feature_idx"][inner]
        if f.size and f.max() >= nf:
            return False
        cat = inner & (nodes["is_categorical"] == 1)
        if np.any(cat) and not (isinstance(iscat, np.ndarray) and iscat.shape == (nf,)
                                and bool(np.all(iscat[nodes["feature_idx"][cat]]))):
            return False
    return True


def _node_tables(items, D, piece=1 << 20):
    """Every node of the predictors items, in a few arrays: a table that
    some are slices of whole, without a copy (the batch makes them slices
    of one: _predictors.py), and the others' joined in pieces of about
    piece bytes (the bytes joined: 30x faster than np.concatenate of
    structured arrays; in pieces, so that a load never holds a second copy
    of its nodes).  A table may hold nodes of no predictor: a check of them
    failing only sends the predictors to _check_predictors."""
    tables, parts, size = {}, [], 0
    for pr in items:
        base = pr.nodes.base
        if type(base) is np.ndarray and base.dtype == D and base.ndim == 1:
            tables[id(base)] = base
            continue
        parts.append(pr.nodes.tobytes())
        size += len(parts[-1])
        if size >= piece:
            yield np.frombuffer(b"".join(parts), dtype=D)
            parts, size = [], 0
    if parts:
        yield np.frombuffer(b"".join(parts), dtype=D)
    yield from tables.values()


def _check_predictors(preds, p, ntrees, iscat, nf):
    for i, it in enumerate(preds):
        if not isinstance(it, list) or (ntrees is not None and len(it) != ntrees):
            raise FormatError(join(p, i), "expected n_trees_per_iteration_ predictors")
        for k, pr in enumerate(it):
            if type(pr).__name__ != "TreePredictor":
                raise FormatError(join(p, f"{i}/{k}"), "expected TreePredictor")
            nodes = pr.nodes
            inner = nodes["is_leaf"] == 0
            f = nodes["feature_idx"][inner]
            if nf is None or (f.size and f.max() >= nf):
                raise FormatError(join(p, f"{i}/{k}/weights/feature_idx"), f"feature index outside 0..{nf}")
            cat = inner & (nodes["is_categorical"] == 1)
            if np.any(cat):
                if not isinstance(iscat, np.ndarray) or iscat.shape != (nf,) or not np.all(
                        iscat[nodes["feature_idx"][cat]]):
                    raise FormatError(join(p, f"{i}/{k}/weights/is_categorical"),
                                      "categorical split on a feature the bin mapper does not know as categorical")


def _check_svm(cname, est, attrs, path, nf):
    def bad(name, msg):
        raise FormatError(_at(path, "weights" if name in ("support_vectors_", "dual_coef_", "_dual_coef_",
                                                           "intercept_", "_intercept_") else "xtra", name), msg)
    sv = attrs["support_vectors_"]
    if not (isinstance(sv, np.ndarray) or sp.isspmatrix_csr(sv)) or sv.ndim != 2:
        bad("support_vectors_", "expected a 2-d array")
    if sv.dtype != np.float64:
        bad("support_vectors_", "expected float64")
    n_sv = sv.shape[0]
    sparse = bool(attrs.get("_sparse", False))
    if sparse != sp.issparse(sv):
        bad("support_vectors_", "does not match _sparse")
    kernel = getattr(est, "kernel", None)
    if not callable(kernel) and kernel != "precomputed" and nf is not None and sv.shape[1] != nf:
        bad("support_vectors_", f"has {sv.shape[1]} columns, expected {nf}")
    sup = attrs.get("support_")
    if not isinstance(sup, np.ndarray) or sup.shape != (n_sv,):
        bad("support_", "does not match support_vectors_")
    if kernel == "precomputed":
        shape_fit = attrs.get("shape_fit_")
        if not isinstance(shape_fit, tuple) or not shape_fit or (sup.size and (
                sup.min() < 0 or sup.max() >= int(shape_fit[0]))):
            bad("support_", "indices outside the training set")
    if callable(kernel):
        bad("support_", "callable kernels are not allowed")
    nsup = attrs.get("_n_support")
    if not isinstance(nsup, np.ndarray) or nsup.ndim != 1 or nsup.dtype.kind not in "iu":
        bad("_n_support", "expected a 1-d int array")
    dual = attrs.get("_dual_coef_")
    icpt = attrs.get("_intercept_")
    if not (isinstance(dual, np.ndarray) or sp.issparse(dual)) or dual.ndim != 2 or dual.shape[1] != n_sv:
        bad("_dual_coef_", "does not match support_vectors_")
    if not isinstance(icpt, np.ndarray) or icpt.ndim != 1 or icpt.dtype != np.float64:
        bad("_intercept_", "expected a 1-d float64 array")
    if cname in ("SVC", "NuSVC"):
        classes = attrs.get("classes_")
        n_class = len(classes) if isinstance(classes, np.ndarray) else -1
        if nsup.shape != (n_class,) or int(nsup.sum()) != n_sv or np.any(nsup < 0):
            bad("_n_support", "does not match classes_ and support_vectors_")
        if dual.shape[0] != n_class - 1:
            bad("_dual_coef_", "does not match classes_")
        if icpt.shape != (n_class * (n_class - 1) // 2,):
            bad("_intercept_", "does not match classes_")
        for name in ("_probA", "_probB"):
            a = attrs.get(name)
            if not isinstance(a, np.ndarray) or a.ndim != 1 or a.shape[0] not in (0, icpt.shape[0]):
                bad(name, "does not match _intercept_")
    else:
        if dual.shape[0] != 1 or icpt.shape != (1,):
            bad("_dual_coef_", "expected one row and one intercept")
        if nsup.shape != (2,) or np.any(nsup < 0) or np.any(nsup > n_sv):
            bad("_n_support", "does not match support_vectors_")


def post(cname, est, path, schema):
    """After assembly: rebuild what is not stored."""
    if "_n_threads" in schema:
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
        est._n_threads = _openmp_effective_n_threads()
    if "_tree" in schema and hasattr(est, "_fit_method"):
        from sklearn.neighbors import BallTree, KDTree
        est._tree = None
        if est._fit_method in ("kd_tree", "ball_tree"):
            cls = KDTree if est._fit_method == "kd_tree" else BallTree
            params = getattr(est, "effective_metric_params_", None) or {}
            metric = getattr(est, "effective_metric_", None)
            if not isinstance(metric, str) or not isinstance(params, dict) or not all(
                    isinstance(k, str) for k in params):
                raise FormatError(path, "cannot rebuild the neighbour tree: bad metric")
            try:
                est._tree = cls(est._fit_X, est.leaf_size, metric=metric, **params)
            except (ValueError, TypeError, AttributeError) as e:
                raise FormatError(path, f"cannot rebuild the neighbour tree: {e}") from None
    if cname == "IsotonicRegression" and hasattr(est, "X_thresholds_") and hasattr(est, "y_thresholds_"):
        try:
            est._build_f(est.X_thresholds_, est.y_thresholds_)
        except (ValueError, TypeError) as e:
            raise FormatError(path, f"cannot rebuild the interpolation: {e}") from None
