"""mpk's C part (python/mpk/_cmpk.c, _cmpk_tree.c) against what it replaces.

unpack must return what msgpack.unpackb(raw=True, strict_map_key=False)
returns -- for every fixture, every prefix of one, thousands of mutated
archives and hostile lengths -- but for the keys of maps stored under
vocabulary_, which are str.  tree_columns must accept exactly the node tables
that _nodes.check_links (numpy) accepts and lay them out as numpy does.
A load with the C part and one without give the same model."""

import glob
import os
import random
import re
import sys
import warnings

import msgpack
import numpy as np
import pytest

import mpk
from mpk import _forest as F
from mpk import _nodes as N
from mpk import _unpack
from mpk_testutil import (AT, CAPPED, GOOD, KEYS, caps_of, compact, dtypes_of, node_array_mutations,
                          run_capped, tree_weights)

C = _unpack._cmpk
pytestmark = pytest.mark.skipif(C is None and not os.environ.get("MPK_REQUIRE_C"),
                                reason="mpk's C part is not built (meson compile -C build)")
FIXTURES = os.environ.get("MPFS_FIXTURES", os.path.join(os.path.dirname(__file__), "../../../shared/fixtures"))
SEEDS = sorted(glob.glob(os.path.join(FIXTURES, "*.mpk")))


def test_the_c_part_is_in_use_where_it_is_required():
    # tests/run sets MPK_REQUIRE_C: a build that lost the C part fails here
    # instead of quietly testing only the fallback
    if os.environ.get("MPK_REQUIRE_C") and not os.environ.get("MPK_PURE"):
        assert _unpack.ACCELERATED and C is not None


BIG_BIN = 64 * 1024     # _cmpk_unpack.c: a bin payload this long decodes to a bytearray


def reference(data):
    try:
        return ("ok", msgpack.unpackb(data, raw=True, strict_map_key=False, use_list=True), len(data))
    except msgpack.ExtraData as e:
        return ("ok", e.unpacked, len(data) - len(e.extra))
    except (TypeError, ValueError):     # TypeError: an unhashable key
        return ("error",)


def ours(data, text_maps=None):
    try:
        obj, end, _, _ = C.unpack(data, text_maps, _unpack._ext)
        return ("ok", obj, end)
    except (TypeError, ValueError):
        # which of the two can differ: a map claiming more entries than
        # there are bytes left is refused before msgpack would reach an
        # unhashable key inside it; mpk.load reports both alike
        return ("error",)


def same(a, b):
    """Equal, with the same types all the way down (1 != 1.0 != True), NaN
    equal to NaN, and dict keys in the same order."""
    if {type(a), type(b)} == {bytes, bytearray} and len(a) >= BIG_BIN:
        return a == b           # a long bin: a bytearray from ours (test_long_bins_are_bytearrays)
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return a == b or (a != a and b != b)
    if type(a) is list:
        return len(a) == len(b) and all(map(same, a, b))
    if type(a) is dict:
        return len(a) == len(b) and all(map(same, a, b)) and all(map(same, a.values(), b.values()))
    return a == b


def agree(data):
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))     # same() on 1025 levels
    r, o = reference(data), ours(data)
    return r[0] == o[0] and (r[0] != "ok" or (same(r[1], o[1]) and r[2] == o[2]))


@pytest.mark.parametrize("path", SEEDS, ids=os.path.basename)
def test_fixtures_decode_as_msgpack_does(path):
    data = open(path, "rb").read()
    assert agree(data)
    for cut in sorted(set(random.Random(path).sample(range(len(data)), min(len(data), 200)))):
        assert agree(data[:cut]), cut


def test_mutated_archives_decode_as_msgpack_does():
    rnd = random.Random(5)
    seeds = [open(p, "rb").read() for p in SEEDS if os.path.getsize(p) < 100_000]
    assert seeds
    for _ in range(4000):
        d = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 4)):
            mutate_at(rnd, d, rnd.randrange(len(d) + 1), 0.5, 0.7, 9)
        assert agree(bytes(d)), bytes(d)[:64]


def mutate_at(rnd, d, i, set_below, cut_below, most_inserted):
    """One random change of d at i: a byte set (with probability
    set_below), the rest cut off (up to cut_below), or 1..most_inserted
    random bytes inserted."""
    op = rnd.random()
    if op < set_below and i < len(d):
        d[i] = rnd.randrange(256)
    elif op < cut_below:
        del d[i:]
    else:
        d[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, most_inserted)))


def test_mutated_archives_with_long_bins_decode_as_msgpack_does(tmp_path):
    """Long bins (bytearrays) under mutation, from a buffer and from a file:
    their length fields, the bytes around them, truncation inside them."""
    rnd = random.Random(9)
    base = msgpack.packb({"a": b"\x01" * BIG_BIN, "b": [b"\x02" * (BIG_BIN + 3), {"c": b"\x03" * 300_000}],
                          "d": "t" * BIG_BIN}, use_bin_type=True)
    marks = [m.start() for m in re.finditer(b"\xc6", base)]      # the bin 32 headers
    assert len(marks) >= 3
    for n in range(300):
        d = bytearray(base)
        for _ in range(rnd.randint(1, 3)):
            i = rnd.choice(marks) + rnd.randrange(6) if rnd.random() < 0.6 else rnd.randrange(len(d))
            mutate_at(rnd, d, i, 0.6, 0.8, 5)
        assert agree(bytes(d)), n
        if n % 10 == 0:
            assert agree_fd(bytes(d), tmp_path), n


@pytest.mark.parametrize("data", [
    b"", b"\xc1", b"\x92\x01", b"\xd9\x05ab", b"\x01\x02", b"\x81\x90\x01", b"\x81\x80\x01", b"\x81\xc3\x01",
    b"\x81\xcb" + bytes(8) + b"\x01", b"\xca\x3f\x80\x00\x00", b"\xcf" + b"\xff" * 8, b"\xd3\x80" + bytes(7),
    b"\xd0\x80", b"\xd6\xff\x00\x00\x00\x01", b"\xd5\xff\x00\x01", b"\xc7\x03\x05abc", b"\xc7\x03\x05ab",
    b"\xd8\x01" + bytes(16), b"\xc4\x00", b"\xdc\x00\x00", b"\xde\x00\x01\xa1k\xc0",
    b"\x91" * 1024 + b"\xc0", b"\x91" * 1025 + b"\xc0", b"\x81\xc0" * 1024 + b"\xc0", b"\x81\xc0" * 1025 + b"\xc0",
], ids=repr)
def test_edge_cases_decode_as_msgpack_does(data):
    assert agree(data)


# every length field claiming 4 GiB of what follows, and nothing following
HUGE = [b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff", b"\xc6\xff\xff\xff\xff",
        b"\xc9\xff\xff\xff\xff\x01", b"\x81\xabvocabulary_\xdf\xff\xff\xff\xff"]


def ours_fd(data, tmp_path, text_maps=None):
    """unpack_fd of data written to a file: as ours(), and whether more
    bytes follow the object."""
    path = tmp_path / "in.mpk"
    path.write_bytes(data)
    with open(path, "rb") as f:
        try:
            obj, end, _, more = C.unpack_fd(f.fileno(), text_maps, _unpack._ext)
        except (TypeError, ValueError):
            return ("error",), None
    return ("ok", obj, end), more


def agree_fd(data, tmp_path):
    a = ours(data)
    b, more = ours_fd(data, tmp_path)
    return a[0] == b[0] and (a[0] != "ok" or (same(a[1], b[1]) and a[2] == b[2] and more == (a[2] != len(data))))


def test_a_file_decodes_as_its_bytes(tmp_path):
    """unpack_fd reads through a 256 KiB window and reads longer payloads
    straight into their bytes: every fixture, every prefix of one, mutated
    archives, and payloads and keys on both sides of the window's size."""
    rnd = random.Random(3)
    for p in SEEDS:
        data = open(p, "rb").read()
        assert agree_fd(data, tmp_path), p
        assert agree_fd(data + b"\xc0", tmp_path), p               # a byte after the object
        for cut in rnd.sample(range(len(data)), min(len(data), 20)):
            assert agree_fd(data[:cut], tmp_path), (p, cut)
    w = 256 * 1024
    big = {"a": b"x" * (w - 7), "b": b"y" * (w + 1), "c": [b"z" * w] * 3, "d": "é" * w, "e": list(range(100_000)),
           "vocabulary_": {"k" * (w + 5): 0, "é" * w: 1, b"\xff" * (w + 3): 2, "s": 3}}
    data = msgpack.packb(big, use_bin_type=True)
    assert agree_fd(data, tmp_path)
    b, more = ours_fd(data, tmp_path, _unpack.TEXT_MAPS)
    assert b[1] == ours(data, _unpack.TEXT_MAPS)[1] and not more
    for cut in (len(data) - 1, len(data) // 2, w, w + 1, 2 * w + 17):
        assert agree_fd(data[:cut], tmp_path), cut
    assert agree_fd(msgpack.packb(b"q" * (3 * w)) + b"\x01", tmp_path)
    # a vocabulary of many short terms: keys on every window boundary
    vocab = {f"term{i:07d}" + "é" * (i % 3): i for i in range(60_000)}
    data = msgpack.packb({"xtra": {"vocabulary_": vocab}}, use_bin_type=True)
    b, more = ours_fd(data, tmp_path, _unpack.TEXT_MAPS)
    assert b[1][b"xtra"][b"vocabulary_"] == vocab and not more


def test_a_pipe_decodes_too():
    r, w = os.pipe()
    data = msgpack.packb({"a": [1, 2.5, b"x" * 300_000]}, use_bin_type=True)
    pid = os.fork()
    if pid == 0:            # the writer
        os.close(r)
        os.write(w, data)
        os._exit(0)
    os.close(w)
    try:
        obj, end, _, more = C.unpack_fd(r, None, _unpack._ext)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    assert obj == msgpack.unpackb(data, raw=True) and end == len(data) and not more


def test_a_file_that_ends_early_is_incomplete_input():
    """A writer that stops half way through a long payload (as a file cut
    short under a load): an error, and nothing read past what came."""
    r, w = os.pipe()
    data = msgpack.packb({"a": b"x" * 600_000}, use_bin_type=True)
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, data[:400_000])
        os._exit(0)
    os.close(w)
    try:
        with pytest.raises(ValueError, match="incomplete input"):
            C.unpack_fd(r, None, _unpack._ext)
    finally:
        os.close(r)
        os.waitpid(pid, 0)


def test_a_read_error_is_an_os_error(tmp_path):
    d = os.open(tmp_path, os.O_RDONLY)          # a directory: read() fails with EISDIR
    try:
        with pytest.raises(OSError):
            C.unpack_fd(d, None, _unpack._ext)
    finally:
        os.close(d)


@pytest.mark.parametrize("data", HUGE, ids=repr)
def test_hostile_lengths_are_refused(data):
    with pytest.raises(ValueError, match="incomplete input"):
        C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext)


def test_a_long_list_claim_costs_memory_as_it_is_decoded():
    """A list of 10M elements that the bytes left allow but that fails at
    its first element allocates nothing like 10M slots (80 MB) first."""
    import tracemalloc
    n = 10_000_000
    data = b"\xdd" + n.to_bytes(4, "big") + b"\xc1" + b"\xc0" * (n - 1)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="0xc1 at byte 5"):
            C.unpack(data, None, _unpack._ext)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    # and a real one decodes whole
    data = b"\xdd" + n.to_bytes(4, "big") + b"\x01" * n
    assert ours(data) == ("ok", [1] * n, len(data))


@CAPPED
def test_hostile_lengths_fail_before_allocating_under_a_memory_limit(tmp_path):
    """Each claimed length is refused from the bytes left -- in a buffer,
    and in a file by its size -- in a child process whose address space is
    capped at 1 GiB (a decoder that allocated first would die there, not
    raise)."""
    prog = ("from mpk import _unpack\n"
            f"for d in {HUGE!r}:\n"
            "    try:\n"
            "        _unpack._cmpk.unpack(d, _unpack.TEXT_MAPS, _unpack._ext)\n"
            "    except ValueError as e:\n"
            "        print('ValueError', e)\n"
            "    open('f.mpk', 'wb').write(d)\n"
            "    f = open('f.mpk', 'rb')\n"
            "    try:\n"
            "        _unpack._cmpk.unpack_fd(f.fileno(), _unpack.TEXT_MAPS, _unpack._ext)\n"
            "    except ValueError as e:\n"
            "        print('ValueError', e)\n")
    r = run_capped(prog, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("ValueError") == 2 * len(HUGE) and "incomplete input" in r.stdout, r.stdout


def test_maps_under_vocabulary_have_str_keys_and_nothing_else_changes():
    doc = {"xtra": {"vocabulary_": {"é": 0, "b": 1, b"\xff": 2, 7: 3},
                    "other": {"a": {"vocabulary_": [1, 2]}}},
           "vocabulary_": {"k": {"x": 1}}, "types": {"vocabulary_": "vocab"}}
    data = msgpack.packb(doc, use_bin_type=True)
    got = ours(data, _unpack.TEXT_MAPS)[1]
    # str-typed and bin-typed keys alike: str when valid UTF-8, else bytes
    assert list(got[b"xtra"][b"vocabulary_"]) == ["é", "b", b"\xff", 7]
    # a list under vocabulary_ and a map nested inside one are as msgpack gives them
    assert got[b"xtra"][b"other"] == {b"a": {b"vocabulary_": [1, 2]}}
    assert got[b"vocabulary_"] == {"k": {b"x": 1}}
    assert got[b"types"] == {b"vocabulary_": b"vocab"}
    # and bin keys too (an archive from a writer with use_bin_type=False has str)
    data = msgpack.packb({b"vocabulary_": {b"abc": 0}}, use_bin_type=True)
    assert ours(data, _unpack.TEXT_MAPS)[1] == {b"vocabulary_": {"abc": 0}}


def test_long_bins_are_bytearrays_and_nothing_else_is(tmp_path):
    """A bin payload of BIG_BIN bytes or more, but for a map key, decodes
    to a bytearray (mpk's arrays take it over), from a buffer, from a file's
    window and read straight from the file; str, ext data, keys and shorter
    bins stay bytes."""
    w = 256 * 1024
    obj = {"str": "x" * BIG_BIN, "bin": b"y" * BIG_BIN, "short": b"z" * (BIG_BIN - 1), b"k" * BIG_BIN: 1,
           "ext": msgpack.ExtType(1, b"q" * BIG_BIN), "long": b"w" * (3 * w), "list": [b"v" * BIG_BIN] * 2,
           "vocabulary_": {b"\xff" * BIG_BIN: 0}}
    data = msgpack.packb(obj, use_bin_type=True)
    for got in (ours(data, _unpack.TEXT_MAPS)[1], ours_fd(data, tmp_path, _unpack.TEXT_MAPS)[0][1]):
        kinds = {k: type(v).__name__ for k, v in got.items() if k != b"k" * BIG_BIN}
        assert kinds == {b"str": "bytes", b"bin": "bytearray", b"short": "bytes", b"ext": "ExtType",
                         b"long": "bytearray", b"list": "list", b"vocabulary_": "dict"}
        assert type(got[b"ext"].data) is bytes and got[b"k" * BIG_BIN] == 1
        assert [type(v) for v in got[b"list"]] == [bytearray] * 2 and got[b"list"][0] is not got[b"list"][1]
        assert [type(k) for k in got[b"vocabulary_"]] == [bytes]
        assert got == msgpack.unpackb(data, raw=True, strict_map_key=False)


def test_arrays_take_over_long_bins_and_never_share_them():
    """An array decoded from a long bin is the decoder's bytearray itself:
    writable, not copied; one decoded from the same map again is a copy."""
    from mpk import _arrays as A
    a = np.arange(BIG_BIN // 8 * 3, dtype="<f8").reshape(3, -1)
    packed = {"nd": True, "type": "<f8", "kind": b"", "shape": list(a.shape), "data": a.tobytes()}
    m = ours(msgpack.packb(packed, use_bin_type=True))[1]
    assert type(m[b"data"]) is bytearray
    x = A.decode_compact(m, "")
    y = A.decode_compact(m, "")
    assert np.array_equal(x, a) and np.array_equal(y, a) and x.flags.writeable and y.flags.writeable
    assert np.shares_memory(x, np.frombuffer(m[b"data"], dtype="<f8")) and not np.shares_memory(x, y)
    x[0, 0] = -1
    assert y[0, 0] == 0


@pytest.mark.parametrize("n", [87382, 100_000, 300_000])
def test_a_big_map_is_no_bigger_than_one_grown_from_empty(n):
    """Past CPython's largest presize (2^17 slots) a map is grown as it is
    filled, as pickle grows its dicts: presized and then resized, a
    100k-entry vocabulary was a third larger."""
    d = {f"t{i}": i for i in range(n)}
    for text_maps in (None, _unpack.TEXT_MAPS):
        got = ours(msgpack.packb({"vocabulary_": d}), text_maps)[1][b"vocabulary_"]
        grown = {}
        for k, v in got.items():       # the same keys (str or bytes: their dicts differ in size)
            grown[k] = v
        assert len(got) == n and sys.getsizeof(got) <= sys.getsizeof(grown)


def test_short_strings_are_shared_and_still_bytes():
    obj = ours(msgpack.packb([{"nd": True}, {"nd": False}]))[1]
    (a,), (b,) = obj[0], obj[1]
    assert a is b and type(a) is bytes and a == b"nd"


@pytest.mark.parametrize("a,b", [
    (1, 1.0), (1, True), (0, False), (0.0, -0.0), (float("nan"), float("nan")), (b"a", "a"), (None, 0),
    ([1, 2], (1, 2)), ([1, [2.0]], (1, (2.0,))), ({b"a": 1, b"b": 2}, {b"b": 2, b"a": 1}), ({b"a": 1}, {b"a": 1.0}),
    ([], ()), ({}, {}), (2**63, 2**63), (-1, -1), ([b"x", {b"k": [None, True]}], [b"x", {b"k": [None, True]}]),
    (msgpack.ExtType(1, b"z"), msgpack.ExtType(1, b"z")), (msgpack.ExtType(1, b"z"), msgpack.ExtType(2, b"z")),
])
def test_identical_is_equality_of_the_packed_bytes(a, b):
    def pack(v):
        return msgpack.packb(v, use_bin_type=True)
    assert C.identical(a, b) is (pack(a) == pack(b))
    assert C.identical(b, a) is (pack(a) == pack(b))


def test_identical_on_decoded_archives_and_theirnode_array_mutations():
    rnd = random.Random(9)
    docs = [ours(open(p, "rb").read()) for p in SEEDS if os.path.getsize(p) < 100_000]
    docs = [d[1] for d in docs if d[0] == "ok" and isinstance(d[1], dict)]
    assert docs
    for _ in range(300):
        a = rnd.choice(docs)
        b = msgpack.unpackb(msgpack.packb(a, use_bin_type=True), raw=True, strict_map_key=False)
        assert C.identical(a, b)
        key = rnd.choice(list(b))
        b[key] = rnd.choice([1, 1.0, True, None, b"x", [b[key]], -0.0])
        assert C.identical(a, b) is (msgpack.packb(a, use_bin_type=True) == msgpack.packb(b, use_bin_type=True))


def _caps_of_python(m, pattern, layout, monkeypatch):
    with monkeypatch.context() as mp:
        mp.setattr(_unpack, "holes", None)
        return F.caps_of(m, pattern, layout)


def test_holes_are_what_filling_the_pattern_back_in_finds(monkeypatch):
    """C.holes(value, pattern, hole) (a later tree's hole values, decoded
    without lockstep: GradientBoosting's trees, a load without the C
    decoder's lockstep) against the Python way, the pattern filled with
    the values and compared (_unpack.identical): on every tree of a forest
    and a boosting ensemble, and on 600 random changes to one (a value of
    another type or bits, a key more or less, keys in another order, a
    list for a map, -0.0, NaN, a hole's value anything)."""
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    x = np.random.RandomState(0).rand(60, 4)
    forest = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(x, np.arange(60) % 3)
    boost = GradientBoostingRegressor(n_estimators=5, max_depth=2, random_state=0).fit(x, x[:, 0])
    rnd = random.Random(10)
    checked = {"holes": 0, "none": 0}
    for est in (forest, boost):
        raw = msgpack.unpackb(mpk.dumps(est), raw=True, strict_map_key=False)[b"weights"][b"estimators_"]
        trees = [t for row in raw for t in row] if type(raw[0]) is list else raw
        pattern, layout = F._spec(trees[0])
        for t in trees:
            got = C.holes(t, pattern, F.HOLE)
            assert got is not None and got == _caps_of_python(t, pattern, layout, monkeypatch)
        for _ in range(300):
            t = msgpack.unpackb(msgpack.packb(rnd.choice(trees), use_bin_type=True), raw=True, strict_map_key=False)
            where = t
            for _ in range(rnd.randrange(4)):       # down to a map inside
                inner = [k for k, v in where.items() if type(v) is dict and v]
                if not inner:
                    break
                where = where[rnd.choice(inner)]
            key = rnd.choice(list(where))
            what = rnd.randrange(4)
            if what == 0:
                where[key] = rnd.choice([1, 1.0, True, None, b"x", -0.0, float("nan"), [where[key]], (), {}])
            elif what == 1:
                del where[key]
            elif what == 2:
                where[b"extra"] = 1
            else:
                v = where.pop(key)
                where[key] = v          # the key moved to the end
            got = C.holes(t, pattern, F.HOLE)
            want = _caps_of_python(t, pattern, layout, monkeypatch)
            assert type(got) is type(want) and (got is None or C.identical(got, want)), (key, what)
            checked["none" if got is None else "holes"] += 1
    assert checked["none"] > 150 and checked["holes"] > 60, checked


def test_holes_refuse_what_they_cannot_walk():
    assert C.holes([1, 2], [1, F.HOLE], F.HOLE) == (2,)
    assert C.holes((1, 2), [1, F.HOLE], F.HOLE) == (2,)            # a tuple packs as a list
    assert C.holes({b"a": 1}, {b"a": F.HOLE}, F.HOLE) == (1,)
    assert C.holes({b"b": 1}, {b"a": F.HOLE}, F.HOLE) is None       # keys are never holes
    assert C.holes([1], [F.HOLE, F.HOLE], F.HOLE) is None
    deep = F.HOLE
    for _ in range(2000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        C.holes(deep, deep, object())
    with pytest.raises(TypeError):
        C.holes(1, 2)


@pytest.mark.parametrize("d,want", [
    ({}, True), ({"a": 0}, True), ({"a": 2, "b": 0, "c": 1}, True), ({"a": 1}, False), ({"a": 0, "b": 0}, False),
    ({"a": -1, "b": 0}, False), ({"a": 0, "b": 2}, False), ({"a": 2**63, "b": 0}, False), ({"a": True}, False),
    ({"a": 0.0}, False), ({b"\xff": 0}, False), ({0: 0}, False), ({"a": 0, "b": "1"}, False),
    ({"a": 0, "b": [1]}, False), ({"a": 0, "b": {"c": 1}}, False), ({"é": 0, b"b": 1}, True),
])
def test_vocabularies_are_checked_while_decoding(d, want):
    data = msgpack.packb({"xtra": {"vocabulary_": d}}, use_bin_type=True)
    obj, _, vocabs, _ = C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext)
    assert len(vocabs) == want and (not want or vocabs[0] is obj[b"xtra"][b"vocabulary_"])


def _vocab_bytes(entries):
    """A model map whose vocabulary_ holds entries ((key bytes, value
    bytes): each already packed, so that every encoding can be chosen)."""
    n = len(entries)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + n.to_bytes(2, "big")
    return b"\x81\xabvocabulary_" + head + b"".join(k + v for k, v in entries)


def _key(s, how):
    b = s if isinstance(s, bytes) else s.encode()
    return {"fix": bytes([0xa0 | len(b)]) + b, "str8": b"\xd9" + bytes([len(b)]) + b,
            "str16": b"\xda" + len(b).to_bytes(2, "big") + b, "bin8": b"\xc4" + bytes([len(b)]) + b}[how]


def _int(i, how):
    return {"fix": lambda: bytes([i]), "u8": lambda: b"\xcc" + i.to_bytes(1, "big"),
            "u16": lambda: b"\xcd" + i.to_bytes(2, "big"), "u32": lambda: b"\xce" + i.to_bytes(4, "big"),
            "u64": lambda: b"\xcf" + i.to_bytes(8, "big"), "i8": lambda: b"\xd0" + i.to_bytes(1, "big", signed=True),
            "i32": lambda: b"\xd2" + i.to_bytes(4, "big", signed=True)}[how]()


@pytest.mark.parametrize("entries,vocab", [
    ([(_key("a", "fix"), _int(0, "fix"))], True),
    ([(_key("a", "str8"), _int(1, "u8")), (_key("b", "bin8"), _int(0, "u16"))], True),
    ([(_key("x" * 31, "fix"), _int(1, "u32")), (_key("y" * 255, "str8"), _int(0, "fix"))], True),
    ([(_key("", "fix"), _int(0, "u8")), (_key("z", "str16"), _int(1, "u64"))], True),
    ([(_key("a", "fix"), _int(0, "i8")), (_key("b", "fix"), _int(1, "i32"))], True),    # signed encodings
    ([(_key("é", "fix"), _int(0, "fix")), (_key(b"\xff", "bin8"), _int(1, "fix"))], False),  # not ASCII
    ([(_key("a", "fix"), _int(1, "u32")), (_key("b", "fix"), _int(1, "u8"))], False),      # 1 twice
    ([(_key("a", "fix"), _int(2**32 - 1, "u32")), (_key("b", "fix"), _int(0, "fix"))], False),
    ([(_key("a", "fix"), _int(0, "fix")), (_key("a", "str8"), _int(1, "fix"))], False),   # a key twice
    ([(_key("a", "fix"), b"\xcb" + bytes(8)), (_key("b", "fix"), _int(0, "fix"))], False),   # a float
    ([(_key("a", "fix"), _int(0, "fix")), (b"\x07", _int(1, "fix"))], False),               # an int key
    ([(_key("a", "fix"), _int(0, "fix")), (_key("b", "fix"), b"\x91\x01")], False),         # a list
])
def test_vocabulary_entries_decode_as_msgpack_does_in_any_encoding(entries, vocab, tmp_path):
    """A vocabulary's entries (a short ASCII key and a small non-negative
    int: _cmpk_unpack.c's vocabulary entry at hand) and those next to
    them in any other encoding decode as msgpack does, keys as str, from
    bytes and from a file, and the map is a vocabulary or not as its
    values say."""
    data = _vocab_bytes(entries)
    want = msgpack.unpackb(data, raw=True, strict_map_key=False)[b"vocabulary_"]
    want = {_text_or_bytes(k): v for k, v in want.items()}
    for obj, vocabs in ((lambda r: (r[0], r[2]))(C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext)),
                        (lambda r: (r[0], r[2]))(_unpack_path(data, tmp_path))):
        got = obj[b"vocabulary_"]
        assert got == want and [type(k) for k in got] == [type(k) for k in want]
        assert [type(v) for v in got.values()] == [type(v) for v in want.values()]
        assert (vocabs == [got]) == vocab and len(vocabs) <= 1


def _text_or_bytes(k):
    """A text map's key as mpk's decoder gives it: str when valid UTF-8."""
    try:
        return k.decode() if isinstance(k, bytes) else k
    except UnicodeDecodeError:
        return k


def _unpack_path(data, tmp_path):
    path = tmp_path / "v.mpk"
    path.write_bytes(data)
    with open(path, "rb") as f:
        return C.unpack_fd(f.fileno(), _unpack.TEXT_MAPS, _unpack._ext)


@pytest.mark.parametrize("value", ["fix", "u8", "u16", "u32"])
def test_a_vocabulary_cut_anywhere_in_its_last_entry_is_incomplete(value, tmp_path):
    """An input that ends inside a vocabulary's last entry (its key's
    header, its key, its value's type byte or bytes) is incomplete input,
    from bytes and from a file: never read past its end."""
    data = _vocab_bytes([(_key("a", "fix"), _int(0, "fix")), (_key("bc", "str8"), _int(1, value))])
    assert C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext)[2] != []
    for cut in range(1, 1 + 2 + 2 + len(_int(1, value))):
        # (a numpy array's buffer ends where its bytes do: under ASan in
        # CI, a byte read past it is an error, where bytes have a NUL)
        exact = memoryview(np.frombuffer(data[:-cut], dtype=np.uint8).copy())
        with pytest.raises(ValueError):
            C.unpack(exact, _unpack.TEXT_MAPS, _unpack._ext)
        with pytest.raises(ValueError):
            _unpack_path(data[:-cut], tmp_path)


def test_a_vocabulary_across_the_file_window_decodes_whole(tmp_path):
    """A 60k-term vocabulary (1.2 MB) read through the 256 KiB window: the
    entries cut by its end are decoded the other way, the rest at hand."""
    rng = random.Random(3)
    terms = [("t%06d" % i) * rng.randint(1, 3) for i in range(60_000)]
    voc = {t: i for i, t in enumerate(terms)}
    rng.shuffle(terms)
    data = msgpack.packb({"vocabulary_": {t: voc[t] for t in terms}}, use_bin_type=True)
    obj, _, vocabs, _ = _unpack_path(data, tmp_path)
    assert obj[b"vocabulary_"] == voc and vocabs == [obj[b"vocabulary_"]]
    assert list(obj[b"vocabulary_"]) == terms


def test_a_key_given_twice_is_not_a_vocabulary():
    # {"a": 0, "a": 1}: two distinct indices, one entry left
    data = b"\x81\xabvocabulary_\x82\xa1a\x00\xa1a\x01"
    obj, _, vocabs, _ = C.unpack(data, _unpack.TEXT_MAPS, _unpack._ext)
    assert obj == {b"vocabulary_": {"a": 1}} and vocabs == []


def columns(weights, nl, dt, tail=(1, 2), n_features=5):
    """tree_columns of trees given as their Tree maps' weights, as mpk
    gives them to it: None unless each array is exactly a compact map of
    its dtype (_forest.exact_compact), then the C checks of shapes, data
    and links."""
    if not all(type(w) is dict and set(w) == set(KEYS) and all(
            N.exact_compact(w[k], (d,)) for k, d in zip(KEYS, dt)) for w in weights):
        return None
    return C.tree_columns([caps_of(w) for w in weights], AT, nl, dt, tail, n_features)


def tables(*pairs, widths=(8, 8, 8), n_features=5):
    """What tree_columns and tree_fill make of node tables given as (left,
    right) pairs (tree_weights), or None; with what numpy makes of them
    (_check_links), or None."""
    from sklearn.tree._tree import NODE_DTYPE
    weights = [tree_weights(i, left, right, widths) for i, (left, right) in enumerate(pairs)]
    nl = [len(left) for left, _ in pairs]
    cols = columns(weights, nl, dtypes_of(weights[0]), (1, 2), n_features)
    nodes = None
    if cols is not None:
        offsets = tuple(NODE_DTYPE.fields[f][1] for f, _ in N._COLS.values() if f)
        parts = []
        for i, n in enumerate(nl):
            buf = bytearray(b"\xff" * (n * NODE_DTYPE.itemsize + 7))
            assert C.tree_fill(buf, cols, i, offsets, NODE_DTYPE.itemsize) == n
            assert buf[n * NODE_DTYPE.itemsize:] == b"\xff" * 7       # nothing beyond the table
            parts.append(np.frombuffer(bytes(buf[:n * NODE_DTYPE.itemsize]), dtype=NODE_DTYPE))
        nodes = np.concatenate(parts)
    left = np.concatenate([np.asarray(p[0]) for p in pairs])
    right = np.concatenate([np.asarray(p[1]) for p in pairs])
    ns = np.array(nl)
    inner = N.check_links(left, right, ns, np.r_[0, np.cumsum(ns)[:-1]])
    return nodes, inner


def test_tree_tables_lay_out_what_numpy_does():
    nodes, inner = tables(GOOD, ([-1], [-1]), GOOD, widths=(4, 8, 4))
    assert nodes is not None and inner is not None
    assert nodes["left_child"].tolist() == GOOD[0] + [-1] + GOOD[0]
    assert nodes["right_child"].tolist() == GOOD[1] + [-1] + GOOD[1]
    assert nodes["feature"].tolist() == [0, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6]
    assert nodes["threshold"].tolist() == [0, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6]
    assert nodes["n_node_samples"].tolist() == [0, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("pairs", [
    (([1, 3, -1, -1, -1], [2, 5, -1, -1, -1]), GOOD),                  # a child in the next tree
    (GOOD, ([1, -1, -1], [2, -1, -1]), ([1, -1], [-1, -1])),           # one child a leaf marker
    (GOOD, ([1, 2, -1, -1, -1], [2, 4, -1, -1, -1])),                  # two parents
    (GOOD, ([1, 0, -1, -1, -1], [2, 4, -1, -1, -1])),                  # the root as a child
    (GOOD, ([1, 3, -1, 1, -1], [2, 4, -1, 2, -1])),                    # a cycle
    (([5, 2, 1, -1, -1, -1, -1], [6, 3, 4, -1, -1, -1, -1]),),         # a child before its parent
    (([1, -1, -1], [1, -1, -1]),),                                     # both children the same node
    (([1, -1], [-1, -1]),),
    (([-2, -1, -1], [1, -1, -1]),),
    (([1, -1, -1, -1, -1], [2, -1, -1, -1, -1]),),                     # unreachable nodes
    (([1, 2**33 + 3, -1, -1, -1], [2, 4, -1, -1, -1]),),               # wraps in 32 bits
    (([1, 3, 3, -1, -1], [2, 4, 4, -1, -1]),),                         # a third parent: 3 and 4 twice
    (([1, 3, -1, -1, -1], [2, 5, -1, -1, -1]),),                       # a child one past the table
    (([2, -1, 3, -1, -1], [3, -1, 4, -1, -1]),),                       # node 1 no one's child, 3 twice
    # a wild right child where the left one is fine and the count of
    # children right: among the last nodes (not four at a time), and among
    # the first (run under ASan in CI: a child index never reaches the
    # marks unchecked)
    (([1, 3, -1, -1, 5, -1, -1], [2, 4, -1, -1, 99, -1, -1]),),
    (([1, 3, -1, -1, 5, -1, -1], [2, 4, -1, -1, -7, -1, -1]),),
    (([1, 3, 5, -1, -1, 7, -1, -1, -1], [2, 4, 99, -1, -1, 8, -1, -1, -1]),),
    (([1, 3, 5, -1, -1, 7, -1, -1, -1], [2, 4, 2**30, -1, -1, 8, -1, -1, -1]),),
])
@pytest.mark.parametrize("widths", [(8, 8, 8), (4, 4, 4)])
def test_tree_columns_refuse_what_check_links_refuses(pairs, widths):
    if widths[0] == 4 and max(max(abs(v) for v in p[0] + p[1]) for p in pairs) >= 2**31:
        pytest.skip("not an int32")
    nodes, inner = tables(*pairs, widths=widths)
    assert nodes is None and inner is None


@pytest.mark.parametrize("widths", [(8, 8, 8), (4, 4, 4), (4, 8, 4)])
def test_tree_columns_refuse_features_out_of_range(widths):
    assert tables(GOOD, n_features=1, widths=widths)[0] is None   # feature 1 on node 1 (inner), only 1 feature
    assert tables(GOOD, n_features=2, widths=widths)[0] is not None
    assert tables(GOOD, n_features=2**40, widths=widths)[0] is not None
    for nf in (0, -1, -2**40):
        assert tables(GOOD, n_features=nf, widths=widths)[0] is None
        assert tables(([-1], [-1]), n_features=nf, widths=widths)[0] is not None     # a leaf has none


def _random_tree(rng, inner):
    """(left, right) of a random tree of inner split nodes, depth first."""
    left, right = [], []

    def grow(k):
        i = len(left)
        left.append(-1)
        right.append(-1)
        if k:
            a = rng.randint(0, k - 1)
            left[i] = len(left)
            grow(a)
            right[i] = len(left)
            grow(k - 1 - a)
    grow(inner)
    return left, right


@pytest.mark.parametrize("widths", [(8, 8, 8), (4, 4, 4)])
def test_tree_columns_agree_with_check_links_on_random_trees(widths):
    """The C link check (for int32 columns, four nodes at a time, then the
    children marked: _cmpk_tree.c's links_i32) against numpy's
    (_nodes.check_links) on random trees of 1 to 61 nodes, and on each
    with one child index changed, two swapped, an inner node made a leaf or
    a node given two children after it: both accept or both refuse."""
    rng = random.Random(7)
    seen = {True: 0, False: 0}
    for _ in range(600):
        left, right = _random_tree(rng, rng.randint(0, 30))
        n = len(left)
        kind = rng.randrange(5)
        side = rng.choice((left, right))
        j = rng.randrange(n)
        if kind == 1:
            side[j] = rng.randint(-3, n + 2)
        elif kind == 2 and n > 1:
            k = rng.randrange(n)
            side[j], side[k] = side[k], side[j]
        elif kind == 3:
            left[j] = right[j] = -1
        elif kind == 4 and j < n - 1:                   # (a leaf, mostly) made a node's parent
            left[j], right[j] = rng.randint(j + 1, n - 1), rng.randint(j + 1, n - 1)
        nodes, inner = tables((left, right), widths=widths, n_features=10**6)
        assert (nodes is None) == (inner is None), (left, right)
        seen[nodes is None] += 1
    assert min(seen.values()) > 100         # both outcomes, often


@pytest.mark.parametrize("what, mutate", list(node_array_mutations()), ids=[w for w, _ in node_array_mutations()])
def test_tree_columns_refuse_arrays_not_exactly_compact(what, mutate):
    weights = [tree_weights(i, *GOOD) for i in range(3)]
    dt = dtypes_of(weights[0])
    assert columns(weights, [5] * 3, dt) is not None
    mutate(weights[1])
    assert columns(weights, [5] * 3, dt) is None


def test_tree_columns_take_bytearrays_as_the_decoder_gives_long_bins():
    from sklearn.tree._tree import NODE_DTYPE
    weights = [tree_weights(i, *GOOD, widths=(4, 8, 4)) for i in range(2)]
    want = columns(weights, [5, 5], dtypes_of(weights[0]))
    for m in weights[1].values():
        m[b"data"] = bytearray(m[b"data"])
    got = columns(weights, [5, 5], dtypes_of(weights[0]))
    assert got == want and type(got[3][1]) is bytearray
    offsets = tuple(NODE_DTYPE.fields[f][1] for f, _ in N._COLS.values() if f)
    a, b = bytearray(5 * NODE_DTYPE.itemsize), bytearray(5 * NODE_DTYPE.itemsize)
    C.tree_fill(a, want, 1, offsets, NODE_DTYPE.itemsize)
    C.tree_fill(b, got, 1, offsets, NODE_DTYPE.itemsize)
    assert a == b


def test_tree_columns_refuse_bad_counts_and_arguments():
    weights = [tree_weights(0, *GOOD)]
    caps = [caps_of(weights[0])]
    dt = dtypes_of(weights[0])
    for n in (4, 6, 0, -1, 2**41):
        assert C.tree_columns(caps, AT, [n], dt, (1, 2), 5) is None
    with pytest.raises(OverflowError):
        C.tree_columns(caps, AT, [2**70], dt, (1, 2), 5)
    bad_dtypes = [dt[:3] + (b"<i8",) + dt[4:],            # a float column as an int one
                  (b"<f8",) + dt[1:],                    # an int column as a float
                  dt[:2] + (b"<i2",) + dt[3:], dt[:7] + ("<f8",)]
    for d in bad_dtypes:
        with pytest.raises(ValueError):
            C.tree_columns(caps, AT, [5], d, (1, 2), 5)
    for args in ((caps, AT, [5, 5], dt, (1, 2), 5), (caps, AT[:15], [5], dt, (1, 2), 5),
                 (caps, AT[:15] + (-1,), [5], dt, (1, 2), 5),
                 (caps, AT, [5], dt[:7], (1, 2), 5), (caps, AT, [5], dt, (0, 2), 5)):
        with pytest.raises(ValueError):
            C.tree_columns(*args)
    # value's tail comes from the file (n_outputs, n_classes): past 2**20 a
    # size, not a tree for this path (the generic way names it), not an error
    for tail in ((1, 2**20 + 1), (2**20 + 1, 1), (1, 2**40)):
        assert C.tree_columns(caps, AT, [5], dt, tail, 5) is None
    # a place past a tree's tuple, or a tree not a tuple: not a tree
    assert C.tree_columns(caps, AT[:15] + (16,), [5], dt, (1, 2), 5) is None
    assert C.tree_columns([list(caps[0])], AT, [5], dt, (1, 2), 5) is None
    # the shape and the data where at says, in any order
    swapped = [caps[0][1::-1] + caps[0][2:]]
    assert C.tree_columns(swapped, (1, 0) + AT[2:], [5], dt, (1, 2), 5) == C.tree_columns(caps, AT, [5], dt, (1, 2), 5)
    assert C.tree_columns([], AT, [], dt, (1, 2), 5) == ([],) * 8


def _compact_both_ways(weights, keys, dtypes, bitsets=()):
    """compact_columns of weights, and what _predictors' Python checks
    (_bulk_compact) make of them: each (counts, datas) per key, or None."""
    from mpk import _predictors as P
    widths = tuple(np.dtype(d.decode()).itemsize for d in dtypes)
    tails = tuple((8,) if k in bitsets else () for k in keys)
    got = C.compact_columns(weights, keys, dtypes, widths, tails)
    got = None if got is None else [(list(c), list(d)) for c, d in zip(*got)]
    want = []
    for key, dt, w in zip(keys, dtypes, widths):
        d = P._bulk_compact([x.get(key) for x in weights], dt, w, key in bitsets)
        if d is None:
            want = None
            break
        want.append((list(d[0]), list(d[1])))
    return got, want


@pytest.mark.parametrize("what, mutate", list(node_array_mutations()), ids=[w for w, _ in node_array_mutations()])
def test_compact_columns_refuse_what_the_python_checks_refuse(what, mutate):
    weights = [tree_weights(i, *GOOD) for i in range(3)]
    keys = KEYS[:7]
    dt = dtypes_of(weights[0])[:7]
    got, want = _compact_both_ways(weights, keys, dt)
    assert got == want and got is not None
    assert [list(map(len, d)) for _, d in got] == [[len(w[k][b"data"]) for w in weights] for k in keys]
    if what in ("value shape", "value shape 2d", "data long"):
        return      # value is not among these keys
    mutate(weights[1])
    got, want = _compact_both_ways(weights, keys, dt)
    assert got is None and want is None, what


def test_compact_columns_reads_the_counts_and_the_tails():
    bits = {b"nd": True, b"kind": b"", b"type": b"<u4", b"shape": [2, 8], b"data": bytes(64)}
    none = dict(bits)
    none[b"shape"], none[b"data"] = [0, 8], b""
    items = [{b"b": bits, b"n": compact(np.arange(3, dtype="<i8"))},
             {b"b": none, b"n": compact(np.arange(0, dtype="<i8"))},
             {b"b": {**bits, b"data": bytearray(64)}, b"n": compact(np.arange(5, dtype="<i8"))}]
    rows, datas = C.compact_columns(items, (b"b", b"n"), (b"<u4", b"<i8"), (4, 8), ((8,), ()))
    assert rows == ([2, 0, 2], [3, 0, 5]) and type(datas[0][2]) is bytearray
    for bad in ([3, 8], [2, 7], [2], [2, 8, 1], [-1, 8], [2**41, 8], [True, 8]):
        items[0][b"b"] = {**bits, b"shape": bad}
        assert C.compact_columns(items, (b"b", b"n"), (b"<u4", b"<i8"), (4, 8), ((8,), ())) is None, bad
    for args in (((b"b",), (b"<u4", b"<i8"), (4, 8), ((8,), ())), ((b"b", b"n"), (b"<u4", b"<i8"), (0, 8), ((8,), ())),
                 ((b"b", b"n"), (b"<u4", b"<i8"), (4, 8), ((8, 1, 1), ())),
                 ((b"b", b"n"), (b"<u4", b"<i8"), (4, 8), ((0,), ())), (("b", b"n"), (b"<u4", b"<i8"), (4, 8), ((8,), ()))):
        with pytest.raises(ValueError):
            C.compact_columns(items, *args)
    assert C.compact_columns([], (b"b",), (b"<u4",), (4,), ((8,),)) == (([],), ([],))


def test_tree_fill_checks_what_it_is_given():
    from sklearn.tree._tree import NODE_DTYPE
    weights = [tree_weights(0, *GOOD, widths=(4, 8, 4))]
    cols = columns(weights, [5], dtypes_of(weights[0]))
    offsets = tuple(NODE_DTYPE.fields[f][1] for f, _ in N._COLS.values() if f)
    size = NODE_DTYPE.itemsize
    buf = bytearray(5 * size)
    assert C.tree_fill(buf, cols, 0, offsets, size) == 5
    bad = [(bytearray(5 * size - 1), cols, 0, offsets, size),          # the buffer too short
           (buf, cols, 1, offsets, size), (buf, cols, -1, offsets, size),
           (buf, cols, 0, offsets[:6] + (size - 7,), size),            # a field past the node
           (buf, cols, 0, offsets, 4),
           (buf, cols[:3] + ([cols[3][0][:-8]],) + cols[4:], 0, offsets, size),    # a short column
           (buf, cols[:3] + ([cols[0][0]],) + cols[4:], 0, offsets, size)]         # a float column 4 bytes an item
    for args in bad:
        with pytest.raises(ValueError):
            C.tree_fill(*args)
    with pytest.raises(TypeError):
        C.tree_fill(bytes(5 * size), cols, 0, offsets, size)


def _load_without_c(monkeypatch, data):
    monkeypatch.setattr(_unpack, "_cmpk", None)
    monkeypatch.setattr(_unpack, "tree_columns", None)
    try:
        return mpk.loads(data)
    finally:
        monkeypatch.undo()


def _models():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.feature_extraction.text import TfidfVectorizer
    X = np.random.RandomState(0).rand(60, 4)
    docs = ["the cat sat", "a dog ran", "the dog sat on the mat", "café au lait"]
    return [TfidfVectorizer(ngram_range=(1, 2)).fit(docs), DictVectorizer().fit([{"a": 1, "é": 2}, {"b": 3}]),
            RandomForestClassifier(n_estimators=8, random_state=0).fit(X, np.arange(60) % 3)]


@pytest.mark.parametrize("est", _models(), ids=lambda e: type(e).__name__)
def test_a_load_with_and_without_the_c_part_is_the_same_model(est, monkeypatch):
    data = mpk.dumps(est)
    a, b = mpk.loads(data), _load_without_c(monkeypatch, data)
    assert mpk.dumps(a) == mpk.dumps(b) == data
    if hasattr(est, "vocabulary_"):
        assert a.vocabulary_ == b.vocabulary_ == est.vocabulary_
        assert {type(k) for k in a.vocabulary_} == {str}


def test_big_arrays_of_a_loaded_model_are_its_own_and_writable(tmp_path):
    """An MLP's weights of 64 KiB and more come from the decoder's
    bytearrays: each array writable, sharing memory with no other array,
    of this load or another, and the model predicts as the original."""
    from sklearn.neural_network import MLPClassifier
    rng = np.random.RandomState(0)
    X, y = rng.rand(40, 300), np.arange(40) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier((64, 32), max_iter=3, random_state=0).fit(X, y)
    path = tmp_path / "mlp.mpk"
    mpk.save(est, path)
    a, b = mpk.load(path), mpk.load(path)
    big = [c for c in a.coefs_ if c.nbytes >= BIG_BIN]
    assert big and all(not c.flags.owndata for c in big)       # the decoder's buffer, not a copy
    arrays = a.coefs_ + a.intercepts_ + b.coefs_ + b.intercepts_
    assert all(x.flags.writeable for x in arrays)
    assert not any(np.shares_memory(x, y) for i, x in enumerate(arrays) for y in arrays[i + 1:])
    assert np.array_equal(a.predict_proba(X), est.predict_proba(X))
    a.coefs_[0][:] = 0
    assert np.array_equal(b.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("vocab,what", [
    ({"aa": 0, "bb": 0}, "permutation"), ({"aa": 0, "bb": 2}, "permutation"), ({"aa": 0, "bb": True}, "expected int"),
    ({"aa": 0, b"\xff": 1}, "UTF-8"), ({"aa": 0, "bb": 1.0}, "expected int"), ({"aa": -1}, "permutation"),
])
def test_a_bad_vocabulary_is_refused_alike_with_and_without_the_c_part(vocab, what, monkeypatch):
    from sklearn.feature_extraction.text import CountVectorizer
    m = msgpack.unpackb(mpk.dumps(CountVectorizer().fit(["aa bb"])), strict_map_key=False, raw=False)
    m["xtra"]["vocabulary_"] = vocab
    data = msgpack.packb(m, use_bin_type=True)
    with pytest.raises(mpk.FormatError) as c_err:
        mpk.loads(data)
    with pytest.raises(mpk.FormatError) as py_err:
        _load_without_c(monkeypatch, data)
    assert str(c_err.value) == str(py_err.value) and what in str(c_err.value), str(c_err.value)
