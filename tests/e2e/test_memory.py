"""The archive is mapped, never copied to the heap (issue 2): mounting a big
compact archive and reading all of it leaves the daemon's anonymous memory
small. Nested lists, by contrast, are decoded only when first read."""
import os
import subprocess
from pathlib import Path

import msgpack
import numpy as np
import pytest

from harness import MPFS_BIN, mounted

# AddressSanitizer's shadow memory and quarantine are anonymous memory too:
# the measure means nothing for a sanitizer build.
pytestmark = pytest.mark.skipif(
    b"libasan" in subprocess.run(["ldd", str(MPFS_BIN)], capture_output=True).stdout,
    reason="memory is not measured under AddressSanitizer")

MB = 1 << 20


def daemon_rss_anon(mnt):
    """RssAnon (bytes) of the mpfs process serving MNT."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if str(mnt).encode() in argv:
            for line in status.splitlines():
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    raise AssertionError(f"no mpfs process for {mnt}")


def test_compact_arrays_are_served_from_the_mapping(tmp_path):
    big = np.random.RandomState(0).rand(64 * MB // 8)
    archive = tmp_path / "big.mpk"
    archive.write_bytes(msgpack.packb({"class_name": "Big", "weights": {"w": {
        "nd": True, "type": "<f8", "kind": b"", "shape": [big.size],
        "data": big.tobytes()}}}, use_bin_type=True))
    with mounted(archive) as mnt:
        data = (mnt / "weights" / "w.npy").read_bytes()
        assert data[-big.nbytes:] == big.tobytes()
        anon = daemon_rss_anon(mnt)
    assert anon < 24 * MB, f"{anon / MB:.1f} MB of heap for a 64 MB archive"


def test_nested_arrays_are_decoded_when_first_read(tmp_path):
    rows = np.random.RandomState(1).rand(1000, 1000)
    archive = tmp_path / "nested.mpk"
    archive.write_bytes(msgpack.packb({"class_name": "N", "weights": {"w": rows.tolist()}},
                                      use_bin_type=True))
    with mounted(archive) as mnt:
        os.listdir(mnt / "weights")
        before = daemon_rss_anon(mnt)
        assert np.array_equal(np.load(mnt / "weights" / "w.npy"), rows)
        after = daemon_rss_anon(mnt)
    # 8 MB of float64 come into being at the first read, not at mount.
    assert before < 6 * MB, f"{before / MB:.1f} MB before any read"
    assert after - before >= 7 * MB, f"only {(after - before) / MB:.1f} MB more after"
