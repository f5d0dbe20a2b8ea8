"""Machinery of the end-to-end suite: where things are, mounting the real
mpfs binary with FUSE, and small helpers. Fixtures are in conftest.py.

Environment:
    MPFS_BIN       the binary to test (default build/mpfs; a relative path is
                   taken from the repository root)
    MPFS_FIXTURES  the fixture folder (default ../shared/fixtures from the
                   repository root)
"""

import contextlib
import hashlib
import json
import math
import os
import re
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest  # for pytest.fail inside mounted()

REPO_ROOT = Path(__file__).resolve().parents[2]


def _from_root(value, default):
    path = Path(value or default)
    return path if path.is_absolute() else REPO_ROOT / path


MPFS_BIN = _from_root(os.environ.get("MPFS_BIN"), "build/mpfs")
FIXTURES = _from_root(os.environ.get("MPFS_FIXTURES"), "../shared/fixtures").resolve()

TIMEOUT = 10.0  # seconds, for mounting, unmounting and refusing bad input
# A build with AddressSanitizer (its shadow memory rules out prlimit --as).
SANITIZED = b"libasan" in subprocess.run(["ldd", str(MPFS_BIN)], capture_output=True).stdout
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

# Valid archives: each must mount and show its NAME.expect.json. Those in
# peers/ were written by other tools (msgpack-numpy itself): named
# "peers/NAME".
GOOD_ARCHIVES = sorted(
    [p.stem for p in FIXTURES.glob("*.mpk") if not p.name.startswith("bad_")]
    + [f"peers/{p.stem}" for p in FIXTURES.glob("peers/*.mpk")]
)
# Archives that must be refused (bad_key_traversal is valid: test_read.py).
BAD_ARCHIVES = sorted(
    p.stem
    for p in FIXTURES.glob("bad_*.mpk")
    if p.stem != "bad_key_traversal"
)


def load_expect(name):
    """The parsed NAME.expect.json: {relative path: description}."""
    with open(FIXTURES / f"{name}.expect.json", encoding="utf-8") as f:
        return json.load(f)


def raw_sha256(data, dtype):
    """The sha256 an expect.json gives for an array of DTYPE (its bytes as
    numpy holds them) from DATA, the bytes of its -o raw .bin file: those
    are little-endian, so a big-endian array's are swapped back first."""
    if dtype.startswith(">"):
        import numpy as np  # harness itself needs no numpy
        data = np.frombuffer(data, dtype="<" + dtype[1:]).astype(dtype).tobytes()
    return sha256(data)


def raw_dtype(dtype):
    """user.mpfs.dtype of an array of DTYPE shown as .bin (little-endian)."""
    return "<" + dtype[1:] if dtype.startswith(">") else dtype


def expected_encoding(name):
    """The user.mpfs.encoding every array of fixture NAME must carry."""
    return "nested" if name.endswith("_seed") else "compact"


# --------------------------------------------------------------------------
# Mounting


def sanitizer_report(text):
    """The first sanitizer line in TEXT, or None."""
    for line in text.splitlines():
        if any(mark in line for mark in SANITIZER_MARKS):
            return line
    return None


def is_mounted(mnt):
    """Whether MNT is a mount point, even a dead one whose daemon is gone
    (os.path.ismount says False there: stat fails with ENOTCONN)."""
    target = os.path.realpath(mnt)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            point = line.split()[4]
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), point)
            if point == target:
                return True
    return False


def force_unmount(mnt):
    """Lazy unmount, so that a failed test leaves no mount behind."""
    if is_mounted(mnt):
        subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)


def _unmount(mnt):
    """fusermount3 -u, retrying briefly while the mount is busy; an error
    message, or None."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        res = subprocess.run(["fusermount3", "-u", str(mnt)],
                             capture_output=True, text=True)
        if res.returncode == 0 or not is_mounted(mnt):
            return None
        if time.monotonic() > deadline:
            force_unmount(mnt)
            return f"fusermount3 -u failed: {res.stderr.strip()}"
        time.sleep(0.1)


# The daemons of the mounts that are up: {mount point (Path): Daemon}.
DAEMONS = {}


class Daemon:
    """The mpfs process serving one mount (see daemon_of)."""

    def __init__(self, proc, errlog):
        self.proc = proc
        self._errlog = errlog

    @property
    def pid(self):
        return self.proc.pid

    def stderr_text(self):
        self._errlog.flush()
        with open(self._errlog.fileno(), "rb", closefd=False) as f:
            return os.pread(f.fileno(), 1 << 24, 0).decode("utf-8", "replace")

    def kill(self):
        """SIGKILL: the kernel then aborts the FUSE connection, so that every
        call blocked on the mount returns (ENOTCONN) instead of hanging."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def daemon_of(mnt):
    """The Daemon serving MNT, mounted with mounted()."""
    return DAEMONS[Path(mnt)]


@contextlib.contextmanager
def mounted(archive, *opts, limit_as=None, mount_timeout=TIMEOUT):
    """Mount ARCHIVE with `mpfs -f OPTS ARCHIVE MNT`; yield MNT (a Path).

    LIMIT_AS (bytes) runs the daemon under `prlimit --as=LIMIT_AS`, so that
    hostile input cannot grow it beyond that; MOUNT_TIMEOUT is how long it
    may take to mount. daemon_of(MNT) gives the process while it is mounted.

    On exit: unmount with fusermount3 -u, wait for the daemon, and fail the
    test unless it exited 0 and printed no sanitizer report.
    """
    mnt = Path(tempfile.mkdtemp(prefix="mpfs-mnt-"))
    errlog = tempfile.TemporaryFile(mode="w+b")
    cmd = [str(MPFS_BIN), "-f", *map(str, opts), str(archive), str(mnt)]
    env = None
    if limit_as is not None and SANITIZED:
        # AddressSanitizer reserves terabytes of address space for its
        # shadow: bound the resident memory instead (it aborts beyond).
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [
            env.get("ASAN_OPTIONS", ""), f"hard_rss_limit_mb={int(limit_as) >> 20}"]))
    elif limit_as is not None:
        # prlimit execs mpfs: the process is the daemon itself.
        cmd = ["prlimit", f"--as={int(limit_as)}", "--", *cmd]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=errlog, env=env)
    DAEMONS[mnt] = Daemon(proc, errlog)

    def stderr_text():
        errlog.seek(0)
        return errlog.read().decode("utf-8", "replace")

    try:
        deadline = time.monotonic() + mount_timeout
        while not os.path.ismount(mnt):
            if proc.poll() is not None:
                pytest.fail(f"{' '.join(cmd)} exited {proc.returncode} before "
                            f"mounting; stderr:\n{stderr_text()}", pytrace=False)
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                force_unmount(mnt)
                pytest.fail(f"{' '.join(cmd)} did not mount within {mount_timeout}s; "
                            f"stderr:\n{stderr_text()}", pytrace=False)
            time.sleep(0.02)

        body_ok = False
        try:
            yield mnt
            body_ok = True
        finally:
            problems = []
            unmount_error = _unmount(mnt)
            if unmount_error:
                problems.append(unmount_error)
            try:
                status = proc.wait(timeout=TIMEOUT)
                if status != 0:
                    problems.append(f"daemon exited {status} after unmount "
                                    "(expected 0: clean unmount)")
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                problems.append(f"daemon still running {TIMEOUT}s after unmount")
            report = sanitizer_report(stderr_text())
            if report:
                problems.append(f"sanitizer report: {report}")
            if problems:
                message = (f"{' '.join(cmd)}: " + "; ".join(problems)
                           + f"\nstderr:\n{stderr_text()}")
                if body_ok:
                    pytest.fail(message, pytrace=False)
                print(message)  # the body's own failure takes precedence
    finally:
        DAEMONS.pop(mnt, None)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        errlog.close()
        force_unmount(mnt)
        with contextlib.suppress(OSError):
            os.rmdir(mnt)  # never rmtree: that would delete through a live mount


# --------------------------------------------------------------------------
# Helpers for tests


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def walk(root):
    """(dirs, files): every directory and file below ROOT as relative paths."""
    root = Path(root)
    dirs, files = [], []
    for top, dirnames, filenames in os.walk(root):
        rel = Path(top).relative_to(root)
        dirs.extend(rel / d for d in dirnames)
        files.extend(rel / f for f in filenames)
    return sorted(dirs), sorted(files)


def fail_on(problems, what):
    """Fail the test listing every problem, not just the first."""
    if problems:
        pytest.fail(f"{what}: {len(problems)} problem(s):\n  " + "\n  ".join(problems),
                    pytrace=False)


def json_same(got, want):
    """Strict equality of JSON values: types must agree (1 is not 1.0 nor
    true), floats compare by bits, NaN equals NaN."""
    if isinstance(want, float):
        if not isinstance(got, float):
            return False
        if math.isnan(want):
            return math.isnan(got)
        return struct.pack("<d", got) == struct.pack("<d", want)
    if isinstance(want, list):
        return (isinstance(got, list) and len(got) == len(want)
                and all(json_same(g, w) for g, w in zip(got, want)))
    if isinstance(want, dict):
        return (isinstance(got, dict) and got.keys() == want.keys()
                and all(json_same(got[k], want[k]) for k in want))
    return type(got) is type(want) and got == want


def tree_differences(a, b):
    """How the trees at A and B differ (names, kinds, bytes); [] if equal."""
    a, b = Path(a), Path(b)
    (dirs_a, files_a), (dirs_b, files_b) = walk(a), walk(b)
    problems = []
    for label, only in (("only in source", set(dirs_a) - set(dirs_b)),
                        ("only in copy", set(dirs_b) - set(dirs_a))):
        problems += [f"{d}/: directory {label}" for d in sorted(only)]
    for label, only in (("only in source", set(files_a) - set(files_b)),
                        ("only in copy", set(files_b) - set(files_a))):
        problems += [f"{f}: file {label}" for f in sorted(only)]
    for rel in sorted(set(files_a) & set(files_b)):
        data_a, data_b = (a / rel).read_bytes(), (b / rel).read_bytes()
        if data_a != data_b:
            problems.append(f"{rel}: {len(data_a)} bytes in source, "
                            f"{len(data_b)} differing bytes in copy")
    return problems
