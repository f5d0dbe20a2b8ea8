"""Regression tests for the defects of issue 7, each written as the
reproduction the issue gives, through a real mount.

Every edit lands or fails loudly: files have identities (a descriptor
follows its file across renames, only writers commit), a name the archive
holds is a value, memory stays bounded, and no input hangs or crashes the
mount. Defect 4 (a failed commit is forgotten) is in test_faults.py.

Anything that could hang runs with a deadline (trouble.bounded): a hang
kills the daemon and fails the test. Daemons fed hostile sizes run under
`prlimit --as`.
"""

import errno
import os
import random
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from harness import MPFS_BIN, mounted
from trouble import (GB, HOSTILE_AS, MB, Call, alive, bounded, bounded_errno,
                     decode, errname, hung, proc_status, read_file, rss_anon,
                     write_archive, write_file)

ASAN = b"libasan" in subprocess.run(["ldd", str(MPFS_BIN)], capture_output=True).stdout

# Heap the daemon may use while a huge file is being edited (issue 7: "the
# daemon's anonymous memory stays under 64 MiB").
HEAP_BOUND = 64 * MB

STEP = 20.0  # seconds: a generous deadline for one step that must not hang


def model(params=None, xtra=None, weights=None, types=None, **top):
    out = {"class_name": "Probe",
           "types": types or {},
           "params": {"alpha": 1, **(params or {})},
           "xtra": {**{f"k{i}": i for i in range(40)}, **(xtra or {})},
           "weights": weights if weights is not None else {"w": [[1.0, 2.0], [3.0, 4.0]]}}
    out.update(top)
    return out


def new_archive(tmp_path, obj, name="m.mpk"):
    """OBJ packed into NAME, alone in its own folder; (path, bytes)."""
    folder = tmp_path / "archive"
    folder.mkdir(exist_ok=True)
    archive = folder / name
    return archive, write_archive(archive, obj)


def heap_ok(mnt, what):
    if ASAN:
        return
    anon = rss_anon(mnt)
    assert anon < HEAP_BOUND, f"{what}: the daemon holds {anon / MB:.0f} MiB of heap"


# --------------------------------------------------------------------------
# Lost or mixed edits


def test_defect01_reader_close_does_not_commit_writers_half_buffer(tmp_path):
    """A writer writes "[1, 2,", a cat of the same file runs and closes, the
    writer writes " 3]\\n" and closes: the archive holds [1, 2, 3] (or the
    close fails loudly and nothing is committed), never [5, 6, 3]."""
    archive, _ = new_archive(tmp_path, model(params={"vals": [5, 6, 7]}))
    with mounted(archive) as mnt:
        p = mnt / "params" / "vals"
        # The cat comes from a shell started before the writer opens: a
        # fork while the writer's descriptor is open would close its copy
        # at exec, a flush of the writer's own.
        cat = subprocess.Popen(["sh", "-c", 'read go && cat "$1"', "sh", str(p)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)

        def scenario():
            fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, b"[1, 2,")
                cat.communicate(b"go\n", timeout=STEP)
                os.write(fd, b" 3]\n")
            except BaseException:
                os.close(fd)
                raise
            try:
                os.close(fd)
            except OSError as e:
                return e.errno
            return None

        close_err = bounded(mnt, "writer + cat", 2 * STEP, scenario)
        shown = bounded(mnt, "read back", STEP, read_file, p)
    got = decode(archive)["params"]["vals"]
    if close_err is None:
        assert got == [1, 2, 3], \
            f"the writer's close returned OK, but the archive holds {got} (reads {shown!r})"
    else:
        assert got in ([5, 6, 7], [1, 2, 3]), \
            f"the close failed ({errname(close_err)}) and the archive holds {got}"


SCRATCH_LOOKALIKES = ["sedentary", ".hidden", "notes.tmp", "x~", "#draft#", "4913",
                      "page.swp", "sedabc123"]


def test_defect02_existing_keys_named_like_scratch_files_are_committed(tmp_path):
    """Keys the archive already holds are values, whatever their name:
    write, fsync and close of `sedentary`, `.hidden`, `notes.tmp`, `x~` ...
    reach the archive."""
    archive, _ = new_archive(tmp_path, model(params={n: 1 for n in SCRATCH_LOOKALIKES}))
    problems = []
    with mounted(archive) as mnt:
        def scenario():
            for name in SCRATCH_LOOKALIKES:
                p = mnt / "params" / name
                try:
                    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
                    os.write(fd, b"2\n")
                    os.fsync(fd)
                    os.close(fd)
                except OSError as e:
                    problems.append(f"{name}: {e!r}")
        bounded(mnt, "writes", STEP, scenario)
    got = decode(archive)["params"]
    for name in SCRATCH_LOOKALIKES:
        if got.get(name) != 2:
            problems.append(f"{name}: the archive holds {got.get(name, '<no key>')!r}, "
                            "expected the 2 written (write, fsync and close returned OK)")
    assert not problems, "\n".join(problems)


def test_defect03_write_through_descriptor_opened_before_rename(tmp_path):
    """fd opened on alpha, write 7, rename alpha -> beta, fsync and close
    return OK: beta is 7 (in the mount and in the archive), alpha is gone."""
    archive, _ = new_archive(tmp_path, model())
    with mounted(archive) as mnt:
        alpha, beta = mnt / "params" / "alpha", mnt / "params" / "beta"

        def scenario():
            fd = os.open(alpha, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, b"7\n")
                os.rename(alpha, beta)
                os.fsync(fd)
            finally:
                os.close(fd)
            return read_file(beta), os.path.exists(alpha)

        shown, alpha_exists = bounded(mnt, "write, rename, fsync, close", STEP, scenario)
        assert shown == b"7\n", f"beta reads {shown!r} after the writer's fsync and close"
        assert not alpha_exists
    params = decode(archive)["params"]
    assert "alpha" not in params and params.get("beta") == 7, \
        f"archive params: alpha={params.get('alpha', '<none>')!r} beta={params.get('beta', '<none>')!r}"
    assert list(params)[0] == "beta", "the renamed key lost its position"


def test_defect03_read_descriptors_follow_renames(tmp_path):
    """A read descriptor reads the file it opened: after a -> a2, pread
    gives a's content (not ENOENT); after c -> c2 and d -> c, a descriptor
    opened on c still reads c's content, not d's."""
    archive, _ = new_archive(tmp_path, model(params={"a": 1, "b": 2, "c": 3, "d": 4}))
    with mounted(archive) as mnt:
        par = mnt / "params"

        def scenario():
            out = {}
            fd = os.open(par / "a", os.O_RDONLY)
            try:
                os.rename(par / "a", par / "a2")
                try:
                    out["a"] = os.pread(fd, 100, 0)
                except OSError as e:
                    out["a"] = f"{errname(e.errno)}"
            finally:
                os.close(fd)
            fd = os.open(par / "c", os.O_RDONLY)
            try:
                os.rename(par / "c", par / "c2")
                os.rename(par / "d", par / "c")
                try:
                    out["c"] = os.pread(fd, 100, 0)
                except OSError as e:
                    out["c"] = f"{errname(e.errno)}"
            finally:
                os.close(fd)
            return out

        out = bounded(mnt, "reads across renames", STEP, scenario)
    assert out == {"a": b"1\n", "c": b"3\n"}, \
        f"reads through descriptors opened before the renames gave {out}"


def test_defect05_escaped_name_does_not_create_a_duplicate_key(tmp_path):
    """`%alpha` decodes to the key alpha, which exists: creating it
    exclusively fails with EEXIST, and `echo 5 > params/%alpha` either
    writes the key alpha or fails with EEXIST. Never a second alpha."""
    archive, _ = new_archive(tmp_path, model())
    with mounted(archive) as mnt:
        p = mnt / "params" / "%alpha"
        excl = bounded_errno(mnt, "O_EXCL create of %alpha", STEP,
                             lambda: os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                                      0o644)))
        err = bounded_errno(mnt, "echo 5 > %alpha", STEP, write_file, p, b"5\n",
                            os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        names = bounded(mnt, "ls params", STEP, os.listdir, mnt / "params")
    params = decode(archive)["params"]  # fails on duplicate keys
    assert excl == errno.EEXIST, \
        f"O_CREAT|O_EXCL of params/%alpha (the existing key alpha) gave {errname(excl)}"
    assert [n for n in names if n.endswith("alpha")] == ["alpha"], names
    if err is None:
        assert params["alpha"] == 5, f"echo 5 > %alpha returned OK, alpha is {params['alpha']}"
    else:
        assert err == errno.EEXIST, f"echo 5 > %alpha: {errname(err)}"
        assert params["alpha"] == 1


def test_defect06_commit_keeps_owner_group_mode_and_xattrs(tmp_path):
    """An archive owned 1000:1000, mode 0664, with user.origin=lab, edited
    by root (who may set all of these), keeps them after the commit."""
    archive, _ = new_archive(tmp_path, model())
    os.chown(archive, 1000, 1000)
    os.chmod(archive, 0o664)
    try:
        os.setxattr(archive, "user.origin", b"lab")
    except OSError as e:
        pytest.skip(f"the test folder's file system has no user xattrs: {e}")
    with mounted(archive) as mnt:
        bounded(mnt, "echo 5 > alpha", STEP, write_file, mnt / "params" / "alpha", b"5\n")
    assert decode(archive)["params"]["alpha"] == 5
    st = os.stat(archive)
    problems = []
    if (st.st_uid, st.st_gid) != (1000, 1000):
        problems.append(f"owner {st.st_uid}:{st.st_gid}, was 1000:1000")
    if stat.S_IMODE(st.st_mode) != 0o664:
        problems.append(f"mode {stat.S_IMODE(st.st_mode):04o}, was 0664")
    try:
        origin = os.getxattr(archive, "user.origin")
    except OSError as e:
        origin = errname(e.errno)
    if origin != b"lab":
        problems.append(f"user.origin is {origin!r}, was b'lab'")
    assert not problems, "the commit changed the archive's metadata: " + "; ".join(problems)


def test_defect06_archive_with_a_long_base_name_commits(tmp_path):
    """A base name of 240 bytes (NAME_MAX is 255): the temporary file of a
    commit must still have a valid name."""
    name = "m" * 236 + ".mpk"
    archive, _ = new_archive(tmp_path, model(), name=name)
    with mounted(archive) as mnt:
        err = bounded_errno(mnt, "echo 5 > alpha", STEP, write_file,
                            mnt / "params" / "alpha", b"5\n")
        assert err is None, f"the commit failed: {errname(err)}"
    assert decode(archive)["params"]["alpha"] == 5
    assert os.listdir(archive.parent) == [name]


@pytest.mark.parametrize("new", [np.empty((0, 5)), np.array([], dtype=np.int64),
                                 np.zeros((3, 0), dtype=np.float32)],
                         ids=["float_0x5", "int_empty", "f4_3x0"])
def test_defect06b_empty_array_over_nested_list_keeps_shape_and_dtype(tmp_path, new):
    """An empty array saved over a nested-list weight is refused with EINVAL
    (the archive untouched), or reads back with the same shape and dtype,
    also after remounting; never silently changed."""
    old = [[1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0]]
    archive, _ = new_archive(tmp_path, model(weights={"w": old}))
    with mounted(archive) as mnt:
        p = mnt / "weights" / "w.npy"
        err = bounded_errno(mnt, "np.save", STEP, np.save, p, new)
        shown = bounded(mnt, "np.load", STEP, np.load, p)
    stored = decode(archive)["weights"]["w"]
    if err is not None:
        assert err == errno.EINVAL, f"np.save failed with {errname(err)}, expected EINVAL"
        assert stored == old, f"refused, yet the archive changed to {stored!r}"
        assert shown.shape == (2, 5)
        return
    with mounted(archive) as mnt:
        again = bounded(mnt, "np.load after remount", STEP, np.load, mnt / "weights" / "w.npy")
    for label, got in (("right after the save", shown), ("after remounting", again)):
        assert (got.shape, got.dtype.str) == (new.shape, new.dtype.str), \
            (f"np.save of a {new.dtype.str} {new.shape} array returned OK, but it reads "
             f"back {label} as {got.dtype.str} {got.shape} (stored: {stored!r})")


# --------------------------------------------------------------------------
# Inputs that hang, crash or grow the mount


def _npy_header(descr, shape):
    """An NPY 1.0 header claiming DESCR and SHAPE (numpy cannot make arrays
    whose sizes overflow, so these are written by hand)."""
    text = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join(f"{d}, " for d in shape).rstrip(" ") if len(shape) == 1
        else ", ".join(str(d) for d in shape))
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()


def _saved(arr):
    import io
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


HOSTILE_WRITES = [
    # id, where, bytes
    ("seed_empty_1e12x0", "seed", _saved(np.empty((10**12, 0)))),
    ("seed_empty_0x2e33", "seed", _saved(np.empty((0, 2**33)))),
    ("seed_empty_2e33x0x2e33", "seed", _npy_header("<f8", (2**33, 0, 2**33))),
    ("seed_overflowing_product", "seed", _npy_header("<f8", (2**32, 2**32, 2**32)) + b"\0" * 8),
    ("seed_overflowing_bytes", "seed", _npy_header("<f8", (2**61, 4)) + b"\0" * 8),
    ("seed_dim_over_2e32", "seed", _npy_header("<f8", (2**32 + 1,)) + b"\0" * 8),
    ("compact_overflowing_product", "compact", _npy_header("<f8", (2**32, 2**32, 2**32)) + b"\0" * 8),
    ("compact_overflowing_bytes", "compact", _npy_header("<f8", (2**61, 4)) + b"\0" * 8),
    ("compact_dim_over_2e32", "compact", _npy_header("<u1", (2**32 + 1,)) + b"\0" * 8),
    ("compact_empty_1e12x0", "compact", _saved(np.empty((10**12, 0)))),
    ("json_nesting_bomb", "text", b"[" * 1_000_000 + b"]" * 1_000_000 + b"\n"),
    ("json_object_bomb", "text", b'{"a":' * 300_000 + b"1" + b"}" * 300_000 + b"\n"),
]


@pytest.mark.parametrize("where,content", [h[1:] for h in HOSTILE_WRITES],
                         ids=[h[0] for h in HOSTILE_WRITES])
def test_defect07_hostile_shapes_are_refused_while_the_mount_answers(tmp_path, where, content):
    """A 128-byte .npy such as np.save(np.empty((10**12, 0))) copied over a
    weight, shapes whose product overflows, dimensions over 2^32, a JSON
    nesting bomb: each is refused with EINVAL quickly (or, where the
    encoding can hold it exactly, stored exactly), and a stat from another
    thread returns meanwhile. The daemon runs under prlimit --as."""
    compact_w = {"nd": True, "type": "<f8", "kind": b"", "shape": [2, 2],
                 "data": np.arange(4.0).tobytes()}
    weights = {"w": compact_w} if where == "compact" else {"w": [[1.0, 2.0], [3.0, 4.0]]}
    archive, before = new_archive(tmp_path, model(weights=weights))
    rel = "params/alpha" if where == "text" else "weights/w.npy"
    with mounted(archive, limit_as=HOSTILE_AS) as mnt:
        write = Call(write_file, mnt / rel, content, name="hostile write")
        # While it runs (or after it, if it is quick): other files answer.
        for i in range(5):
            bounded(mnt, f"stat of xtra/k{i} during the hostile write", STEP,
                    os.stat, mnt / "xtra" / f"k{i}")
        if not write.finished(STEP):
            hung(mnt, "the hostile write", STEP)
        err = write.errno()
        alive(mnt)
        if err is None and where == "compact":
            arr = bounded(mnt, "np.load", STEP, np.load, mnt / rel)
            want = np.load(__import__("io").BytesIO(content))
            assert (arr.shape, arr.dtype.str) == (want.shape, want.dtype.str)
            return
    assert err == errno.EINVAL, f"the hostile write gave {errname(err)}, expected EINVAL"
    assert Path(archive).read_bytes() == before, "refused, yet the archive changed"


def test_defect08_truncate_new_file_to_2g_then_stat(tmp_path):
    """truncate -s 2G of a new file under xtra/, then stat: the stat returns
    promptly with the size, and the daemon's heap stays small. Same for
    truncate -s 1G of an existing params file."""
    archive, _ = new_archive(tmp_path, model())
    with mounted(archive, limit_as=HOSTILE_AS) as mnt:
        for rel, size, restore in (("xtra/big", 2 * GB, b""), ("params/alpha", GB, b"1\n")):
            p = mnt / rel
            fd = bounded(mnt, f"open {rel}", STEP, os.open, p, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                err = bounded_errno(mnt, f"ftruncate {rel} to {size}", STEP, os.ftruncate, fd, size)
                assert err is None, f"ftruncate {rel} to {size}: {errname(err)}"
                st = bounded(mnt, f"stat {rel} after truncating it to {size}", STEP, os.stat, p)
                assert st.st_size == size, f"{rel}: st_size {st.st_size}, expected {size}"
                heap_ok(mnt, f"{rel} truncated to {size}")
                bounded(mnt, f"ftruncate {rel} to 0", STEP, os.ftruncate, fd, 0)
                if restore:
                    bounded(mnt, f"write {rel}", STEP, os.write, fd, restore)
            finally:
                bounded_errno(mnt, f"close {rel}", STEP, os.close, fd)
        alive(mnt)
    assert decode(archive)["params"]["alpha"] == 1


def test_defect09_types_map_with_many_keys_mounts_in_linear_time(tmp_path):
    """Classification is linear: a types map with 120k keys (defect: 40k
    took 12 s) mounts and lists within a generous deadline."""
    n = 120_000
    archive, _ = new_archive(tmp_path, model(
        types={f"t{i}": "ndarray" for i in range(n)},
        xtra={f"t{i}": [i] for i in range(n)}))
    with mounted(archive, mount_timeout=20) as mnt:
        names = bounded(mnt, "ls xtra", 20, os.listdir, mnt / "xtra")
        assert len(names) == n + 40


def test_defect09_csr_like_map_with_many_keys_mounts_in_linear_time(tmp_path):
    """The arg1 lookup is not repeated for every key: a csr_matrix map with
    120k extra keys mounts within a generous deadline."""
    n = 120_000
    csr = {"class_name": "csr_matrix", **{f"x{i}": i for i in range(n)},
           "shape": [2, 2], "arg1": [[1.0, 2.0], [0, 1], [0, 1, 2]], "dtype": "float64"}
    archive, _ = new_archive(tmp_path, model(xtra={"m": csr}))
    with mounted(archive, mount_timeout=20) as mnt:
        bounded(mnt, "ls xtra/m", 20, os.listdir, mnt / "xtra" / "m")


def test_defect10_list_of_4m_empty_maps_memory(tmp_path):
    """A 4 MB archive holding a list of 4M empty maps mounts with at most
    ~100 bytes per entry of peak memory (the defect: 1 GB, ~250 bytes)."""
    if ASAN:
        pytest.skip("memory is not measured under AddressSanitizer")
    n = 4_000_000
    archive, data = new_archive(tmp_path, model(xtra={"many": [{}] * n}))
    with mounted(archive, limit_as=HOSTILE_AS, mount_timeout=60) as mnt:
        bounded(mnt, "ls", STEP, os.listdir, mnt / "xtra")
        peak = proc_status(mnt, "VmHWM")
    limit = 100 * n + 32 * MB
    assert peak < limit, (f"peak RSS {peak / MB:.0f} MiB for a {len(data) / MB:.1f} MB archive "
                          f"of {n} empty maps (limit {limit / MB:.0f} MiB, ~100 B/entry)")


def test_defect11_archive_changed_in_place_at_same_size_reads_nothing_beyond(tmp_path):
    """Someone rewrites the archive in place, at the same size: a string in
    a plain list now claims 4352 bytes, far past the end of the file. Reads
    give an error or what the file held, never bytes from beyond the
    mapping; the daemon lives on and unmounts cleanly."""
    vals = [1, 2, "abcdefgh", 4]
    archive, data = new_archive(tmp_path, model(params={"vals": vals},
                                                xtra={"s": "A" * 300}))
    at = data.index(b"\xa8abcdefgh")
    changed = bytearray(data)
    changed[at:at + 5] = b"\xdb\x00\x00\x11\x00"   # str32 of 4352 bytes
    legit = {"params/vals": b'[1, 2, "abcdefgh", 4]\n',
             "xtra/s": b'"' + b"A" * 300 + b'"\n', "xtra/k1": b"1\n",
             "params/alpha": b"1\n"}
    with mounted(archive) as mnt:
        with open(archive, "r+b") as f:   # in place: same inode, same size
            f.write(changed)
        results = {}
        for rel in legit:
            try:
                results[rel] = bounded(mnt, f"read {rel}", STEP, read_file, mnt / rel)
            except OSError as e:
                results[rel] = errname(e.errno)
        alive(mnt)
    bad = {rel: (len(v), v[:100]) for rel, v in results.items()
           if isinstance(v, bytes) and v != legit[rel]}
    assert not bad, (f"reads after the in-place change of the {len(data)}-byte archive "
                     f"returned other bytes (length, start): {bad}")


def test_defect12_listxattr_after_archive_truncated_in_place(tmp_path):
    """The archive is cut short in place: listxattr/getxattr of array files
    give results or errors, never SIGBUS; the daemon unmounts cleanly."""
    weights = {f"w{i}": {"nd": True, "type": "<f8", "kind": b"", "shape": [512],
                         "data": np.arange(512.0).tobytes()} for i in range(8)}
    archive, data = new_archive(tmp_path, model(weights=weights))
    with mounted(archive) as mnt:
        with open(archive, "r+b") as f:
            f.truncate(100)
        for i in range(8):
            p = mnt / "weights" / f"w{i}.npy"
            for fn, args in ((os.listxattr, (p,)),
                             (os.getxattr, (p, "user.mpfs.shape")),
                             (os.getxattr, (p, "user.mpfs.dtype")),
                             (os.getxattr, (p, "user.mpfs.key"))):
                try:
                    bounded(mnt, f"{fn.__name__} {p.name}", STEP, fn, *args)
                except OSError:
                    pass
            alive(mnt)
        err = bounded_errno(mnt, "echo 5 > alpha", STEP, write_file,
                            mnt / "params" / "alpha", b"5\n")
        assert err is not None, "an edit after the cut returned OK"
        alive(mnt)


def test_defect13_stat_returns_while_a_big_commit_is_in_progress(tmp_path):
    """A ~200 MB archive: while the commit of an edit to alpha runs (its
    temporary file exists and the archive is not yet replaced), stats of
    unrelated files return: readers do not wait for the commit."""
    big = np.frombuffer(os.urandom(200 * MB), dtype="<f8")
    weights = {"w": {"nd": True, "type": "<f8", "kind": b"", "shape": [big.size],
                     "data": big.tobytes()}}
    archive, _ = new_archive(tmp_path, model(weights=weights,
                                             xtra={f"q{i}": i for i in range(3000)}))
    del big
    old_ino = os.stat(archive).st_ino
    folder = archive.parent

    def commit_running():
        return (os.stat(archive).st_ino == old_ino
                and any(n != archive.name for n in os.listdir(folder)))

    with mounted(archive) as mnt:
        writer = Call(write_file, mnt / "params" / "alpha", b"5\n", name="big commit")
        # Wait until the commit is visibly in progress.
        seen = False
        deadline = time.monotonic() + 60
        while not writer.done.is_set() and time.monotonic() < deadline:
            if commit_running():
                seen = True
                break
            time.sleep(0.002)
        if not seen:
            if not writer.finished(60):
                hung(mnt, "the commit", 120)
            pytest.skip("the commit ended before it could be seen in progress")
        answered_during_commit = 0
        i = 0
        while not writer.done.is_set() and i < 3000:
            call = Call(os.stat, mnt / "xtra" / f"q{i}", name="stat")
            if not call.finished(120):
                hung(mnt, "a stat during the commit", 120)
            call.outcome()
            if commit_running():
                answered_during_commit += 1
            i += 1
        if not writer.finished(120):
            hung(mnt, "the commit", 120)
        assert writer.errno() is None, f"the commit failed: {errname(writer.errno())}"
        assert answered_during_commit > 0, \
            ("no stat of an unrelated file returned while the commit was in progress "
             f"({i} stats, all answered only after the archive was replaced)")
    assert decode(archive)["params"]["alpha"] == 5


def test_defect14_huge_sizes_give_efbig(tmp_path):
    """truncate to 999999999999999 gives EFBIG at once (not ENOMEM), for
    an existing value and a new file; so does a write ending beyond what a
    str or bin can hold (4 GiB - 1)."""
    archive, before = new_archive(tmp_path, model(xtra={"b": b"\x01\x02"}))
    with mounted(archive, limit_as=HOSTILE_AS) as mnt:
        results = {}
        results["truncate params/alpha"] = bounded_errno(
            mnt, "truncate params/alpha", STEP, os.truncate, mnt / "params" / "alpha",
            999999999999999)
        results["truncate xtra/b"] = bounded_errno(
            mnt, "truncate xtra/b", STEP, os.truncate, mnt / "xtra" / "b", 999999999999999)
        fd = bounded(mnt, "create xtra/new", STEP, os.open, mnt / "xtra" / "new",
                     os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            results["ftruncate new file"] = bounded_errno(
                mnt, "ftruncate new", STEP, os.ftruncate, fd, 999999999999999)
            results["pwrite at 4 GiB"] = bounded_errno(
                mnt, "pwrite at 4 GiB", STEP, os.pwrite, fd, b"x", 4 * GB)
        finally:
            bounded_errno(mnt, "close", STEP, os.close, fd)
        alive(mnt)
    wrong = {k: errname(v) for k, v in results.items() if v != errno.EFBIG}
    assert not wrong, f"expected EFBIG: {wrong}"
    got = decode(archive)
    assert got["params"]["alpha"] == 1 and got["xtra"]["b"] == b"\x01\x02"


def test_defect14_write_at_2gib_then_lstat(tmp_path):
    """A 1-byte write at offset 2 GiB into a new file, then lstat: it
    returns promptly with size 2 GiB + 1, and the daemon's heap stays
    bounded."""
    archive, _ = new_archive(tmp_path, model())
    with mounted(archive, limit_as=HOSTILE_AS) as mnt:
        p = mnt / "xtra" / "sparse"
        fd = bounded(mnt, "create", STEP, os.open, p, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            try:
                n = bounded(mnt, "pwrite at 2 GiB", STEP, os.pwrite, fd, b"x", 2 * GB)
            except OSError as e:
                pytest.fail(f"a 1-byte write at 2 GiB into a new file failed with "
                            f"{errname(e.errno)} (the daemon may use {HOSTILE_AS / GB:g} GiB "
                            "of address space)", pytrace=False)
            assert n == 1
            st = bounded(mnt, "lstat after the write at 2 GiB", STEP, os.lstat, p)
            assert st.st_size == 2 * GB + 1
            heap_ok(mnt, "a new file with one byte at 2 GiB")
            bounded(mnt, "ftruncate to 0", STEP, os.ftruncate, fd, 0)
        finally:
            bounded_errno(mnt, "close", STEP, os.close, fd)
        alive(mnt)


# --------------------------------------------------------------------------
# From the POSIX conformance and stress tools


def test_defect15_rename_just_created_empty_file(tmp_path):
    """A file just created and not yet written is a node like any other:
    rename moves it (closed, and while still open), and what is written
    afterwards lands under the new name."""
    archive, _ = new_archive(tmp_path, model())
    with mounted(archive) as mnt:
        x = mnt / "xtra"

        def scenario():
            out = {}
            os.close(os.open(x / "new", os.O_WRONLY | os.O_CREAT, 0o644))
            try:
                os.rename(x / "new", x / "new2")
                out["closed"] = None
            except OSError as e:
                out["closed"] = errname(e.errno)
            fd = os.open(x / "open", os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                try:
                    os.rename(x / "open", x / "open2")
                    out["open"] = None
                except OSError as e:
                    out["open"] = errname(e.errno)
                os.write(fd, b"6\n")
            finally:
                os.close(fd)
            if out["closed"] is None:
                write_file(x / "new2", b"5\n")
            out["names"] = sorted(n for n in os.listdir(x) if not n.startswith("k"))
            return out

        out = bounded(mnt, "create, rename", STEP, scenario)
    assert (out["closed"], out["open"]) == (None, None), \
        f"rename of a new empty file failed: closed: {out['closed']}, open: {out['open']}"
    assert out["names"] == ["new2", "open2"], out["names"]
    xtra = decode(archive)["xtra"]
    assert (xtra.get("new2"), xtra.get("open2")) == (5, 6) \
        and "new" not in xtra and "open" not in xtra, \
        {k: v for k, v in xtra.items() if not k.startswith("k")}


def test_defect16_rename_dir_over_dir_holding_only_a_new_file(tmp_path):
    """B holds only a new, not yet written file: rmdir B says ENOTEMPTY,
    and so must rename A over B (or EEXIST); B/f stays."""
    archive, _ = new_archive(tmp_path, model())
    with mounted(archive) as mnt:
        a, b = mnt / "xtra" / "A", mnt / "xtra" / "B"

        def scenario():
            os.mkdir(a)
            os.mkdir(b)
            os.close(os.open(b / "f", os.O_WRONLY | os.O_CREAT, 0o644))
            try:
                os.rmdir(b)
                rm = None
            except OSError as e:
                rm = e.errno
            try:
                os.rename(a, b)
                mv = None
            except OSError as e:
                mv = e.errno
            return rm, mv, os.path.isdir(a), os.listdir(b) if os.path.isdir(b) else None

        rm, mv, a_left, in_b = bounded(mnt, "mkdir, create, rename", STEP, scenario)
    assert rm == errno.ENOTEMPTY, f"rmdir B: {errname(rm)}"
    assert mv in (errno.ENOTEMPTY, errno.EEXIST), \
        f"rename A over B (which shows f): {errname(mv)}, expected ENOTEMPTY"
    assert a_left and in_b == ["f"], f"A still there: {a_left}; B holds {in_b}"


def test_defect17_open_trunc_then_close(tmp_path):
    """Open with O_TRUNC, then close: a bin or a string is committed empty;
    a number keeps its value (the refusal is logged)."""
    archive, _ = new_archive(tmp_path, model(xtra={"b": b"\x01\x02\x03", "s": "abc",
                                                   "n": 5}))
    with mounted(archive) as mnt:
        errs = {}
        for key in ("b", "s", "n"):
            errs[key] = bounded_errno(
                mnt, f"open O_TRUNC + close {key}", STEP,
                lambda p: os.close(os.open(p, os.O_WRONLY | os.O_TRUNC)), mnt / "xtra" / key)
        shown = {k: bounded(mnt, "read", STEP, read_file, mnt / "xtra" / k) for k in errs}
    xtra = decode(archive)["xtra"]
    got = {k: xtra[k] for k in ("b", "s", "n")}
    assert got == {"b": b"", "s": "", "n": 5}, \
        f"after open(O_TRUNC)+close the archive holds {got} (close errors: " \
        f"{ {k: errname(v) for k, v in errs.items()} }, reads {shown})"
    assert errs["b"] is None and errs["s"] is None, errs


class _Workload:
    """One file's close/reopen/truncate/write workload against a plain-file
    model (fsx style); up to three descriptors at a time."""

    def __init__(self, mnt, archive, name, initial, seed, steps):
        self.mnt, self.archive, self.name = mnt, archive, name
        self.path = mnt / "xtra" / name
        self.content = bytearray(initial)
        self.rng = random.Random(seed)
        self.steps = steps
        self.fds = []
        self.log = []
        self.problem = None

    def check(self, step):
        want = len(self.content)
        size = os.stat(self.path).st_size
        if size != want:
            return f"expected {want:#x}, stat {size:#x}"
        for fd in self.fds:
            size = os.fstat(fd).st_size
            if size != want:
                return f"expected {want:#x}, fstat {size:#x}"
        return None

    def close_one(self, fd):
        if not self.fds and not self.content:
            # Not left empty at the last close: that is defect 17's test.
            os.pwrite(fd, b"z", 0)
            self.content.extend(b"z")
            self.log.append("pwrite 1 byte at 0 (not to close empty)")
        os.close(fd)

    def step(self, i):
        rng, c = self.rng, self.content
        op = rng.choice(["open", "open", "open_trunc", "write", "write", "truncate",
                         "close", "close", "read"])
        if op in ("write", "truncate", "close", "read") and not self.fds:
            op = "open"
        if op.startswith("open") and len(self.fds) >= 3:
            op = "close"
        if op.startswith("open"):
            trunc = op == "open_trunc"
            self.fds.append(os.open(self.path, os.O_RDWR | (os.O_TRUNC if trunc else 0)))
            if trunc:
                c.clear()
            self.log.append(f"{i}: open{' O_TRUNC' if trunc else ''}")
        elif op == "write":
            off = rng.randrange(0, 300_000)
            data = bytes([rng.randrange(256)]) * rng.randrange(1, 70_000)
            os.pwrite(rng.choice(self.fds), data, off)
            if len(c) < off:
                c.extend(b"\0" * (off - len(c)))
            c[off:off + len(data)] = data
            self.log.append(f"{i}: pwrite {len(data):#x} bytes at {off:#x}")
        elif op == "truncate":
            size = rng.randrange(0, 300_000)
            os.ftruncate(rng.choice(self.fds), size)
            del c[size:]
            c.extend(b"\0" * (size - len(c)))
            self.log.append(f"{i}: ftruncate to {size:#x}")
        elif op == "close":
            fd = self.fds.pop(rng.randrange(len(self.fds)))
            self.log.append(f"{i}: close ({len(self.fds)} left open)")
            try:
                self.close_one(fd)
            except OSError as e:
                return f"close failed: {e!r}"
        elif op == "read":
            got = os.pread(rng.choice(self.fds), 400_000, 0)
            self.log.append(f"{i}: read")
            if got != bytes(c):
                return (f"read {len(got):#x} bytes, expected {len(c):#x}"
                        f"{' (same size, other bytes)' if len(got) == len(c) else ''}")
        problem = self.check(i)
        if problem:
            return problem
        if op == "close" and not self.fds:
            stored = decode(self.archive)["xtra"][self.name]
            if stored != bytes(c):
                return (f"all closed, the archive holds {len(stored):#x} bytes, expected "
                        f"{len(c):#x}{' (other bytes)' if len(stored) == len(c) else ''}")
        return None

    def run(self):
        try:
            for i in range(self.steps):
                self.problem = self.step(i)
                if self.problem:
                    return
        except OSError as e:
            self.problem = f"{e!r}"
        finally:
            while self.fds:
                try:
                    self.close_one(self.fds.pop())
                except OSError as e:
                    self.problem = self.problem or f"final close: {e!r}"


def test_defect18_close_reopen_truncate_workload_sizes(tmp_path):
    """Random close/reopen/truncate/write workloads on three bin files at
    once (one thread per file, several descriptors per file): after every
    step the size (stat and fstat) is what a plain file would have, reads
    give the content, and the archive holds it whenever no descriptor is
    open. Replay with MPFS_TRUST_SEED; MPFS_TRUST_STEPS sets the length."""
    seed = int(os.environ.get("MPFS_TRUST_SEED", random.randrange(2**32)))
    steps = int(os.environ.get("MPFS_TRUST_STEPS", 600))
    names = ["b0", "b1", "b2"]
    initial = {n: bytes([65 + i]) * 1000 for i, n in enumerate(names)}
    archive, _ = new_archive(tmp_path, model(xtra=initial))
    with mounted(archive) as mnt:
        loads = [_Workload(mnt, archive, n, initial[n], seed + i, steps)
                 for i, n in enumerate(names)]
        calls = [Call(w.run, name=w.name) for w in loads]
        for call in calls:
            if not call.finished(120):
                hung(mnt, "the workload", 120)
            call.outcome()
    problems = [f"{w.name}: {w.problem}; after:\n    " + "\n    ".join(w.log[-10:])
                for w in loads if w.problem]
    assert not problems, (f"seed {seed} (MPFS_TRUST_SEED={seed} to replay):\n  "
                          + "\n  ".join(problems))
    xtra = decode(archive)["xtra"]
    for w in loads:
        assert xtra[w.name] == bytes(w.content), f"seed {seed}: {w.name} in the archive"
