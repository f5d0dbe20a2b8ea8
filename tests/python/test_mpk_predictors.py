"""The batched predictor loader (python/mpk/_predictors.py) against the
generic one.

As in test_mpk_forest.py, every test loads the same archive batched and with
the batch switched off (each TreePredictor the generic way) and wants the
same outcome: the same FormatError text, or models that re-encode to the
same bytes (and predict the same).  Mutations go to predictors after the
first, which is always built the generic way (the batch's template)."""

import random

import msgpack
import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

import mpk
from mpk import _predictors as P
from mpk import _unpack
from mpk_testutil import CAPPED, archive, count_batches, load_capped, pack, same_both_ways

RNG = np.random.RandomState(0)
X = RNG.rand(150, 4)
X[:, 3] = np.arange(150) % 6            # a categorical feature
Y3 = (X[:, 3] + (X[:, 0] > 0.5)).astype(int) % 3      # the categorical feature matters
XNAN = X.copy()
XNAN[::7, 1] = np.nan


def _clf(**kw):
    kw.setdefault("max_iter", 6)
    return HistGradientBoostingClassifier(random_state=0, early_stopping=False, **kw)


def _multi():
    return _clf(categorical_features=[3]).fit(X, Y3)


@pytest.fixture
def batches(monkeypatch):
    """How many predictors the batch built, per load."""
    return count_batches(monkeypatch, P._Template, "build_columns")


@pytest.mark.parametrize("make,x", [
    (lambda: _clf().fit(X, X[:, 0] > 0.5), X),                                   # binary
    (_multi, X),                                                                 # multiclass, categorical
    (lambda: _clf(categorical_features=[3]).fit(X, X[:, 2] > 0.4), X),           # binary, categorical
    (lambda: _clf().fit(XNAN, Y3), XNAN),                                        # NaN: missing_go_to_left
    (lambda: HistGradientBoostingRegressor(max_iter=8, random_state=0, early_stopping=False).fit(X, X[:, 1]), X),
    (lambda: HistGradientBoostingRegressor(max_iter=8, random_state=0, early_stopping=False).fit(XNAN, X[:, 0]),
     XNAN),
    (lambda: HistGradientBoostingRegressor(max_iter=8, random_state=0, early_stopping=False,
                                           categorical_features=[3]).fit(X, X[:, 1] + X[:, 3]), X),  # categorical
])
def test_hgb_models_load_batched_as_the_generic_way(make, x, batches):
    est = make()
    data = mpk.dumps(est)
    kind, got, warned = same_both_ways(data)
    assert kind == "loaded" and got == data and not warned
    n = sum(map(len, est._predictors))
    assert batches and batches[0] == n - 1          # all but the template, batched
    back = mpk.loads(data)
    assert (back.predict(x) == est.predict(x)).all()
    for a, b in zip(est._predictors, back._predictors):
        for p, q in zip(a, b):
            assert p.nodes.tobytes() == q.nodes.tobytes() and p.nodes.dtype == q.nodes.dtype
            assert q.nodes.flags.writeable and q.nodes.flags.c_contiguous
            assert q.binned_left_cat_bitsets.flags.writeable and q.raw_left_cat_bitsets.flags.writeable
            assert (p.raw_left_cat_bitsets == q.raw_left_cat_bitsets).all()
            assert q.raw_left_cat_bitsets.dtype == np.uint32 and q.raw_left_cat_bitsets.shape[1] == 8
    # no two predictors share memory: an edit of one changes no other
    arrays = [x for ps in back._predictors for q in ps
              for x in (q.nodes, q.binned_left_cat_bitsets, q.raw_left_cat_bitsets)]
    bases = {}
    for x in arrays:
        bases.setdefault(id(x.base if x.base is not None else x), []).append(x)
    assert not any(np.shares_memory(x, y) for group in bases.values() for i, x in enumerate(group)
                   for y in group[i + 1:])


def _preds(m):
    return m["weights"]["_predictors"]


def _w(m, i, j):
    return _preds(m)[i][j]["weights"]


def _col(m, i, j, col):
    c = _w(m, i, j)[col]
    return np.frombuffer(c[b"data"], dtype=c[b"type"]).reshape(c[b"shape"]).copy()


def _set_col(m, i, j, col, a):
    a = np.asarray(a)
    _w(m, i, j)[col] = {b"nd": True, b"type": a.dtype.str, b"kind": b"", b"shape": list(a.shape),
                        b"data": a.tobytes()}


def _inner(m, i, j):
    return np.flatnonzero(_col(m, i, j, "is_leaf") == 0)


def _mutate(m, i, j, col, f):
    a = _col(m, i, j, col)
    f(a)
    _set_col(m, i, j, col, a)


@pytest.mark.parametrize("what,change", [
    ("outside the node table", lambda m: _mutate(m, 2, 1, "left", lambda a: a.__setitem__(_inner(m, 2, 1)[0], 999))),
    ("outside the node table", lambda m: _mutate(m, 2, 1, "right", lambda a: a.__setitem__(_inner(m, 2, 1)[1], 0))),
    ("cycle", lambda m: _mutate(m, 3, 0, "left", lambda a: a.__setitem__(_inner(m, 3, 0)[1], _inner(m, 3, 0)[0]))),
    ("parents", lambda m: _mutate(m, 1, 2, "right", lambda a: a.__setitem__(
        _inner(m, 1, 2)[0], _col(m, 1, 2, "left")[_inner(m, 1, 2)[0]] + 1))),
    ("expected 0 or 1", lambda m: _mutate(m, 4, 1, "is_leaf", lambda a: a.__setitem__(-1, 2))),
    ("expected 0 or 1", lambda m: _mutate(m, 4, 1, "missing_go_to_left", lambda a: a.__setitem__(0, 5))),
    ("entries", lambda m: _set_col(m, 2, 2, "gain", _col(m, 2, 2, "gain")[:-1])),
    ("expected 1-d", lambda m: _set_col(m, 2, 2, "count", _col(m, 2, 2, "count").reshape(-1, 1))),
    ("expected array of kind", lambda m: _set_col(m, 1, 1, "depth", _col(m, 1, 1, "depth").astype("complex128"))),
    ("do not fit", lambda m: _set_col(m, 1, 1, "left", _col(m, 1, 1, "left").astype(np.int64) - 2**40)),
    ("(k, 8)", lambda m: _set_col(m, 3, 2, "raw_left_cat_bitsets", np.zeros((1, 7), np.uint32))),
    ("bitset index", lambda m: _set_col(m, 5, 0, "binned_left_cat_bitsets", np.zeros((0, 8), np.uint32))),
    ("feature index", lambda m: _mutate(m, 5, 2, "feature_idx", lambda a: a.__setitem__(_inner(m, 5, 2)[0], 4))),
    ("does not know as categorical", lambda m: _mutate(m, 4, 2, "feature_idx", lambda a: a.__setitem__(
        _inner(m, 4, 2)[0], 0))),                                  # a categorical split on feature 0
])
def test_bad_later_predictors_are_refused_as_the_generic_way(what, change):
    m = archive(_multi())
    assert any(_col(m, 5, 0, "is_categorical")[_inner(m, 5, 0)])       # a categorical split to break
    change(m)
    kind, msg, _ = same_both_ways(m)
    assert kind == "refused" and msg.startswith("weights/_predictors/"), msg
    assert what in msg, msg


def test_other_dtypes_and_layouts_load_the_generic_way(batches):
    """A later predictor's column in another dtype (int64 node indices, a
    float32 gain): the generic way casts it; the batch leaves it to it."""
    est = _multi()
    m = archive(est)
    _set_col(m, 2, 1, "left", _col(m, 2, 1, "left").astype(np.int64))
    _set_col(m, 3, 1, "gain", _col(m, 3, 1, "gain").astype(np.float32))
    kind, got, _ = same_both_ways(m)
    assert kind == "loaded" and got != mpk.dumps(est)         # gain went through float32
    assert batches[0] == sum(map(len, est._predictors)) - 3


def test_random_mutations_agree_with_the_generic_way():
    """Random changes to one later predictor's map, type tags and arrays
    (values, dtypes, shapes, compact-map fields): the batch refuses or
    builds exactly what the generic way does."""
    rng = random.Random(2)
    base = archive(_multi())
    cells = [(i, j) for i in range(len(_preds(base))) for j in range(3)][1:]
    cols = list(_w(base, 0, 0))
    odd = [-2, -1, 0, 1, 2, 3, 7, 2**31, -2**40, 1.0, True, False, None, "x", b"y", [], [1], {}]
    outcomes = {"loaded": 0, "refused": 0}
    for k in range(500):
        m = msgpack.unpackb(pack(base), strict_map_key=False)
        i, j = rng.choice(cells)
        pm = _preds(m)[i][j]
        what = rng.randrange(8)
        if what == 0:
            c = pm["weights"][rng.choice(cols)]
            c[rng.choice([b"nd", b"kind", b"type", b"shape", b"data"])] = rng.choice(
                odd + ["<i8", "<u4", "<f4", ">u4", "|u1", "|b1", "<u8", b"O", [c[b"shape"][0] + 1],
                       [c[b"shape"][0], 8], c[b"data"][:-1]])
        elif what == 1:
            col = rng.choice(["left", "right", "feature_idx", "bitset_idx", "is_leaf", "is_categorical",
                              "missing_go_to_left"])
            a = _col(m, i, j, col).astype(np.int64)
            a[rng.randrange(a.size)] = rng.choice([0, 1, 2, 3, a.size - 1, a.size, 4, 255])
            _set_col(m, i, j, col, a.astype(_col(m, i, j, col).dtype))
        elif what == 2:
            col = rng.choice(cols)
            _set_col(m, i, j, col, _col(m, i, j, col).astype(rng.choice([np.int64, np.float64, np.uint8, np.int32])))
        elif what == 3:
            sec = rng.choice([pm, pm["weights"], pm["types"]])
            key = rng.choice(list(sec))
            if rng.random() < 0.5:
                del sec[key]
            else:
                sec["extra_" + str(key)] = sec[key]
        elif what == 4:
            pm["types"][rng.choice(cols)] = rng.choice(["ndarray", "int64", "tuple", None, b"ndarray"])
        elif what == 5:
            pm[rng.choice(["params", "xtra", "weights", "types", "class_name"])] = rng.choice(
                odd + ["TreePredictor", "Tree", {"a": 1}])
        elif what == 6:
            bs = rng.choice(["binned_left_cat_bitsets", "raw_left_cat_bitsets"])
            _set_col(m, i, j, bs, np.zeros((rng.choice([0, 1, 2]), rng.choice([8, 8, 4])),
                                           dtype=rng.choice([np.uint32, np.uint32, np.int64])))
        else:
            n = _col(m, i, j, "left").size
            for col in cols[:13]:       # every node column one shorter or longer: n stays consistent
                a = _col(m, i, j, col)
                _set_col(m, i, j, col, a[:-1] if rng.random() < 0.5 else np.r_[a, a[-1:]])
            assert _col(m, i, j, "left").size != n
        outcomes[same_both_ways(m)[0]] += 1
    assert outcomes["loaded"] > 30 and outcomes["refused"] > 150, outcomes


@CAPPED
def test_hostile_sizes_in_later_rows_are_refused_not_allocated(tmp_path):
    """A predictor in a later row (decoded in lockstep: its shapes and data
    only) whose node columns claim 2**40 entries, or whose bitset table
    claims 2**40 rows, in a few bytes: refused, naming it, as the generic
    way does, in a process whose address space is capped at 1 GiB."""
    m = archive(_multi())
    for col in cols_of(m):
        w = _w(m, 4, 1)[col]
        w[b"shape"] = [2**40, 8] if col in ("binned_left_cat_bitsets", "raw_left_cat_bitsets") else [2**40]
    (tmp_path / "0.mpk").write_bytes(pack(m))
    m = archive(_multi())
    _w(m, 2, 2)["raw_left_cat_bitsets"][b"shape"] = [2**40, 8]
    (tmp_path / "1.mpk").write_bytes(pack(m))
    r = load_capped(tmp_path, 2)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("FormatError weights/_predictors/4/1/weights/") \
        and lines[1].startswith("FormatError weights/_predictors/2/2/weights/raw_left_cat_bitsets"), r.stdout


def cols_of(m):
    return list(_w(m, 0, 0))


def test_predictor_lists_are_recognised_only_as_such():
    raw = msgpack.unpackb(mpk.dumps(_multi()), raw=True, strict_map_key=False)[b"weights"][b"_predictors"]
    assert P.is_predictor_lists(raw)
    assert not P.is_predictor_lists([]) and not P.is_predictor_lists([[]] + raw)
    assert not P.is_predictor_lists(raw + [raw[0][0]])          # an item that is not a list


def test_the_node_check_reads_the_batch_table_in_place_and_joins_the_rest_in_pieces():
    """_checks._node_tables: predictors whose nodes are slices of one table
    (as the batch builds them) give that table itself, no copy; the others
    (the generic way's first predictor, a user's) are joined in pieces of
    about the size asked, every node of every predictor once."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE as D

    from mpk import _checks
    est = mpk.loads(mpk.dumps(_multi()))
    items = [pr for it in est._predictors for pr in it]
    batch = [pr for pr in items if pr.nodes.base is not None and pr.nodes.base.dtype == D]
    assert len(batch) == len(items) - 1           # all but the first, built the generic way
    table = batch[0].nodes.base
    own = [est._predictors[0][0]] + [type(items[0])(pr.nodes.copy(), pr.binned_left_cat_bitsets,
                                                     pr.raw_left_cat_bitsets) for pr in items[:5]]
    piece = 2 * own[1].nodes.nbytes
    got = list(_checks._node_tables(batch + own, D, piece))
    assert got[-1] is table and np.shares_memory(got[-1], batch[0].nodes)
    assert len(table) == sum(len(pr.nodes) for pr in batch)
    joined = got[:-1]
    assert len(joined) > 1 and all(j.nbytes < piece + max(pr.nodes.nbytes for pr in own) for j in joined)
    assert np.concatenate(joined).tobytes() == b"".join(pr.nodes.tobytes() for pr in own)


@pytest.mark.parametrize("where", ["batch", "own"])
def test_a_bad_feature_index_is_found_in_any_piece(where):
    """A predictor with a feature index past n_features_in_, among the
    batch's or among predictors joined in pieces: refused, and named."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE as D

    from mpk import _checks
    est = mpk.loads(mpk.dumps(_multi()))
    items = [pr for it in est._predictors for pr in it]
    pr = items[-1] if where == "batch" else items[0]
    inner = np.flatnonzero(pr.nodes["is_leaf"] == 0)
    pr.nodes["feature_idx"][inner[0]] = X.shape[1]
    nf, iscat = X.shape[1], est._bin_mapper.is_categorical
    assert not _checks._hgb_nodes_ok(est._predictors, est.n_trees_per_iteration_, iscat, nf)
    k = items.index(pr)
    i, j = divmod(k, est.n_trees_per_iteration_)
    with pytest.raises(mpk.FormatError, match=f"{i}/{j}/weights/feature_idx"):
        _checks._check_predictors(est._predictors, "weights/_predictors", est.n_trees_per_iteration_, iscat, nf)
    got = list(_checks._node_tables(items, D, 1))     # pieces of one predictor each: the first, then the table
    assert len(got) == 2 and sum(map(len, got)) == sum(len(p.nodes) for p in items)


@pytest.mark.skipif(_unpack.predictor_links is None, reason="mpk's C part is not built")
def test_the_c_link_check_is_the_numpy_one():
    """_inner_nodes: mpk's C part (predictor_links) and numpy
    (_nodes.check_links) give the same mask, or both None, for every
    predictor table of a model joined, changed at random in is_leaf, left
    and right (out of range, backwards, twice a child, a leaf made inner
    and the reverse, values past 1)."""
    est = _multi()
    items = [pr for it in est._predictors for pr in it]
    base = np.concatenate([pr.nodes for pr in items])
    nl = [len(pr.nodes) for pr in items]
    rng = np.random.RandomState(3)
    outcomes = {"tree": 0, "refused": 0}
    for k in range(400):
        nodes = base.copy()
        for _ in range(rng.randint(1 if k else 0, 4)):
            i = rng.randint(len(nodes))
            f = rng.choice(["is_leaf", "left", "right"])
            nodes[f][i] = rng.choice([0, 1, 2, 255]) if f == "is_leaf" else \
                rng.choice([0, 1, i % 40, (i + 1) % 40, nodes["left"][i], nodes["right"][i], 2**32 - 1])
        got = P._inner_nodes(nodes, nl)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_unpack, "predictor_links", None)
            want = P._inner_nodes(nodes, nl)
        if want is None or not (nodes["is_leaf"] <= 1).all():
            assert got is None, k
            outcomes["refused"] += 1
        else:
            assert got is not None and np.array_equal(got, want), k
            outcomes["tree"] += 1
    assert min(outcomes.values()) > 50, outcomes


@pytest.mark.skipif(_unpack.predictor_links is None, reason="mpk's C part is not built")
def test_predictor_links_refuses_what_does_not_fit():
    """Node counts that do not add up to the table (none, one too many, a
    claim of 2**40 nodes), a field past the record: None or a ValueError,
    nothing allocated for a count the table does not hold."""
    est = _multi()
    nodes = np.concatenate([pr.nodes for it in est._predictors for pr in it])
    D, n = nodes.dtype, len(nodes)
    offs = tuple(D.fields[f][1] for f in ("left", "right", "is_leaf"))
    links = _unpack.predictor_links
    assert links(nodes, D.itemsize, offs, [n - 1]) is None
    assert links(nodes, D.itemsize, offs, [n, 1]) is None
    assert links(nodes, D.itemsize, offs, [0, n]) is None
    assert links(nodes, D.itemsize, offs, [2**40]) is None
    assert links(nodes[:0], D.itemsize, offs, []) == b""
    with pytest.raises(ValueError):
        links(nodes, D.itemsize, (D.itemsize - 3, offs[1], offs[2]), [n])
    with pytest.raises(ValueError):
        links(nodes, D.itemsize + 1, offs, [n])          # the table is not of such records
    with pytest.raises(TypeError):
        links(nodes, D.itemsize, offs, [float(n)])
