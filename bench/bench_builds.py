"""The first numpy.load of a nested-list array through fresh mounts, by
several mpfs builds in turn (A B C A B C ...), so that the load other work
puts on the machine falls on all of them alike (a script, not a test).

    /usr/bin/python3 bench/bench_builds.py [--side 3000] [--repeat 11] MPFS...

Makes a SIDE x SIDE float64 nested-list archive, then for each round and
each build: mounts it, stats weights/coef_.npy (looked up, not decoded),
times numpy.load of it and reads the daemon's VmHWM before and after.
Prints each build's median and range, as MB/s of archive, and the median
VmHWM growth against the array; then numpy.load of the same array saved
locally. Needs root (FUSE).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack
import numpy as np


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def first_load(mpfs, archive):
    """Seconds of the first numpy.load through a fresh mount, and the
    daemon's VmHWM growth (bytes) over it."""
    mnt = tempfile.mkdtemp(prefix="mpfs-bench-")
    proc = subprocess.Popen([mpfs, "-f", archive, mnt], stderr=subprocess.DEVNULL)
    try:
        while not os.path.ismount(mnt):
            if proc.poll() is not None:
                sys.exit(f"{mpfs} failed on {archive}")
            time.sleep(0.001)
        npy = os.path.join(mnt, "weights", "coef_.npy")
        os.stat(npy)
        hwm = status_kib(proc.pid, "VmHWM")
        t = time.perf_counter()
        np.load(npy)
        t = time.perf_counter() - t
        return t, (status_kib(proc.pid, "VmHWM") - hwm) * 1024
    finally:
        subprocess.run(["fusermount3", "-u", mnt], check=True)
        proc.wait()
        os.rmdir(mnt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("mpfs", nargs="+", help="mpfs binaries to compare")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="mpfs-bench-data-")
    try:
        a = np.random.RandomState(1).rand(args.side, args.side)
        archive = os.path.join(d, "nested.mpk")
        with open(archive, "wb") as f:
            f.write(msgpack.packb({"class_name": "Bench", "types": {}, "params": {},
                                   "xtra": {}, "weights": {"coef_": a.tolist()}},
                                  use_bin_type=True))
            os.fsync(f.fileno())  # no writeback during the measures
        ref = os.path.join(d, "coef_.npy")
        np.save(ref, a)
        mb = os.path.getsize(archive) / 1e6
        with open(archive, "rb") as f:  # in the page cache, as for every build
            while f.read(1 << 24):
                pass
        # A round not counted: the VM this was measured on reports freed
        # pages to its host (making the list freed 300 MB), and a page
        # handed back costs a host fault when it is touched again.
        for m in args.mpfs:
            first_load(m, archive)
        times = {m: [] for m in args.mpfs}
        grown = {m: [] for m in args.mpfs}
        local = []
        for _ in range(args.repeat):
            for m in args.mpfs:
                t, g = first_load(m, archive)
                times[m].append(t)
                grown[m].append(g / a.nbytes)
            t = time.perf_counter()
            np.load(ref)
            local.append(time.perf_counter() - t)
        print(f"{args.side}x{args.side} float64, {mb:.1f} MB of archive, "
              f"{args.repeat} rounds; medians (min-max)")
        for m in args.mpfs:
            v = times[m]
            print(f"{m:42} {statistics.median(v) * 1e3:6.1f} ms ({min(v) * 1e3:.0f}-"
                  f"{max(v) * 1e3:.0f})  {mb / statistics.median(v):6.0f} MB/s  "
                  f"VmHWM +{statistics.median(grown[m]):.3f}x the array")
        print(f"{'numpy.load of a local .npy':42} {statistics.median(local) * 1e3:6.1f} ms "
              f"({min(local) * 1e3:.0f}-{max(local) * 1e3:.0f})  "
              f"{mb / statistics.median(local):6.0f} MB/s")
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
