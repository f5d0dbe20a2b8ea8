"""The C decoder's lockstep (python/mpk/_cmpk_unpack.c, _forest.lockstep):
a list of trees under estimators_ decoded as its first tree with holes.

Whatever the bytes, a decoding in lockstep, its Batches filled back in
(Batch.item), is the decoding without lockstep: the same objects, or the
same error.  Lists whose items are not in lockstep with their first (unlike
estimators, mutated trees) are decoded again without it, from a buffer, a
file, and not at all in lockstep from a pipe."""

import os
import random
import sys

import msgpack
import numpy as np
import pytest
from sklearn.ensemble import (AdaBoostClassifier, BaggingRegressor, ExtraTreesClassifier, IsolationForest,
                              RandomForestClassifier, RandomForestRegressor, VotingClassifier)
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import mpk
from mpk import _forest as F
from mpk import _unpack
from mpk_testutil import archive, pack
from test_mpk_cmpk import mutate_at, same

C = _unpack._cmpk
pytestmark = pytest.mark.skipif(C is None and not os.environ.get("MPK_REQUIRE_C"),
                                reason="mpk's C part is not built (meson compile -C build)")


def lock(source):
    """mpk.load's lockstep argument for source (bytes, or an open file)."""
    return (F.LOCK_KEYS, F.lockstep_hook(_unpack.rereader(source)))
X = np.random.RandomState(0).rand(80, 5)
Y = np.arange(80) % 3


def expand(v):
    """v with every Batch replaced by the list it stands for."""
    if type(v) is F.Batch:
        v = F.plain(v)
    if type(v) is list:
        return [expand(x) for x in v]
    if type(v) is dict:
        return {k: expand(x) for k, x in v.items()}
    return v


def batches(v):
    """How many Batches v holds."""
    if type(v) is F.Batch:
        first = v.items[0]      # a tree's map, or a row of predictors
        return 1 + sum(map(batches, first if type(first) is list else first.values()))
    if type(v) is list:
        return sum(map(batches, v))
    if type(v) is dict:
        return sum(map(batches, v.values()))
    return 0


def decode(data, locked):
    """("ok", object with Batches expanded, bytes used, vocabularies as the
    keys they sit under, Batches made) or ("error", message)."""
    try:
        obj, end, vocabs, _ = C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext, lock(data) if locked else None)
    except (TypeError, ValueError) as e:
        return ("error", str(e))
    return ("ok", expand(obj), end, len(vocabs), batches(obj))


def decode_file(data, path):
    path.write_bytes(data)
    with open(path, "rb") as f:
        try:
            obj, end, vocabs, _ = C.unpack_fd(f.fileno(), _unpack.TEXT_MAPS, _unpack._ext, lock(f))
        except (TypeError, ValueError) as e:
            return ("error", str(e))
        return ("ok", expand(obj), end, len(vocabs), batches(obj))


def agree(a, b):
    """Two decode() outcomes alike but for the Batches made."""
    if a[0] != b[0]:
        return False
    if a[0] == "error":
        return a == b
    return same(a[1], b[1]) and a[2:4] == b[2:4]


ENSEMBLES = {
    "forest": lambda: RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0).fit(X, Y),
    "regressor 2 outputs": lambda: RandomForestRegressor(n_estimators=5, max_depth=5, random_state=1).fit(
        X, np.c_[X[:, 0], X[:, 1]]),
    "extra trees": lambda: ExtraTreesClassifier(n_estimators=5, random_state=2).fit(X, Y),
    "bagging": lambda: BaggingRegressor(n_estimators=5, random_state=3).fit(X, X[:, 0]),
    "isolation": lambda: IsolationForest(n_estimators=5, random_state=4).fit(X),
    "adaboost": lambda: AdaBoostClassifier(n_estimators=5, random_state=5).fit(X, Y),
}


@pytest.mark.parametrize("name", list(ENSEMBLES))
def test_an_ensemble_in_lockstep_is_its_plain_decoding(name, tmp_path):
    data = mpk.dumps(ENSEMBLES[name]())
    plain = decode(data, False)
    got = decode(data, True)
    assert plain[0] == "ok" and plain[4] == 0 and agree(got, plain)
    assert got[4] == 1                  # the trees: one Batch, all but the first built as they came
    batch = C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext, lock(data))[0][b"weights"][b"estimators_"]
    assert all(type(c) is F.Prebuilt for c in batch.items[1:])
    trees = C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext)[0][b"weights"][b"estimators_"]
    o = batch.offsets
    assert len(o) == len(trees) + 1 and all(      # where each item's bytes are
        same(msgpack.unpackb(data[a:b], raw=True, strict_map_key=False), t) for a, b, t in zip(o, o[1:], trees))
    assert agree(decode_file(data, tmp_path / "f.mpk"), plain)
    assert mpk.loads(data).__class__ is ENSEMBLES[name]().__class__


def test_items_unlike_the_first_are_decoded_again_without_lockstep(tmp_path):
    """A list whose first item is a tree and a later one something else (a
    voting ensemble's fitted estimators), or a later tree with a key more:
    the plain decoding, from a buffer and from a file."""
    vote = VotingClassifier([("t%d" % i, DecisionTreeClassifier(max_depth=2, random_state=i)) for i in range(4)]
                            + [("lr", LogisticRegression())]).fit(X, Y)
    data = mpk.dumps(vote)
    plain = decode(data, False)
    assert plain[0] == "ok" and agree(decode(data, True), plain)
    assert decode(data, True)[4] == 0
    assert agree(decode_file(data, tmp_path / "v.mpk"), plain)
    m = archive(RandomForestClassifier(n_estimators=6, max_depth=3, random_state=0).fit(X, Y))
    m["weights"]["estimators_"][4]["xtra"]["extra"] = 1
    data = pack(m)
    plain = decode(data, False)
    assert agree(decode(data, True), plain) and decode(data, True)[4] == 0
    assert agree(decode_file(data, tmp_path / "x.mpk"), plain)


def test_mutated_forests_decode_in_lockstep_as_without(tmp_path):
    """Random byte changes anywhere in a forest archive (lengths, keys,
    type bytes, truncation): in lockstep and without, the same objects or
    the same error (message and offset), from a buffer and from a file."""
    base = mpk.dumps(RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, Y))
    kinds = _mutations_agree(base, b"estimators_", 11, 1500, tmp_path, near=0.9)
    assert kinds["error"] > 300 and kinds["batched"] > 100 and kinds["ok"] > kinds["batched"], kinds


def _mutations_agree(base, key, seed, rounds, tmp_path, near=None, load_every=None):
    """rounds random byte changes (one to three each) of base after key --
    each with the chance near, else anywhere in it --, each decoded in lockstep
    and without, from a buffer (and every 15th from a file): the same
    objects or the same error; every load_every-th that decodes is loaded
    as the generic way loads it (mpk_testutil.same_both_ways).  Returns how
    many decoded ("ok"), failed ("error") and made a Batch ("batched")."""
    from mpk_testutil import same_both_ways
    rnd = random.Random(seed)
    start = base.index(key)
    kinds = {"ok": 0, "error": 0, "batched": 0}
    for n in range(rounds):
        d = bytearray(base)
        for _ in range(rnd.randint(1, 3)):
            after = near is None or rnd.random() < near
            i = rnd.randrange(min(start, len(d)), len(d) + 1) if after else rnd.randrange(len(d) + 1)
            mutate_at(rnd, d, i, 0.7, 0.8, 4)
        d = bytes(d)
        plain, got = decode(d, False), decode(d, True)
        assert agree(got, plain), (n, plain[:1] + plain[-1:], got[:1] + got[-1:])
        kinds[got[0]] += 1
        kinds["batched"] += got[0] == "ok" and got[4] > 0
        if n % 15 == 0:
            assert agree(decode_file(d, tmp_path / "m.mpk"), plain), n
        if load_every and n % load_every == 0 and got[0] == "ok":
            same_both_ways(d)
    return kinds


def _hgb():
    from sklearn.ensemble import HistGradientBoostingClassifier
    x = X.copy()
    x[:, 4] = np.arange(80) % 4         # a categorical feature: bitset tables
    return HistGradientBoostingClassifier(max_iter=6, random_state=0, early_stopping=False,
                                          categorical_features=[4]).fit(x, Y)


def test_hgb_predictor_rows_in_lockstep_are_their_plain_decoding(tmp_path):
    """HistGradientBoosting's _predictors, a list of rows of predictor
    maps: the rows after the first decoded in lockstep with it (each one's
    arrays' shapes and data as holes, in one tuple a row), their Batch read
    back, is the plain decoding, from a buffer and from a file."""
    data = mpk.dumps(_hgb())
    plain = decode(data, False)
    got = decode(data, True)
    assert plain[0] == "ok" and agree(got, plain) and got[4] == 1
    batch = C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext, lock(data))[0][b"weights"][b"_predictors"]
    rows = C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext)[0][b"weights"][b"_predictors"]
    assert type(batch) is F.Batch and len(batch) == len(rows) == 6
    assert all(type(r) is tuple and len(r) == 3 * 15 * 2 for r in batch.items[1:])  # 3 classes, 15 arrays
    o = batch.offsets
    assert all(same(msgpack.unpackb(data[a:b], raw=True, strict_map_key=False), r)
               for a, b, r in zip(o, o[1:], rows))
    assert agree(decode_file(data, tmp_path / "h.mpk"), plain)
    # a later row unlike the first (a predictor with a key more): the plain decoding
    m = archive(_hgb())
    m["weights"]["_predictors"][3][1]["xtra"]["extra"] = 1
    data = pack(m)
    plain = decode(data, False)
    assert agree(decode(data, True), plain) and decode(data, True)[4] == 0
    assert agree(decode_file(data, tmp_path / "x.mpk"), plain)


def test_mutated_hgb_models_decode_in_lockstep_as_without(tmp_path):
    """Random byte changes in the predictors of a HistGradientBoosting
    archive: in lockstep and without, the same objects or the same error,
    from a buffer and from a file; and loading gives the generic way's
    model or error (the batch switched off: mpk_testutil.same_both_ways)."""
    kinds = _mutations_agree(mpk.dumps(_hgb()), b"_predictors", 12, 600, tmp_path, load_every=5)
    assert kinds["error"] > 100 and kinds["batched"] > 15 and kinds["ok"] > kinds["batched"], kinds


def _gb():
    from sklearn.ensemble import GradientBoostingClassifier
    return GradientBoostingClassifier(n_estimators=6, max_depth=2, random_state=0).fit(X, Y)


def test_gb_tree_rows_in_lockstep_are_their_plain_decoding(tmp_path, monkeypatch):
    """GradientBoosting's estimators_, a 2-d object array of trees (a list
    of rows of trees): the rows after the first decoded in lockstep with
    it, read back, are the plain decoding, from a buffer and from a file;
    the load takes the trees from the rows' hole values (_forest.row_trees)
    and gives the generic way's model; a first row whose second tree is
    not the first one with its holes changed is read again and decoded as
    any list, as is a later row unlike the first."""
    from mpk_testutil import same_both_ways
    data = mpk.dumps(_gb())
    plain = decode(data, False)
    got = decode(data, True)
    assert plain[0] == "ok" and agree(got, plain) and got[4] == 1
    batch = C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext, lock(data))[0][b"weights"][b"estimators_"]
    assert type(batch) is F.Batch and type(batch.layout) is F.TreeRows and len(batch) == 6
    assert all(type(r) is tuple for r in batch.items[1:])
    assert agree(decode_file(data, tmp_path / "g.mpk"), plain)
    made = []
    monkeypatch.setattr(F, "row_trees", lambda *a, f=F.row_trees: made.append(f(*a)) or made[-1])
    assert same_both_ways(data)[:2] == ("loaded", data)
    assert made and made[0] is not None and len(made[0]) == 18
    m = archive(_gb())
    for row in m["weights"]["estimators_"]:         # every row's second tree: parameters in another order
        row[1]["params"] = dict(reversed(list(row[1]["params"].items())))
    made.clear()
    assert same_both_ways(m)[0] == "loaded" and made == [None]
    m = archive(_gb())
    del m["types"]["estimators_"]           # rows of trees, untagged: refused as without lockstep
    kind, msg, _ = same_both_ways(m)
    assert kind == "refused" and msg.startswith("weights/estimators_: expected object array"), msg
    m = archive(_gb())
    m["weights"]["estimators_"][4][2]["xtra"]["extra"] = 1          # a later row unlike the first
    data = pack(m)
    plain = decode(data, False)
    assert agree(decode(data, True), plain) and decode(data, True)[4] == 0


def test_mutated_gb_models_decode_in_lockstep_as_without(tmp_path):
    """Random byte changes in a GradientBoosting archive's trees: in
    lockstep and without, the same objects or the same error, from a
    buffer and from a file, and loading gives the generic way's outcome."""
    kinds = _mutations_agree(mpk.dumps(_gb()), b"estimators_", 13, 600, tmp_path, load_every=5)
    assert kinds["error"] > 100 and kinds["batched"] > 15 and kinds["ok"] > kinds["batched"], kinds


def test_every_prefix_of_a_forest_is_the_same_error():
    data = mpk.dumps(RandomForestClassifier(n_estimators=4, max_depth=2, random_state=0).fit(X, Y))
    for cut in range(data.index(b"estimators_"), len(data)):
        got = decode(data[:cut], True)
        assert got[0] == "error" and got == decode(data[:cut], False), cut


def test_holes_decode_as_the_plain_decoding_does():
    """A hand-made hook: holes holding a vocabulary (str keys, checked as
    one), a list under estimators_ (in lockstep itself) and a long bin
    (a bytearray), and fixed values of each kind the decoder compares
    without decoding them (nil, bools, small ints, short str and bin, keys)
    or by decoding them (floats, negative and big ints, long strings)."""
    hole = F.HOLE

    def hook(first):
        if first.get(b"kind") != b"tree-like":
            return None
        pattern = dict(first)
        for k in (b"vocabulary_", b"estimators_", b"data", b"n"):
            pattern[k] = hole
        return pattern, hole, lambda items, offsets: F.Batch(items, pattern, None, offsets)

    def item(i):
        return {"kind": "tree-like", "nil": None, "t": True, "f": False, "small": 7, "neg": -3, "big": 2**40,
                "x": 1.5, "s": "short", "b": b"bin", "long": "L" * 40, "lst": [1, [2, "three"]],
                "vocabulary_": {f"w{i}": 0, "é": 1}, "estimators_": [{"kind": "leaf"}] * 4,
                "data": bytes([i]) * 70_000, "n": i}
    data = msgpack.packb({"estimators_": [item(i) for i in range(5)]}, use_bin_type=True)
    obj, end, vocabs, _ = C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext, (F.LOCK_KEYS, hook))
    plain, _, pvocabs, _ = C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext)
    batch = obj[b"estimators_"]
    assert type(batch) is F.Batch and end == len(data) and len(vocabs) == len(pvocabs) == 5
    assert same([batch.item(i) for i in range(5)], plain[b"estimators_"])
    assert type(batch.items[3][2]) is bytearray and batch.items[3][0] == {"w3": 0, "é": 1}
    # a str and a bin of the same bytes decode alike (bytes): still in lockstep
    for key, value, kept in [(b"nil", 0, 0), (b"t", 1, 0), (b"f", None, 0), (b"small", 7.0, 0), (b"neg", -4, 0),
                             (b"big", 2**40 + 1, 0), (b"x", 1.25, 0), (b"s", b"shorT", 0), (b"b", "bin", 1),
                             (b"b", "bim", 0), (b"long", "L" * 41, 0), (b"lst", [1, [2, "3"]], 0)]:
        m = msgpack.unpackb(data, strict_map_key=False, raw=True)
        m[b"estimators_"][3][key] = value
        d = msgpack.packb(m, use_bin_type=True)
        obj = C.unpack(d, _unpack.TEXT_MAPS, _unpack._ext, (F.LOCK_KEYS, hook))[0]
        assert (type(obj[b"estimators_"]) is F.Batch) == kept, key     # else decoded again without
        assert same(expand(obj), C.unpack(d, _unpack.TEXT_MAPS, _unpack._ext)[0]), key


def test_a_pipe_is_not_decoded_in_lockstep():
    data = mpk.dumps(RandomForestClassifier(n_estimators=5, max_depth=2, random_state=0).fit(X, Y))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, data)
        os._exit(0)
    os.close(w)
    try:
        obj = C.unpack_fd(r, _unpack.TEXT_MAPS, _unpack._ext, lock(data))[0]
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    assert type(obj[b"weights"][b"estimators_"]) is list
    assert same(obj, C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext)[0])


@pytest.mark.parametrize("lockstep", [5, (F.LOCK_KEYS,), ({b"estimators_"}, F.lockstep_hook(None)), (F.LOCK_KEYS, 3)],
                         ids=["int", "short", "set", "not callable"])
def test_a_bad_lockstep_argument_is_a_type_error(lockstep):
    with pytest.raises(TypeError):
        C.unpack(b"\xc0", None, _unpack._ext, lockstep)


def test_a_hook_giving_something_else_is_a_type_error():
    data = msgpack.packb({"estimators_": [{"a": 1}] * 4})
    for spec in [(1, 2), (1, 2, 3), (1, 2, 3, len), (1, 2, len, 3, 4)]:
        with pytest.raises(TypeError, match="pattern, hole"):
            C.unpack(data, None, _unpack._ext, (F.LOCK_KEYS, lambda first: spec))


def _bad_links_in_tree(i):
    """A forest archive whose tree i has a node that is its own child."""
    m = archive(RandomForestClassifier(n_estimators=6, max_depth=3, random_state=0).fit(X, Y))
    t = m["weights"]["estimators_"][i]["weights"]["tree_"]["weights"]
    left = np.frombuffer(t["children_left"][b"data"], dtype=t["children_left"][b"type"]).copy()
    left[0] = 0
    t["children_left"][b"data"] = left.tobytes()
    return pack(m)


def test_a_tree_not_built_as_it_came_is_read_again_and_named(tmp_path):
    """A later tree whose links are not a tree's is not built while it is
    decoded: the batch is left, each tree read again from the input and
    built the generic way, which names it -- from bytes and from a file."""
    data = _bad_links_in_tree(4)
    batch = C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext, lock(data))[0][b"weights"][b"estimators_"]
    assert [type(x) for x in batch.items[1:]] == [F.Prebuilt] * 3 + [tuple] + [F.Prebuilt]
    want = "weights/estimators_/4/weights/tree_/weights/children_left/0"
    with pytest.raises(mpk.FormatError, match=want):
        mpk.loads(data)
    (tmp_path / "f.mpk").write_bytes(data)
    with pytest.raises(mpk.FormatError, match=want):
        mpk.load(tmp_path / "f.mpk")


def test_a_tree_that_changed_before_it_was_read_again_is_named(monkeypatch):
    """The input's bytes of a tree read again no longer one object (a file
    changed under the load): a FormatError naming the tree read."""
    data = _bad_links_in_tree(4)
    reread = _unpack.rereader(b"\xc1" * len(data))       # every byte now not MsgPack
    monkeypatch.setattr(_unpack, "rereader", lambda source: reread)
    with pytest.raises(mpk.FormatError, match=r"weights/estimators_/1: changed while it was read"):
        mpk.loads(data)


def _forest_bytes():
    return mpk.dumps(RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, Y))


def test_a_hole_nested_to_the_limit_is_refused_as_without_lockstep():
    """A later tree's parameter (a hole, decoded between two runs of the
    first tree's bytes) holding lists nested around the decoder's limit
    (1,024 containers, counting the forest's maps and lists around it):
    accepted and refused exactly where the decoding without lockstep is."""
    marker = b"@" * 40
    m = msgpack.unpackb(_forest_bytes(), raw=True, strict_map_key=False)
    m[b"weights"][b"estimators_"][2][b"params"][b"max_depth"] = marker
    packed = msgpack.packb(m, use_bin_type=True)
    at = packed.index(marker) - 2          # its bin 8 header
    outcomes = set()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)           # (this file's own walks of what decoded)
    try:
        for depth in range(1012, 1024):
            d = packed[:at] + b"\x91" * depth + b"\xc0" + packed[at + 2 + len(marker):]
            got, plain = decode(d, True), decode(d, False)
            assert agree(got, plain), (depth, got[:2], plain[:2])
            outcomes.add(plain[0])
    finally:
        sys.setrecursionlimit(limit)
    assert outcomes == {"ok", "error"}     # the limit falls inside the range


def test_a_later_tree_in_another_encoding_is_decoded_again_without_lockstep():
    """The runs of a later tree are compared as bytes: the same values in
    another encoding (a class name as str 8, not fixstr) are not in
    lockstep, and the list is decoded again without it -- the same objects."""
    data = _forest_bytes()
    name = b"\xb6DecisionTreeClassifier"
    at = data.index(name, data.index(b"estimators_"))
    at = data.index(name, at + 1)              # the second tree's
    other = data[:at] + b"\xd9\x16" + name[1:] + data[at + len(name):]
    for d in (data, other):
        got, plain = decode(d, True), decode(d, False)
        assert got[0] == "ok" and agree(got, plain)
    assert decode(data, True)[4] > 0 and decode(other, True)[4] == 0


def test_a_first_tree_past_the_read_window_is_compiled_from_the_file(tmp_path):
    """A first tree of about 490 KB: decoding it moves the file's 256 KiB
    window past its start, so its bytes are read again (pread) to compile
    the runs. Then too a later tree in another encoding is decoded again
    without lockstep (runs compared as bytes, not values), and the forest
    as it is goes in lockstep; from a file both decode as from bytes."""
    rng = np.random.RandomState(0)
    x = rng.rand(20000, 5)
    data = mpk.dumps(RandomForestClassifier(n_estimators=4, random_state=0).fit(x, rng.randint(0, 2, 20000)))
    first = data.index(b"estimators_")
    name = b"\xb6DecisionTreeClassifier"
    second = data.index(name, data.index(name, first) + 1)
    assert second - first > 300_000
    other = data[:second] + b"\xd9\x16" + name[1:] + data[second + len(name):]
    for d, batched in ((data, True), (other, False)):
        got, plain = decode_file(d, tmp_path / "m.mpk"), decode(d, False)
        assert got[0] == "ok" and agree(got, plain)
        assert (got[4] > 0) == batched


@pytest.mark.parametrize("change", ["value", "size", "key"])
def test_a_pattern_unlike_its_first_item_still_decodes_as_without_lockstep(change):
    """The runs are compiled from the first item's bytes with the hook's
    pattern; a pattern that is not the first item with holes (a fixed value,
    a map's size or a key of its own) compiles to nothing, the items are
    matched value by value, and the result is still the plain decoding."""
    hole = F.HOLE

    def hook(first):
        pattern = dict(first)
        pattern[b"n"] = hole
        if change == "value":
            pattern[b"kind"] = b"other"
        elif change == "size":
            pattern[b"extra"] = 1
        else:
            pattern = {(b"kinD" if k == b"kind" else k): v for k, v in pattern.items()}
        return pattern, hole, lambda items, offsets: F.Batch(items, pattern, None, offsets)

    items = [{"kind": "t", "n": i, "x": [1.5, None]} for i in range(5)]
    data = msgpack.packb({"estimators_": items}, use_bin_type=True)
    got = C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext, (F.LOCK_KEYS, hook))[0]
    assert same(expand(got), C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext)[0])
