"""A commit costs in proportion to the edit, not to the archive (issue 8):
on a file system that shares extents (XFS, loop-mounted here), an edit
that keeps the archive's length writes only the blocks around it, and the
rest of the new archive shares the old one's blocks.

What is measured is the daemon's own write_bytes (/proc/PID/io: bytes it
caused to be written to storage), across the edit and its commit, against
the array's size. A full rewrite of the archive would count all of it.
Skipped where no XFS can be made (no mkfs.xfs, not root, no loop device).
"""
import os
from pathlib import Path

import msgpack
import numpy as np
import pytest

from harness import daemon_of, mounted
from test_faults import small_xfs

MB = 1 << 20


@pytest.fixture(scope="module")
def xfs():
    """A fresh XFS with reflinks, loop-mounted; yields its root."""
    with small_xfs("1g") as root:
        yield root


def write_bytes(pid):
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise AssertionError("no write_bytes")


def make_archive(path, n):
    w = np.arange(n, dtype="<f8")
    path.write_bytes(msgpack.packb({
        "class_name": "Big", "types": {}, "params": {"max_iter": 200}, "xtra": {},
        "weights": {"w": {"nd": True, "type": "<f8", "kind": b"", "shape": [n],
                          "data": w.tobytes()}}}, use_bin_type=True))
    os.sync()
    return w


def test_memmap_edit_writes_only_the_changed_blocks(xfs):
    n = 128 * MB // 8
    archive = xfs / "memmap.mpk"
    want = make_archive(archive, n)
    with mounted(archive) as mnt:
        pid = daemon_of(mnt).proc.pid
        before = write_bytes(pid)
        m = np.load(mnt / "weights" / "w.npy", mmap_mode="r+")
        m[5_000_000] = -1.0
        m[-1] = -2.0
        m.flush()
        del m
        written = write_bytes(pid) - before
    want[5_000_000], want[-1] = -1.0, -2.0
    data = msgpack.unpackb(archive.read_bytes())["weights"]["w"]["data"]
    assert np.array_equal(np.frombuffer(data, "<f8"), want)
    assert written < 4 * MB, f"{written / MB:.1f} MB written for two elements of 128 MB"


def test_param_edit_writes_only_the_changed_blocks(xfs):
    archive = xfs / "param.mpk"
    want = make_archive(archive, 128 * MB // 8)
    with mounted(archive) as mnt:
        pid = daemon_of(mnt).proc.pid
        before = write_bytes(pid)
        # 250, like 200, takes two bytes: the archive keeps its length
        (mnt / "params" / "max_iter").write_text("250\n")
        written = write_bytes(pid) - before
    d = msgpack.unpackb(archive.read_bytes())
    assert d["params"]["max_iter"] == 250
    assert np.array_equal(np.frombuffer(d["weights"]["w"]["data"], "<f8"), want)
    assert written < 4 * MB, f"{written / MB:.1f} MB written for one param of a 128 MB archive"
