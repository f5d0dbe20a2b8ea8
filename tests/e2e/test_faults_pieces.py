"""A full disk during a piece commit: the in-place edit of a big compact
array (np.memmap r+, dd conv=notrunc, pwrite), which commits only the
64 KiB chunks written and copies the rest of the array from the old archive
(copy_file_range) into the temporary file.

The archive holds a compact array of several MB on a small tmpfs; the
filler leaves either no room at all, or room for the changed chunks but not
for a second copy of the archive, so that the copy of the pieces runs out
part way. On a loop-mounted XFS, where the unchanged pieces are shared
(reflinked) rather than copied, a full disk fails the same way, and a
nearly full one (less room than the array) is enough for the commit. As for ordinary commits (test_faults.py): fsync and close report
ENOSPC, the archive stays byte for byte what it was, nothing is left beside
it, the daemon lives and the mount reads the archive as it is; the edit
stays pending while a writer has the file open, and commits once space is
freed; a last close that cannot commit drops the edit (docs/writing.md §2)
and says so in the log. The daemon runs under a memory limit (prlimit
--as): the array must never be copied into its memory.

Also: writes whose changed chunks must spill to the same full disk (short,
never half-applied), and a hostile size (`truncate -s 4G w.npy`), refused
from its header rather than copied whole first.
"""

import errno
import os
import time

import msgpack
import numpy as np

from harness import mounted, daemon_of
from test_faults import others, small_btrfs, small_tmpfs, small_xfs
from trouble import HOSTILE_AS, MB, alive, bounded, bounded_errno, decode, errname

STEP = 20.0
N = 6 * MB // 8  # float64 elements: 6 MB, beyond what is flattened in memory
HEADER = 128  # the .npy header of a 1-d <f8 array
FIRST, LAST = 1000, N - 3  # the two elements edited: far apart, two chunks


def make_archive(folder, n=N):
    """An archive m.mpk in FOLDER holding one array w of n float64
    elements 0, 1, ...: (its path, its bytes, w)."""
    archive = folder / "m.mpk"
    w = np.arange(n, dtype="<f8")
    data = msgpack.packb({"class_name": "Pieces", "types": {}, "params": {"alpha": 1},
                          "xtra": {},
                          "weights": {"w": {"nd": True, "type": "<f8", "kind": b"",
                                            "shape": [n], "data": w.tobytes()}}},
                         use_bin_type=True)
    archive.write_bytes(data)
    return archive, data, w


def fill(folder, leave=0):
    """Fill the file system of FOLDER with a file `filler`, leaving about
    LEAVE bytes free; its path."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 20, 65536, 4096):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def stored(archive):
    return np.frombuffer(decode(archive)["weights"]["w"]["data"], "<f8")


def edit_in_place(path, values=(-1.0, -2.0)):
    """Open PATH read-write (no truncation) and write two elements; the fd."""
    fd = os.open(path, os.O_RDWR)
    os.pwrite(fd, np.float64(values[0]).tobytes(), HEADER + 8 * FIRST)
    os.pwrite(fd, np.float64(values[1]).tobytes(), HEADER + 8 * LAST)
    return fd


def pwrite_outcome(fd, data, off):
    """What os.pwrite returned, or the errno name it raised."""
    try:
        return os.pwrite(fd, data, off)
    except OSError as e:
        return errname(e.errno)


def element(path_or_fd, i):
    if isinstance(path_or_fd, int):
        return np.frombuffer(os.pread(path_or_fd, 8, HEADER + 8 * i), "<f8")[0]
    with open(path_or_fd, "rb") as f:
        return np.frombuffer(os.pread(f.fileno(), 8, HEADER + 8 * i), "<f8")[0]


def check_refused(mnt, folder, archive, before, problems, what):
    """The archive untouched, nothing beside it, the mount alive and
    reading the archive as it is."""
    if archive.read_bytes() != before:
        problems.append(f"{what}: the archive changed although the commit failed")
    if others(folder, archive):
        problems.append(f"{what}: left beside the archive: {others(folder, archive)}")
    alive(mnt)
    w = mnt / "weights" / "w.npy"
    seen = bounded(mnt, "read by another reader", STEP, element, w, FIRST)
    if seen != FIRST:
        problems.append(f"{what}: another reader reads w[{FIRST}] = {seen}, the archive "
                        f"holds {FIRST}")
    size = bounded(mnt, "stat", STEP, os.stat, w).st_size
    if size != HEADER + 8 * N:
        problems.append(f"{what}: w.npy shows {size} bytes, expected {HEADER + 8 * N}")


def piece_commit_fails_then_commits(filesystem, leave):
    """On FILESYSTEM (a context manager yielding a folder), filled to LEAVE
    bytes: fsync fails with ENOSPC and changes nothing; once space is freed
    it commits exactly the edit."""
    with filesystem as folder:
        archive, before, want = make_archive(folder)
        problems = []
        with mounted(archive, limit_as=HOSTILE_AS) as mnt:
            filler = fill(folder, leave)
            fd = bounded(mnt, "open+pwrite", STEP, edit_in_place, mnt / "weights" / "w.npy")
            try:
                first = bounded_errno(mnt, "fsync (disk full)", STEP, os.fsync, fd)
                second = bounded_errno(mnt, "fsync again (disk full)", STEP, os.fsync, fd)
                if (first, second) != (errno.ENOSPC, errno.ENOSPC):
                    problems.append(f"fsync on a full disk gave {errname(first)}, then "
                                    f"{errname(second)} (expected ENOSPC both times)")
                check_refused(mnt, folder, archive, before, problems, "after fsync")
                own = bounded(mnt, "read by the writer", STEP, element, fd, LAST)
                if own != -2.0:
                    problems.append(f"the writer reads back w[{LAST}] = {own}, it wrote -2.0")
                os.truncate(filler, 0)
                os.sync()       # (btrfs frees the filler's blocks when its transaction commits)
                third = bounded_errno(mnt, "fsync (space freed)", STEP, os.fsync, fd)
                if third is not None:
                    problems.append(f"after space was freed, fsync gave {errname(third)}")
            finally:
                closed = bounded_errno(mnt, "close", STEP, os.close, fd)
            daemon = check_closed(mnt, closed, problems)
        check_committed(folder, archive, want, problems)
    assert not problems, "\n".join(problems) + "\ndaemon stderr:\n" + daemon.stderr_text()


def check_closed(mnt, closed, problems):
    """A clean close wanted (closed: its errno or None), and the mount
    alive; its daemon."""
    if closed is not None:
        problems.append(f"close gave {errname(closed)}")
    alive(mnt)
    return daemon_of(mnt)


def check_committed(folder, archive, want, problems):
    """After unmounting: the archive holds exactly edit_in_place's edit of
    want, and nothing is left beside it."""
    want[FIRST], want[LAST] = -1.0, -2.0
    if not np.array_equal(stored(archive), want):
        diff = np.nonzero(stored(archive) != want)[0]
        problems.append(f"after unmounting, the array differs from the edit at "
                        f"{diff[:5].tolist()} ({len(diff)} elements)")
    if others(folder, archive):
        problems.append(f"left beside the archive: {others(folder, archive)}")


def check_bytes(folder, archive, raw, problems):
    """After unmounting: the array's bytes in the archive are raw, and
    nothing is left beside it."""
    now = stored(archive).view(np.uint8)
    if not np.array_equal(now, raw):
        diff = np.nonzero(now != raw)[0]
        problems.append(f"the archive differs from what the writes reported at bytes "
                        f"{diff[0]}..{diff[-1]} ({len(diff)} bytes)")
    if others(folder, archive):
        problems.append(f"left beside the archive: {others(folder, archive)}")


def test_piece_commit_on_a_full_disk_fails_and_commits_once_space_is_freed(tmp_path):
    """No room at all, not even for the changed chunks."""
    piece_commit_fails_then_commits(small_tmpfs(tmp_path, "16m"), 0)


def test_piece_commit_running_out_part_way_fails_and_commits_once_space_is_freed(tmp_path):
    """Room for the changed chunks and half the array: the temporary file
    grows past the free space while the pieces are copied."""
    piece_commit_fails_then_commits(small_tmpfs(tmp_path, "16m"), 3 * MB)


def test_piece_commit_on_a_full_xfs_fails_and_commits_once_space_is_freed():
    """XFS, where the unchanged pieces are shared (reflinked), not copied:
    with no room at all the changed chunks cannot be written, and the
    commit fails as on tmpfs."""
    piece_commit_fails_then_commits(small_xfs(), 0)


def test_piece_commit_on_a_full_btrfs_fails_and_commits_once_space_is_freed():
    """btrfs, copy on write: with no room the commit fails with ENOSPC and
    changes nothing, and lands once the space is freed, as on XFS."""
    piece_commit_fails_then_commits(small_btrfs(), 0)


def test_piece_commit_on_a_nearly_full_xfs_shares_the_unchanged_pieces():
    """XFS with 1 MB free, a sixth of the 6 MB array: the commit writes the
    changed chunks and shares the rest of the array's blocks with the old
    archive, so it fits and lands at the first fsync, where on tmpfs
    (copies) it runs out part way."""
    with small_xfs() as folder:
        archive, _, want = make_archive(folder)
        problems = []
        with mounted(archive, limit_as=HOSTILE_AS) as mnt:
            fill(folder, 1 * MB)
            fd = bounded(mnt, "open+pwrite", STEP, edit_in_place, mnt / "weights" / "w.npy")
            try:
                synced = bounded_errno(mnt, "fsync (1 MB free)", STEP, os.fsync, fd)
                if synced is not None:
                    problems.append(f"fsync with 1 MB free on XFS gave {errname(synced)}")
            finally:
                closed = bounded_errno(mnt, "close", STEP, os.close, fd)
            daemon = check_closed(mnt, closed, problems)
        check_committed(folder, archive, want, problems)
    assert not problems, "\n".join(problems) + "\ndaemon stderr:\n" + daemon.stderr_text()


def test_piece_commit_at_last_close_on_a_full_disk_drops_the_edit(tmp_path):
    """close on a full disk: ENOSPC; it was the last writer, so the edit is
    dropped (and logged) and the file reads back as the archive holds it.
    Once space is freed, the same edit commits."""
    with small_tmpfs(tmp_path, "16m") as folder:
        archive, before, want = make_archive(folder)
        problems = []
        with mounted(archive, limit_as=HOSTILE_AS) as mnt:
            filler = fill(folder, 3 * MB)
            w = mnt / "weights" / "w.npy"
            fd = bounded(mnt, "open+pwrite", STEP, edit_in_place, w)
            closed = bounded_errno(mnt, "close (disk full)", STEP, os.close, fd)
            if closed != errno.ENOSPC:
                problems.append(f"close on a full disk gave {errname(closed)}, expected ENOSPC")
            check_refused(mnt, folder, archive, before, problems, "after close")
            seen = bounded(mnt, "read back", STEP, element, w, LAST)
            if seen != LAST:
                problems.append(f"after the last close, w[{LAST}] reads {seen}: the dropped "
                                f"edit is still shown (the archive holds {LAST})")
            os.truncate(filler, 0)
            fd = bounded(mnt, "open+pwrite (space freed)", STEP, edit_in_place, w, (-3.0, -4.0))
            closed = bounded_errno(mnt, "close (space freed)", STEP, os.close, fd)
            if closed is not None:
                problems.append(f"after space was freed, close gave {errname(closed)}")
            log = daemon_of(mnt).stderr_text()
        want[FIRST], want[LAST] = -3.0, -4.0
        if not np.array_equal(stored(archive), want):
            problems.append("after space was freed, the new edit is not what the archive holds")
        if "No space left on device" not in log or "dropped" not in log:
            problems.append(f"the failed commit and the dropped edit are not logged:\n{log}")
    assert not problems, "\n".join(problems)


def test_memmap_flush_on_a_full_disk_reports_enospc_and_commits_later(tmp_path):
    """np.memmap(mode='r+'): m.flush() raises ENOSPC while the disk is full
    (the archive untouched); once space is freed, m.flush() again commits
    the assignments, and `del m` changes nothing more."""
    with small_tmpfs(tmp_path, "16m") as folder:
        archive, before, want = make_archive(folder)
        problems = []
        with mounted(archive, limit_as=HOSTILE_AS) as mnt:
            filler = fill(folder, 3 * MB)

            def assign():
                m = np.load(mnt / "weights" / "w.npy", mmap_mode="r+")
                m[FIRST], m[LAST] = -1.0, -2.0
                return m

            m = bounded(mnt, "np.load(mmap_mode='r+')", STEP, assign)
            first = bounded_errno(mnt, "m.flush() (disk full)", STEP, m.flush)
            if first != errno.ENOSPC:
                problems.append(f"m.flush() on a full disk gave {errname(first)}, "
                                "expected ENOSPC")
            if archive.read_bytes() != before:
                problems.append("the archive changed although the commit failed")
            os.truncate(filler, 0)
            second = bounded_errno(mnt, "m.flush() (space freed)", STEP, m.flush)
            if second is not None:
                problems.append(f"after space was freed, m.flush() gave {errname(second)}")
            bounded(mnt, "del m", STEP, lambda: m._mmap.close())
            del m
            alive(mnt)
        want[FIRST], want[LAST] = -1.0, -2.0
        if not np.array_equal(stored(archive), want):
            problems.append("the assignments are not what the archive holds")
        if others(folder, archive):
            problems.append(f"left beside the archive: {others(folder, archive)}")
    assert not problems, "\n".join(problems)


def test_write_that_cannot_spill_is_short_and_the_rest_commits_later(tmp_path):
    """More than 32 MiB of changed chunks go to a temporary file beside the
    archive: on a full disk a write whose first chunk is already held and
    whose next must spill is short (the bytes before the chunk landed),
    never a failure that changed half of it; a write that lands nothing
    fails with ENOSPC. fsync then fails too; once space is freed it commits
    exactly what the writes reported."""
    n = 40 * MB // 8
    held = 32 * MB  # changed chunks kept in memory, all files together
    with small_tmpfs(tmp_path, "128m") as folder:
        archive, before, want = make_archive(folder, n)
        problems = []
        raw = want.view(np.uint8)
        with mounted(archive, limit_as=HOSTILE_AS) as mnt:
            fd = os.open(mnt / "weights" / "w.npy", os.O_RDWR)
            try:
                ones = b"\xff" * MB
                for off in range(0, held, MB):  # the data, not the header
                    start = max(off, HEADER)
                    bounded(mnt, "pwrite", STEP, os.pwrite, fd, ones[start - off:], start)
                filler = fill(folder)
                wrote = bounded(mnt, "pwrite across the budget", STEP, pwrite_outcome, fd,
                                b"\xee" * (2 << 16), held - (1 << 16))
                if wrote != 1 << 16:
                    problems.append(f"a write half held, half spilling gave {wrote} "
                                    "(expected a short write: 65536 bytes)")
                nothing = bounded_errno(mnt, "pwrite past the budget", STEP, os.pwrite, fd,
                                        b"\xdd" * 4096, held + (1 << 16))
                if nothing != errno.ENOSPC:
                    problems.append(f"a write that could land nothing gave {errname(nothing)}")
                synced = bounded_errno(mnt, "fsync (disk full)", STEP, os.fsync, fd)
                if synced != errno.ENOSPC:
                    problems.append(f"fsync on a full disk gave {errname(synced)}")
                if archive.read_bytes() != before:
                    problems.append("the archive changed although the commit failed")
                os.truncate(filler, 0)
                synced = bounded_errno(mnt, "fsync (space freed)", STEP, os.fsync, fd)
                if synced is not None:
                    problems.append(f"after space was freed, fsync gave {errname(synced)}")
            finally:
                closed = bounded_errno(mnt, "close", STEP, os.close, fd)
            daemon = check_closed(mnt, closed, problems)
        # the .npy header is 128 bytes: file offset o is data byte o - 128
        raw[:held - HEADER] = 0xff
        raw[held - (1 << 16) - HEADER:held - HEADER] = 0xee
        check_bytes(folder, archive, raw, problems)
    assert not problems, "\n".join(problems) + "\ndaemon stderr:\n" + daemon.stderr_text()


def test_memmap_closed_unflushed_on_a_full_disk_is_dropped_and_logged(tmp_path):
    """np.memmap assignments never flushed are committed when the mapping
    goes (`del m`); on a full disk that commit fails where nobody can be
    told but the log: the edit is dropped, the log says so, the archive is
    untouched and the file reads as the archive holds it."""
    with small_tmpfs(tmp_path, "16m") as folder:
        archive, before, _ = make_archive(folder)
        problems = []
        with mounted(archive, limit_as=HOSTILE_AS) as mnt:
            fill(folder, 3 * MB)
            w = mnt / "weights" / "w.npy"

            def assign_and_close():
                m = np.load(w, mmap_mode="r+")
                m[FIRST], m[LAST] = -1.0, -2.0
                m._mmap.close()

            bounded(mnt, "np.memmap assignments, then del m", STEP, assign_and_close)
            # the kernel sends the release after munmap returns
            deadline = time.monotonic() + STEP
            while "dropped" not in daemon_of(mnt).stderr_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            alive(mnt)
            seen = bounded(mnt, "read back", STEP, element, w, LAST)
            log = daemon_of(mnt).stderr_text()
        if seen != LAST:
            problems.append(f"w[{LAST}] reads {seen}, the archive holds {LAST}")
        if archive.read_bytes() != before:
            problems.append("the archive changed although the commit failed")
        if "dropped" not in log:
            problems.append(f"the dropped edit is not logged:\n{log}")
        if others(folder, archive):
            problems.append(f"left beside the archive: {others(folder, archive)}")
    assert not problems, "\n".join(problems)


def test_hostile_size_is_refused_not_copied(tmp_path):
    """`truncate -s 4G w.npy` (data the header does not describe) is
    refused with EINVAL, at once, again at the next fsync, and logged: it
    was copied first (4 GiB of zeros written beside the archive), so a disk
    with less room than that said ENOSPC, and a daemon under a memory limit
    ENOMEM, never logged."""
    with small_tmpfs(tmp_path, "16m") as folder:
        archive, before, _ = make_archive(folder)
        problems = []
        with mounted(archive, limit_as=HOSTILE_AS) as mnt:
            fd = os.open(mnt / "weights" / "w.npy", os.O_RDWR)
            try:
                os.ftruncate(fd, HEADER + (1 << 32) - 1)
                first = bounded_errno(mnt, "fsync of a 4 GiB .npy", STEP, os.fsync, fd)
                second = bounded_errno(mnt, "fsync again", STEP, os.fsync, fd)
                if (first, second) != (errno.EINVAL, errno.EINVAL):
                    problems.append(f"fsync gave {errname(first)}, then {errname(second)} "
                                    "(expected EINVAL both times: the header says 6 MB)")
            finally:
                closed = bounded_errno(mnt, "close", STEP, os.close, fd)
            if closed != errno.EINVAL:
                problems.append(f"close gave {errname(closed)}, expected EINVAL")
            alive(mnt)
            log = daemon_of(mnt).stderr_text()
        if "refused: NPY data is" not in log:
            problems.append(f"the refusal is not logged:\n{log}")
        if archive.read_bytes() != before:
            problems.append("the archive changed")
        if others(folder, archive):
            problems.append(f"left beside the archive: {others(folder, archive)}")
    assert not problems, "\n".join(problems)


def test_overwrite_of_a_spilled_chunk_on_a_full_btrfs_is_short_and_exact():
    """btrfs writes an overwrite elsewhere (copy on write), so when it is
    full it refuses even to overwrite what the temporary file beside the
    archive already holds. With more than 32 MiB changed, an overwrite of
    spilled chunks with 1 MB left is short or fails with ENOSPC; what the
    writer then reads, and what the commit lands once space is freed, is
    exactly what the write reported: its first bytes, and nothing after
    them changed."""
    n = 48 * MB // 8
    held = 32 * MB  # changed chunks kept in memory, all files together
    spilled = 8 * MB
    with small_btrfs() as folder:
        archive, _, want = make_archive(folder, n)
        problems = []
        raw = want.view(np.uint8)
        with mounted(archive, limit_as=HOSTILE_AS) as mnt:
            fd = os.open(mnt / "weights" / "w.npy", os.O_RDWR)
            try:
                for off, byte in ((HEADER, 0xff), (held, 0xdd)):   # held in memory, then spilled
                    end = held if byte == 0xff else held + spilled
                    for at in range(off, end, MB):
                        bounded(mnt, "pwrite", STEP, os.pwrite, fd, bytes([byte]) * min(MB, end - at), at)
                os.sync()
                filler = fill(folder, 1 * MB)
                wrote = bounded(mnt, "overwrite of spilled chunks", STEP, pwrite_outcome, fd,
                                b"\xcc" * spilled, held)
                if wrote == spilled:
                    problems.append("an 8 MB overwrite with 1 MB free on btrfs was whole (not refused)")
                elif wrote != "ENOSPC" and not (isinstance(wrote, int) and 0 < wrote < spilled):
                    problems.append(f"the overwrite gave {wrote} (expected a short write or ENOSPC)")
                landed = wrote if isinstance(wrote, int) else 0
                back = bounded(mnt, "read back", STEP, os.pread, fd, spilled, held)
                if back != b"\xcc" * landed + b"\xdd" * (spilled - landed):
                    problems.append(f"the writer reads back other bytes than the {landed} it was told landed")
                os.truncate(filler, 0)
                os.sync()
                synced = bounded_errno(mnt, "fsync (space freed)", STEP, os.fsync, fd)
                if synced is not None:
                    problems.append(f"after space was freed, fsync gave {errname(synced)}")
            finally:
                closed = bounded_errno(mnt, "close", STEP, os.close, fd)
            daemon = check_closed(mnt, closed, problems)
        # the .npy header is 128 bytes: file offset o is data byte o - 128
        raw[:held - HEADER] = 0xff
        raw[held - HEADER:held + spilled - HEADER] = 0xdd
        raw[held - HEADER:held + landed - HEADER] = 0xcc
        check_bytes(folder, archive, raw, problems)
    assert not problems, "\n".join(problems) + "\ndaemon stderr:\n" + daemon.stderr_text()
