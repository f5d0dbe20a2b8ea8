"""Helpers for the tests that look for trouble (issue 7): test_trust.py,
test_stress.py and test_faults.py.

Anything that may hang the mount runs in a worker thread with a deadline.
When the deadline passes, the daemon is killed: the kernel then aborts the
FUSE connection, every call blocked on the mount returns (ENOTCONN), and the
test fails saying what hung, instead of the run getting stuck.
"""

import errno
import os
import threading
from pathlib import Path

import msgpack
import pytest

from harness import daemon_of

MB = 1 << 20
GB = 1 << 30

# Address space for a daemon fed hostile input: enough for a healthy mpfs
# (its mapping of the archive, thread stacks), far below what the machine has.
HOSTILE_AS = 3 * GB


def errname(code):
    return errno.errorcode.get(code, str(code)) if code else "no error"


class Call:
    """FN running in a daemon thread; join() waits for it with a deadline."""

    def __init__(self, fn, *args, name="call"):
        self.name = name
        self.result = None
        self.error = None
        self.done = threading.Event()

        def run():
            try:
                self.result = fn(*args)
            except BaseException as e:  # noqa: BLE001 - handed to the test
                self.error = e
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()

    def finished(self, seconds):
        return self.done.wait(seconds)

    def outcome(self):
        """The result, or raise what FN raised."""
        if self.error is not None:
            raise self.error
        return self.result

    def errno(self):
        """The errno of the OSError FN raised, None if it returned."""
        if self.error is None:
            return None
        if isinstance(self.error, OSError):
            return self.error.errno
        raise self.error


def hung(mnt, what, seconds):
    """Kill the daemon of MNT (so nothing stays blocked) and fail the test."""
    daemon = daemon_of(mnt)
    alive = daemon.proc.poll() is None
    daemon.kill()
    pytest.fail(f"{what} did not return within {seconds:g}s "
                f"({'the daemon was alive, now killed' if alive else 'the daemon had died'}); "
                f"daemon stderr:\n{daemon.stderr_text()[-3000:]}", pytrace=False)


def bounded(mnt, what, seconds, fn, *args):
    """FN(*ARGS), which calls into the mount MNT; fails the test (killing the
    daemon) if it does not return within SECONDS. Returns FN's result or
    raises what it raised."""
    call = Call(fn, *args, name=what)
    if not call.finished(seconds):
        hung(mnt, what, seconds)
    return call.outcome()


def bounded_errno(mnt, what, seconds, fn, *args):
    """Like bounded(), but the errno of the OSError FN raised (None if it
    returned)."""
    call = Call(fn, *args, name=what)
    if not call.finished(seconds):
        hung(mnt, what, seconds)
    return call.errno()


def alive(mnt, seconds=10.0):
    """The mount still answers: stat of its root returns."""
    daemon = daemon_of(mnt)
    assert daemon.proc.poll() is None, \
        f"the daemon died (status {daemon.proc.returncode}); stderr:\n{daemon.stderr_text()[-3000:]}"
    bounded(mnt, "stat of the mount's root", seconds, os.stat, mnt)


def proc_status(mnt, field):
    """A field of /proc/PID/status of the daemon serving MNT, in bytes."""
    pid = daemon_of(mnt).pid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def rss_anon(mnt):
    return proc_status(mnt, "RssAnon")


def write_archive(path, obj):
    """PATH holding OBJ packed by msgpack-python (str as str, bytes as bin).
    Returns the bytes."""
    data = msgpack.packb(obj, use_bin_type=True)
    Path(path).write_bytes(data)
    return data


def decode(path):
    """The archive at PATH decoded independently (str as str, bin as bytes),
    failing the test on duplicate keys in any map."""
    duplicates = []

    def pairs(items):
        keys = [k for k, _ in items]
        seen = set()
        for k in keys:
            hk = (type(k).__name__, k) if not isinstance(k, (list, dict)) else repr(k)
            if hk in seen:
                duplicates.append(k)
            seen.add(hk)
        return dict(items)

    try:
        value = msgpack.unpackb(Path(path).read_bytes(), raw=False,
                                strict_map_key=False, object_pairs_hook=pairs)
    except Exception as e:  # noqa: BLE001 - any failure to decode is the bug
        pytest.fail(f"the archive no longer decodes: {e!r}", pytrace=False)
    if duplicates:
        pytest.fail(f"the archive holds duplicate keys: {duplicates}", pytrace=False)
    return value


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def write_file(path, data, flags=os.O_WRONLY | os.O_TRUNC):
    """open, write, close: close errors are raised, as Python does."""
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, data)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
