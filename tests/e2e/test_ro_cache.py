"""Read-only mounts let the kernel cache everything (docs/performance.md,
"Many small files"): names and attributes for a day, every listing as
READDIRPLUS with offsets (no LOOKUP), files opened without OPEN or RELEASE
(reads by path). What a reader sees must not differ from a read-write
mount of the same archive in any byte, size, mode bit or xattr."""

import errno
import os
import re
import shutil
import stat
import subprocess

import msgpack
import numpy as np
import pytest

from harness import GOOD_ARCHIVES, daemon_of, fail_on, mounted, walk

# Odd read sizes and offsets: across the NPY header, page and reply
# boundaries, past the end.
SIZES = (1, 7, 127, 4095, 4097, 65537, 1 << 20, (1 << 20) + 3)
OFFSETS = (0, 1, 63, 127, 128, 4095, 4096, 65535, 1 << 20, 3 * (1 << 20) + 5)


def _xattrs(path):
    return {n: os.getxattr(path, n) for n in sorted(os.listxattr(path))}


def _odd_reads(path, size):
    """Every (offset, size) read of PATH, each through its own descriptor."""
    out = {}
    fd = os.open(path, os.O_RDONLY)
    try:
        for off in OFFSETS:
            if off > size + 1:
                continue
            for n in SIZES:
                out[off, n] = os.pread(fd, n, off)
    finally:
        os.close(fd)
    return out


def ro_differences(rw, ro):
    """How the read-only mount RO shows anything differently from the
    read-write mount RW of the same archive; [] if not at all."""
    problems = []
    (dirs_rw, files_rw), (dirs_ro, files_ro) = walk(rw), walk(ro)
    if dirs_rw != dirs_ro:
        problems.append(f"directories differ: {sorted(set(dirs_rw) ^ set(dirs_ro))}")
    if files_rw != files_ro:
        problems.append(f"files differ: {sorted(set(files_rw) ^ set(files_ro))}")
    for rel in [d for d in dirs_rw if d in dirs_ro] + [None]:
        a, b = (rw / rel, ro / rel) if rel else (rw, ro)
        if os.listdir(a) != os.listdir(b):
            problems.append(f"{rel}: listing order differs")
        sa, sb = os.stat(a), os.stat(b)
        if (sa.st_nlink, stat.S_IFMT(sa.st_mode)) != (sb.st_nlink, stat.S_IFMT(sb.st_mode)):
            problems.append(f"{rel}/: nlink or type differ")
    for rel in sorted(set(files_rw) & set(files_ro)):
        a, b = rw / rel, ro / rel
        sa, sb = os.stat(a), os.stat(b)
        if sa.st_size != sb.st_size:
            problems.append(f"{rel}: size {sa.st_size} rw, {sb.st_size} ro")
        if stat.S_IMODE(sb.st_mode) != stat.S_IMODE(sa.st_mode) & ~0o222:
            problems.append(f"{rel}: mode {oct(sa.st_mode)} rw, {oct(sb.st_mode)} ro")
        if a.read_bytes() != b.read_bytes():
            problems.append(f"{rel}: bytes differ")
        if _xattrs(a) != _xattrs(b):
            problems.append(f"{rel}: xattrs differ")
        if _odd_reads(a, sa.st_size) != _odd_reads(b, sb.st_size):
            problems.append(f"{rel}: reads at odd offsets and sizes differ")
    # lstat as ls -l sees it, through the listing (READDIRPLUS attributes).
    ls = [subprocess.run(["ls", "-lnR", "--time-style=+"], cwd=m, capture_output=True,
                         text=True, check=True).stdout for m in (rw, ro)]
    strip = [re.sub(r"^[-d]r.{8}", "", s, flags=re.M) for s in ls]
    if strip[0] != strip[1]:
        problems.append("ls -lnR differs (beyond the write bits)")
    return problems


@pytest.mark.parametrize("name", GOOD_ARCHIVES)
def test_ro_mount_shows_what_rw_shows(archive_copies, name):
    archive = archive_copies / f"{name}.mpk"
    before = archive.read_bytes()
    for opts in ((), ("-o", "raw")):
        with mounted(archive, *opts) as rw, mounted(archive, "-o", "ro", *opts) as ro:
            fail_on(ro_differences(rw, ro), f"{name} {' '.join(opts)}: ro vs rw")
    assert archive.read_bytes() == before


def _big(folder, terms):
    """Big arrays both ways (compact: spliced from the archive; nested
    above 2 MiB: made, and given to the kernel by reference), a small
    nested one, a list of arrays, scalars, and a map of terms entries."""
    rng = np.random.default_rng(7)
    compact = rng.standard_normal((700, 800))
    nested = rng.standard_normal((500, 600))
    doc = {
        "class_name": "Big", "types": {"lst": "ndarray"},
        "params": {"alpha": 0.5, "name": "x"},
        "xtra": {"vocabulary_": {f"t{i:06d}": i for i in range(terms)},
                 "lst": [[1, 2, 3], [4, 5, 6]]},
        "weights": {
            "compact": {b"nd": True, b"type": "<f8", b"kind": b"", b"shape": [700, 800],
                        b"data": compact.tobytes()},
            "nested": nested.tolist(),
            "coefs_": [rng.standard_normal((3, 4)).tolist(), rng.standard_normal(5).tolist()],
        },
    }
    path = folder / f"big{terms}.mpk"
    path.write_bytes(msgpack.packb(doc, use_bin_type=True))
    return path


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory):
    """_big with a 50k-entry map: a listing of many READDIRs."""
    return _big(tmp_path_factory.mktemp("ro"), 50_000)


@pytest.fixture(scope="module")
def mid_archive(tmp_path_factory):
    """_big with a 5k-entry map, for whole-tree walks (each file an open
    and a read through the mount, three times over)."""
    return _big(tmp_path_factory.mktemp("ro"), 5_000)


def test_ro_big_arrays_and_nested_read_like_rw(big_archive):
    with mounted(big_archive) as rw, mounted(big_archive, "-o", "ro") as ro:
        problems = []
        for rel in ("weights/compact.npy", "weights/nested.npy", "weights/coefs_/0.npy",
                    "weights/coefs_/1.npy", "xtra/lst.npy", "params/alpha"):
            a, b = rw / rel, ro / rel
            if os.stat(a).st_size != os.stat(b).st_size:
                problems.append(f"{rel}: sizes differ")
            if _odd_reads(b, os.stat(b).st_size) != _odd_reads(a, os.stat(a).st_size):
                problems.append(f"{rel}: odd reads differ")
            if a.read_bytes() != b.read_bytes():
                problems.append(f"{rel}: bytes differ")
            if _xattrs(a) != _xattrs(b):
                problems.append(f"{rel}: xattrs differ")
        fail_on(problems, "big arrays, ro vs rw")
        got = np.load(ro / "weights" / "nested.npy", mmap_mode="r")
        same = np.array_equal(got, np.load(rw / "weights" / "nested.npy"))
        del got  # the mapping keeps the mount busy
        assert same
        assert np.array_equal(np.load(ro / "weights" / "compact.npy"),
                              np.load(rw / "weights" / "compact.npy"))


def test_ro_grep_and_find_cat_match_rw(mid_archive):
    with mounted(mid_archive) as rw, mounted(mid_archive, "-o", "ro") as ro:
        outs = []
        for m in (rw, ro):
            grep = subprocess.run(["grep", "-r", "-c", "^4999", "xtra"], cwd=m,
                                  capture_output=True, check=True).stdout
            cat = subprocess.run(["find", ".", "-type", "f", "-exec", "cat", "{}", "+"],
                                 cwd=m, capture_output=True, check=True).stdout
            outs.append((grep, cat))
        assert outs[0][0] == outs[1][0], "grep -r output differs between rw and ro"
        assert outs[0][1] == outs[1][1], "find -exec cat output differs between rw and ro"
        # Again, from the kernel's caches.
        again = subprocess.run(["find", ".", "-type", "f", "-exec", "cat", "{}", "+"],
                               cwd=ro, capture_output=True, check=True).stdout
        assert again == outs[1][1]


def test_ro_listing_of_50k_entries_names_each_once(big_archive):
    want = [f"t{i:06d}" for i in range(50_000)]
    with mounted(big_archive, "-o", "ro") as ro:
        d = ro / "xtra" / "vocabulary_"
        for _ in range(2):  # the second from the kernel's caches
            got = os.listdir(d)  # getdents in 32 KiB pieces: many READDIRs
            assert len(got) == len(set(got)) == 50_000
            assert got == want, "listing order differs from the archive's"
        # A listing read in small pieces, from a descriptor kept open.
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            names = [e.name for e in os.scandir(fd)]
        finally:
            os.close(fd)
        assert names == want
        # Entries stat as getattr gives them, whether listed first or not.
        assert (d / "t049999").read_text() == "49999\n"
        assert os.stat(d / "t000007").st_size == 2
        assert not os.path.exists(d / "t050000")


def test_ro_grep_sends_no_lookup_open_or_release(big_archive):
    """The point of it all, seen in the daemon's -d log."""
    with mounted(big_archive, "-o", "ro", "-d") as ro:
        log = daemon_of(ro)
        before = len(log.stderr_text())
        out = subprocess.run(["grep", "-r", "-l", "^49999$", "xtra/vocabulary_"], cwd=ro,
                             capture_output=True, text=True, check=True).stdout
        assert out == "xtra/vocabulary_/t049999\n"
        ops = re.findall(r"opcode: ([A-Z_]+)", log.stderr_text()[before:])
    counts = {op: ops.count(op) for op in set(ops)}
    assert counts.get("READ", 0) >= 50_000 - 10, counts
    # One OPEN (answered ENOSYS), then none; one FLUSH (answered ENOSYS).
    assert counts.get("OPEN", 0) <= 1, counts
    assert counts.get("RELEASE", 0) == 0, counts
    assert counts.get("FLUSH", 0) <= 1, counts
    assert counts.get("LOOKUP", 0) < 10, counts
    assert counts.get("READDIRPLUS", 0) > 0 and counts.get("READDIR", 0) == 0, counts


def test_rw_mount_still_opens_and_lists_whole(big_archive, tmp_path):
    archive = tmp_path / "rw.mpk"
    shutil.copyfile(big_archive, archive)
    with mounted(archive, "-d") as rw:
        log = daemon_of(rw)
        before = len(log.stderr_text())
        assert (rw / "params" / "alpha").read_text() == "0.5\n"
        assert len(os.listdir(rw / "xtra" / "vocabulary_")) == 50_000
        ops = re.findall(r"opcode: ([A-Z_]+)", log.stderr_text()[before:])
    assert "OPEN" in ops and "RELEASE" in ops
    # The listing read whole at the first READDIR(PLUS), then served from
    # libfuse's buffer: no READDIRPLUS after the first.
    assert ops.count("READDIRPLUS") <= 1 and "READDIR" in ops, ops


def test_ro_refuses_writes_on_files_read_without_open(big_archive):
    with mounted(big_archive, "-o", "ro") as ro:
        f = ro / "params" / "alpha"
        assert f.read_text() == "0.5\n"  # opened without OPEN from now on
        for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC, os.O_RDONLY | os.O_TRUNC):
            with pytest.raises(OSError) as e:
                os.close(os.open(f, flags))
            assert e.value.errno == errno.EROFS
        fd = os.open(f, os.O_RDONLY)
        try:
            with pytest.raises(OSError) as e:
                os.write(fd, b"1")
            assert e.value.errno == errno.EBADF
            os.fsync(fd)  # nothing to write back: fine
        finally:
            os.close(fd)
        assert f.read_text() == "0.5\n"


def test_ro_archive_rewritten_underneath_gives_errors_not_garbage(big_archive, tmp_path):
    """Nothing is rewritten through a ro mount; if someone rewrites the
    archive in place anyway, reads give what the archive held or fail
    (EIO, ESTALE): no crash, no bytes of the new file shown as the old."""
    archive = tmp_path / "under.mpk"
    shutil.copyfile(big_archive, archive)
    with mounted(big_archive) as ref:
        want = (ref / "weights" / "compact.npy").read_bytes()
        want_vocab = (ref / "xtra" / "vocabulary_" / "t012345").read_bytes()
    with mounted(archive, "-o", "ro") as ro:
        assert (ro / "params" / "alpha").read_text() == "0.5\n"
        data = bytearray(archive.read_bytes())
        with open(archive, "r+b") as f:  # the same inode, other bytes
            f.write(bytes(len(data) // 2))
            f.truncate(len(data) // 2)
        for rel, good in (("weights/compact.npy", want),
                          ("xtra/vocabulary_/t012345", want_vocab)):
            try:
                got = (ro / rel).read_bytes()
            except OSError as e:
                assert e.errno in (errno.EIO, errno.ESTALE), e
            else:
                assert got == good, f"{rel}: other bytes than the archive held"
        assert daemon_of(ro).proc.poll() is None


def _mount_flags(mnt):
    target = os.path.realpath(mnt)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if fields[4] == target:
                return fields[5].split(",")
    raise AssertionError(f"{mnt} is not mounted")


@pytest.mark.parametrize("opts", [("-o", "ro", "-o", "rw"), ("-o", "rw,ro"), ("-o", "ro,rw")])
def test_ro_mount_is_read_only_to_the_kernel_whatever_else_is_given(big_archive, tmp_path,
                                                                     opts):
    """Files of a read-only mount are opened without OPEN, so the kernel
    itself must refuse opens for writing (a read-only mount, MS_RDONLY).
    With `-o ro` and a later `rw`, mpfs was read-only but the kernel's
    mount read-write: open(O_WRONLY | O_TRUNC) succeeded (and the kernel
    dropped the file's cached size and pages for a truncation that never
    happened), and only the write failed."""
    archive = tmp_path / "ro.mpk"
    shutil.copyfile(big_archive, archive)
    before = archive.read_bytes()
    with mounted(archive, *opts) as ro:
        f = ro / "params" / "alpha"
        flags = _mount_flags(ro)
        errors = []
        for first in (True, False):  # before and after files are opened without OPEN
            for how in (os.O_WRONLY | os.O_TRUNC, os.O_RDWR):
                try:
                    os.close(os.open(f, how))
                    errors.append(f"open({how:#o}) succeeded")
                except OSError as e:
                    if e.errno != errno.EROFS:
                        errors.append(f"open({how:#o}) gave {errno.errorcode[e.errno]}")
            if first:
                assert f.read_text() == "0.5\n"
        assert f.read_text() == "0.5\n"
    assert archive.read_bytes() == before
    assert "ro" in flags and not errors, (flags, errors)
