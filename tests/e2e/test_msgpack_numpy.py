"""Archives written by msgpack-numpy itself (issue 11), made at test time
with `msgpack.packb(model, default=msgpack_numpy.encode)`: every dtype it
can write mounts and loads equal in numpy, numpy scalars are text files,
object arrays are read-only NAME.pickle files, and edits through the mount
read back right through msgpack_numpy.decode with nothing else changed."""

import errno
import json
import os
import subprocess
import tempfile

import msgpack
import numpy as np
import pytest

from harness import MPFS_BIN, TIMEOUT, mounted

msgpack_numpy = pytest.importorskip("msgpack_numpy")

# Every dtype msgpack-numpy writes as a plain compact array (kind ''):
# numbers in both byte orders, strings, datetimes.
NUMERIC = ["|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8",
           "<f2", "<f4", "<f8", "<c8", "<c16"]
if hasattr(np, "float128"):  # long double, where numpy has one (x86)
    NUMERIC += ["<f16", "<c32"]
# (numpy cannot hand out a big-endian long double's buffer: msgpack-numpy
# cannot write one)
BIG = [">" + d[1:] for d in NUMERIC if d[0] == "<" and d not in ("<f16", "<c32")]
STRINGS = ["<U1", "<U7", ">U3", "|S1", "|S5"]
TIMES = ["<M8[D]", "<M8[ns]", ">M8[us]", "<m8[s]", "<m8"]
DTYPES = NUMERIC + BIG + STRINGS + TIMES

# numpy scalars msgpack-numpy writes as {nd: false, type, data}. (np.float64
# is a Python float, written as a MsgPack float.)
SCALARS = {
    "i1": np.int8(-7), "i2": np.int16(-300), "i4": np.int32(70000),
    "i8": np.int64(-5), "u1": np.uint8(200), "u2": np.uint16(60000),
    "u4": np.uint32(4000000000), "u8": np.uint64(2**64 - 1),
    "f2": np.float16(0.5), "f4": np.float32(0.1), "b1": np.bool_(True),
}
ZERO_D_SCALARS = {"c8": np.complex64(1 + 2j)}  # no JSON: 0-d arrays
if hasattr(np, "float128"):
    ZERO_D_SCALARS["f16"] = np.longdouble(1) / 3


def name_of(dtype):
    """A key for DTYPE: '<f8' -> 'le_f8', '>M8[us]' -> 'be_M8_us'."""
    order = {"<": "le_", ">": "be_", "|": "na_"}[dtype[0]] if dtype[0] in "<>|" else ""
    return order + dtype.lstrip("<>|=").replace("[", "_").replace("]", "")


def sample(dtype, shape=(2, 3)):
    """A deterministic array of DTYPE and SHAPE with distinct values."""
    n = int(np.prod(shape))
    kind = np.dtype(dtype).kind
    if kind == "b":
        a = np.arange(n) % 3 == 1
    elif kind in "US":
        words = ["", "a", "héllo" if kind == "U" else "hello", "xyz", "0123456", "ẞ"]
        a = np.array([(w if kind == "U" else w.encode("utf-8", "replace")[:5])
                      for w in (words * n)[:n]])
    elif kind == "M":
        a = np.arange(n) * 1000 + 17
    elif kind == "m":
        a = np.arange(n) - 2
    elif kind == "c":
        a = np.arange(n) * (1.5 - 0.25j)
    elif kind == "f":
        a = np.arange(n) / 4 - 0.75
    elif kind == "u":
        a = np.arange(n) * 37 + 1
    else:
        a = np.arange(n) * 37 - 100
    return np.asarray(a).astype(dtype).reshape(shape)


def arrays():
    """{key: array}: every dtype, plus the shapes that go wrong first."""
    out = {name_of(d): sample(d) for d in DTYPES}
    # numpy exposes no buffer of a datetime array: msgpack-numpy writes one
    # only when it is not C-contiguous (it then takes tobytes(), C order)
    for d in TIMES:
        out[name_of(d)] = np.asfortranarray(sample(d))
    out["zero_d"] = np.array(2.5)
    out["zero_d_str"] = np.array("solo")
    out["empty"] = np.zeros((0, 4))
    out["empty_str"] = np.zeros((3, 0), dtype="<U4")
    out["fortran"] = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    out["three_d"] = np.arange(24, dtype="<i4").reshape(2, 3, 4)
    return out


def model():
    return {
        "class_name": "LogisticRegression",
        "params": {"C": 0.75, "max_iter": np.int64(300), "tol": np.float32(0.25)},
        "xtra": {
            "classes_": np.array(["setosa", "versicolor", "virginica"]),
            "feature_names_in_": np.array(["a", "b"], dtype=object),
            "other_objects": np.array([1, "x", None], dtype=object),
        },
        "arrays": arrays(),
        "scalars": dict(SCALARS, **ZERO_D_SCALARS),
        "weights": {"coef_": np.linspace(-1, 1, 12).reshape(3, 4)},
    }


def write_archive(folder, tree):
    path = folder / "model.mpk"
    path.write_bytes(msgpack.packb(tree, default=msgpack_numpy.encode))
    return path


def decoded(path):
    """The archive through msgpack_numpy.decode: what a user of it reads."""
    return msgpack.unpackb(path.read_bytes(), object_hook=msgpack_numpy.decode,
                           strict_map_key=False)


def raw_tree(path):
    """The archive decoded without msgpack-numpy (pickles stay bytes)."""
    return msgpack.unpackb(path.read_bytes(), raw=True, strict_map_key=False)


def same_array(got, want):
    return (got.dtype.str == want.dtype.str and got.shape == want.shape
            and np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes())


@pytest.fixture
def archive(tmp_path):
    return write_archive(tmp_path, model())


def test_every_dtype_loads_equal(archive):
    want = arrays()
    problems = []
    with mounted(archive) as mnt:
        for key, arr in want.items():
            path = mnt / "arrays" / f"{key}.npy"
            for mode in (None, "r"):
                try:
                    got = np.load(path, mmap_mode=mode, allow_pickle=False)
                except Exception as e:  # any failure to load is the finding
                    problems.append(f"{key} ({arr.dtype.str}) mmap_mode={mode}: {e}")
                    continue
                if not same_array(got, arr):
                    problems.append(f"{key}: {got.dtype.str} {got.shape} != "
                                    f"{arr.dtype.str} {arr.shape}")
                del got
            dtype = os.getxattr(path, "user.mpfs.dtype").decode()
            if dtype != arr.dtype.str:
                problems.append(f"{key}: user.mpfs.dtype {dtype} != {arr.dtype.str}")
        classes = np.load(mnt / "xtra" / "classes_.npy", allow_pickle=False)
        assert classes.tolist() == ["setosa", "versicolor", "virginica"]
    assert not problems, "\n".join(problems)


def test_every_dtype_raw(archive):
    """With -o raw: the little-endian bytes of each array."""
    problems = []
    with mounted(archive, "-o", "raw") as mnt:
        for key, arr in arrays().items():
            data = (mnt / "arrays" / f"{key}.bin").read_bytes()
            le = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
            if data != np.ascontiguousarray(arr.astype(le)).tobytes():
                problems.append(f"{key} ({arr.dtype.str}): .bin bytes differ")
    assert not problems, "\n".join(problems)


def test_scalars_are_text_with_their_dtype(archive):
    with mounted(archive) as mnt:
        for key, value in SCALARS.items():
            path = mnt / "scalars" / key
            text = path.read_text()
            assert text.endswith("\n") and "\n" not in text[:-1], f"{key}: {text!r}"
            assert json.loads(text) == value.item(), f"{key}: {text!r} != {value!r}"
            assert os.getxattr(path, "user.mpfs.dtype").decode() == value.dtype.str
            assert "user.mpfs.shape" not in os.listxattr(path)
        for key, value in ZERO_D_SCALARS.items():
            got = np.load(mnt / "scalars" / f"{key}.npy", allow_pickle=False)
            assert got.shape == () and got.dtype == value.dtype and got == value, key
        assert (mnt / "params" / "max_iter").read_text() == "300\n"
        assert (mnt / "params" / "C").read_text() == "0.75\n"


def test_pickles_are_read_only_raw_files(archive):
    stored = raw_tree(archive)[b"xtra"]
    before = archive.read_bytes()
    with mounted(archive) as mnt:
        for key in ("feature_names_in_", "other_objects"):
            path = mnt / "xtra" / f"{key}.pickle"
            assert path.read_bytes() == stored[key.encode()][b"data"], key
            assert os.getxattr(path, "user.mpfs.encoding") == b"pickle"
            assert os.stat(path).st_mode & 0o777 == 0o444
            assert not (mnt / "xtra" / key).exists()
            for mode in ("r+b", "wb", "ab"):
                with pytest.raises(OSError) as e:
                    open(path, mode)
                assert e.value.errno == errno.EPERM, f"{key} {mode}: {e.value}"
            with pytest.raises(OSError) as e:
                os.truncate(path, 0)
            assert e.value.errno == errno.EPERM
    assert archive.read_bytes() == before, "a refused write changed the archive"


def test_edits_read_back_through_msgpack_numpy(archive):
    original = decoded(archive)
    before_raw = raw_tree(archive)
    new_classes = np.array(["a much longer label", "b"])
    new_coef = np.arange(6, dtype="<f4").reshape(2, 3)
    new_u2 = np.array([[1, 2], [3, 4]], dtype=">u2")
    names = np.array(["sepal length", "sepal width"])
    with mounted(archive) as mnt:
        np.save(mnt / "xtra" / "classes_.npy", new_classes)
        np.save(mnt / "weights" / "coef_.npy", new_coef)
        np.save(mnt / "arrays" / "be_u2.npy", new_u2)
        subprocess.run(f"echo 300 > '{mnt}/scalars/u1'", shell=True, check=True)
        subprocess.run(f"echo -9 > '{mnt}/scalars/i8'", shell=True, check=True)
        subprocess.run(f"echo 0.1 > '{mnt}/params/tol'", shell=True, check=True)
        subprocess.run(f"echo false > '{mnt}/scalars/b1'", shell=True, check=True)
        os.unlink(mnt / "xtra" / "other_objects.pickle")
        np.save(mnt / "xtra" / "feature_names_in_.npy", names)
        assert sorted(os.listdir(mnt / "xtra")) == ["classes_.npy", "feature_names_in_.npy"]
        assert (mnt / "scalars" / "u1").read_text() == "300\n"
    after = decoded(archive)

    assert same_array(after["xtra"]["classes_"], new_classes)
    assert same_array(after["weights"]["coef_"], new_coef)
    assert same_array(after["arrays"]["be_u2"], new_u2)
    assert same_array(after["xtra"]["feature_names_in_"], names)
    assert "other_objects" not in after["xtra"]
    # a value that does not fit a uint8 takes the next width; others keep theirs
    u1 = after["scalars"]["u1"]
    assert isinstance(u1, np.uint16) and u1 == 300, repr(u1)
    i8 = after["scalars"]["i8"]
    assert isinstance(i8, np.int64) and i8 == -9, repr(i8)
    b1 = after["scalars"]["b1"]
    assert isinstance(b1, np.bool_) and not b1, repr(b1)
    tol = after["params"]["tol"]  # 0.1 is no float32: float64, as for MsgPack numbers
    assert isinstance(tol, np.float64) and tol == 0.1, repr(tol)

    # nothing else changed, value for value (pickles compared as bytes)
    after_raw = raw_tree(archive)
    edited = {(b"xtra", b"classes_"), (b"weights", b"coef_"), (b"arrays", b"be_u2"),
              (b"scalars", b"u1"), (b"scalars", b"i8"), (b"params", b"tol"),
              (b"scalars", b"b1"), (b"xtra", b"other_objects"),
              (b"xtra", b"feature_names_in_")}
    assert after_raw.keys() == before_raw.keys()
    for top, value in before_raw.items():
        if not isinstance(value, dict):
            assert after_raw[top] == value, top
            continue
        for key, old in value.items():
            if (top, key) not in edited:
                assert after_raw[top].get(key) == old, f"{top}/{key} changed"
        assert set(after_raw[top]) - set(value) <= {k for t, k in edited if t == top}
    for key in arrays():
        if key != "be_u2":
            assert same_array(after["arrays"][key], original["arrays"][key]), key


def test_structured_arrays_are_refused(tmp_path):
    """kind 'V' (structured dtypes) is not supported: a clear error, nothing
    mounted."""
    path = write_archive(tmp_path, {"xtra": {
        "rec": np.zeros(2, dtype=[("x", "<f8"), ("y", "<i4")])}})
    mnt = tempfile.mkdtemp(prefix="mpfs-mnt-")
    try:
        res = subprocess.run([str(MPFS_BIN), "-f", str(path), mnt], capture_output=True,
                             text=True, timeout=TIMEOUT)
    finally:
        os.rmdir(mnt)
    assert res.returncode == 1, res
    assert "not a model archive" in res.stderr and "kind" in res.stderr, res.stderr
