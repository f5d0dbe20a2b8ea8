"""Batched loading of a HistGradientBoosting model's predictors
(``_predictors``: a list of n_iter lists of n_trees_per_iteration
TreePredictor maps), as _forest.py loads a forest's trees.

Decoding a predictor the generic way (_model._build, then
_helpers.predictor_decode with its fifteen arrays) costs about a hundred
microseconds of per-value Python work; a 100-iteration, 3-class model has
300 of them, and spent nearly all of its load time there.  So:

* the first predictor is built the generic way, with every check; it is the
  template (taken only when it is the encoder's layout: no parameters, no
  xtra, every array a compact map of exactly its node field's dtype);
* every other predictor whose fixed parts (key order, class name, types,
  key lists, the arrays' dtypes: all bytes, so == is exact) are the
  template's is checked in bulk: its arrays exactly in the compact layout
  (five keys, nd true, kind empty, the template's dtype, shape [n] -- [k, 8]
  for the bitsets -- n >= 1 the same for every node column, data of exactly
  that many bytes; mpk's C part, compact_columns in _cmpk_tree.c, or
  _bulk_compact); then
  all node tables at once by predictor_decode's rules (is_leaf,
  is_categorical, missing_go_to_left 0 or 1; an inner node's children as
  check_tree_links wants them, see _nodes.check_links; a categorical
  split's bitset_idx below both bitset tables' row counts);
* a predictor that differs from the template, and every predictor when a
  bulk check fails, is built the generic way, which names the problem.

With mpk's C part the rows after the first are decoded in lockstep with it
(lock_spec, as _forest.py's trees are): each later row comes as the tuple
of its predictors' arrays' shapes and data, its maps never built, and
build_rows checks those as above (the rest of a later row is, value for
value, its first-row predictor's, which matched the template).

So a predictor accepted here is one the generic way accepts, built the same
(tests/python/test_mpk_predictors.py compares the two on valid and mutated
models).  _forest._ENABLED switches this batch off too.
"""

from itertools import chain
from operator import itemgetter

import numpy as np

from . import _forest as F
from . import _nodes as N
from . import _unpack

BITSETS = (b"binned_left_cat_bitsets", b"raw_left_cat_bitsets")
_MODEL_KEYS = frozenset((b"class_name", b"types", b"params", b"xtra", b"weights"))
_SECTIONS = (b"params", b"xtra", b"weights")


def _only_bytes(v):
    """Is v bytes, or lists and maps of only bytes (where == is exact)?"""
    if type(v) is bytes:
        return True
    if type(v) is list:
        return all(map(_only_bytes, v))
    if type(v) is dict:
        return all(map(_only_bytes, v)) and all(map(_only_bytes, v.values()))
    return False


def _is_predictor_map(v):
    return type(v) is dict and v.get(b"class_name") == b"TreePredictor"


def is_predictor_lists(v):
    """A list of lists whose first item is a TreePredictor map, and none a
    list of trees (which _forest batches)."""
    return bool(v) and all(type(x) is list for x in v) and bool(v[0]) and _is_predictor_map(v[0][0]) \
        and not any(len(x) > 1 and F.is_tree_map(x[0]) for x in v)


def build_lists(vals, one):
    """The decoded lists of vals (is_predictor_lists).  one(value, i, j)
    decodes vals[i][j] the generic way (raising FormatError); items are
    decoded in the generic way's order, so the first refused is the one it
    names."""
    items = [x for xs in vals for x in xs]
    first = one(items[0], 0, 0)
    built = {}
    tpl = _Template.make(items[0], first) if F._ENABLED[0] and len(items) >= F.MIN_BATCH else None
    if tpl is not None:
        idx = [k for k in range(1, len(items)) if tpl.matches(items[k])]
        if len(idx) >= F.MIN_BATCH - 1:
            out = tpl.build([items[k] for k in idx])
            if out is not None:
                built = dict(zip(idx, out))
    built[0] = first
    res, k = [], 0
    for i, xs in enumerate(vals):
        row = []
        for j, x in enumerate(xs):
            p = built.get(k)
            row.append(p if p is not None else one(x, i, j))
            k += 1
        res.append(row)
    return res


def _is_exact(m):
    """Is m a predictor's map as mpk writes it: the five keys, no parameters
    and no xtra, every weight a compact map of five keys (nd true, kind
    empty, a dtype, a shape list, data)?"""
    if type(m) is not dict or m.keys() != _MODEL_KEYS or m[b"class_name"] != b"TreePredictor" \
            or m[b"params"] != {} or m[b"xtra"] != {} or type(m[b"weights"]) is not dict:
        return False
    return all(map(N.exact_compact, m[b"weights"].values()))


def lock_spec(first, reread):
    """The lockstep hook's answer (_forest.lockstep_hook) for a list whose
    first item is the list first: (pattern, HOLE, make) when first is a
    row of predictor maps as mpk writes them (_is_exact), else None.
    pattern is first with HOLE at each array's shape and data; make(items,
    offsets) gives a _forest.Batch whose later items are each row's tuple
    of those, in the order the decoder meets them (_Rows)."""
    if not first or not all(map(_is_exact, first)):
        return None
    pattern, slots = [], []
    for j, m in enumerate(first):
        w = {}
        for key, a in m[b"weights"].items():
            w[key] = h = dict(a)
            for ak in h:
                if ak in (b"shape", b"data"):
                    h[ak] = F.HOLE
                    slots.append((j, key, ak))
        pattern.append({**m, b"weights": w})
    rows = _Rows(len(first), slots)
    return pattern, F.HOLE, lambda items, offsets: F.Batch(items, pattern, rows, offsets, reread)


class _Rows:
    """Where a row's hole values are in its tuple: at[j, key] the places of
    predictor j's array key's shape and data."""

    def __init__(self, k, slots):
        self.k = k
        place = {s: i for i, s in enumerate(slots)}
        self.at = {(j, key): (place[j, key, b"shape"], place[j, key, b"data"]) for j, key, _ in slots}


def build_rows(vals, one):
    """build_lists of a Batch of rows decoded in lockstep (lock_spec): the
    first predictor the generic way, the rest checked and built together
    from the first row's maps and the later rows' hole values; None when
    the template does not take them all (then the caller builds the rows,
    read again, as any list)."""
    rows, layout = vals.items, vals.layout
    first_row = rows[0]
    if type(layout) is not _Rows or not F._ENABLED[0] or not all(type(r) is tuple for r in rows[1:]):
        return None         # (rows of trees under a key mpk does not write them under: as any list)
    first = one(first_row[0], 0, 0)
    tpl = _Template.make(first_row[0], first)
    if tpl is None or not all(map(tpl.matches, first_row[1:])):
        return None
    # each predictor's (shape, data) of its arrays, in the template's key
    # order: the first row's from its maps (the later rows' compact maps are
    # theirs in all but shape and data: lockstep)
    flat = [tuple(x for key in tpl.keys for x in (m[b"weights"][key][b"shape"], m[b"weights"][key][b"data"]))
            for m in first_row[1:]]
    getters = [itemgetter(*[i for key in tpl.keys for i in layout.at[j, key]]) for j in range(layout.k)]
    flat += [g(r) for r in rows[1:] for g in getters]
    cols = list(zip(*flat))
    columns, ref, lens = [], None, {}
    for c, (key, (_, dt)) in enumerate(zip(tpl.keys, tpl.dtypes)):
        shapes, datas = cols[2 * c], cols[2 * c + 1]
        if key in BITSETS or ref is None:
            got = _bulk_rows(shapes, datas, dt.itemsize, key in BITSETS)
            if got is not None and key not in BITSETS:
                ref, counts = shapes, got[0]
        else:       # a node column after the first: its shapes exactly the first's (1 and True differ)
            want = lens.get(dt.itemsize) or lens.setdefault(dt.itemsize, [n * dt.itemsize for n in counts])
            got = (counts, datas) if _unpack.identical(shapes, ref) and set(map(type, datas)) <= _DATA \
                and list(map(len, datas)) == want else None
        if got is None:
            return None
        columns.append(got)
    built = tpl.build_columns(columns)
    if built is None:
        return None
    built.insert(0, first)
    k = layout.k
    return [built[i:i + k] for i in range(0, len(built), k)]


def _fixed(m):
    """The parts of a predictor's map every predictor of the batch shares
    with the template: keys, class name and type tags only (bytes in the
    template, so == is exact); None when a section is not a map."""
    if any(type(m.get(s)) is not dict for s in _SECTIONS):
        return None
    return [list(m), m.get(b"class_name"), m.get(b"types"), list(m[b"params"]), list(m[b"xtra"]), list(m[b"weights"])]


class _Template:
    """What the first predictor, built the generic way, fixes for the others."""

    @classmethod
    def make(cls, m, pred):
        from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE as D
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
        if not np.little_endian or type(pred) is not TreePredictor or set(m) != _MODEL_KEYS:
            return None
        fixed = _fixed(m)
        if fixed is None or not _only_bytes(fixed) or m[b"params"] or m[b"xtra"]:
            return None
        w = m[b"weights"]
        want = {n.encode(): D.fields[n][0] for n in D.names}
        if set(w) != set(want) | set(BITSETS) or D.itemsize != sum(t.itemsize for t in want.values()):
            return None     # (a record with padding: _assemble writes every byte of every node)
        want.update((b, np.dtype("<u4")) for b in BITSETS)
        self = cls()
        self.fixed, self.keys, self.D, self.cls = fixed, list(w), D, TreePredictor
        self.dtypes = []
        for k in self.keys:
            t = w[k].get(b"type") if type(w[k]) is dict else None
            if t != want[k].str.encode():
                return None
            self.dtypes.append((t, want[k]))
        self.types = [t for t, _ in self.dtypes]
        return self

    def matches(self, m):
        """m's fixed parts and its arrays' dtypes are the template's (a
        predictor with a column in another dtype is left to the generic way,
        which casts it, rather than failing the batch)."""
        return _is_predictor_map(m) and _fixed(m) == self.fixed \
            and [c.get(b"type") if type(c) is dict else None for c in m[b"weights"].values()] == self.types

    def build(self, items):
        """Predictors for items (each matches()), or None when any check fails."""
        columns = self._columns([m[b"weights"] for m in items])
        return None if columns is None else self.build_columns(columns)

    def build_columns(self, columns):
        """Predictors from their arrays' (counts, datas), one pair per key of
        the template (checked: _bulk_rows), or None when any check fails."""
        node_cols = [(key.decode(), dt, c) for key, (_, dt), c in zip(self.keys, self.dtypes, columns)
                     if key not in BITSETS]
        if not node_cols:
            return None
        ns = node_cols[0][2][0]
        if min(ns) < 1 or any(counts != ns for _, _, (counts, _) in node_cols):
            return None         # every node column as long as the others
        # the table is made only now that every column holds its nodes (its
        # size is then the data's), and filled one column at a time: all
        # columns joined at once were a second copy of the nodes held with
        # the decoded ones (a 3,000-predictor model's load peaked at four
        # times the memory of the model it made)
        nodes = np.empty(sum(ns), dtype=self.D)      # every byte written here (make: no padding)
        for name, dt, (_, datas) in node_cols:
            nodes[name] = np.frombuffer(b"".join(datas), dtype=dt)
        bits = [c for key, c in zip(self.keys, columns) if key in BITSETS]
        return self._assemble(nodes, bits, ns)

    def _columns(self, weights):
        """(counts, datas) of each array, for every predictor (weights: their
        weights maps, the template's keys in its order), when all are exactly
        the compact layout of their dtype (_bulk_compact); else None."""
        if _unpack.compact_columns is not None:     # mpk's C part
            got = _unpack.compact_columns(weights, tuple(self.keys), tuple(self.types),
                                          tuple(dt.itemsize for _, dt in self.dtypes),
                                          tuple((8,) if k in BITSETS else () for k in self.keys))
            return None if got is None else list(zip(*got))
        out = []
        for key, (t, dt), maps in zip(self.keys, self.dtypes, zip(*[list(w.values()) for w in weights])):
            d = _bulk_compact(maps, t, dt.itemsize, key in BITSETS)
            if d is None:
                return None
            out.append(d)
        return out

    def _assemble(self, nodes, bits, nl):
        """The predictors of node counts nl over nodes (every predictor's
        table, one after another) and bits ((counts, datas) of the two
        bitset tables, in the template's order), or None when a check fails."""
        for name in ("is_leaf", "is_categorical", "missing_go_to_left"):
            if nodes[name].max() > 1:
                return None
        inner = _inner_nodes(nodes, nl)
        if inner is None:
            return None
        (kb, binned), (kr, raw) = bits
        binned, raw = _table(binned), _table(raw)
        cat = inner & nodes["is_categorical"].astype(bool)
        k = np.repeat(np.minimum(kb, kr), nl)
        if np.any(nodes["bitset_idx"][cat] >= k[cat]):
            return None
        new = self.cls
        # each predictor's node table a slice of the one table (writable, and
        # sharing no node with another's: the slices are disjoint), as
        # pickle's protocol 5 hands out slices of its buffers; its two bitset
        # tables likewise (most have no rows: 600 arrays of their own were
        # a fifth of this)
        return [new(nodes[a:b], binned[c:d], raw[e:f]) for (a, b), (c, d), (e, f) in
                zip(_spans(nl), _spans(kb), _spans(kr))]


def _inner_nodes(nodes, nl):
    """The inner-node mask of nodes (every predictor's table, one after
    another, of nl nodes each) when every predictor's links are a tree's,
    else None: in one pass of mpk's C part over the records
    (predictor_links), or with numpy (_nodes.check_links)."""
    D = nodes.dtype
    if _unpack.predictor_links is not None and all(D.fields[f][0] == _LINK_TYPES[f] for f in _LINK_TYPES):
        flags = _unpack.predictor_links(nodes, D.itemsize, tuple(D.fields[f][1] for f in _LINK_TYPES), list(nl))
        return None if flags is None else np.frombuffer(flags, dtype=bool)
    ns = np.asarray(nl, dtype=np.int64)
    offs = np.zeros(len(nl), dtype=np.int64)
    np.cumsum(ns[:-1], out=offs[1:])
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    return N.check_links(left, right, ns, offs)


# the record fields predictor_links reads, in its order, and their types
_LINK_TYPES = {"left": np.dtype("<u4"), "right": np.dtype("<u4"), "is_leaf": np.dtype("u1")}
_DATA = {bytes, bytearray}      # a bin payload, as the decoders give it


def _table(datas):
    """The bitset tables' rows (datas: each predictor's, checked), one
    writable (k, 8) array of its own (over a bytearray joined from them:
    one copy)."""
    return np.frombuffer(bytearray().join(datas), dtype="<u4").reshape(-1, 8)


def _spans(counts):
    """(start, end) of each of counts' consecutive runs."""
    ends = np.cumsum(counts).tolist()
    return zip([0] + ends[:-1], ends)


def _bulk_compact(maps, t, itemsize, bitset):
    """One array of every predictor: each a compact map with exactly the
    five keys, nd true, kind empty, type t, shape [n] or, for a bitset
    table, [k, 8] (n, k >= 0), and data of exactly that many bytes.
    Returns (the counts n or k, the datas), or None."""
    fields = N.compact_fields(maps, t)
    return None if fields is None else _bulk_rows(*fields, itemsize, bitset)


def _bulk_rows(shapes, datas, itemsize, bitset):
    """One array of every predictor from its shape and data: each shape
    [n] or, for a bitset table, [k, 8] (ints, n, k >= 0), each data bytes
    (or a bytearray) of exactly that many items.  Returns (the counts n or
    k, the datas), or None."""
    if set(map(type, shapes)) != {list} or set(map(type, chain.from_iterable(shapes))) != {int} \
            or not set(map(type, datas)) <= {bytes, bytearray}:
        return None
    if set(map(len, shapes)) != {2 if bitset else 1} or (bitset and {s[1] for s in shapes} != {8}):
        return None
    counts = [s[0] for s in shapes]
    if min(counts) < 0:
        return None
    per = itemsize * (8 if bitset else 1)
    if list(map(len, datas)) != [n * per for n in counts]:
        return None
    return counts, datas
