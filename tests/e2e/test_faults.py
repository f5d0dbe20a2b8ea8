"""Fault injection (issue 7, defect 4): commits that fail because the disk
is full (the archive on a small, nearly full tmpfs: ENOSPC) or because the
archive's directory became read-only mid-mount (a read-only bind mount of
it over itself: EROFS; root ignores permission bits, so chmod would not do).

The error reaches the writer's fsync and close with the real errno (not EIO,
not 0); the archive is untouched; the edit stays pending and keeps failing
until it can be committed, and once the fault is gone a later fsync or close
of the same still-open file commits it: never silently dropped.
"""

import contextlib
import ctypes
import errno
import os
import subprocess
from pathlib import Path

import msgpack
import pytest

from harness import mounted
from trouble import alive, bounded, bounded_errno, decode, errname, write_file

STEP = 20.0
PAD = 200 * 1024  # the archive is a bit over 200 KB


def _run(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def small_tmpfs(tmp_path, size="1m"):
    """A tmpfs of SIZE mounted on a fresh folder; unmounted afterwards."""
    folder = tmp_path / "tmpfs"
    folder.mkdir()
    res = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder))
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs: {res.stderr.strip()}")
    try:
        yield folder
    finally:
        if _run("umount", str(folder)).returncode:
            _run("umount", "-l", str(folder))


def small_xfs(size="300m"):
    """An XFS with reflinks (which a piece commit uses to share the
    unchanged pieces of a big array) of SIZE, loop-mounted on a fresh folder
    under /var/tmp; unmounted and removed afterwards. Skips where none can
    be made (not root, no mkfs.xfs from xfsprogs, no loop device)."""
    return _small_loop_fs("xfs", ["mkfs.xfs", "-q", "-m", "reflink=1"], size)


def small_btrfs(size="300m"):
    """A btrfs (copy on write, reflinks; it can refuse an overwrite when
    full) of SIZE, loop-mounted as small_xfs is. Skips where none can be
    made (not root, no mkfs.btrfs from btrfs-progs, no loop device)."""
    return _small_loop_fs("btrfs", ["mkfs.btrfs", "-q"], size)


@contextlib.contextmanager
def _small_loop_fs(kind, mkfs, size):
    import shutil
    import tempfile
    if os.geteuid() != 0 or not shutil.which(mkfs[0]):
        pytest.skip(f"needs root and {mkfs[0]} for a loop-mounted {kind}")
    work = Path(tempfile.mkdtemp(prefix=f"mpfs-{kind}-", dir="/var/tmp"))
    image, root = work / f"{kind}.img", work / "mnt"
    root.mkdir()
    _run("truncate", "-s", size, str(image))
    if _run(*mkfs, str(image)).returncode or \
            _run("mount", "-o", "loop", str(image), str(root)).returncode:
        shutil.rmtree(work)
        pytest.skip(f"cannot make and loop-mount a {kind} image here")
    try:
        yield root
    finally:
        if _run("umount", str(root)).returncode:
            _run("umount", "-l", str(root))
        shutil.rmtree(work, ignore_errors=True)


_libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096


def _mount(source, target, flags):
    if _libc.mount(str(source).encode(), str(target).encode(), None, flags, None):
        return ctypes.get_errno()
    return 0


def _umount(target):
    return 0 if _libc.umount2(str(target).encode(), 0) == 0 else ctypes.get_errno()


@contextlib.contextmanager
def read_only(folder):
    """FOLDER made read-only by a read-only bind mount of itself; undone
    (early) by calling the yielded function, or at the end.

    With mount(2) itself, not the mount command: a fork while a descriptor
    on the mount is open would close that descriptor's copy at exec, a
    flush that commits."""
    err = _mount(folder, folder, MS_BIND)
    if err:
        pytest.skip(f"cannot bind-mount: {os.strerror(err)}")
    state = {"mounted": True}

    def undo():
        if state["mounted"]:
            err = _umount(folder)
            assert not err, f"umount {folder}: {os.strerror(err)}"
            state["mounted"] = False

    try:
        err = _mount(folder, folder, MS_REMOUNT | MS_BIND | MS_RDONLY)
        if err:
            pytest.skip(f"cannot remount read-only: {os.strerror(err)}")
        yield undo
    finally:
        if state["mounted"] and _umount(folder):
            _run("umount", "-l", str(folder))


def make_archive(folder):
    archive = folder / "m.mpk"
    data = msgpack.packb({"class_name": "Faults", "types": {},
                          "params": {"alpha": 1, "beta": 2},
                          "xtra": {"pad": b"\x07" * PAD},
                          "weights": {}}, use_bin_type=True)
    archive.write_bytes(data)
    return archive, data


def fill(folder):
    """Fill the file system of FOLDER with a file `filler`; its path."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    return filler


def others(folder, archive):
    return sorted(p.name for p in folder.iterdir() if p.name not in (archive.name, "filler"))


def open_and_write(mnt, rel, data):
    fd = os.open(mnt / rel, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, data)
    return fd


def test_enospc_reaches_fsync_and_the_edit_commits_once_space_is_freed(tmp_path):
    """Disk full: fsync gives ENOSPC, again at the next fsync; the archive
    is untouched; after space is freed, fsync of the same descriptor commits
    the edit, and close returns OK."""
    with small_tmpfs(tmp_path) as folder:
        archive, before = make_archive(folder)
        with mounted(archive) as mnt:
            filler = fill(folder)
            fd = bounded(mnt, "open+write", STEP, open_and_write, mnt, "params/alpha", b"5\n")
            try:
                first = bounded_errno(mnt, "fsync (disk full)", STEP, os.fsync, fd)
                second = bounded_errno(mnt, "fsync again (disk full)", STEP, os.fsync, fd)
                untouched = archive.read_bytes() == before
                leftovers = others(folder, archive)
                os.truncate(filler, 0)
                third = bounded_errno(mnt, "fsync (space freed)", STEP, os.fsync, fd)
                stored = decode(archive)["params"]["alpha"]
            finally:
                closed = bounded_errno(mnt, "close", STEP, os.close, fd)
            alive(mnt)
        final = decode(archive)["params"]["alpha"]
    problems = []
    if (first, second) != (errno.ENOSPC, errno.ENOSPC):
        problems.append(f"fsync on a full disk gave {errname(first)}, then {errname(second)} "
                        "(expected ENOSPC both times)")
    if not untouched:
        problems.append("the archive changed although the commit failed")
    if leftovers:
        problems.append(f"left beside the archive: {leftovers}")
    if third is not None or stored != 5:
        problems.append(f"after space was freed, fsync gave {errname(third)} and alpha is "
                        f"{stored} (the edit was 5)")
    if closed is not None or final != 5:
        problems.append(f"close gave {errname(closed)}, alpha is {final} after unmounting")
    assert not problems, "\n".join(problems)


def test_enospc_then_space_freed_close_commits_the_pending_edit(tmp_path):
    """The issue's reproduction: fsync fails (disk full), space is freed,
    then only close: the close commits the edit (or fails loudly); it must
    not return OK with the old value left in the archive."""
    with small_tmpfs(tmp_path) as folder:
        archive, before = make_archive(folder)
        with mounted(archive) as mnt:
            filler = fill(folder)
            fd = bounded(mnt, "open+write", STEP, open_and_write, mnt, "params/alpha", b"5\n")
            try:
                first = bounded_errno(mnt, "fsync (disk full)", STEP, os.fsync, fd)
                os.truncate(filler, 0)
            finally:
                closed = bounded_errno(mnt, "close (space freed)", STEP, os.close, fd)
            shown = bounded(mnt, "read back", STEP, (mnt / "params" / "alpha").read_bytes)
        final = decode(archive)["params"]["alpha"]
    problems = []
    if first != errno.ENOSPC:
        problems.append(f"fsync on a full disk gave {errname(first)}, expected ENOSPC")
    if closed is None and final != 5:
        problems.append(f"after space was freed, close returned OK but the archive holds "
                        f"alpha={final} (reads {shown!r}): the edit 5 was silently dropped")
    elif closed is not None:
        problems.append(f"after space was freed, close gave {errname(closed)} "
                        f"(alpha={final}): the edit was not committed")
    assert not problems, "\n".join(problems)


def test_enospc_reaches_close(tmp_path):
    """Disk full at close: close gives ENOSPC, the archive is untouched, the
    mount lives on and commits once space is back."""
    with small_tmpfs(tmp_path) as folder:
        archive, before = make_archive(folder)
        with mounted(archive) as mnt:
            filler = fill(folder)
            err = bounded_errno(mnt, "echo 5 > alpha (disk full)", STEP, write_file,
                                mnt / "params" / "alpha", b"5\n")
            untouched = archive.read_bytes() == before
            leftovers = others(folder, archive)
            os.truncate(filler, 0)
            alive(mnt)
            again = bounded_errno(mnt, "echo 6 > alpha", STEP, write_file,
                                  mnt / "params" / "alpha", b"6\n")
        final = decode(archive)["params"]["alpha"]
    assert err == errno.ENOSPC, f"close on a full disk gave {errname(err)}, expected ENOSPC"
    assert untouched, "the archive changed although the commit failed"
    assert not leftovers, f"left beside the archive: {leftovers}"
    assert again is None and final == 6, f"after freeing space: {errname(again)}, alpha={final}"


def test_enospc_reaches_rename(tmp_path):
    """A rename commits at once: on a full disk it fails with ENOSPC and
    the tree and archive keep the old name."""
    with small_tmpfs(tmp_path) as folder:
        archive, before = make_archive(folder)
        with mounted(archive) as mnt:
            filler = fill(folder)
            err = bounded_errno(mnt, "rename alpha -> gamma (disk full)", STEP, os.rename,
                                mnt / "params" / "alpha", mnt / "params" / "gamma")
            names = sorted(bounded(mnt, "ls", STEP, os.listdir, mnt / "params"))
            untouched = archive.read_bytes() == before
            os.truncate(filler, 0)
    assert err == errno.ENOSPC, f"rename on a full disk gave {errname(err)}"
    assert untouched and names == ["alpha", "beta"], names


def test_read_only_directory_reaches_fsync_and_close_and_the_edit_survives(tmp_path):
    """The archive's directory becomes read-only mid-mount: fsync gives
    EROFS (twice: the edit stays pending), the archive is untouched; once
    the directory is writable again, close of the same descriptor commits
    the edit."""
    folder = tmp_path / "dir"
    folder.mkdir()
    archive, before = make_archive(folder)
    with mounted(archive) as mnt:
        fd = bounded(mnt, "open+write", STEP, open_and_write, mnt, "params/alpha", b"5\n")
        try:
            with read_only(folder) as undo:
                first = bounded_errno(mnt, "fsync (read-only dir)", STEP, os.fsync, fd)
                second = bounded_errno(mnt, "fsync again (read-only dir)", STEP, os.fsync, fd)
                untouched = archive.read_bytes() == before
                undo()
        finally:
            closed = bounded_errno(mnt, "close (writable again)", STEP, os.close, fd)
        alive(mnt)
    final = decode(archive)["params"]["alpha"]
    problems = []
    if (first, second) != (errno.EROFS, errno.EROFS):
        problems.append(f"fsync with the archive's directory read-only gave {errname(first)}, "
                        f"then {errname(second)} (expected EROFS both times)")
    if not untouched:
        problems.append("the archive changed although the commit failed")
    if closed is not None or final != 5:
        problems.append(f"once writable again, close gave {errname(closed)} and alpha is "
                        f"{final} (the edit was 5)")
    assert not problems, "\n".join(problems)


def test_read_only_directory_reaches_close(tmp_path):
    """Read-only directory at close: close gives EROFS and the archive is
    untouched."""
    folder = tmp_path / "dir"
    folder.mkdir()
    archive, before = make_archive(folder)
    with mounted(archive) as mnt:
        with read_only(folder):
            err = bounded_errno(mnt, "echo 5 > alpha (read-only dir)", STEP, write_file,
                                mnt / "params" / "alpha", b"5\n")
            untouched = archive.read_bytes() == before
        alive(mnt)
    assert err == errno.EROFS, f"close with the directory read-only gave {errname(err)}"
    assert untouched and decode(archive)["params"]["alpha"] == 1
    assert sorted(p.name for p in Path(folder).iterdir()) == ["m.mpk"]
