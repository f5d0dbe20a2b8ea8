"""The batched tree loader (python/mpk/_forest.py) against the generic one.

Every test loads the same archive twice -- batched, and with the batch
switched off (each tree the generic way) -- and wants the same outcome: the
same FormatError text, or estimators that re-encode to the same bytes (and
predict the same).  Mutations go mostly to trees after the first, since the
first tree is built the generic way (it is the batch's template) but for
its Tree, which the TreeMaker makes when its map is exactly as mpk writes
it (_forest.first_tree); the switch also turns off the generic way's C
node table (_helpers._fast_table), so mutations of the first tree compare
that with numpy's."""

import random

import msgpack
import numpy as np
import pytest
from sklearn.ensemble import (AdaBoostClassifier, BaggingRegressor, ExtraTreesClassifier,
                              GradientBoostingRegressor, IsolationForest, RandomForestClassifier,
                              RandomForestRegressor, RandomTreesEmbedding)
from sklearn.tree import DecisionTreeClassifier

import mpk
from mpk import _forest as F
from mpk import _nodes as N
from mpk import _unpack
from mpk_testutil import CAPPED, archive, count_batches, load_capped, pack, same_both_ways

X = np.random.RandomState(0).rand(80, 5)
Y = np.arange(80) % 3


def _rf(**kw):
    return RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0, **kw).fit(X, Y)


@pytest.fixture
def batches(monkeypatch):
    """How many trees the batch built, per load."""
    return count_batches(monkeypatch, F._Template)


@pytest.mark.parametrize("make", [
    lambda: _rf(),
    lambda: RandomForestRegressor(n_estimators=5, max_depth=5, random_state=1).fit(X, np.c_[X[:, 0], X[:, 1]]),
    lambda: ExtraTreesClassifier(n_estimators=5, random_state=2).fit(X, Y),
    lambda: BaggingRegressor(n_estimators=5, random_state=3).fit(X, X[:, 0]),
    lambda: IsolationForest(n_estimators=5, random_state=4).fit(X),
    lambda: AdaBoostClassifier(n_estimators=5, random_state=5).fit(X, Y),
    lambda: RandomTreesEmbedding(n_estimators=5, random_state=6).fit(X),
    lambda: RandomForestClassifier(n_estimators=5, random_state=0).fit(X, np.array(["a", "b", "c", "d"])[Y]),
    # two outputs of 2 and 3 classes: each tree's classes_ a list of arrays, copied per tree
    lambda: RandomForestClassifier(n_estimators=5, random_state=7).fit(X, np.c_[Y % 2, Y]),
])
def test_batched_ensembles_load_as_the_generic_way(make, batches):
    est = make()
    data = mpk.dumps(est)
    kind, got, warned = same_both_ways(data)
    assert kind == "loaded" and got == data and not warned
    assert batches and batches[0] == len(est.estimators_) - 1     # all but the template, batched
    back = mpk.loads(data)
    f = "predict" if hasattr(est, "predict") else "transform"
    a, b = getattr(est, f)(X), getattr(back, f)(X)
    assert (a != b).nnz == 0 if hasattr(a, "nnz") else (a == b).all()
    for t, u in zip(est.estimators_, back.estimators_):
        assert (t.tree_.apply(X.astype(np.float32)) == u.tree_.apply(X.astype(np.float32))).all()
        assert t.tree_.max_depth == u.tree_.max_depth and t.get_params() == u.get_params()
    # each tree's arrays its own, as fitted (a list of them too)
    arrays = [a for u in back.estimators_ for v in vars(u).values()
              for a in (v if type(v) is list else [v]) if isinstance(a, np.ndarray)]
    assert len({id(a) for a in arrays}) == len(arrays)


def test_n_classes_knows_its_largest_count_and_reduces_as_an_array():
    """Tree's constructor takes np.max of n_classes: an NClasses gives its
    largest count at once, and any other reduction as a plain array."""
    from sklearn.tree._tree import Tree
    a = N.n_classes(np.array([2, 7, 3]), 7)
    assert np.max(a) == 7 and a.max() == 7
    assert np.max(a, axis=0) == 7 and a.max(keepdims=True).tolist() == [7] and a.min() == 2
    assert a.max(initial=9) == 9 and a.dtype == np.intp
    t = Tree(4, a, 3)
    assert t.max_n_classes == 7 and t.n_classes.tolist() == [2, 7, 3] and t.value.shape == (0, 3, 7)


def test_an_unfitted_estimator_identical_to_one_built_is_a_copy_of_it(monkeypatch):
    """A forest's estimator and _estimator (one object in the fitted model)
    are two identical maps: the second is a copy of the first, as building
    it gives, unless its map differs or building it warns."""
    import warnings

    from mpk import _model
    built = []
    orig = _model._build_generic
    monkeypatch.setattr(_model, "_build_generic", lambda c, f, p, d: built.append(p) or orig(c, f, p, d))
    est = _rf()
    data = mpk.dumps(est)
    back = mpk.loads(data)
    assert "weights/estimator" in built and "weights/_estimator" not in built
    assert back._estimator is not back.estimator and type(back._estimator) is type(back.estimator)
    assert vars(back._estimator) == vars(back.estimator) == vars(est._estimator)
    assert same_both_ways(data)[1] == data
    m = archive(est)
    m["weights"]["_estimator"]["params"]["max_depth"] = 3      # another value: built
    built.clear()
    assert mpk.loads(pack(m))._estimator.max_depth == 3 and "weights/_estimator" in built
    m = archive(est)
    for k in ("estimator", "_estimator"):
        del m["weights"][k]["params"]["ccp_alpha"]              # a default used: each one warns
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        back = mpk.loads(pack(m))
    said = [str(x.message).split(":")[0] for x in w if issubclass(x.category, mpk.ParamDefaultWarning)]
    assert said == ["weights/estimator/params/ccp_alpha", "weights/_estimator/params/ccp_alpha"]
    assert back._estimator.ccp_alpha == 0.0


def test_boosting_trees_share_their_random_state_as_fitted(batches):
    """A boosting ensemble's trees hold the RandomState the ensemble fitted
    them with: one object in the fitted model (and in pickle's load), one
    state written once a tree in the archive.  Batched, the trees share
    the first tree's, as fitted; each of them the generic way would have
    its own (same_both_ways: the same model either way)."""
    est = GradientBoostingRegressor(n_estimators=5, max_depth=2, random_state=0).fit(X, X[:, 0])
    trees = est.estimators_.ravel()
    assert all(t.random_state is est._rng for t in trees)
    data = mpk.dumps(est)
    assert same_both_ways(data)[:2] == ("loaded", data)
    assert batches == [len(trees) - 1]
    back = mpk.loads(data).estimators_.ravel()
    assert all(t.random_state is back[0].random_state for t in back)
    assert type(back[0].random_state) is np.random.RandomState
    assert (back[0].random_state.get_state()[1] == est._rng.get_state()[1]).all()


def test_boosting_trees_with_another_random_state_are_built_the_generic_way(batches):
    """A tree whose RandomState's state is not the first tree's: not the
    template's to share, so every tree the generic way, each its own."""
    est = GradientBoostingRegressor(n_estimators=5, max_depth=2, random_state=0).fit(X, X[:, 0])
    m = archive(est)
    rs = m["weights"]["estimators_"][3][0]["params"]["random_state"]
    rs["xtra"]["pos"] = (rs["xtra"]["pos"] + 1) % 624
    assert same_both_ways(m)[0] == "loaded"
    assert batches == [0]           # refused by the template: the generic way
    back = mpk.loads(pack(m)).estimators_.ravel()
    assert len({id(t.random_state) for t in back}) == len(back)
    assert back[3].random_state.get_state()[2] == (est._rng.get_state()[2] + 1) % 624


def _tree(m, i):
    return m["weights"]["estimators_"][i]["weights"]["tree_"]


def _col(m, i, col):
    c = _tree(m, i)["weights"][col]
    return np.frombuffer(c[b"data"], dtype=c[b"type"]).reshape(c[b"shape"]).copy()


def _set_col(m, i, col, a):
    a = np.asarray(a)
    _tree(m, i)["weights"][col] = {b"nd": True, b"type": a.dtype.str, b"kind": b"", b"shape": list(a.shape),
                                   b"data": a.tobytes()}


def _set_table(m, i, left, right, feature=None):
    """Replace tree i's node table with a hand-made one (value and the
    other columns sized to match)."""
    n = len(left)
    _set_col(m, i, "children_left", np.array(left, dtype=np.int32))
    _set_col(m, i, "children_right", np.array(right, dtype=np.int32))
    _set_col(m, i, "feature", np.array(feature if feature is not None else
                                       [0 if l != -1 else -2 for l in left], dtype=np.int32))
    for col in ("threshold", "impurity", "weighted_n_node_samples"):
        _set_col(m, i, col, np.full(n, 0.5))
    _set_col(m, i, "n_node_samples", np.full(n, 3, dtype=np.int32))
    v = _col(m, i, "value")
    _set_col(m, i, "value", np.ones((n,) + v.shape[1:]))
    _tree(m, i)["xtra"]["node_count"] = n


GOOD = ([1, 3, -1, -1, -1], [2, 4, -1, -1, -1])          # 0 -> (1, 2), 1 -> (3, 4)


@pytest.mark.parametrize("left,right,what", [
    ([1, 3, -1, -1, 9], [2, 4, -1, -1, -1], "only one child"),       # a leaf with one child
    ([1, 3, -1, -1, -1], [2, 5, -1, -1, -1], "outside the node table"),  # child out of range
    ([1, -5, -1, -1, -1], [2, 4, -1, -1, -1], "outside the node table"),  # negative, not the leaf marker
    ([1, 3, -1, -1, -1], [2, 1, -1, -1, -1], "cycle"),               # node 1 is its own child
    ([1, 3, -1, 1, -1], [2, 4, -1, 2, -1], "cycle"),                 # node 3 points back up
    ([1, 3, -1, -1, -1], [2, 3, -1, -1, -1], "outside the node table"),  # both children the same node
    ([1, 2, -1, -1, -1], [2, 4, -1, -1, -1], "parents"),             # node 2 has two parents, 3 none
    ([2, 3, -1, -1, -1], [1, 2, -1, -1, -1], "parents"),             # node 2 twice, reached from both sides
])
def test_bad_links_in_a_later_tree_are_refused_naming_it(left, right, what, batches):
    m = archive(_rf())
    _set_table(m, 3, left, right)
    kind, msg, _ = same_both_ways(m)
    assert kind == "refused" and msg.startswith("weights/estimators_/3/weights/tree_/weights"), msg
    assert what in msg, msg
    m = archive(_rf())
    _set_table(m, 3, *GOOD)
    assert same_both_ways(m)[0] == "loaded"


@pytest.fixture
def first_trees(monkeypatch):
    """The first tree's Tree each batched load made with the TreeMaker
    (None: the generic way builds it)."""
    made = []
    orig = F.first_tree      # (only the C decoder's lockstep asks it: none without it)

    def spy(*args):
        made.append(orig(*args))
        return made[-1]
    monkeypatch.setattr(F, "first_tree", spy)
    return made


@pytest.mark.skipif(not _unpack.ACCELERATED, reason="the TreeMaker is mpk's C part's")
def test_the_first_trees_tree_is_made_as_the_later_trees_are(first_trees, batches):
    est = _rf()
    data = mpk.dumps(est)
    kind, got, _ = same_both_ways(data)
    assert kind == "loaded" and got == data
    back = mpk.loads(data)
    assert type(first_trees[-1]).__name__ == "Tree" and back.estimators_[0].tree_ is first_trees[-1]
    assert batches[-1] == len(est.estimators_) - 1
    assert (back.predict_proba(X) == est.predict_proba(X)).all()


@pytest.mark.parametrize("change", [
    lambda t: t.update(class_name="DecisionTreeClassifier"),    # not a Tree
    lambda t: t["types"].update(max_depth="int64"),             # a tag the writer never gives
    lambda t: t["types"].pop("value"),                          # an array untagged
    lambda t: t["params"].update(n_leaves=3),                   # a param the Tree has not
    lambda t: t["xtra"].update(node_count=2**41),               # more nodes than its arrays
])
def test_a_first_tree_not_as_mpk_writes_it_is_built_the_generic_way(change, first_trees):
    m = archive(_rf())
    for i in range(len(m["weights"]["estimators_"])):     # every tree: still in lockstep
        change(_tree(m, i))
    same_both_ways(m)
    assert first_trees == ([None] if _unpack.ACCELERATED else [])


@pytest.mark.parametrize("left,right", [([1, 3, -1, -1, -1], [2, 1, -1, -1, -1]),
                                        ([1, 2, -1, -1, -1], [2, 4, -1, -1, -1])])
def test_bad_links_in_the_first_tree_are_refused_naming_it(left, right, first_trees):
    m = archive(_rf())
    _set_table(m, 0, left, right)
    kind, msg, _ = same_both_ways(m)
    assert kind == "refused" and msg.startswith("weights/estimators_/0/weights/tree_/weights"), msg
    assert first_trees == ([None] if _unpack.ACCELERATED else [])


@pytest.mark.parametrize("i", [0, 3])
def test_a_tree_of_other_features_than_its_forest_is_refused_naming_it(i):
    """A tree consistent in itself (its estimator's n_features_in_ and its
    Tree's n_features both 6) in a forest of 5 features: refused, naming
    the tree, batched or not."""
    m = archive(_rf())
    m["weights"]["estimators_"][i]["xtra"]["n_features_in_"] = 6
    _tree(m, i)["params"]["n_features"] = 6
    kind, msg, _ = same_both_ways(m)
    assert kind == "refused" and msg.startswith(f"weights/estimators_/{i}: tree has 6 features, expected 5"), msg


def test_child_index_that_wraps_in_32_bits_is_refused():
    """An int64 child index that is a small number modulo 2**32 (so it would
    pass if the check cast the column to int32 first) is refused."""
    for shift in (-2**32, 2**32, -2**62):
        m = archive(_rf())
        for i in range(len(m["weights"]["estimators_"])):     # int64 columns, as earlier mpk wrote
            for col in ("children_left", "children_right"):
                _set_col(m, i, col, _col(m, i, col).astype(np.int64))
        assert same_both_ways(m)[0] == "loaded"
        left = _col(m, 3, "children_left")
        inner = np.flatnonzero(left != -1)
        left[inner[1]] += shift         # the same child modulo 2**32
        _set_col(m, 3, "children_left", left)
        kind, msg, _ = same_both_ways(m)
        assert kind == "refused" and msg.startswith("weights/estimators_/3/weights/tree_/weights"), msg


@CAPPED
def test_hostile_node_count_is_refused_not_allocated(tmp_path):
    """A later tree claiming 2**39 or 2**40 nodes in a few bytes is refused,
    naming it, as the generic way does, in a process whose address space is
    capped at 1 GiB: nothing is allocated for the claim (the batch once
    allocated a byte per claimed node for its link check, a MemoryError)."""
    m = archive(_rf())
    for k, count in enumerate((2**39, 2**40)):
        m["weights"]["estimators_"][3]["weights"]["tree_"]["xtra"]["node_count"] = count
        (tmp_path / f"{k}.mpk").write_bytes(pack(m))
    r = load_capped(tmp_path, 2)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and all(x.startswith("FormatError weights/estimators_/3/weights/tree_/weights/")
                                   and "(node_count)" in x for x in lines), r.stdout


@CAPPED
def test_a_single_tree_claiming_a_hostile_node_count_is_refused_not_allocated(tmp_path):
    """A single tree's Tree map as mpk writes it (tree_exact's way) whose
    node_count claims 2**40 nodes, or whose arrays' shapes do: refused,
    naming it, under a 1 GiB address-space cap."""
    m = _dtc_archive()
    m["weights"]["tree_"]["xtra"]["node_count"] = 2**40
    (tmp_path / "0.mpk").write_bytes(pack(m))
    m = _dtc_archive()
    for c in m["weights"]["tree_"]["weights"].values():
        c[b"shape"] = [2**40] + c[b"shape"][1:]
    (tmp_path / "1.mpk").write_bytes(pack(m))
    r = load_capped(tmp_path, 2)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and all(x.startswith("FormatError weights/tree_/") for x in lines), r.stdout


@pytest.mark.parametrize("where", ["single", 0, 3])
def test_class_count_past_the_fast_paths_bound_is_a_format_error(where, tmp_path):
    """A tree whose n_classes is 2**20 + 1 (past what the C node-table
    check lays out, where a row's size could overflow): a FormatError naming
    that tree, from bytes and from a file, with the batch and without --
    as a single tree (its own fast path), as a forest's first tree (the
    batch's template) and as a later one. (Found by a long mutation run:
    the C check raised a ValueError about its arguments.)"""
    m = archive(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, Y) if where == "single" else _rf())
    tree = m["weights"]["tree_"] if where == "single" else _tree(m, where)
    tree["params"]["n_classes"] = {b"nd": True, b"type": "<i8", b"kind": b"", b"shape": [1],
                                   b"data": np.array([2**20 + 1]).tobytes()}
    kind, msg, _ = same_both_ways(m)
    prefix = "weights/tree_/" if where == "single" else f"weights/estimators_/{where}/weights/tree_/"
    assert kind == "refused" and msg.startswith(prefix), msg
    path = tmp_path / "m.mpk"
    path.write_bytes(pack(m))
    with pytest.raises(mpk.FormatError, match="^" + prefix):
        mpk.load(path)


def test_parameters_equal_to_the_template_but_not_identical():
    """-0.0 equals 0.0 and 1 equals 1.0 and True: a later tree's parameter
    that only compares equal to the first tree's is its own value (or
    refused), as the generic way has it."""
    for name, v in (("ccp_alpha", -0.0), ("min_samples_split", 2.0), ("min_samples_leaf", True),
                    ("min_weight_fraction_leaf", False)):
        m = archive(_rf())
        m["weights"]["estimators_"][3]["params"][name] = v
        kind, got, _ = same_both_ways(m)
        if kind == "loaded":
            back = mpk.loads(pack(m))
            assert repr(getattr(back.estimators_[3], name)) == repr(v), name


def test_shared_root_is_refused():
    """A child index 0 (every tree's root) in a later tree: a root never
    has a parent."""
    m = archive(_rf())
    _set_table(m, 4, [1, 0, -1, -1, -1], [2, 4, -1, -1, -1])
    kind, msg, _ = same_both_ways(m)
    assert kind == "refused" and msg.startswith("weights/estimators_/4/weights/tree_"), msg


def test_unreachable_cycle_is_refused():
    """One parent per non-root node, none for the root and every index in
    range is not enough: nodes 1 and 2 are each other's child, a cycle that
    the root never reaches.  Children must come after their parent."""
    left, right = [5, 2, 1, -1, -1, -1, -1], [6, 3, 4, -1, -1, -1, -1]
    parents = np.bincount([c for c in left + right if c != -1], minlength=7)
    assert parents[0] == 0 and (parents[1:] == 1).all()       # passes the one-parent rule
    m = archive(_rf())
    _set_table(m, 2, left, right)
    kind, msg, _ = same_both_ways(m)
    assert kind == "refused" and "cycle" in msg, msg


def test_check_links_on_concatenated_tables():
    good = (np.array(GOOD[0]), np.array(GOOD[1]))
    single = (np.array([-1]), np.array([-1]))

    def run(*tables):
        left = np.concatenate([t[0] for t in tables])
        right = np.concatenate([t[1] for t in tables])
        ns = np.array([len(t[0]) for t in tables])
        offs = np.r_[0, np.cumsum(ns)[:-1]]
        return N.check_links(left, right, ns, offs)

    inner = run(good, single, good)
    assert inner is not None and inner.tolist() == [True, True, False, False, False, False,
                                                    True, True, False, False, False]
    # a child pointing into the next tree (in range of the concatenation)
    assert run((np.array([1, 3, -1, -1, -1]), np.array([2, 5, -1, -1, -1])), good) is None
    # a tree whose child slots are short of its n - 1 non-root nodes
    assert run(good, (np.array([1, -1, -1]), np.array([2, -1, -1])), (np.array([1, -1]), np.array([-1, -1]))) is None
    # two parents, shared root, cycle
    assert run(good, (np.array([1, 2, -1, -1, -1]), np.array([2, 4, -1, -1, -1]))) is None
    assert run(good, (np.array([1, 0, -1, -1, -1]), np.array([2, 4, -1, -1, -1]))) is None
    assert run(good, (np.array([1, 3, -1, 1, -1]), np.array([2, 4, -1, 2, -1]))) is None
    assert run(good, (np.array([5, 2, 1, -1, -1, -1, -1]), np.array([6, 3, 4, -1, -1, -1, -1]))) is None


@pytest.mark.parametrize("where,value", [
    ("random_state", -3), ("random_state", 2**40), ("random_state", 1.5), ("random_state", "x"),
    ("max_features", "cube"), ("min_samples_leaf", 0), ("min_samples_leaf", True), ("criterion", "nope"),
    ("ccp_alpha", float("nan")), ("splitter", b"\xff\xfe"),
])
def test_parameter_values_of_later_trees_are_checked(where, value):
    m = archive(_rf())
    m["weights"]["estimators_"][2]["params"][where] = value
    kind, msg, _ = same_both_ways(m)
    if kind == "refused":
        assert msg.startswith("weights/estimators_/2/params"), msg


def test_random_mutations_agree_with_the_generic_way():
    """Random changes to one tree's map, parameters, numbers and node
    arrays (values, dtypes, shapes, compact-map fields, int64 indices moved
    by multiples of 2**32), in archives with int32 and with int64 node
    columns: the batch (a later tree), and for the first tree the C node
    table of the generic way (_helpers._fast_table), refuse or build
    exactly what the numpy way does."""
    rng = random.Random(1)
    base = archive(_rf())
    n_trees = len(base["weights"]["estimators_"])
    old = msgpack.unpackb(pack(base), strict_map_key=False)       # int64 columns, as earlier mpk wrote
    for i in range(n_trees):
        for col in ("children_left", "children_right", "feature", "n_node_samples"):
            _set_col(old, i, col, _col(old, i, col).astype(np.int64))
    odd = [-2, -1, 0, 1, 2, 3, 7, 2**31, -2**40, 1.0, True, False, None, "x", b"y", [], [1], {}]
    outcomes = {"loaded": 0, "refused": 0}
    for k in range(700):
        m = msgpack.unpackb(pack(base if k % 3 else old), strict_map_key=False)
        i = rng.randrange(1, n_trees) if k % 7 else 0
        dt = m["weights"]["estimators_"][i]
        t = dt["weights"]["tree_"]
        what = rng.randrange(10)
        if what == 0:
            dt["params"][rng.choice(list(dt["params"]))] = rng.choice(odd)
        elif what == 1:
            t["xtra"][rng.choice(["node_count", "max_depth"])] = rng.choice(odd + [t["xtra"]["node_count"] + 1])
        elif what == 2:
            dt["xtra"][rng.choice(list(dt["xtra"]))] = rng.choice(odd)
        elif what == 3:
            c = t["weights"][rng.choice(list(t["weights"]))]
            c[rng.choice([b"nd", b"kind", b"type", b"shape", b"data"])] = rng.choice(
                odd + ["<i8", "<i4", "<f4", ">i4", "|b1", "<u8", b"O", [c[b"shape"][0] + 1], c[b"data"][:-1]])
        elif what == 4:
            col = rng.choice(["children_left", "children_right", "feature"])
            a = _col(m, i, col)
            j = rng.randrange(a.size)
            if a.dtype == np.int64 and rng.random() < 0.5:      # the same value modulo 2**32
                a[j] += rng.choice([-2**32, 2**32, -2**33, 2**62, -2**62])
                _set_col(m, i, col, a)
            else:
                a = a.astype(np.int64)
                a[j] = rng.choice([-2, -1, 0, 1, 2, 3, a.size - 1, a.size, 2**31 - 1])
                _set_col(m, i, col, a.astype(rng.choice([np.int32, np.int64])))
        elif what == 5:
            col = rng.choice(list(t["weights"]))
            _set_col(m, i, col, _col(m, i, col).astype(rng.choice([np.int64, np.float64, np.float32, np.uint8])))
        elif what == 6:
            sec = rng.choice([dt, t, dt["params"], dt["xtra"], t["weights"], t["xtra"], t["params"]])
            key = rng.choice(list(sec))
            if rng.random() < 0.5:
                del sec[key]
            else:
                sec["extra_" + str(key)] = sec[key]
        elif what == 7:
            t["params"][rng.choice(list(t["params"]))] = rng.choice(odd)
        elif what == 8:
            t["types"][rng.choice(list(t["types"]) + ["max_depth"])] = rng.choice(
                ["ndarray", b"ndarray", ["ndarray", "<i4"], "int64", "tuple", None])
        else:
            dt["types"][rng.choice(list(dt["types"]) + ["max_depth"])] = rng.choice(["ndarray", "int64", "tuple", None])
        kind = same_both_ways(m)[0]
        outcomes[kind] += 1
    assert outcomes["loaded"] > 30 and outcomes["refused"] > 150, outcomes


@pytest.fixture
def generic_trees(monkeypatch):
    """How many Tree maps each load decoded the generic way (tree_decode),
    not as mpk writes them (_helpers.tree_exact)."""
    from mpk import _helpers
    calls = []
    orig = _helpers.HELPERS["Tree"]
    monkeypatch.setitem(_helpers.HELPERS, "Tree", (orig[0], lambda mi: calls.append(mi.path) or orig[1](mi)))
    return calls


def _dtc_archive():
    return archive(DecisionTreeClassifier(max_depth=5, random_state=0).fit(X, Y))


def _tagged(t, col):
    t["types"][col] = ["ndarray", "<f8"]


@pytest.mark.parametrize("change", [
    None,
    lambda t: t.setdefault("dtypes", {}).update(threshold="<f8"),       # a dtypes map: the generic way
    lambda t: t["types"].update(threshold="int64"),                     # another tag: refused there
    lambda t: _tagged(t, "threshold"),                                  # a tag with a dtype
    lambda t: t["types"].pop("threshold"),                              # untagged array: refused
    lambda t: t["types"].update(max_depth="int64"),                     # a tag on an int
    lambda t: t["params"].update(extra=1),                              # an unknown parameter
    lambda t: t["params"].update(n_features=True),                      # a bool, not an int
    lambda t: t["params"].update(n_outputs=2),                          # n_classes then has the wrong shape
    lambda t: t["xtra"].update(max_depth=2**31),                        # past tree_decode's range
    lambda t: t["xtra"].update(node_count=0),
    lambda t: t["xtra"].update(node_count=1.0),
    lambda t: t["weights"].update(value=t["weights"]["threshold"]),     # a 1-d value
    lambda t: t["weights"]["feature"].update({b"type": "<i2"}),          # a dtype the C part does not take
    lambda t: t["weights"]["feature"].update({b"kind": b"x"}),
])
def test_a_tree_as_mpk_writes_it_is_built_without_per_value_decoding(change, generic_trees):
    """A single tree's Tree map as mpk writes it is built by tree_exact
    (no ModelIn, no per-value decoding); anything else goes the generic way,
    and either way the outcome is the numpy way's (same_both_ways)."""
    m = _dtc_archive()
    if change is not None:
        change(m["weights"]["tree_"])
    kind, got, _ = same_both_ways(m)
    if change is None:
        assert kind == "loaded" and got == pack(m)
    # tree_decode ran for the load with the batch off, and for the batched
    # one only when the map is not as mpk writes it (or mpk's C part, which
    # lays out the table, is not in use)
    fast = change is None and _unpack.tree_columns is not None
    assert len(generic_trees) == (1 if fast else 2)
    assert generic_trees[0] == "weights/tree_"


def test_integer_node_columns_are_int32_and_int64_archives_still_load(batches):
    """Node indices, features and sample counts are written as int32 (all
    fit); archives of earlier mpk versions hold them as int64 and load the
    same, batched too."""
    est = _rf()
    data = mpk.dumps(est)
    m = archive(est)
    n_trees = len(est.estimators_)
    for i in range(n_trees):
        for col in ("children_left", "children_right", "feature", "n_node_samples"):
            assert _tree(m, i)["weights"][col][b"type"] == "<i4"
            _set_col(m, i, col, _col(m, i, col).astype("<i8"))
        assert _tree(m, i)["weights"]["threshold"][b"type"] == "<f8"
    kind, got, _ = same_both_ways(m)
    assert kind == "loaded" and got == data           # re-encoded: int32 again
    assert batches[0] == n_trees - 1
    back = mpk.loads(pack(m))
    assert (back.predict_proba(X) == est.predict_proba(X)).all()
    assert back.estimators_[1].tree_.children_left.dtype == est.estimators_[1].tree_.children_left.dtype
