"""mpk's C TreeMaker (python/mpk/_cmpk_maker.c): a later tree of an ensemble
built from its hole values as the decoder reads it.  It must build exactly
the Tree that tree_columns and tree_fill lay out (the generic way's, which
test_mpk_forest.py compares whole loads with), give back the hole values
themselves for anything those refuse -- so that the batch builds the tree
the generic way, which names the problem -- and refuse malformed arguments
with an exception, never a crash."""

import os

import numpy as np
import pytest

from mpk import _forest as F
from mpk import _nodes as N
from mpk import _unpack
from mpk_testutil import AT, GOOD, caps_of, dtypes_of, node_array_mutations, tree_weights

C = _unpack._cmpk
pytestmark = pytest.mark.skipif(C is None and not os.environ.get("MPK_REQUIRE_C"),
                                reason="mpk's C part is not built (meson compile -C build)")

N_FEATURES = 5
COUNT, DEPTH = 16, 17           # where a tree's node_count and max_depth are in its hole values
KEEP = (16, 17, 18)             # what the batch reads later (here: those and one more)


def maker(weights, tail=(1, 2), **over):
    from sklearn.tree._tree import Tree
    args = dict(at=AT, count=COUNT, depth=DEPTH, keep=KEEP, dtypes=dtypes_of(weights), tail=tail,
                n_features=N_FEATURES, n_classes=np.full(tail[0], tail[-1], dtype=np.intp),
                layout=N.node_layout(), tree_type=Tree, ndarray=np.ndarray, f8=np.dtype("<f8"),
                prebuilt=F.Prebuilt)
    args.update(over)
    return C.TreeMaker(*args.values())


def holes(weights, n=None, depth=2, extra="param"):
    """A tree's hole values as the lockstep gives them: its arrays' shapes
    and data (AT), node_count (n: by default its arrays'), max_depth and a
    parameter's value."""
    n = weights[b"children_left"][b"shape"][0] if n is None else n
    return caps_of(weights) + (n, depth, extra)


def table_of(weights, n):
    """The node table tree_columns and tree_fill make of weights, or None."""
    from sklearn.tree._tree import NODE_DTYPE
    cols = C.tree_columns([caps_of(weights)], AT, [n], dtypes_of(weights), (1, 2), N_FEATURES)
    if cols is None:
        return None
    dtype, offsets, size = N.node_layout()
    buf = bytearray(n * size)
    C.tree_fill(buf, cols, 0, offsets, size)
    return np.frombuffer(bytes(buf), dtype=NODE_DTYPE)


@pytest.mark.parametrize("widths", [(8, 8, 8), (4, 8, 4), (4, 4, 4)])
def test_a_tree_is_the_table_tree_fill_lays_out(widths):
    w = tree_weights(3, *GOOD, widths=widths)
    got = maker(w)(holes(w))
    assert type(got) is F.Prebuilt
    st = got.tree.__getstate__()
    assert st["node_count"] == 5 and st["max_depth"] == 2
    assert st["nodes"].tobytes() == table_of(w, 5).tobytes()
    assert np.array_equal(st["values"], np.frombuffer(w[b"value"][b"data"], "<f8").reshape(5, 1, 2))
    assert got.caps == (5, 2, "param")
    assert got.tree.n_features == N_FEATURES and got.tree.n_outputs == 1


def test_the_reused_buffer_never_changes_a_tree_made_before():
    """The node buffer is reused from tree to tree (Tree.__setstate__
    copies it): a smaller tree, then a bigger one (a new buffer), then a
    small one again, each its own table."""
    small, one = tree_weights(0, *GOOD), tree_weights(9, [-1], [-1])
    big = tree_weights(1, [1, 3, 5, -1, -1, -1, -1], [2, 4, 6, -1, -1, -1, -1])
    order = (small, one, big, small, one)
    m = maker(small)
    trees = [m(holes(w)).tree for w in order]
    for t, w in zip(trees, order):
        assert t.__getstate__()["nodes"].tobytes() == table_of(w, len(t.__getstate__()["nodes"])).tobytes()
    # a decoder's long bin is a bytearray
    w = tree_weights(0, *GOOD)
    for a in w.values():
        a[b"data"] = bytearray(a[b"data"])
    assert m(holes(w)).tree.__getstate__()["nodes"].tobytes() == table_of(w, 5).tobytes()


# the mutations of an array's shape or data, which the lockstep gives as
# holes (the rest of a compact map is in its pattern, compared there)
IN_HOLES = [(w, m) for w, m in node_array_mutations() if w.startswith(("shape", "value shape", "data"))]


@pytest.mark.parametrize("what, mutate", IN_HOLES, ids=[w for w, _ in IN_HOLES])
def test_arrays_not_exactly_compact_give_the_holes_back(what, mutate):
    w = tree_weights(1, *GOOD)
    m = maker(w)
    assert type(m(holes(w))) is F.Prebuilt
    mutate(w)
    h = holes(w, 5)
    assert m(h) is h, what


@pytest.mark.parametrize("left, right", [
    ([1, 3, -1, -1, -1], [2, 5, -1, -1, -1]),        # a child outside the table
    ([1, -1, -1, -1, -1], [2, -1, -1, -1, -1]),      # unreachable nodes
    ([1, 2, -1, -1, -1], [2, 4, -1, -1, -1]),        # two parents
    ([1, 3, -1, 1, -1], [2, 4, -1, 2, -1]),          # a cycle
    ([1, 3, -1, -1, 2**33 + 3], [2, 4, -1, -1, -1]),  # wraps in 32 bits
])
def test_links_not_a_trees_give_the_holes_back(left, right):
    w = tree_weights(0, left, right)
    h = holes(w)
    assert maker(w)(h) is h


def test_features_out_of_range_give_the_holes_back():
    w = tree_weights(0, *GOOD)      # feature j on node j: node 1 (inner) uses feature 1
    h = holes(w)
    assert maker(w, n_features=1)(h) is h
    assert type(maker(w, n_features=2)(h)) is F.Prebuilt


@pytest.mark.parametrize("n, depth", [(4, 2), (6, 2), (0, 2), (-1, 2), (True, 2), (5.0, 2), (2**41, 2),
                                      (2**70, 2), ("5", 2), (5, -1), (5, 2**31), (5, 2.0), (5, None)])
def test_a_count_or_depth_out_of_range_gives_the_holes_back(n, depth):
    w = tree_weights(0, *GOOD)
    h = holes(w, n, depth)
    assert maker(w)(h) is h


def test_hole_values_of_another_shape_are_given_back():
    w = tree_weights(0, *GOOD)
    m, h = maker(w), holes(w)
    for bad in (h[:18], h[:3], (), list(h), h[:16] + ([5], 2, "p")):
        assert m(bad) is bad
    with pytest.raises(TypeError):
        m(h, h)
    with pytest.raises(TypeError):
        m(caps=h)


def test_a_tree_claiming_more_nodes_than_its_arrays_costs_no_memory():
    """2^40 nodes claimed in a few bytes: refused by its arrays' sizes
    before anything the size of the claim is allocated."""
    w = tree_weights(0, *GOOD)
    for a in w.values():
        a[b"shape"] = [2**40] + a[b"shape"][1:]
    h = holes(w, 2**40)
    assert maker(w)(h) is h


@pytest.mark.parametrize("bad", [
    dict(at=AT[:15]), dict(at=AT[:15] + (-1,)), dict(at=list(AT)), dict(count=-1), dict(depth=-1),
    dict(keep=(0, -1)), dict(keep=[16]), dict(tail=(0, 2)), dict(tail=(1, 2**20 + 1)), dict(tail=(1,)),
    dict(n_features=0), dict(layout=(None, (0,) * 7)), dict(layout=(None, (0,) * 6, 56)),
    dict(layout=(None, (0,) * 6 + (50,), 56)), dict(layout=(None, (0,) * 7, 4)),
    dict(layout=(None, (0,) * 7, 2**20)), dict(layout=[None, (0,) * 7, 56]),
])
def test_malformed_arguments_are_refused(bad):
    w = tree_weights(0, *GOOD)
    with pytest.raises((ValueError, TypeError, OverflowError)):
        maker(w, **bad)


def test_malformed_dtypes_are_refused():
    w = tree_weights(0, *GOOD)
    dt = dtypes_of(w)
    for bad in (dt[:7], dt[:3] + (b"<i8",) + dt[4:], dt[:2] + (b"<i2",) + dt[3:], dt[:7] + ("<f8",)):
        with pytest.raises(ValueError):
            maker(w, dtypes=bad)
    with pytest.raises(TypeError):
        C.TreeMaker(*([None] * 13))
    with pytest.raises(TypeError):
        C.TreeMaker()


def test_a_failure_while_building_is_an_exception_not_a_crash():
    """The maker's callables failing (a dtype numpy refuses, a Tree type
    that raises, a Prebuilt that cannot be made): the exception reaches
    the caller, and nothing made so far is kept."""
    w = tree_weights(0, *GOOD)
    h = holes(w)

    class Refused(Exception):
        pass

    def tree_type(*args):
        raise Refused

    class NoSetstate:
        def __init__(self, *args):
            pass

    bad_nodes = ("no such dtype",) + N.node_layout()[1:]
    for over, exc in ((dict(f8="no such dtype"), TypeError), (dict(layout=bad_nodes), TypeError),
                      (dict(ndarray=None), TypeError), (dict(tree_type=tree_type), Refused),
                      (dict(tree_type=NoSetstate), AttributeError), (dict(prebuilt=None), TypeError)):
        with pytest.raises(exc):
            maker(w, **over)(h)


def test_trees_whose_columns_pass_the_read_window_are_built_as_they_come(tmp_path, monkeypatch):
    """Trees of about 100k nodes: each float column 800 KB, past the
    decoder's 256 KiB window, so read straight into bytearrays (and the
    int32 ones past 64 KiB, bytearrays too). From a file and from bytes,
    the forest is the generic way's, every later tree made by the maker."""
    from sklearn.ensemble import RandomForestRegressor

    import mpk
    from mpk_testutil import count_batches, same_both_ways
    rng = np.random.RandomState(0)
    X = rng.rand(50_000, 2)
    est = RandomForestRegressor(n_estimators=4, max_features=1, bootstrap=False, random_state=0)
    est.fit(X, rng.rand(50_000))
    assert min(t.tree_.node_count for t in est.estimators_) * 8 > 256 * 1024
    data = mpk.dumps(est)
    made = count_batches(monkeypatch, F._Template)
    assert same_both_ways(data)[:2] == ("loaded", data)
    path = tmp_path / "big.mpk"
    path.write_bytes(data)
    with open(path, "rb") as f:     # read from the file in pieces: every later tree made by the maker
        lock = (F.LOCK_KEYS, F.lockstep_hook(_unpack.rereader(f)))
        batch = C.unpack_fd(f.fileno(), _unpack.TEXT_MAPS, _unpack._ext, lock)[0][b"weights"][b"estimators_"]
    assert [type(x) for x in batch.items[1:]] == [F.Prebuilt] * 3
    made.clear()
    back = mpk.load(path)
    assert made == [3]
    assert (back.predict(X[:500]) == est.predict(X[:500])).all()
    for t, u in zip(est.estimators_, back.estimators_):
        assert t.tree_.__getstate__()["nodes"].tobytes() == u.tree_.__getstate__()["nodes"].tobytes()


def test_loads_in_threads_at_once_each_build_their_own_trees(tmp_path):
    """A second reader: forests loaded in four threads at once (each load
    its own TreeMaker and buffer; the module's caches shared) are each
    the model saved, from a file and from bytes."""
    import threading

    from sklearn.ensemble import RandomForestClassifier

    import mpk
    rng = np.random.RandomState(1)
    X, y = rng.rand(400, 4), rng.randint(0, 3, 400)
    data = mpk.dumps(RandomForestClassifier(n_estimators=12, random_state=0).fit(X, y))
    path = tmp_path / "f.mpk"
    path.write_bytes(data)
    got, start = [], threading.Barrier(4)

    def run(i):
        start.wait()
        for _ in range(5):
            got.append(mpk.dumps(mpk.load(path) if i % 2 else mpk.loads(data)))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 20 and all(g == data for g in got)
