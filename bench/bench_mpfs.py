"""Benchmark of mpfs (a script, not a test): every measure of issue 8's
table, each as a ratio against the same work without mpfs, in one run.

    PYTHONPATH=python /usr/bin/python3 bench/bench_mpfs.py [--mb 512] [--pairs 5]
        [--nested 3000] [--only read,mmap,nested,small,commit,xfs]

Needs root (FUSE; and for the XFS rows, a loop-mounted XFS image that it
makes in /var/tmp with mkfs.xfs) and a built mpfs ($MPFS_BIN, default
build/mpfs). Work files go to $BENCH_DIR (default /var/tmp, a disk: the
commit rows compare disk writes).

Each ratio is taken pair by pair: A (through mpfs) and B (without) run in
turn, and the row prints the median of A, of B and of the pairs' A/B, so a
machine whose speed drifts during the run still gives a meaningful ratio.
"without" is: a local `.npy` written by numpy.save, read warm; the
vocabulary unpacked into a local directory; `cp --reflink=never` + fsync
of the archive for a commit.
"""
import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MPFS = os.environ.get("MPFS_BIN", str(ROOT / "build" / "mpfs"))
MB = 1 << 20


def compact(a):
    return {"nd": True, "type": a.dtype.str, "kind": b"", "shape": list(a.shape),
            "data": a.tobytes()}


def model(weights, xtra=None):
    # max_iter 200 and every value the commit rows write (128..255) take
    # two bytes: the edits keep the archive's length.
    return {"class_name": "Bench", "types": {}, "params": {"alpha": 0.0001, "max_iter": 200},
            "xtra": xtra or {}, "weights": weights}


def write(path, obj):
    with open(path, "wb") as f:
        f.write(msgpack.packb(obj, use_bin_type=True))
        os.fsync(f.fileno())
    return os.path.getsize(path)


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Mount:
    def __init__(self, archive, *opts):
        self.mnt = tempfile.mkdtemp(prefix="mpfs-bench-")
        t = time.perf_counter()
        self.proc = subprocess.Popen([MPFS, "-f", *opts, str(archive), self.mnt],
                                     stderr=subprocess.DEVNULL)
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None:
                sys.exit(f"mpfs failed on {archive}")
            time.sleep(0.001)
        self.mount_s = time.perf_counter() - t

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def close(self):
        subprocess.run(["fusermount3", "-u", self.mnt], check=True)
        self.proc.wait()
        os.rmdir(self.mnt)


@contextlib.contextmanager
def mounted(archive, *opts):
    m = Mount(archive, *opts)
    try:
        yield m
    finally:
        m.close()


def clock(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def paired(a, b, pairs, setup_a=None):
    """Medians of A's and B's times and of the pairs' A/B. setup_a, if
    given, runs before each A, untimed."""
    ta, tb = [], []
    for _ in range(pairs):
        if setup_a:
            setup_a()
        ta.append(clock(a))
        tb.append(clock(b))
    return (statistics.median(ta), statistics.median(tb),
            statistics.median(x / y for x, y in zip(ta, tb)))


def dd(path):
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=1M"], check=True,
                   stderr=subprocess.DEVNULL)


def copy_fsync(src, dst):
    subprocess.run(["cp", "--reflink=never", src, dst], check=True)
    fd = os.open(dst, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


class Rows:
    def __init__(self):
        self.rows = []

    def add(self, name, a, b=None, ratio=None, unit="", goal=""):
        self.rows.append((name, a, b, ratio, unit, goal))
        print(f"  {name}: {a:.4g} {b if b is None else round(b, 4)} {ratio}", file=sys.stderr)

    def print(self):
        print(f"{'measure':58} {'mpfs':>10} {'without':>10} {'ratio':>7}  {'unit':10} goal")
        for name, a, b, ratio, unit, goal in self.rows:
            bs = f"{b:10.4g}" if b is not None else " " * 10
            rs = f"{ratio:7.3f}" if ratio is not None else " " * 7
            print(f"{name:58} {a:10.4g} {bs} {rs}  {unit:10} {goal}")


def bench_read(d, rows, args):
    """First read of a big compact array through a fresh mount (archive in
    the page cache, FUSE cache cold) against a warm read of a local .npy;
    then numpy.load(mmap_mode='r').sum() on both, warm."""
    big = np.random.RandomState(0).rand(args.mb * MB // 8)
    arch = d / "big.mpk"
    write(arch, model({"coef_": compact(big)}))
    ref = d / "coef_.npy"
    np.save(ref, big)
    dd(arch)
    dd(ref)
    if "read" in args.only:
        times = []
        for _ in range(args.pairs):
            with mounted(arch) as m:
                ta = clock(lambda: dd(m.path("weights", "coef_.npy")))
            times.append((ta, clock(lambda: dd(ref))))
        ta = statistics.median(t for t, _ in times)
        tb = statistics.median(t for _, t in times)
        speed = statistics.median(b / a for a, b in times)
        rows.add(f"first read, {args.mb} MiB compact array, dd bs=1M", big.nbytes / MB / ta,
                 big.nbytes / MB / tb, speed, "MiB/s", ">= 0.5 (speed)")
    with mounted(arch) as m:
        rows.add(f"mount, {arch.stat().st_size >> 20} MiB compact archive", m.mount_s,
                 unit="s")
        rows.add("daemon RSS after mount", status_kib(m.proc.pid, "VmRSS") / 1024, unit="MiB")
        npy = m.path("weights", "coef_.npy")
        if "read" in args.only:
            dd(npy)
            a, b, r = paired(lambda: dd(npy), lambda: dd(ref), args.pairs)
            rows.add("read again (FUSE page cache warm), dd bs=1M", big.nbytes / MB / a,
                     big.nbytes / MB / b, 1 / r, "MiB/s", "(speed)")
        if "mmap" in args.only:
            np.load(npy, mmap_mode="r").sum()
            a, b, r = paired(lambda: np.load(npy, mmap_mode="r").sum(),
                             lambda: np.load(ref, mmap_mode="r").sum(), args.pairs)
            rows.add("numpy.load(mmap_mode='r').sum(), warm", a, b, r, "s", "<= 1.3")


def bench_nested(d, rows, args):
    """First numpy.load of an N x N float64 nested-list array (3000: 81 MB
    of archive), each through a fresh mount, against numpy.load of the
    local .npy (warm), as MB/s of archive; and the daemon's peak memory
    growth (VmHWM) over that first load, against the array's size."""
    n = args.nested
    a = np.random.RandomState(1).rand(n, n)
    arch = d / "nested.mpk"
    size = write(arch, model({"coef_": a.tolist()}))
    ref = d / "nested.npy"
    np.save(ref, a)
    np.load(ref)
    times, grew = [], []
    # One more than counted, the first not: this VM reports freed pages to
    # its host (making the list freed 300 MB), and a page handed back costs
    # a host fault when it is touched again.
    for i in range(args.pairs + 1):
        with mounted(arch) as m:
            os.stat(m.path("weights", "coef_.npy"))
            hwm = status_kib(m.proc.pid, "VmHWM")
            ta = clock(lambda: np.load(m.path("weights", "coef_.npy")))
            grown = (status_kib(m.proc.pid, "VmHWM") - hwm) * 1024 / a.nbytes
        if i:
            times.append((ta, clock(lambda: np.load(ref))))
            grew.append(grown)
    ta = statistics.median(t for t, _ in times)
    tb = statistics.median(t for _, t in times)
    rows.add(f"first numpy.load, {n}x{n} nested ({size >> 20} MiB archive)",
             size / MB / ta, size / MB / tb, statistics.median(b / a for a, b in times),
             "MiB/s arch", ">= 1 GB/s")
    rows.add("  daemon peak memory growth / array size", statistics.median(grew),
             unit="x", goal="<= 1.2")


def bench_small(d, rows, args):
    """grep -r and find -exec cat over a 50k-entry directory (vocabulary_),
    first through a fresh mount, then again, against the same files
    unpacked into a local directory (warm)."""
    vocab = {f"t{i:06d}": i for i in range(50_000)}
    plain = d / "plain"
    plain.mkdir()
    for k, v in vocab.items():
        (plain / k).write_text(f"{v}\n")
    arch = d / "vocab.mpk"
    write(arch, model({}, {"vocabulary_": vocab}))
    grep = ("grep -r", lambda p: ["grep", "-r", "-l", "^49999$", p])
    tools = (grep + ((),),
             ("find -exec cat", lambda p: ["find", p, "-type", "f", "-exec", "cat", "{}", "+"],
              ()),
             # The kernel keeps names, attributes and files for the whole
             # mount: no LOOKUP, OPEN or RELEASE (docs/performance.md).
             ("grep -r", grep[1], ("-o", "ro")))

    def run(argv):
        return lambda: subprocess.run(argv, stdout=subprocess.DEVNULL)
    for name, argv, opts in tools:
        run(argv(str(plain)))()
        first, again = [], []
        for _ in range(args.pairs):
            with mounted(arch, *opts) as m:
                on = argv(m.path("xtra", "vocabulary_"))
                ta = clock(run(on))
                tb = clock(run(argv(str(plain))))
                first.append((ta, tb))
                again.append((clock(run(on)), clock(run(argv(str(plain))))))
        how = ", read-only mount" if opts else ""
        for when, t in (("first after mount", first), ("again", again)):
            rows.add(f"{name} over 50k small files, {when}{how}",
                     statistics.median(a for a, _ in t), statistics.median(b for _, b in t),
                     statistics.median(a / b for a, b in t), "s", "<= 3")
    with mounted(arch) as m:
        run(tools[1][1](m.path("xtra", "vocabulary_")))()
        rows.add("daemon RSS after reading 50k files", status_kib(m.proc.pid, "VmRSS") / 1024,
                 unit="MiB")


def commit_rows(d, rows, args, fs, mib):
    """A one-param edit (same width) and, where asked, a one-element memmap
    edit, each timed until the archive is replaced, against a full copy."""
    n = mib * MB // 8
    arch = d / f"commit{mib}.mpk"
    write(arch, model({"w": compact(np.arange(n, dtype="<f8"))}))
    copies = []

    def copy():
        dst = d / f"copy{len(copies)}"
        copies.append(dst)
        copy_fsync(arch, dst)

    def cleanup():
        while copies:
            copies.pop().unlink()
    values = iter(range(128, 256))
    with mounted(arch) as m:
        def edit():
            with open(m.path("params", "max_iter"), "w") as f:
                f.write(f"{next(values)}\n")
        edit()
        a, b, r = paired(edit, copy, args.pairs, setup_a=cleanup)
        rows.add(f"commit of a param edit, {mib} MiB archive, {fs}", a, b, r, "s vs cp+fsync",
                 "<= 1.05" if fs == "ext4" else "<= 0.05")
        cleanup()
        if fs == "ext4":
            return
        hwm = status_kib(m.proc.pid, "VmHWM")

        def memmap_edit():
            ino = arch.stat().st_ino
            w = np.load(m.path("weights", "w.npy"), mmap_mode="r+")
            w[n // 3] = -w[n // 3] - 1
            w.flush()
            del w
            while arch.stat().st_ino == ino:  # the commit comes with the release
                time.sleep(0.0005)
        a, b, r = paired(memmap_edit, copy, args.pairs, setup_a=cleanup)
        rows.add(f"one-element np.memmap edit, {mib} MiB array, {fs}", a, b, r,
                 "s vs cp+fsync", "<= 0.05")
        rows.add("  daemon peak RSS growth in those edits",
                 (status_kib(m.proc.pid, "VmHWM") - hwm) / 1024, unit="MiB")
        cleanup()


@contextlib.contextmanager
def xfs_image(size_gib):
    work = Path(tempfile.mkdtemp(prefix="mpfs-bench-xfs-", dir=os.environ.get("BENCH_DIR",
                                                                              "/var/tmp")))
    image, root = work / "xfs.img", work / "mnt"
    root.mkdir()
    try:
        with open(image, "wb") as f:
            f.truncate(size_gib << 30)
        subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(root)], check=True)
        try:
            yield root
        finally:
            subprocess.run(["umount", str(root)])
    finally:
        shutil.rmtree(work)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=512, help="size of the big compact array (MiB)")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--nested", type=int, default=3000, help="side of the nested-list array")
    ap.add_argument("--only", default="read,mmap,nested,small,commit,xfs")
    args = ap.parse_args()
    args.only = set(args.only.split(","))
    rows = Rows()
    d = Path(tempfile.mkdtemp(prefix="mpfs-bench-data-", dir=os.environ.get("BENCH_DIR",
                                                                            "/var/tmp")))
    try:
        if args.only & {"read", "mmap"}:
            bench_read(d, rows, args)
        if "nested" in args.only:
            bench_nested(d, rows, args)
        if "small" in args.only:
            bench_small(d, rows, args)
        if "commit" in args.only:
            fs = subprocess.run(["stat", "-f", "-c", "%T", str(d)], capture_output=True,
                                text=True).stdout.strip()
            commit_rows(d, rows, args, "ext4" if fs.startswith("ext") else fs, 512)
        if "xfs" in args.only:
            if os.geteuid() != 0 or not shutil.which("mkfs.xfs"):
                print("XFS rows skipped: needs root and mkfs.xfs", file=sys.stderr)
            else:
                with xfs_image(5) as x:
                    commit_rows(x, rows, args, "XFS", 1024)
    finally:
        shutil.rmtree(d)
    rows.print()


if __name__ == "__main__":
    main()
