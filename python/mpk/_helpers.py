"""Hand-written codecs for the objects inside estimators that are not
estimators themselves: tree node tables, HistGradientBoosting predictors,
RandomState, B-splines, KD/Ball trees, Bunch, loss objects.

Each is a seed-style model map whose arrays are plain arrays (a tree's node
table is one array per field: ``children_left``, ``threshold``, ...), and
each decoder checks everything that compiled code will later trust (child
indices, feature indices, shapes) before the object is built.
"""

import numpy as np

from . import _forest as F
from . import _nodes as N
from . import _registry as R
from . import _unpack
from ._generic import ModelOut, join, kind_of
from .errors import FormatError


def _int(v, path, lo=None, hi=None):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise FormatError(path, f"expected int, got {type(v).__name__}")
    v = int(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise FormatError(path, f"{v} is out of range")
    return v


def _float(v, path):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise FormatError(path, f"expected number, got {type(v).__name__}")
    return float(v)


def _bool(v, path):
    if not isinstance(v, (bool, np.bool_)):
        raise FormatError(path, f"expected bool, got {type(v).__name__}")
    return bool(v)


def _array(v, path, kinds, ndim=None):
    if not isinstance(v, np.ndarray) or v.dtype.kind not in kinds:
        raise FormatError(path, f"expected array of kind {kinds!r}, got {kind_of(v)}")
    if ndim is not None and v.ndim != ndim:
        raise FormatError(path, f"expected {ndim}-d array, got shape {v.shape}")
    return v


def _cast(a, dtype, path):
    """Cast an integer/float column to the exact dtype compiled code wants,
    refusing values that do not fit."""
    dtype = np.dtype(dtype)
    if a.dtype == dtype:
        return np.ascontiguousarray(a)
    if np.can_cast(a.dtype, dtype, "safe"):     # int32 -> intp, ...: every value fits
        return np.ascontiguousarray(a, dtype=dtype)
    if dtype.kind in "iu" and a.dtype.kind not in "biu":
        raise FormatError(path, f"expected integers, got {a.dtype}")
    with np.errstate(all="ignore"):
        b = a.astype(dtype)
    if dtype.kind in "iu" and a.size and not np.array_equal(b.astype(np.float64 if a.dtype.kind == "f" else a.dtype), a):
        raise FormatError(path, f"values do not fit {dtype}")
    return np.ascontiguousarray(b)


def check_tree_links(left, right, path, leaf_value=-1):
    """Node i's children: both leaf_value (a leaf) or both in (i, n); every
    node but the root has exactly one parent.  So the table is a tree: no
    index outside it, no cycle, nothing shared."""
    n = left.shape[0]
    idx = np.arange(n)
    leaf = left == leaf_value
    if np.any(leaf != (right == leaf_value)):
        i = int(np.flatnonzero(leaf != (right == leaf_value))[0])
        raise FormatError(join(path, f"children_right/{i}"), "only one child is a leaf marker")
    inner = ~leaf
    bad = inner & ((left <= idx) | (left >= n) | (right <= idx) | (right >= n) | (left == right))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise FormatError(join(path, f"children_left/{i}"),
                          f"child index ({int(left[i])}, {int(right[i])}) of node {i} is outside the node "
                          f"table or not after its parent (cycle)")
    cnt = np.bincount(np.concatenate([left[inner], right[inner]]).astype(np.int64), minlength=n)
    if n and (cnt[0] != 0 or np.any(cnt[1:] != 1)):
        i = int(np.flatnonzero(np.r_[cnt[0] != 0, cnt[1:] != 1])[0])
        raise FormatError(path, f"node {i} has {int(cnt[i])} parents (not a tree)")
    return inner


# ----------------------------------------------------------------- Tree

_TREE_COLS = (("children_left", "left_child"), ("children_right", "right_child"), ("feature", "feature"),
              ("threshold", "threshold"), ("impurity", "impurity"), ("n_node_samples", "n_node_samples"),
              ("weighted_n_node_samples", "weighted_n_node_samples"))


# integer node fields written as int32 when every value fits (always, short
# of a tree with 2**31 nodes or samples); loading casts them back to intp
_SMALL_INT_COLS = ("left_child", "right_child", "feature", "n_node_samples")


def tree_encode(w, t, path):
    o = ModelOut(w, "Tree", path)
    st = t.__getstate__()
    nodes = st["nodes"]
    o.put("params", "n_features", int(t.n_features))
    o.put("params", "n_classes", np.asarray(t.n_classes, dtype=np.intp))
    o.put("params", "n_outputs", int(t.n_outputs))
    o.put("xtra", "max_depth", int(st["max_depth"]))
    o.put("xtra", "node_count", int(st["node_count"]))
    for col, field in _TREE_COLS:
        a = nodes[field]
        if field in _SMALL_INT_COLS and a.size and -2**31 <= a.min() and a.max() < 2**31:
            a = a.astype("<i4")         # node indices, features, counts: half the bytes of intp
        o.put("weights", col, np.ascontiguousarray(a))
    o.put("weights", "value", st["values"])
    return o.done()


_TREE_KEYS = {"params": {"n_features", "n_classes", "n_outputs"}, "xtra": {"max_depth", "node_count"},
              "weights": {c for c, _ in _TREE_COLS} | {"value"}}


def tree_decode(mi):
    from sklearn.tree._tree import NODE_DTYPE, Tree
    mi.only(_TREE_KEYS)
    p = mi.path
    nf = _int(mi.get("params", "n_features"), join(p, "params/n_features"), 1, 2**31 - 1)
    nout = _int(mi.get("params", "n_outputs"), join(p, "params/n_outputs"), 1, 2**31 - 1)
    ncls = _array(mi.get("params", "n_classes"), join(p, "params/n_classes"), "iu", 1)
    counts = ncls.tolist()      # a few ints: Python's min and max, not numpy's
    if ncls.shape != (nout,) or min(counts) < 1 or max(counts) > 2**31 - 1:    # nout >= 1: not empty
        raise FormatError(join(p, "params/n_classes"), f"expected {nout} class counts >= 1")
    n = _int(mi.get("xtra", "node_count"), join(p, "xtra/node_count"), 1)
    max_depth = _int(mi.get("xtra", "max_depth"), join(p, "xtra/max_depth"), 0, 2**31 - 1)
    ncls = ncls.astype(np.intp)
    if _fast_enabled(mi.dtypes) and not any(mi.types.get(c) not in _NDARRAY for c, _ in _FAST_COLS):
        t = _fast_tree(mi.sections["weights"], _FAST_COLS, n, max_depth, nf, ncls, nout, max(counts))
        if t is not None:
            return t
    columns = []
    for col, field in _TREE_COLS:
        cp = join(p, f"weights/{col}")
        a = _array(mi.get("weights", col), cp, "biuf", 1)
        if a.shape != (n,):
            raise FormatError(cp, f"expected {n} entries (node_count), got {a.shape[0]}")
        columns.append((field, _cast(a, NODE_DTYPE.fields[field][0], cp)))
    # allocated once the columns have shown n entries: node_count alone is
    # only a number in the file (memory in proportion to data, not to claims)
    nodes = np.zeros(n, dtype=NODE_DTYPE)
    for field, a in columns:
        nodes[field] = a
    vp = join(p, "weights/value")
    value = _array(mi.get("weights", "value"), vp, "biuf", 3)
    want = (n, nout, int(ncls.max()))
    if value.shape != want:
        raise FormatError(vp, f"shape {value.shape}, expected {want}")
    value = _cast(value, np.float64, vp)
    inner = check_tree_links(nodes["left_child"], nodes["right_child"], join(p, "weights"))
    f = nodes["feature"][inner]
    if np.any((f < 0) | (f >= nf)):
        i = int(np.flatnonzero(inner)[np.flatnonzero((f < 0) | (f >= nf))[0]])
        raise FormatError(join(p, f"weights/feature/{i}"), f"feature index outside 0..{nf - 1}")
    t = Tree(nf, ncls, nout)
    t.__setstate__({"max_depth": max_depth, "node_count": n, "nodes": nodes, "values": value})
    return t


_IN_ORDER = tuple(range(16))     # tree_columns' places: (shape, data) of each array in turn
_FAST_COLS = [(key.decode(), accepted) for key, (_, accepted) in N._COLS.items()]
_NDARRAY = ("ndarray", b"ndarray")
# a Tree map as mpk writes it (tree_exact): its keys, and its types map
_TREE_FIELDS = frozenset(("class_name", "types", "params", "xtra", "weights"))


def _fast_enabled(dtypes):
    return _unpack.tree_columns is not None and F._ENABLED[0] and not dtypes and N.node_layout() is not None


def _fast_tree(w, cols, n, max_depth, nf, ncls, nout, most):
    """The Tree of n nodes whose node-table arrays are in w (a Tree map's
    weights, under cols' keys, in _COLS' order) when each is exactly a
    compact array of a node-table dtype (no cast to make) and the table is
    a tree's (mpk's C part: the forest batch's tree_columns and tree_fill,
    _forest.py); else None, and the numpy way in tree_decode checks, casts
    and names the problem.  What it accepts, the numpy way accepts and
    builds the same (the batch's tests switch both off and compare)."""
    from sklearn.tree._tree import Tree
    caps, dts = [], []
    for name, accepted in cols:
        a = w.get(name)
        if not N.exact_compact(a, accepted):
            return None
        caps += (a[b"shape"], a[b"data"])
        dts.append(a[b"type"])
    table = N.one_table(tuple(caps), _IN_ORDER, n, tuple(dts), (nout, most), nf)
    if table is None:
        return None
    t = Tree(nf, ncls, nout)
    t.__setstate__({"max_depth": max_depth, "node_count": n, "nodes": table[0], "values": table[1]})
    return t


def tree_exact(fields):
    """tree_decode's way for a Tree map exactly as mpk writes it, without
    its per-value decoding (most of a single tree's load): fields (the
    model map, its top keys as text, its sections as the decoder gave
    them) has no dtypes, its types tag just the arrays ndarray, its params
    and xtra are exactly tree_head's and two ints in tree_decode's ranges,
    and _fast_tree builds its table.  Returns the Tree, or None: then
    tree_decode decodes the map and names any problem (what this accepts,
    it accepts and builds the same)."""
    if fields.keys() != _TREE_FIELDS or fields["types"] != N.TREE_TYPES or not _fast_enabled(None):
        return None
    p, x, w = fields["params"], fields["xtra"], fields["weights"]
    if type(p) is not dict or len(p) != 3 or type(x) is not dict or len(x) != 2 \
            or type(w) is not dict or len(w) != len(N._COLS):
        return None
    head = N.tree_head(p)
    n, depth = x.get(b"node_count"), x.get(b"max_depth")
    if head is None or type(n) is not int or type(depth) is not int or n < 1 or not 0 <= depth < 2**31:
        return None
    nf, nout, ncls, tail = head
    return _fast_tree(w, _EXACT_COLS, n, depth, nf, ncls, nout, tail[1])


_EXACT_COLS = [(key, accepted) for key, (_, accepted) in N._COLS.items()]


# ----------------------------------------------------------------- HGB predictor

def predictor_encode(w, t, path):
    o = ModelOut(w, "TreePredictor", path)
    for name in t.nodes.dtype.names:
        o.put("weights", name, np.ascontiguousarray(t.nodes[name]))
    o.put("weights", "binned_left_cat_bitsets", t.binned_left_cat_bitsets)
    o.put("weights", "raw_left_cat_bitsets", t.raw_left_cat_bitsets)
    return o.done()


def predictor_decode(mi):
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE as D
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    mi.only({"weights": set(D.names) | {"binned_left_cat_bitsets", "raw_left_cat_bitsets"}})
    p = mi.path
    cols = {}
    n = None
    for name in D.names:
        cp = join(p, f"weights/{name}")
        a = _array(mi.get("weights", name), cp, "biuf", 1)
        if n is None:
            n = a.shape[0]
            if n < 1:
                raise FormatError(cp, "a predictor needs at least one node")
        if a.shape != (n,):
            raise FormatError(cp, f"expected {n} entries, got {a.shape[0]}")
        cols[name] = _cast(a, D.fields[name][0], cp)
    bits = {}
    for name in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
        bp = join(p, f"weights/{name}")
        b = _array(mi.get("weights", name), bp, "biu", 2)
        if b.shape[1] != 8:
            raise FormatError(bp, f"expected shape (k, 8), got {b.shape}")
        bits[name] = _cast(b, np.uint32, bp)
    for name in ("is_leaf", "is_categorical", "missing_go_to_left"):
        if np.any(cols[name] > 1):
            raise FormatError(join(p, f"weights/{name}"), "expected 0 or 1")
    leaf = cols["is_leaf"].astype(bool)
    left = np.where(leaf, -1, cols["left"].astype(np.int64))
    right = np.where(leaf, -1, cols["right"].astype(np.int64))
    inner = check_tree_links(left, right, join(p, "weights"))
    cat = inner & cols["is_categorical"].astype(bool)
    k = min(bits["binned_left_cat_bitsets"].shape[0], bits["raw_left_cat_bitsets"].shape[0])
    if np.any(cols["bitset_idx"][cat] >= k):
        raise FormatError(join(p, "weights/bitset_idx"), "bitset index outside the bitset tables")
    nodes = np.zeros(n, dtype=D)
    for name in D.names:
        nodes[name] = cols[name]
    return TreePredictor(nodes, bits["binned_left_cat_bitsets"], bits["raw_left_cat_bitsets"])


# ----------------------------------------------------------------- RandomState

def rs_encode(w, rs, path):
    name, keys, pos, has_gauss, cached = rs.get_state()
    if name != "MT19937":
        raise TypeError(f"{path}: RandomState with bit generator {name} is not supported")
    o = ModelOut(w, "RandomState", path)
    o.put("xtra", "pos", int(pos))
    o.put("xtra", "has_gauss", int(has_gauss))
    o.put("xtra", "cached_gaussian", float(cached))
    o.put("weights", "keys", np.asarray(keys, dtype=np.uint32))
    return o.done()


def rs_decode(mi):
    mi.only({"xtra": {"pos", "has_gauss", "cached_gaussian"}, "weights": {"keys"}})
    p = mi.path
    keys = _array(mi.get("weights", "keys"), join(p, "weights/keys"), "iu", 1)
    if keys.shape != (624,) or np.any(keys < 0) or np.any(keys >= 2**32):
        raise FormatError(join(p, "weights/keys"), "expected 624 uint32 words")
    pos = _int(mi.get("xtra", "pos"), join(p, "xtra/pos"), 0, 624)
    hg = _int(mi.get("xtra", "has_gauss"), join(p, "xtra/has_gauss"), 0, 1)
    cg = _float(mi.get("xtra", "cached_gaussian"), join(p, "xtra/cached_gaussian"))
    rs = np.random.RandomState()
    rs.set_state(("MT19937", keys.astype(np.uint32), pos, hg, cg))
    return rs


# ----------------------------------------------------------------- BSpline

def bspline_encode(w, b, path):
    o = ModelOut(w, "BSpline", path)
    o.put("params", "k", int(b.k))
    o.put("params", "extrapolate", b.extrapolate)
    o.put("params", "axis", int(b.axis))
    o.put("weights", "t", b.t)
    o.put("weights", "c", b.c)
    return o.done()


def bspline_decode(mi):
    from scipy.interpolate import BSpline
    mi.only({"params": {"k", "extrapolate", "axis"}, "weights": {"t", "c"}})
    p = mi.path
    k = _int(mi.get("params", "k"), join(p, "params/k"), 0, 64)
    ex = mi.get("params", "extrapolate")
    if not (isinstance(ex, bool) or ex == "periodic"):
        raise FormatError(join(p, "params/extrapolate"), "expected bool or 'periodic'")
    axis = _int(mi.get("params", "axis"), join(p, "params/axis"), 0, 31)
    t = _array(mi.get("weights", "t"), join(p, "weights/t"), "f", 1)
    c = _array(mi.get("weights", "c"), join(p, "weights/c"), "f")
    try:
        return BSpline(t, c, k, extrapolate=ex, axis=axis)
    except (ValueError, TypeError, IndexError) as e:
        raise FormatError(p, f"invalid BSpline: {e}") from None


# ----------------------------------------------------------------- KD/Ball tree

_METRICS = {"EuclideanDistance": "euclidean", "ManhattanDistance": "manhattan",
            "ChebyshevDistance": "chebyshev", "MinkowskiDistance": "minkowski"}


def btree_encode(w, t, path):
    st = t.__getstate__()
    data, leaf_size, dm, sw = st[0], st[4], st[11], st[12]
    metric = _METRICS.get(type(dm).__name__)
    if metric is None:
        raise TypeError(f"{path}: {type(t).__name__} with metric {type(dm).__name__} is not supported")
    o = ModelOut(w, type(t).__name__, path)
    o.put("params", "leaf_size", int(leaf_size))
    o.put("params", "metric", metric)
    if metric == "minkowski":
        p, vec, mat = dm.__reduce__()[2][:3]
        if np.asarray(vec).size:
            raise TypeError(f"{path}: weighted minkowski metric is not supported")
        o.put("params", "p", float(p))
    o.put("weights", "data", np.asarray(data))
    if sw is not None:
        o.put("weights", "sample_weight", np.asarray(sw))
    return o.done()


def btree_decode(mi):
    cls = R.resolve(R.HELPER_MODULES, mi.cname)
    mi.only({"params": {"leaf_size", "metric", "p"}, "weights": {"data", "sample_weight"}})
    p = mi.path
    leaf_size = _int(mi.get("params", "leaf_size"), join(p, "params/leaf_size"), 1, 2**31 - 1)
    metric = mi.get("params", "metric")
    if metric not in _METRICS.values():
        raise FormatError(join(p, "params/metric"), f"metric {metric!r} is not allowed")
    kw = {}
    if metric == "minkowski":
        kw["p"] = _float(mi.get("params", "p"), join(p, "params/p"))
        if not kw["p"] >= 1:
            raise FormatError(join(p, "params/p"), "p must be >= 1")
    data = _array(mi.get("weights", "data"), join(p, "weights/data"), "f", 2)
    sw = mi.get("weights", "sample_weight", required=False)
    if sw is not None:
        sw = _array(sw, join(p, "weights/sample_weight"), "f", 1)
        if sw.shape[0] != data.shape[0]:
            raise FormatError(join(p, "weights/sample_weight"), "length does not match data")
    try:
        return cls(data, leaf_size=leaf_size, metric=metric, sample_weight=sw, **kw)
    except (ValueError, TypeError) as e:
        raise FormatError(p, f"cannot build {mi.cname}: {e}") from None


# ----------------------------------------------------------------- Bunch

def bunch_encode(w, b, path):
    from ._generic import is_weight
    o = ModelOut(w, "Bunch", path)
    for k, v in b.items():
        if not isinstance(k, str):
            raise TypeError(f"{path}: Bunch keys must be str")
        o.put("weights" if is_weight(v) else "xtra", k, v)
    return o.done()


def bunch_decode(mi):
    from sklearn.utils import Bunch
    mi.only({"xtra": mi.names("xtra"), "weights": mi.names("weights")})
    out = {}
    for n, s in mi.attr_names().items():
        out[n] = mi.get(s, n)
    return Bunch(**out)


# ----------------------------------------------------------------- losses

def loss_encode(w, loss, path):
    name = type(loss).__name__
    o = ModelOut(w, name, path)
    if name == "HalfMultinomialLoss":
        o.put("params", "n_classes", int(loss.n_classes))
    if name in ("HalfTweedieLoss", "HalfTweedieLossIdentity"):
        o.put("params", "power", float(loss.closs.power))
    if name == "PinballLoss":
        o.put("params", "quantile", float(loss.closs.quantile))
    o.put("xtra", "approx_hessian", bool(loss.approx_hessian))
    o.put("xtra", "constant_hessian", bool(loss.constant_hessian))
    return o.done()


def loss_decode(mi):
    cls = R.resolve(R.HELPER_MODULES, mi.cname)
    mi.only({"params": {"n_classes", "power", "quantile"}, "xtra": {"approx_hessian", "constant_hessian"}})
    p = mi.path
    kw = {}
    if mi.cname == "HalfMultinomialLoss":
        kw["n_classes"] = _int(mi.get("params", "n_classes"), join(p, "params/n_classes"), 1, 2**31 - 1)
    elif mi.names("params") and mi.names("params") != ["power"] and mi.names("params") != ["quantile"]:
        raise FormatError(join(p, "params"), f"unexpected parameters for {mi.cname}")
    if mi.cname in ("HalfTweedieLoss", "HalfTweedieLossIdentity"):
        kw["power"] = _float(mi.get("params", "power"), join(p, "params/power"))
    elif mi.has("params", "power"):
        raise FormatError(join(p, "params/power"), f"not a parameter of {mi.cname}")
    if mi.cname == "PinballLoss":
        kw["quantile"] = _float(mi.get("params", "quantile"), join(p, "params/quantile"))
    elif mi.has("params", "quantile"):
        raise FormatError(join(p, "params/quantile"), f"not a parameter of {mi.cname}")
    try:
        loss = cls(sample_weight=None, **kw)
    except (ValueError, TypeError) as e:
        raise FormatError(join(p, "params"), f"rejected by {mi.cname}: {e}") from None
    loss.approx_hessian = _bool(mi.get("xtra", "approx_hessian"), join(p, "xtra/approx_hessian"))
    loss.constant_hessian = _bool(mi.get("xtra", "constant_hessian"), join(p, "xtra/constant_hessian"))
    return loss


HELPERS = {
    "Tree": (tree_encode, tree_decode),
    "TreePredictor": (predictor_encode, predictor_decode),
    "RandomState": (rs_encode, rs_decode),
    "BSpline": (bspline_encode, bspline_decode),
    "KDTree": (btree_encode, btree_decode),
    "BallTree": (btree_encode, btree_decode),
    "Bunch": (bunch_encode, bunch_decode),
}
for _n in ("HalfSquaredError", "AbsoluteError", "PinballLoss", "HalfPoissonLoss", "HalfGammaLoss",
           "HalfTweedieLoss", "HalfTweedieLossIdentity", "HalfBinomialLoss", "HalfMultinomialLoss"):
    HELPERS[_n] = (loss_encode, loss_decode)
