"""Decision trees' node tables as mpk stores them -- eight arrays a tree,
one per field of scikit-learn's node records and its values -- checked
and laid out into scikit-learn's NODE_DTYPE records: by mpk's C part
(_cmpk_tree.c: tree_columns, tree_fill) where it is built, else with
numpy.  Used by the forest batch (_forest.py), a single tree's Tree
(_helpers.tree_exact) and HistGradientBoosting's predictors
(_predictors.py: compact_fields, check_links)."""

import functools
from itertools import chain
from operator import itemgetter

import numpy as np

from . import _arrays as A
from . import _unpack

# the Tree map's node-table arrays: (key, NODE_DTYPE field, dtypes accepted here)
_INT = (b"<i8", b"<i4")
_FLOAT = (b"<f8",)
_COLS = {b"children_left": ("left_child", _INT), b"children_right": ("right_child", _INT),
         b"feature": ("feature", _INT), b"threshold": ("threshold", _FLOAT),
         b"impurity": ("impurity", _FLOAT), b"n_node_samples": ("n_node_samples", _INT),
         b"weighted_n_node_samples": ("weighted_n_node_samples", _FLOAT), b"value": (None, _FLOAT)}
# a Tree map's types as mpk writes them: the arrays tagged, nothing else
TREE_TYPES = dict.fromkeys([b"n_classes", *_COLS], b"ndarray")
_COMPACT = itemgetter(b"nd", b"kind", b"type", b"shape", b"data")
_F8 = np.dtype("<f8")
TAIL_MAX = 2**20        # value's trailing sizes the C part lays out (_cmpk.h)


def tree_head(p):
    """(n_features, n_outputs, n_classes as intp, the value array's tail
    (n_outputs, the most classes)) of a Tree map's params p (bytes keys,
    as the decoder gives them) when they are what the generic way accepts
    (_helpers.tree_decode) and the C part lays out; else None."""
    if type(p) is not dict:
        return None
    nf, nout = p.get(b"n_features"), p.get(b"n_outputs")
    if type(nf) is not int or type(nout) is not int or not (1 <= nf < 2**31 and 1 <= nout < 2**31):
        return None
    try:
        ncls = A.decode_compact(p.get(b"n_classes"), "")
    except (A.FormatError, TypeError, ValueError, AttributeError):
        return None
    if not isinstance(ncls, np.ndarray) or ncls.dtype.kind not in "iu" or ncls.shape != (nout,):
        return None
    counts = ncls.tolist()      # a few ints (nout >= 1): Python's min and max, not numpy's
    if min(counts) < 1 or max(counts) > 2**31 - 1:
        return None
    tail = (nout, max(counts))
    if max(tail) > TAIL_MAX:        # the generic way checks it and names the problem
        return None
    return nf, nout, n_classes(ncls, tail[1]), tail


class NClasses(np.ndarray):
    """A Tree's n_classes (intp) that knows its largest count: Tree's
    constructor takes np.max of n_classes, 2.4 us through numpy's dispatch
    for a plain array (a twentieth of a 50-tree forest's load) and 1.4 for
    a subclass, for which np.max calls its max() instead (numpy's
    reductions defer to the method of any type but ndarray itself).  Tree
    copies the counts and keeps no reference to the array."""

    def max(self, axis=None, out=None, **kw):
        if axis is None and out is None and not kw:
            return self.most
        return np.ndarray.max(self.view(np.ndarray), axis, out, **kw)


def n_classes(counts, most):
    """counts (integers, 1-d) as an NClasses whose largest is most."""
    a = np.asarray(counts, dtype=np.intp).view(NClasses)
    a.most = most
    return a


def exact_compact(a, accepted=None):
    """Is a exactly a compact map as mpk writes one, of a dtype in
    accepted (or of any, as bytes): the five keys, nd True, kind b"", type
    one of accepted?  (Its shape and data are checked with the node count.)"""
    return type(a) is dict and len(a) == 5 and a.get(b"nd") is True and type(a.get(b"kind")) is bytes \
        and a[b"kind"] == b"" and type(a.get(b"type")) is bytes \
        and (accepted is None or a[b"type"] in accepted) and b"shape" in a and b"data" in a


def _bulk_rows(shapes, datas, dt, ns, nout, ncls, is_value):
    """One node-table column of every tree: each shape exactly the list [n]
    of an int -- [n, nout, ncls] for value -- with n the tree's node_count
    (ns, a list), and data bytes (or a bytearray) of exactly that many
    items.  Returns the datas, or None."""
    if set(map(type, shapes)) != {list} or set(map(type, chain.from_iterable(shapes))) != {int} \
            or not set(map(type, datas)) <= {bytes, bytearray}:
        return None
    # all ints (no bool, no float): list equality is exact
    if is_value:
        if list(shapes) != [[n, nout, ncls] for n in ns]:
            return None
    elif list(shapes) != [[n] for n in ns]:
        return None
    per = np.dtype(dt.decode()).itemsize * (nout * ncls if is_value else 1)
    if list(map(len, datas)) != [n * per for n in ns]:
        return None
    return datas


def compact_fields(maps, dt):
    """(shapes, datas) of compact maps that are all exactly the compact
    layout: the five keys, nd true, kind empty, type dt (bytes), data bytes
    (or a bytearray, as mpk's C decoder gives a long bin),
    a shape list of ints (no bool: list equality on them is exact); else
    None."""
    if set(map(type, maps)) != {dict} or set(map(len, maps)) != {5}:
        return None
    try:
        nd, kind, types, shapes, datas = zip(*map(_COMPACT, maps))
    except KeyError:
        return None
    if set(map(id, nd)) != {id(True)} or set(map(type, kind)) != {bytes} or set(kind) != {b""} \
            or set(map(type, types)) != {bytes} or set(types) != {dt} \
            or not set(map(type, datas)) <= {bytes, bytearray} or set(map(type, shapes)) != {list} \
            or set(map(type, chain.from_iterable(shapes))) != {int}:
        return None
    return shapes, datas


def tables(caps, layout, nl, n_features, nout, ncls):
    """(nodes, values) of each tree, in turn, from its hole values (caps, in
    layout's order), or None when an array's shape or data is not exactly
    its node count's (_bulk_rows) or the links of a node table are not a
    tree's (check_tree_links' rules, see check_links)."""
    from sklearn.tree._tree import NODE_DTYPE
    if _unpack.tree_columns is not None and node_layout() is not None:     # mpk's C part
        cols = _unpack.tree_columns(list(caps), layout.at, nl, tuple(layout.dtypes), (nout, ncls), n_features)
        return None if cols is None else _filled(cols, nl, nout, ncls)
    # numpy, when the C part is not built: the columns concatenated
    cols = {}
    for j, (key, dt) in enumerate(zip(_COLS, layout.dtypes)):
        s, d = layout.at[2 * j], layout.at[2 * j + 1]
        datas = _bulk_rows([c[s] for c in caps], [c[d] for c in caps], dt, nl, nout, ncls, key == b"value")
        if datas is None:
            return None
        cols[key] = np.frombuffer(b"".join(datas), dtype=dt.decode())
    ns = np.asarray(nl, dtype=np.int64)
    offs = np.zeros(len(nl), dtype=np.int64)
    np.cumsum(ns[:-1], out=offs[1:])
    inner = check_links(cols[b"children_left"], cols[b"children_right"], ns, offs)
    if inner is None:
        return None
    f = cols[b"feature"][inner]
    if f.size and (f.min() < 0 or f.max() >= n_features):
        return None
    nodes = np.empty(int(ns.sum()), dtype=NODE_DTYPE)
    for key, (field, _) in _COLS.items():
        if field is not None:
            nodes[field] = cols[key]
    values = cols[b"value"].reshape(-1, nout, ncls)
    starts = np.cumsum([0] + nl).tolist()
    return [(nodes[a:b], values[a:b]) for a, b in zip(starts, starts[1:])]


def node_offsets(node_dtype):
    """Where tree_fill puts each node field, in _COLS' order: the offsets
    of node_dtype's fields, or None when its fields are not exactly those
    (a scikit-learn whose nodes have others; the numpy way then builds)."""
    fields = [f for f, _ in _COLS.values() if f]
    if set(node_dtype.names) != set(fields) or any(node_dtype.fields[f][0].itemsize != 8 for f in fields):
        return None
    return tuple(node_dtype.fields[f][1] for f in fields)


@functools.lru_cache(maxsize=None)
def node_fields_are_ours():
    """Are NODE_DTYPE's fields exactly the node-table columns' (_COLS)?
    Worked out once."""
    from sklearn.tree._tree import NODE_DTYPE
    return set(NODE_DTYPE.names) == {f for f, _ in _COLS.values() if f}


@functools.lru_cache(maxsize=None)
def node_layout():
    """(NODE_DTYPE, node_offsets of it, its itemsize), worked out once (it
    was a fifth of a tree's build), or None when tree_fill cannot lay out
    this scikit-learn's nodes."""
    from sklearn.tree._tree import NODE_DTYPE
    offsets = node_offsets(NODE_DTYPE)
    return None if offsets is None else (NODE_DTYPE, offsets, NODE_DTYPE.itemsize)


def one_table(caps, at, n, dtypes, tail, nf, buf=b""):
    """(nodes, values, buf) of one tree of n nodes from its arrays' shapes
    and data (caps, at: tree_columns' places for them) when they are
    exactly its n nodes' and its links a tree's (tree_columns); else None.
    Its nodes are laid out (tree_fill, by node_layout(), which the caller
    has checked) in buf when it holds n nodes, else in a new
    bytearray -- made only once the arrays have shown n nodes: n alone is
    only a number in the file --, which it returns for the caller to reuse
    (Tree.__setstate__ copies the nodes)."""
    cols = _unpack.tree_columns([caps], at, [n], dtypes, tail, nf)
    if cols is None:
        return None
    dtype, offsets, size = node_layout()
    if len(buf) < n * size:     # (a view of the old one may be alive: a new one)
        buf = bytearray(n * size)
    _unpack.tree_fill(buf, cols, 0, offsets, size)
    return (np.frombuffer(buf, dtype=dtype, count=n),
            np.frombuffer(cols[-1][0], dtype=_F8).reshape(n, *tail), buf)


def _filled(cols, nl, nout, ncls):
    """Each tree's (nodes, values) from tree_columns' checked columns, the
    nodes laid out by tree_fill (node_layout(), which the caller has
    checked) in one buffer, reused: each is overwritten by the next tree's,
    so the caller copies it first (Tree.__setstate__ does), as pickle's
    loads reuse their freed buffer, still in the cache."""
    dtype, offsets, size = node_layout()
    buf = bytearray(max(nl) * size)
    view = np.frombuffer(buf, dtype=dtype)
    for i, (n, v) in enumerate(zip(nl, cols[-1])):
        _unpack.tree_fill(buf, cols, i, offsets, size)
        yield view[:n], np.frombuffer(v, dtype=_F8).reshape(n, nout, ncls)


def check_links(left, right, ns, offs):
    """check_tree_links for many node tables at once: left/right are the
    trees' children concatenated (each tree with its own node indices), ns
    (an array) their node counts, offs where each starts.  Returns the
    inner-node mask, or None.

    In global indices (g: a node's place in the concatenation, base: where
    its tree starts) a node is a leaf when left is -1, and then right is -1
    too; an inner node's children lie after it (base + child > g; for a
    leaf base - 1 < g, so this holds exactly for the inner nodes) and inside
    its tree (each tree's largest child is below its node count).  Then the
    n - 1 non-root nodes of a tree of n nodes have exactly one parent each,
    the root none, when its 2 * inner child slots number n - 1 and, over all
    trees, the children marked are as many as the slots and no root is
    marked (so no node is a child twice)."""
    total = left.shape[0]
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        return None
    inner = ~leaf
    # every index in -1..n-1 of its tree (so the int32 arithmetic below is exact)
    if np.any(np.maximum.reduceat(left, offs) >= ns) or np.any(np.maximum.reduceat(right, offs) >= ns) \
            or left.min() < -1 or right.min() < -1:
        return None
    if not np.array_equal(2 * np.add.reduceat(inner, offs, dtype=np.int64), ns - 1):
        return None
    it = np.int32 if total < 2**31 else np.int64
    step = np.zeros(total, dtype=it)
    step[offs[1:]] = ns[:-1]
    base = np.cumsum(step, dtype=it)
    g = np.arange(total, dtype=it)
    gl = left.astype(it, copy=False) + base
    gr = right.astype(it, copy=False) + base
    if not (np.array_equal(gl > g, inner) and np.array_equal(gr > g, inner)):
        return None
    marked = np.zeros(total, dtype=bool)
    marked[np.compress(inner, gl)] = True
    marked[np.compress(inner, gr)] = True
    if np.any(marked[offs]) or np.count_nonzero(marked) != total - len(ns):
        return None
    return inner
