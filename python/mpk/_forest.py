"""Batched loading of the many fitted decision trees of one ensemble (a
forest's ``estimators_``, a bagging or boosting ensemble's trees).

Decoding a tree the generic way (_model._build: model map, parameters,
attributes, then the ``Tree`` helper with its eight node-table arrays) costs
a few hundred microseconds of per-value Python work, and a 50-tree forest
spent nearly all of its load time there.  The trees of one ensemble share
everything but their parameter values, node counts, depths and node
tables, so:

* the first tree is built the generic way, with every check; it is the
  template;
* every other tree that is the first one with only those parts changed --
  its *holes* (lockstep_hook): identical to the first's everywhere else, as
  re-packed MsgPack would be (_unpack.identical: 1, 1.0 and True differ,
  keys in the same order) -- is reduced to the tuple of its hole values.
  mpk's C decoder does this while it reads the file (_cmpk_unpack.c,
  "lockstep"): no map is built for such a tree, only its parameter values,
  node count, depth and its arrays' shapes and data, and the C part's
  TreeMaker (tree_maker) checks its node table and makes its Tree right
  then, so that its arrays are freed before the next tree is read; the
  decoder hands over a Batch.
  Without the C part each decoded map is compared with the first one with
  its holes filled in (caps_of);
* the hole values are checked in bulk: the parameter values (scikit-learn's
  own constraints, see _model.check_param_values), node_count and
  max_depth, and -- unless the TreeMaker did -- each array's shape and data
  (exactly its node count's rows), then all node tables at once (mpk's C
  part, _cmpk_tree.c, or numpy) by check_tree_links' rules (children both
  -1 or both in (i, n), every node but the root exactly one parent,
  features in range);
* a tree that is not the first with its holes changed, and every tree when
  a check fails, is built the generic way (a Batch's trees read again from
  the input: Batch.item), which names the problem.

So a tree accepted here is one the generic way accepts, built the same
(tests/python/test_mpk_forest.py compares the two on valid and mutated
ensembles).
"""

from operator import itemgetter

import numpy as np

from . import _arrays as A
from . import _unpack
from . import _nodes as N
from ._nodes import _COLS, _F8, exact_compact, n_classes, node_fields_are_ours, node_layout, tree_head

TREE_CLASSES = frozenset((b"DecisionTreeClassifier", b"DecisionTreeRegressor",
                          b"ExtraTreeClassifier", b"ExtraTreeRegressor"))
MIN_BATCH = 4           # fewer trees: the generic way is as fast

_MODEL_KEYS = frozenset((b"class_name", b"types", b"params", b"xtra", b"weights"))
_ENABLED = [True]       # tests switch the batch off to compare with the generic way
_IMMUTABLE = (type(None), bool, int, float, str, np.generic)
HOLE = object()         # in a pattern: a value each tree has its own of
# the keys whose lists the C decoder offers to the lockstep hook: a
# forest's trees, HistGradientBoosting's rows of predictors (_predictors.py)
LOCK_KEYS = frozenset((b"estimators_", b"_predictors"))


def is_tree_map(v):
    if type(v) is not dict:
        return False
    cn = v.get(b"class_name")
    return type(cn) is bytes and cn in TREE_CLASSES


class Batch:
    """A list of trees as the C decoder gives it in lockstep: items[0] the
    first tree's map, every later item what each() made of the tuple of its
    hole values (in the order of layout.labels): a Prebuilt, or the tuple
    itself; offsets, where each item begins in the input and the last one
    ends; reread(start, end), the input's item there decoded again (without
    lockstep), or None; first_tree, the first tree's Tree when each() made
    it too (first_tree()), or None."""

    __slots__ = ("items", "pattern", "layout", "offsets", "reread", "kept", "first_tree")

    def __init__(self, items, pattern, layout, offsets, reread=None, kept=None, first_tree=None):
        self.items, self.pattern, self.layout = items, pattern, layout
        self.offsets, self.reread, self.kept = offsets, reread, kept
        self.first_tree = first_tree

    def __len__(self):
        return len(self.items)

    def item(self, i):
        """Item i as the decoder would have given it without lockstep (a
        ValueError when its bytes no longer decode: changed under the load)."""
        if i == 0:
            return self.items[0]
        if self.reread is not None:
            return self.reread(self.offsets[i], self.offsets[i + 1])
        return fill(self.pattern, iter(self.items[i]))


class Ready:
    """A value built already, in place of its map: the generic way takes
    it as it is (_generic._dec_plain).  The decoder never gives one: it is
    only ever put in a map by build_list, for the first tree's Tree."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class Prebuilt(tuple):
    """A later tree built while it was decoded (tree_maker): (tree, caps),
    its Tree and its hole values with the node arrays' shapes and data
    left out.  (A tuple, so that mpk's C part makes one without running
    Python code.)"""

    __slots__ = ()
    tree = property(itemgetter(0))
    caps = property(itemgetter(1))


def tree_maker(first, layout):
    """The each() of the lockstep hook, or None: mpk's C part's TreeMaker
    (_cmpk_maker.c), which builds a later tree's Tree from its hole values
    as soon as the decoder has them, while its node arrays are in the
    cache, so that they are freed before the next tree is read (all of a
    forest's arrays held at once were 2 MB to fault in afresh at each load
    where glibc trims its heap): the node table checked and laid out as
    one_table does it, the Tree made with the first tree's n_features,
    n_classes and n_outputs, which the first tree's generic build then
    checks and the batch compares (_Template.build).  A tree that fails is
    given back as its hole values, and the batch then builds the trees the
    generic way."""
    head = tree_head(first[b"weights"][b"tree_"][b"params"])
    if _unpack.TreeMaker is None or node_layout() is None or head is None:
        return None
    nf, nout, ncls, tail = head
    from sklearn.tree._tree import Tree
    x = dict(zip(layout.xkeys, layout.xidx))
    keep = tuple(layout.pidx + layout.xidx)       # what the batch reads of a tree's holes
    return _unpack.TreeMaker(layout.at, x[b"node_count"], x[b"max_depth"], keep, tuple(layout.dtypes),
                             tail, nf, ncls, node_layout(), Tree, np.ndarray, _F8, Prebuilt)


def plain(v):
    """v, with a Batch turned back into the list it stands for."""
    return [v.item(i) for i in range(len(v))] if type(v) is Batch else v


def fill(pattern, holes):
    """pattern with each HOLE replaced by the next of holes (an iterator):
    new containers, the pattern's scalars."""
    if pattern is HOLE:
        return next(holes)
    if type(pattern) is dict:
        return {k: fill(v, holes) for k, v in pattern.items()}
    if type(pattern) is list:
        return [fill(v, holes) for v in pattern]
    return pattern


class _Layout:
    """Where a tree's hole values are in its tuple: labels, in the order the
    decoder meets them; params, the parameter keys; pidx, xkeys and xidx
    their places and the Tree's node_count and max_depth's; at, the (shape,
    data) places of the node-table arrays, in _COLS' order; dtypes, the
    first tree's dtypes of those arrays."""

    def __init__(self, labels, dtypes):
        self.labels, self.dtypes = labels, dtypes
        self.params, self.pidx, self.xkeys, self.xidx, at = [], [], [], [], {}
        for i, (kind, k) in enumerate(labels):
            if kind == "p":
                self.params.append(k)
                self.pidx.append(i)
            elif kind == "x":
                self.xkeys.append(k)
                self.xidx.append(i)
            else:
                at[kind, k] = i
        self.at = tuple(at[kind, k] for k in _COLS for kind in ("s", "d"))

    def kept(self):
        """The layout of a Prebuilt's holes: the parameters', then the
        Tree's node_count and max_depth (no arrays)."""
        k = _Layout.__new__(_Layout)
        k.labels = [lab for lab in self.labels if lab[0] == "p"] + [lab for lab in self.labels if lab[0] == "x"]
        k.params, k.xkeys = self.params, self.xkeys
        k.pidx = list(range(len(self.pidx)))
        k.xidx = list(range(len(self.pidx), len(self.pidx) + len(self.xidx)))
        k.at, k.dtypes = None, self.dtypes
        return k


def _holes(m, kind, labels):
    """A copy of m with every value a hole, labelled (kind, key) in m's order."""
    labels += [(kind, k) for k in m]
    return dict.fromkeys(m, HOLE)


def lockstep_hook(reread):
    """The decoder's lockstep hook (_cmpk_unpack.c) for a load whose input
    reread(start, end) decodes again in part: hook(first), for a list under
    a key in LOCK_KEYS whose first item is first, gives (pattern, HOLE,
    each, make) when first is a decision tree's model map as mpk writes it
    (every key of the model and Tree maps, each node-table array exactly a
    compact map of a node-table dtype), else None.  pattern is first with
    HOLE at each parameter's value, at the Tree's node_count and max_depth,
    and at each node-table array's shape and data; each builds a tree from
    its hole values (tree_maker); make(items, offsets) gives the Batch.  A
    list whose first item is a list gets _predictors.lock_spec's answer
    for a row of HistGradientBoosting's predictors, or _row_spec's for a
    row of trees (a GradientBoosting ensemble's 2-d object array)."""
    def hook(first):
        if type(first) is list:         # a row of HistGradientBoosting's predictors, or of trees
            from . import _predictors
            return _predictors.lock_spec(first, reread) or _row_spec(first, reread)
        spec = _spec(first)
        if spec is None:
            return None
        pattern, layout = spec
        each = tree_maker(first, layout)
        if each is None:
            return pattern, HOLE, lambda items, offsets: Batch(items, pattern, layout, offsets, reread)
        kept, tree = layout.kept(), first_tree(first, pattern, each)
        return pattern, HOLE, each, lambda items, offsets: Batch(items, pattern, layout, offsets, reread, kept, tree)
    return hook


def first_tree(first, pattern, each):
    """The first tree's Tree, made by each() (the TreeMaker, as for the
    later trees: 12 us, where the generic way's tree_exact took 35) when
    its Tree map is exactly as tree_exact takes it -- _spec has checked its
    keys and arrays, tree_maker its params' values (tree_head), each() its
    node table, node_count and max_depth: what is left is its class name,
    its types and no other param; else None, and the generic way builds
    it."""
    t = first[b"weights"][b"tree_"]
    if t[b"class_name"] != b"Tree" or t[b"types"] != N.TREE_TYPES or len(t[b"params"]) != 3:
        return None
    caps = _unpack.holes(first, pattern, HOLE)
    made = each(caps) if caps is not None else None
    return made.tree if type(made) is Prebuilt else None


def with_tree(first, tree):
    """first (a tree's model map) with its Tree map replaced by tree, built."""
    m, w = dict(first), dict(first[b"weights"])
    w[b"tree_"] = Ready(tree)
    m[b"weights"] = w
    return m


class TreeRows:
    """The layout of a Batch of rows of trees (a boosting ensemble's 2-d
    object array of trees, decoded in lockstep with its first row: every
    later item the tuple of its trees' hole values, one tree after
    another): each tree of the first row's (pattern, _Layout)."""

    def __init__(self, specs):
        self.specs = specs


def _row_spec(first, reread):
    """The lockstep hook's answer for a first row of trees as mpk writes
    them (each one _spec takes), else None."""
    specs = [_spec(t) for t in first]
    if not specs or None in specs:
        return None
    pattern = [p for p, _ in specs]
    rows = TreeRows(specs)
    return pattern, HOLE, lambda items, offsets: Batch(items, pattern, rows, offsets, reread)


def row_trees(rows, width):
    """A Batch of rows of trees (TreeRows) as one Batch of their trees, row
    after row, for build_list: the first tree's map, then every other
    tree's hole values in the first tree's pattern -- the first row's
    other trees' found by holes(), the later rows' split from their tuples
    (each tree is its first-row tree with its holes changed, and that tree
    the first one's). None when the rows are not width trees each or a
    first-row tree is not the first tree with its holes changed (then the
    rows are read again and decoded as any list)."""
    first_row, layouts = rows.items[0], rows.layout.specs
    if len(first_row) != width or _unpack.holes is None or not all(type(r) is tuple for r in rows.items[1:]):
        return None
    pattern, layout = layouts[0]
    caps = [_unpack.holes(t, pattern, HOLE) for t in first_row[1:]]
    if None in caps:
        return None
    n = len(layout.labels)      # every tree's holes: the first row's trees are all the first one's shape
    for r in rows.items[1:]:
        caps += [r[j * n:(j + 1) * n] for j in range(width)]
    return Batch([first_row[0]] + caps, pattern, layout, None)


def _spec(first):
    """(pattern, _Layout) of first's holes (lockstep), or None."""
    try:
        return _first_spec(first)
    except (KeyError, TypeError, AttributeError):
        return None


def _first_spec(first):
    if type(first) is not dict or first.keys() != _MODEL_KEYS or first[b"class_name"] not in TREE_CLASSES \
            or type(first[b"params"]) is not dict or type(first[b"weights"]) is not dict:
        return None
    t = first[b"weights"].get(b"tree_")
    if type(t) is not dict or t.keys() != _MODEL_KEYS or type(t[b"xtra"]) is not dict \
            or t[b"xtra"].keys() != _TREE_XTRA or type(t[b"weights"]) is not dict \
            or t[b"weights"].keys() != _COLS.keys():
        return None
    cols = t[b"weights"]
    if not all(exact_compact(cols[k], accepted) for k, (_, accepted) in _COLS.items()):
        return None
    # the holes, labelled in the order the decoder meets them (maps' key
    # order); the maps on the way to a hole copied, the rest first's own
    # (the decoder only reads a pattern)
    pattern, labels = dict(first), []
    for k, v in first.items():
        if k == b"params":
            pattern[k] = _holes(v, "p", labels)
        elif k == b"weights":
            pattern[k] = w = dict(v)
            w[b"tree_"] = _tree_holes(t, labels)
    return pattern, _Layout(labels, [cols[k][b"type"] for k in _COLS])


_TREE_XTRA = frozenset((b"max_depth", b"node_count"))
_ARRAY_HOLES = {b"shape": "s", b"data": "d"}


def _tree_holes(t, labels):
    """A copy of the Tree map t with its holes (xtra's values, each array's
    shape and data), labelled in labels."""
    out = dict(t)
    for k, v in t.items():
        if k == b"xtra":
            out[k] = _holes(v, "x", labels)
        elif k == b"weights":
            out[k] = cols = {}
            for col, a in v.items():
                cols[col] = a = dict(a)
                for ak in a:
                    kind = _ARRAY_HOLES.get(ak)
                    if kind is not None:
                        a[ak] = HOLE
                        labels.append((kind, col))
    return out


def caps_of(m, pattern, layout):
    """m's hole values (a tuple, as the C decoder's lockstep gives them)
    when m is pattern with its holes changed -- pattern filled with them is
    identical to m (_unpack.identical) -- else None."""
    if type(m) is not dict:
        return None
    if _unpack.holes is not None:       # mpk's C part: one walk, no filled copy
        return _unpack.holes(m, pattern, HOLE)
    try:
        t = m[b"weights"][b"tree_"]
        caps = []
        for kind, k in layout.labels:
            if kind == "p":
                caps.append(m[b"params"][k])
            elif kind == "x":
                caps.append(t[b"xtra"][k])
            else:
                caps.append(t[b"weights"][k][b"shape" if kind == "s" else b"data"])
    except (KeyError, TypeError, IndexError):
        return None
    caps = tuple(caps)
    return caps if _unpack.identical(fill(pattern, iter(caps)), m) else None


def build_list(vals, paths, one):
    """The decoded items of vals: a Batch, or a list whose first item is a
    tree's model map (is_tree_map).  one(value, path) decodes one item the
    generic way."""
    n = len(vals)
    first = vals.items[0] if type(vals) is Batch else vals[0]
    out = [None] * n
    tree = vals.first_tree if type(vals) is Batch else None
    out[0] = one(first if tree is None else with_tree(first, tree), paths[0])
    tpl = _Template.make(first, out[0]) if _ENABLED[0] and n >= MIN_BATCH else None
    if tpl is not None:
        trees = None
        if type(vals) is not Batch:     # decoded without the C part: each map compared with the first
            pattern, layout = _spec(first) or (None, None)
            caps = [caps_of(m, pattern, layout) for m in vals[1:]] if layout else [None] * (n - 1)
        elif all(type(x) is Prebuilt for x in vals.items[1:]):
            caps, trees, layout = [x.caps for x in vals.items[1:]], [x.tree for x in vals.items[1:]], vals.kept
        else:       # a tree each() did not build: all the generic way; or a hook without each()
            caps, layout = [x if type(x) is tuple else None for x in vals.items[1:]], vals.layout
        idx = [i for i in range(1, n) if caps[i - 1] is not None]
        if len(idx) == n - 1 or (trees is None and len(idx) >= MIN_BATCH - 1):
            built = tpl.build([caps[i - 1] for i in idx], layout, trees)
            if built is not None:
                for i, e in zip(idx, built):
                    out[i] = e
    for i in range(1, n):
        if out[i] is None:
            out[i] = one(item_at(vals, i, paths[i]), paths[i])
    return out


def item_at(vals, i, path):
    """Item i of vals (a list, or a Batch), a FormatError naming path when
    its bytes no longer decode (changed under the load)."""
    if type(vals) is not Batch:
        return vals[i]
    try:
        return vals.item(i)
    except ValueError as e:
        raise A.FormatError(path, f"changed while it was read ({e})") from None


class _Template:
    """What the first tree of a batch, built the generic way, fixes for the
    others."""

    @classmethod
    def make(cls, m, est):
        from sklearn.tree._tree import Tree

        from ._model import _param_names
        if not np.little_endian or type(m) is not dict or set(m) != _MODEL_KEYS:
            return None
        tree = getattr(est, "tree_", None)
        if type(tree) is not Tree or type(est).__name__.encode() != m[b"class_name"]:
            return None
        t = m[b"weights"][b"tree_"]
        if type(t) is not dict or set(t) != _MODEL_KEYS or set(t[b"weights"]) != set(_COLS) \
                or set(t[b"xtra"]) != {b"max_depth", b"node_count"} or not node_fields_are_ours():
            return None
        self = cls()
        self.cls = type(est)
        try:
            names = [A.key_text(k, "") for k in m[b"params"]]
            xnames = [A.key_text(k, "") for k in m[b"xtra"]]
            wnames = [A.key_text(k, "") for k in m[b"weights"]]
            types = A.text_map(m[b"types"], "")
        except (A.FormatError, KeyError, TypeError, ValueError, OverflowError):
            return None
        # every parameter present (no default, no warning), none tagged
        if set(names) != _param_names(self.cls) or len(names) != len(m[b"params"]) \
                or any(n in types for n in names):
            return None
        self.names = names
        self.raw_params = list(m[b"params"].values())
        self.params = [getattr(est, n) for n in names]
        # shared by every tree of the batch: immutable values, and a RandomState
        # (a boosting ensemble's trees hold the one the ensemble fitted them
        # with: one object in the fitted model and in pickle's load, 300
        # copies of one state in the archive).  build() gives a tree the
        # template's value only where its own is identical to the template's
        # in the archive; building a RandomState costs 100-150 us, so that
        # each tree's own made a 300-tree GradientBoosting load 30x pickle's.
        if not all(isinstance(v, _IMMUTABLE) or type(v) is np.random.RandomState for v in self.params):
            return None
        # fitted attributes other than tree_: shared when immutable, else copied
        state = vars(est)
        self.attrs = []
        for n in xnames + wnames:
            if n == "tree_":
                self.attrs.append((n, None))         # each tree's own Tree
                continue
            v = state.get(n)
            if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
                self.attrs.append((n, v))
            elif type(v) is list and v and all(type(a) is np.ndarray and a.dtype.kind in "biuf" for a in v):
                self.attrs.append((n, v))       # a multi-output classifier's classes_
            elif isinstance(v, _IMMUTABLE) and n in state:
                self.attrs.append((n, v))
            else:
                return None
        if len(state) != len(names) + len(self.attrs):
            return None
        self.n_features = tree.n_features
        self.n_outputs = tree.n_outputs
        self.max_classes = int(tree.max_n_classes)
        self.counts = tree.n_classes.tolist()
        return self

    def build(self, caps, layout, trees=None):
        """Trees from their hole values (caps: a tuple each, in layout's
        order; layout: the template's own) and their Trees, when built
        already (trees, made with the template's Tree parameters as the
        decoder read them: tree_maker), or None when any check fails."""
        from sklearn.tree._tree import Tree
        from ._model import check_param_values
        k = len(caps)
        holes = list(zip(*caps))        # each hole's values, tree after tree
        # parameters: a value identical to the template's is the template's
        # (already decoded and validated); any other is decoded and checked
        varying = {}
        for name, raw0, j in zip(self.names, self.raw_params, layout.pidx):
            col = holes[j]
            if _unpack.identical(col, (raw0,) * k):     # identical to the bit (type, -0.0, NaN)
                continue
            vals = A.plain_scalars(col)        # as the generic way decodes them
            if vals is None:
                return None
            varying[name] = vals
        if varying and not check_param_values(self.cls, varying):
            return None
        # node_count, max_depth: ints (no bool) in range, checked as Python
        # ints (a numpy array of a few dozen was most of this check's time)
        x = dict(zip(layout.xkeys, (holes[j] for j in layout.xidx)))
        nl, depth = list(x[b"node_count"]), list(x[b"max_depth"])
        if set(map(type, nl)) != {int} or set(map(type, depth)) != {int} or min(nl) < 1 \
                or max(nl) > 2**40 or min(depth) < 0 or max(depth) > 2**31 - 1:
            return None
        if trees is not None:
            t = trees[0]
            if t.n_features != self.n_features or t.n_outputs != self.n_outputs \
                    or t.n_classes.tolist() != self.counts:      # (ints: a list's == is exact)
                return None
            tables = iter(trees)
        else:
            tables = N.tables(caps, layout, nl, self.n_features, self.n_outputs, self.max_classes)
            if tables is None:
                return None
        out = []
        cls, nf, nout = self.cls, self.n_features, self.n_outputs
        ncls = n_classes(self.counts, self.max_classes) if trees is None else None
        # an estimator's state: its parameters (a tree class's __init__ only
        # stores them: cls(**params) is cls.__new__ plus these, as pickle
        # builds it) and the template's fitted attributes, tree_ its own
        base = dict(zip(self.names, self.params))
        base.update(self.attrs)
        arrays = [n for n, v in self.attrs if isinstance(v, np.ndarray)]
        lists = [n for n, v in self.attrs if type(v) is list]
        new = cls.__new__
        for i, count, d, table in zip(range(k), nl, depth, tables):
            if trees is None:
                tree = Tree(nf, ncls, nout)     # nodes may be a view N.tables reuses: copied here
                tree.__setstate__({"max_depth": d, "node_count": count, "nodes": table[0], "values": table[1]})
            else:
                tree = table
            state = base.copy()
            for name, vals in varying.items():
                state[name] = vals[i]
            state["tree_"] = tree
            for n in arrays:
                state[n] = state[n].copy()
            for n in lists:
                state[n] = [a.copy() for a in state[n]]
            est = new(cls)
            est.__dict__ = state
            out.append(est)
        return out


