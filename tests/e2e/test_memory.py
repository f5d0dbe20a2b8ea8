"""The archive is mapped, never copied to the heap (issue 2): mounting a big
compact archive and reading all of it leaves the daemon's anonymous memory
small. Nested lists, by contrast, are decoded only when first read."""
import os
import subprocess
from pathlib import Path

import msgpack
import numpy as np
import pytest

from harness import MPFS_BIN, daemon_of, mounted

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


def daemon_status_kib(mnt, key):
    """A "Vm..." line of /proc/PID/status (KiB) of the daemon serving MNT."""
    with open(f"/proc/{daemon_of(mnt).proc.pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {key} in the daemon's status")


@pytest.mark.parametrize("shape", [(2000, 2000), (40, 250, 200)])
def test_nested_first_read_peak_memory_is_the_array(tmp_path, shape):
    """The first read of a 32 MB (2-d) or 16 MB (3-d) nested array, split
    between threads where there are cores: the daemon's peak resident
    memory (VmHWM) grows by the array and a small constant (the last huge
    page, read buffers), never by a second copy; numpy reads back the very
    bits that were stored."""
    a = np.random.RandomState(2).standard_normal(shape)
    a[..., ::7] = np.round(a[..., ::7] * 1000) + 0.0  # whole (and no -0.0): ints below
    archive = tmp_path / "nested.mpk"
    nested = a.tolist()
    for row in (nested if a.ndim == 2 else [r for m in nested for r in m]):
        for i in range(0, len(row), 7):
            row[i] = int(row[i])
    archive.write_bytes(msgpack.packb({"class_name": "N", "weights": {"w": nested}},
                                      use_bin_type=True))
    del nested
    with mounted(archive) as mnt:
        npy = mnt / "weights" / "w.npy"
        os.stat(npy)  # looked up and sized, not decoded
        before = daemon_status_kib(mnt, "VmHWM") * 1024
        got = np.load(npy)
        grown = daemon_status_kib(mnt, "VmHWM") * 1024 - before
    assert got.dtype == np.float64 and got.shape == shape
    assert got.tobytes() == a.tobytes(), "other bits than the archive holds"
    assert grown <= 1.2 * a.nbytes + 4 * MB, (
        f"peak grew by {grown / MB:.1f} MB for a {a.nbytes / MB:.1f} MB array")


class _Sampler:
    """The largest RssAnon of the daemon seen while the block runs."""

    def __init__(self, mnt):
        import threading
        self.mnt, self.peak, self._stop = mnt, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, daemon_rss_anon(self.mnt))
            self._stop.wait(0.005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, daemon_rss_anon(self.mnt))


def test_memmap_edit_of_a_1gib_array_stays_under_64mib(tmp_path):
    """One element changed through np.memmap(mode='r+') of a 1 GiB compact
    array: the edit is held as one changed chunk and the commit streams the
    array from files, so the daemon's anonymous memory stays small."""
    n = (1 << 30) // 8
    archive = tmp_path / "huge.mpk"
    head = msgpack.packb({"class_name": "Huge", "weights": {"w": {
        "nd": True, "type": "<f8", "kind": b"", "shape": [n], "data": b""}}},
        use_bin_type=True)
    # The same map with a bin32 of n * 8 bytes as the last value.
    assert head.endswith(b"\xc4\x00")
    with open(archive, "wb") as f:
        f.write(head[:-2] + b"\xc6" + (n * 8).to_bytes(4, "big"))
        f.truncate(len(head) - 2 + 5 + n * 8)  # zeros, as a sparse file
    with mounted(archive) as mnt:
        with _Sampler(mnt) as s:
            m = np.load(mnt / "weights" / "w.npy", mmap_mode="r+")
            assert m.shape == (n,)
            m[123457] = 42.0
            m.flush()
            del m
        assert s.peak < 64 * MB, f"{s.peak / MB:.1f} MB of heap for a 1 GiB edit"
        v = np.load(mnt / "weights" / "w.npy", mmap_mode="r")
        assert v[123457] == 42.0 and v[123456] == 0.0 and v[-1] == 0.0
        del v
    data = np.memmap(archive, dtype="<f8", mode="r", offset=archive.stat().st_size - n * 8)
    assert data[123457] == 42.0 and data[:123457].max() == 0.0
