"""Reading a mounted archive: the tree of DESIGN §3 against the fixtures'
NAME.expect.json, exact sizes and link counts, xattrs, -o raw, hostile keys
and read-only mounts."""

import errno
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from harness import (expected_encoding, fail_on, json_same, mounted, raw_dtype, raw_sha256,
                     sha256, walk)

ARRAY_XATTRS = ("user.mpfs.dtype", "user.mpfs.shape", "user.mpfs.encoding")


def shape_text(shape):
    return ",".join(str(n) for n in shape)


def array_file(rel, raw):
    """Where the array listed as REL (NAME.npy) is shown: NAME.bin under -o raw."""
    return rel[: -len(".npy")] + (".bin" if raw else ".npy")


# --------------------------------------------------------------------------
# Checks of one expected entry; each returns a list of problems.


def check_dir(path, want):
    return [] if path.is_dir() and not path.is_symlink() else ["not a directory"]


def check_text(path, want):
    content = path.read_bytes()
    if not content.endswith(b"\n") or b"\n" in content[:-1]:
        return [f"not one line ending in a newline: {content!r}"]
    try:
        got = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return [f"not JSON ({e}): {content!r}"]
    if not json_same(got, want["value"]):
        note = " (same number, wrong JSON type)" if got == want["value"] else ""
        return [f"value {content!r} != expected {json.dumps(want['value'])}{note}"]
    return []


def check_raw(path, want):
    got = sha256(path.read_bytes())
    return [] if got == want["sha256"] else [f"sha256 {got} != {want['sha256']}"]


def check_npy(path, want):
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic != b"\x93NUMPY\x01\x00":
        return [f"does not start with the NPY v1.0 magic: {magic!r}"]
    problems = []
    dtype, shape = np.dtype(want["dtype"]), tuple(want["shape"])
    for mode in (None, "r"):
        label = "numpy.load" if mode is None else "numpy.load(mmap_mode='r')"
        try:
            arr = np.load(path, mmap_mode=mode, allow_pickle=False)
        except Exception as e:  # any failure to load is the finding
            problems.append(f"{label} failed: {type(e).__name__}: {e}")
            continue
        if arr.dtype != dtype or arr.dtype.str != want["dtype"]:
            problems.append(f"{label}: dtype {arr.dtype.str} != {want['dtype']}")
        if arr.shape != shape:
            problems.append(f"{label}: shape {arr.shape} != {shape}")
        got = sha256(np.ascontiguousarray(arr).tobytes())
        if got != want["sha256"]:
            problems.append(f"{label}: sha256 of data {got} != {want['sha256']}")
        del arr  # drop the mapping before unmount
    return problems


def check_bin(path, want):
    data = path.read_bytes()
    size = int(np.prod(want["shape"], dtype=np.int64)) * np.dtype(want["dtype"]).itemsize
    problems = []
    if len(data) != size:
        problems.append(f"{len(data)} bytes != {size} (shape x itemsize)")
    got = raw_sha256(data, want["dtype"])
    if got != want["sha256"]:
        problems.append(f"sha256 {got} != {want['sha256']}")
    return problems


def check_expected(mnt, expect, raw):
    """Every path in EXPECT exists under MNT as described; a list of problems."""
    problems = []
    for rel, want in expect.items():
        kind = want["kind"]
        if kind == "array":
            other = array_file(rel, not raw)
            if os.path.lexists(mnt / other):
                problems.append(f"{other}: shown {'with' if raw else 'without'} -o raw")
            rel = array_file(rel, raw)
            check = check_bin if raw else check_npy
        else:
            check = {"dir": check_dir, "text": check_text, "raw": check_raw}[kind]
        path = mnt / rel
        if not os.path.lexists(path):
            problems.append(f"{rel}: missing (expected {kind})")
            continue
        if kind != "dir" and not stat.S_ISREG(os.lstat(path).st_mode):
            problems.append(f"{rel}: not a regular file (expected {kind})")
            continue
        try:
            problems += [f"{rel}: {p}" for p in check(path, want)]
        except OSError as e:
            problems.append(f"{rel}: {e}")
    return problems


# --------------------------------------------------------------------------
# The tree against expect.json


def test_expected_tree(model):
    fail_on(check_expected(model.mnt, model.expect, raw=False), model.name)


def test_expected_tree_raw(raw_model):
    problems = check_expected(raw_model.mnt, raw_model.expect, raw=True)
    _, files = walk(raw_model.mnt)
    problems += [f"{f}: .npy shown with -o raw" for f in files if f.suffix == ".npy"]
    fail_on(problems, f"{raw_model.name} -o raw")


# --------------------------------------------------------------------------
# Sizes and link counts: what ls -l, du, cp, tar rely on


def size_and_link_problems(mnt):
    problems = []
    dirs, files = walk(mnt)
    for rel in files:
        st = os.lstat(mnt / rel)
        if not stat.S_ISREG(st.st_mode):
            problems.append(f"{rel}: mode {oct(st.st_mode)} is not a regular file")
            continue
        length = len((mnt / rel).read_bytes())
        if st.st_size != length:
            problems.append(f"{rel}: st_size {st.st_size} != {length} bytes read")
    for rel in [Path(".")] + dirs:
        st = os.lstat(mnt / rel)
        subdirs = sum(1 for e in os.scandir(mnt / rel) if e.is_dir(follow_symlinks=False))
        if st.st_nlink != 2 + subdirs:
            problems.append(f"{rel}/: st_nlink {st.st_nlink} != 2 + {subdirs} subdirectories")
    return problems


def test_sizes_and_link_counts(model):
    fail_on(size_and_link_problems(model.mnt), model.name)


def test_sizes_and_link_counts_raw(raw_model):
    fail_on(size_and_link_problems(raw_model.mnt), f"{raw_model.name} -o raw")


# --------------------------------------------------------------------------
# Extended attributes of array files


def xattr_problems(path, dtype, shape, encoding):
    problems = []
    try:
        listed = set(os.listxattr(path))
    except OSError as e:
        return [f"listxattr: {e}"]
    for name in ARRAY_XATTRS:
        if name not in listed:
            problems.append(f"listxattr {sorted(listed)} lacks {name}")
    want = {"user.mpfs.dtype": dtype, "user.mpfs.shape": shape_text(shape),
            "user.mpfs.encoding": encoding}
    for name, value in want.items():
        try:
            got = os.getxattr(path, name)
        except OSError as e:
            problems.append(f"getxattr {name}: {e}")
            continue
        if got != value.encode():
            problems.append(f"{name} = {got!r}, expected {value.encode()!r}")
    return problems


def test_npy_xattrs(model):
    encoding = expected_encoding(model.name)
    _, files = walk(model.mnt)
    npys = [f for f in files if f.suffix == ".npy"]
    assert npys or not any(w["kind"] == "array" for w in model.expect.values())
    problems = []
    for rel in npys:
        arr = np.load(model.mnt / rel, allow_pickle=False)
        problems += [f"{rel}: {p}" for p in
                     xattr_problems(model.mnt / rel, arr.dtype.str, arr.shape, encoding)]
    fail_on(problems, model.name)


def test_bin_xattrs(raw_model):
    encoding = expected_encoding(raw_model.name)
    problems = []
    for rel, want in raw_model.expect.items():
        if want["kind"] == "array":
            rel = array_file(rel, raw=True)
            problems += [f"{rel}: {p}" for p in xattr_problems(
                raw_model.mnt / rel, raw_dtype(want["dtype"]), want["shape"], encoding)]
    fail_on(problems, f"{raw_model.name} -o raw")


# --------------------------------------------------------------------------
# Keys that are not safe file names (bad_key_traversal.mpk)

TRAVERSAL_KEYS = {"../../etc/passwd": 1, "a/b": 2, "..": 3, ".": 4, "": 5}


def test_hostile_keys_are_escaped(archive_copies):
    with mounted(archive_copies / "bad_key_traversal.mpk") as mnt:
        dirs, files = walk(mnt)
        root = os.path.realpath(mnt)
        escaped = [str(p) for p in dirs + files
                   if os.path.commonpath([root, os.path.realpath(mnt / p)]) != root]
        assert not escaped, f"paths resolving outside the mount: {escaped}"

        names = os.listdir(mnt / "params")
        assert len(names) == len(TRAVERSAL_KEYS), f"params/ holds {names}"
        seen = {}
        for name in names:
            assert name not in ("", ".", "..") and "/" not in name, repr(name)
            path = mnt / "params" / name
            raw_key = os.getxattr(path, "user.mpfs.key")
            key = json.loads(raw_key.decode("utf-8"))
            assert key in TRAVERSAL_KEYS, f"{name!r}: user.mpfs.key {raw_key!r}"
            assert raw_key == json.dumps(key).encode(), \
                f"{name!r}: user.mpfs.key {raw_key!r} is not the key as JSON text"
            assert "user.mpfs.key" in os.listxattr(path)
            value = json.loads(path.read_text())
            assert json_same(value, TRAVERSAL_KEYS[key]), \
                f"{name!r} (key {key!r}) reads {value!r}, expected {TRAVERSAL_KEYS[key]}"
            seen[key] = name
        assert seen.keys() == TRAVERSAL_KEYS.keys(), f"keys shown: {seen}"


# --------------------------------------------------------------------------
# Read-only mounts


def mutation_errors(mnt, text_rel, npy_rel):
    """Try every kind of change; return {what: errno or None if it worked}."""
    attempts = {
        "open O_WRONLY|O_TRUNC text": lambda: os.close(
            os.open(mnt / text_rel, os.O_WRONLY | os.O_TRUNC)),
        "write text": lambda: (mnt / text_rel).write_text("1\n"),
        "write npy": lambda: (mnt / npy_rel).write_bytes(b"\0" * 8),
        "truncate": lambda: os.truncate(mnt / text_rel, 0),
        "create": lambda: (mnt / "params" / "new_param").write_text("1\n"),
        "mkdir": lambda: os.mkdir(mnt / "params" / "newdir"),
        "unlink": lambda: os.unlink(mnt / text_rel),
        "rename": lambda: os.rename(mnt / text_rel, mnt / "params" / "renamed"),
        "rmdir": lambda: os.rmdir(mnt / "params"),
    }
    results = {}
    for what, attempt in attempts.items():
        try:
            attempt()
            results[what] = None
        except OSError as e:
            results[what] = e.errno
    return results


@pytest.mark.parametrize("name", ["mlp_seed", "mlp_compact"])
def test_ro_option_refuses_every_change(archive_copies, name):
    archive = archive_copies / f"{name}.mpk"
    before = archive.read_bytes()
    with mounted(archive, "-o", "ro") as mnt:
        results = mutation_errors(mnt, "params/max_iter", "weights/coefs_/0.npy")
        assert json.loads((mnt / "params" / "max_iter").read_text()) == 30
    wrong = {k: (errno.errorcode.get(v, v) if v else "succeeded")
             for k, v in results.items() if v != errno.EROFS}
    assert not wrong, f"-o ro: expected EROFS, got {wrong}"
    assert archive.read_bytes() == before, "archive changed under -o ro"


def _cached_pages(path):
    """Pages of PATH in the page cache (fincore), without reading it."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--raw", "-o", "RES",
                          str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


@pytest.mark.skipif(shutil.which("fincore") is None, reason="needs fincore (util-linux)")
def test_page_cache_is_kept_across_opens_and_unrelated_commits(tmp_path):
    """A big array read once stays in the kernel's page cache when it is
    opened again, and when a commit changed another file; the file a
    commit changed reads back as committed."""
    import msgpack
    a = np.arange(1 << 18, dtype="<f8")  # 2 MiB
    arch = tmp_path / "big.mpk"
    arch.write_bytes(msgpack.packb(
        {"class_name": "X", "types": {}, "params": {"alpha": 0.5},
         "weights": {"coef_": {"nd": True, "type": "<f8", "kind": b"",
                               "shape": [a.size], "data": a.tobytes()}}},
        use_bin_type=True))
    with mounted(arch) as mnt:
        npy = mnt / "weights" / "coef_.npy"
        np.testing.assert_array_equal(np.load(npy), a)
        assert _cached_pages(npy) >= a.nbytes
        np.testing.assert_array_equal(np.load(npy), a)
        assert _cached_pages(npy) >= a.nbytes, "dropped between opens"
        (mnt / "params" / "alpha").write_text("0.25\n")
        assert (mnt / "params" / "alpha").read_text() == "0.25\n"
        time.sleep(1.2)  # past the attribute timeout: the kernel asks again
        os.stat(npy)  # new attributes, new mtime: the pages stay
        # An invalidation (a commit's, or the kernel's on an mtime change)
        # drops every page of the file. Pages idle for a second may also be
        # paged out one by one where the kernel reclaims cold memory ahead
        # of need (these machines run DAMON's pageout scheme: a few of the
        # 513 pages go in about one run in six, commit or none), so most,
        # not all, must still be there.
        assert _cached_pages(npy) >= a.nbytes * 3 // 4, "dropped by a commit that did not touch it"
        np.testing.assert_array_equal(np.load(npy), a)
        assert _cached_pages(npy) >= a.nbytes, "dropped at the open after a commit"
        # the file that a commit changed is read again
        b = a.copy()
        b[7] = -1.0
        with open(npy, "r+b") as f:
            f.seek(128 + 7 * 8)
            f.write(b[7:8].tobytes())
        np.testing.assert_array_equal(np.load(npy), b)
    with mounted(arch) as mnt:
        np.testing.assert_array_equal(np.load(mnt / "weights" / "coef_.npy"), b)


def test_big_made_arrays_read_back_exactly_in_any_pieces(tmp_path):
    """Big nested arrays (and, with -o raw, big-endian compact ones) are made
    in memory and handed to the kernel by reference through a pipe (not
    copied): reads of any size at any offset, each through a fresh mount so
    that no page cache answers, and several readers at once, give the bytes
    numpy.save writes."""
    import threading

    import msgpack
    rs = np.random.RandomState(4)
    a = rs.standard_normal((700, 500))  # 2.8 MB: a buffer of its own
    be = rs.standard_normal(400_000).astype(">f8")  # 3.2 MB, swapped under -o raw
    arch = tmp_path / "made.mpk"
    arch.write_bytes(msgpack.packb(
        {"class_name": "X", "weights": {
            "nested": a.tolist(),
            "be": {"nd": True, "type": ">f8", "kind": b"", "shape": [be.size],
                   "data": be.tobytes()}}},
        use_bin_type=True))
    np.save(tmp_path / "ref.npy", a)
    want = (tmp_path / "ref.npy").read_bytes()
    problems = []
    for off, size in ((0, 1), (3, 4093), (128, 1 << 20), (len(want) - 5, 100),
                      (1 << 20, 7), (12345, 983040), (len(want), 10)):
        with mounted(arch) as mnt:
            with open(mnt / "weights" / "nested.npy", "rb") as f:
                got = os.pread(f.fileno(), size, off)
        if got != want[off:off + size]:
            problems.append(f"{size} bytes at {off}: {len(got)} other bytes")
    with mounted(arch, "-o", "raw") as mnt:
        if (mnt / "weights" / "be.bin").read_bytes() != be.astype("<f8").tobytes():
            problems.append("-o raw: be.bin is not the little-endian array")
    with mounted(arch) as mnt:
        got = {}

        def reader(chunk):
            with open(mnt / "weights" / "nested.npy", "rb") as f:
                got[chunk] = b"".join(iter(lambda: f.read(chunk), b""))
        readers = [threading.Thread(target=reader, args=(c,)) for c in (4096, 65536, 1 << 20)]
        for t in readers:
            t.start()
        for t in readers:
            t.join()
        problems += [f"a reader of {c}-byte pieces got other bytes"
                     for c, data in got.items() if data != want]
    assert not problems, "\n".join(problems)
