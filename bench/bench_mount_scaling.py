"""How mount time grows with the number of keys (a script, not a test).

For each shape below it builds archives with 10k, 40k and 160k keys (or
entries), mounts each with the real mpfs, and reports the time until the
mount point is ready (mpfs opens the view, which decodes and classifies the
archive, before it mounts) and the daemon's RSS. Linear growth shows as a
ratio of about 4 from one size to the next; a quadratic step shows as 16.

  types   a model whose `types` map and `params` map have N keys each
  csr     a csr_matrix map with N keys besides shape, arg1 and dtype
  vocab   a TfidfVectorizer-like `xtra/vocabulary_` map of N str -> int
  maps    a list of N empty maps under `xtra` (a directory of N directories)

    /usr/bin/python3 bench/bench_mount_scaling.py [--sizes 10000,40000,160000]
        [--shapes types,csr,vocab,maps] [--timeout 120]

Needs root (FUSE) and a built mpfs ($MPFS_BIN, default build/mpfs).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import msgpack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPFS = os.environ.get("MPFS_BIN", os.path.join(ROOT, "build", "mpfs"))


def arch_types(n):
    return {"class_name": "Bench",
            "types": {f"k{i}": "int" for i in range(n)},
            "params": {f"k{i}": i for i in range(n)}}


def arch_csr(n):
    m = {f"e{i}": i for i in range(n)}
    m.update({"shape": [1, 2], "dtype": "float64", "class_name": "csr_matrix",
              "arg1": [[1.0], [1], [0, 1]]})  # arg1 last: found after N keys
    return {"class_name": "Bench", "types": {}, "xtra": {"m": m}}


def arch_vocab(n):
    return {"class_name": "TfidfVectorizer", "types": {"vocabulary_": "dict"},
            "params": {"lowercase": True},
            "xtra": {"vocabulary_": {f"word{i}": i for i in range(n)}}}


def arch_maps(n):
    return {"class_name": "Bench", "types": {}, "xtra": {"l": [{}] * n}}


SHAPES = {"types": arch_types, "csr": arch_csr, "vocab": arch_vocab, "maps": arch_maps}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def mount_time(archive, timeout):
    """Seconds until the mount is ready and the daemon's RSS (KiB) then;
    (None, None) if it took longer than timeout."""
    mnt = tempfile.mkdtemp(prefix="mpfs-scale-")
    t = time.perf_counter()
    proc = subprocess.Popen([MPFS, "-f", "-o", "ro", archive, mnt], stderr=subprocess.PIPE)
    try:
        while not os.path.ismount(mnt):
            if proc.poll() is not None:
                sys.exit(f"mpfs failed on {archive}: {proc.stderr.read().decode()}")
            if time.perf_counter() - t > timeout:
                return None, None
            time.sleep(0.002)
        secs = time.perf_counter() - t
        rss = rss_kib(proc.pid)
        subprocess.run(["fusermount3", "-u", mnt], check=True)
        return secs, rss
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait()
        os.rmdir(mnt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,40000,160000")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--timeout", type=float, default=120, help="give up on one mount after")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'shape':6} {'keys':>8} {'archive':>10} {'mount s':>9} {'x prev':>7} "
          f"{'RSS MiB':>8}")
    with tempfile.TemporaryDirectory(prefix="mpfs-scale-data-") as d:
        for shape in args.shapes.split(","):
            prev = None
            for n in sizes:
                path = os.path.join(d, f"{shape}-{n}.mpk")
                with open(path, "wb") as f:
                    f.write(msgpack.packb(SHAPES[shape](n), use_bin_type=True))
                secs, rss = mount_time(path, args.timeout)
                size = os.path.getsize(path)
                if secs is None:
                    print(f"{shape:6} {n:8} {size:10} {'>' + str(args.timeout):>9}")
                    prev = None
                    continue
                ratio = f"{secs / prev:7.1f}" if prev else " " * 7
                print(f"{shape:6} {n:8} {size:10} {secs:9.3f} {ratio} {rss / 1024:8.1f}",
                      flush=True)
                prev = secs
                os.unlink(path)


if __name__ == "__main__":
    main()
