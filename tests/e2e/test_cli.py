"""The command line (DESIGN §6) and refusal of malformed archives (§5):
one line on stderr naming the byte offset, exit status 1, nothing mounted,
no crash, no hang, no memory in proportion to a declared length."""

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import (BAD_ARCHIVES, MPFS_BIN, TIMEOUT, force_unmount, is_mounted,
                     mounted, sanitizer_report)

MAX_RSS_KIB = 256 * 1024  # generous for an ASan build; a 4 GiB declared length is not


class Result:
    def __init__(self, returncode, stdout, stderr, max_rss_kib):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.max_rss_kib = max_rss_kib

    def __repr__(self):
        return (f"exit {self.returncode}, max RSS {self.max_rss_kib} KiB\n"
                f"stdout: {self.stdout!r}\nstderr: {self.stderr!r}")


def run_mpfs(*args, mnt=None, must_not_mount=False):
    """Run mpfs ARGS; fail the test if it is still running after TIMEOUT
    (and undo any mount it made at MNT), or at once if MUST_NOT_MOUNT and
    MNT gets mounted. Returns a Result with the child's own peak RSS (wait4).
    Output goes to files, not pipes, so that a daemon that keeps them open
    cannot hang the test."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([str(MPFS_BIN), *map(str, args)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = time.monotonic() + TIMEOUT
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if must_not_mount and is_mounted(mnt):
                force_unmount(mnt)
                proc.kill()
                proc.wait()
                err.seek(0)
                pytest.fail(f"mpfs {' '.join(map(str, args))} mounted; stderr: "
                            f"{err.read().decode(errors='replace')!r}", pytrace=False)
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                if mnt is not None:
                    force_unmount(mnt)
                pytest.fail(f"mpfs {' '.join(map(str, args))} still running after "
                            f"{TIMEOUT}s", pytrace=False)
            time.sleep(0.01)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Result(proc.returncode, out.read().decode(errors="replace"),
                      err.read().decode(errors="replace"), usage.ru_maxrss)


def assert_one_line_error(res):
    assert res.returncode != 0, res
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected one line on stderr; {res}"
    assert not sanitizer_report(res.stderr), res


@pytest.fixture
def mnt(tmp_path):
    """An empty mount point; fails the test if something is left mounted."""
    point = tmp_path / "mnt"
    point.mkdir()
    yield point
    if is_mounted(point):
        force_unmount(point)
        pytest.fail(f"{point} was left mounted", pytrace=False)


# --------------------------------------------------------------------------
# Malformed archives


@pytest.mark.parametrize("foreground", [True, False], ids=["fg", "bg"])
@pytest.mark.parametrize("name", BAD_ARCHIVES)
def test_bad_archive_is_refused(archive_copies, mnt, name, foreground):
    args = (["-f"] if foreground else []) + [archive_copies / f"{name}.mpk", mnt]
    res = run_mpfs(*args, mnt=mnt, must_not_mount=True)
    if is_mounted(mnt):  # a daemon mounted it after all
        force_unmount(mnt)
        pytest.fail(f"{name}.mpk was mounted; {res}", pytrace=False)
    assert res.returncode == 1, f"{name}.mpk: expected exit status 1; {res}"
    assert_one_line_error(res)
    assert re.search(r"\boffset\b", res.stderr, re.I), \
        f"{name}.mpk: the error does not name the byte offset; {res}"
    assert res.max_rss_kib < MAX_RSS_KIB, f"{name}.mpk: {res}"


@pytest.mark.parametrize("cut", ["mid_float", "mid_row", "lying_length"])
def test_nested_array_cut_short_is_refused(tmp_path, mnt, cut):
    """A nested-list array cut in the middle of a float or of a row, or a
    row whose length says more elements than the archive holds: refused at
    mount with the offset (rows are validated there, never read past)."""
    import msgpack
    import numpy as np
    rows = np.random.RandomState(3).rand(50, 40).tolist()
    data = msgpack.packb({"class_name": "X", "weights": {"w": rows}}, use_bin_type=True)
    row = msgpack.packb(rows[0])  # 0xdc 00 28, then 40 float64s
    at = data.index(row) + len(row) // 2
    if cut == "mid_float":
        data = data[:at + 3]
    elif cut == "mid_row":
        data = data[:at - (at - data.index(row) - 3) % 9]
    else:
        i = data.index(row)
        data = data[:i] + b"\xdc\xff\xff" + data[i + 3:]  # 65535 elements
    archive = tmp_path / "cut.mpk"
    archive.write_bytes(data)
    res = run_mpfs("-f", archive, mnt, mnt=mnt, must_not_mount=True)
    assert res.returncode == 1, res
    assert_one_line_error(res)
    assert re.search(r"\boffset\b", res.stderr, re.I), res


# --------------------------------------------------------------------------
# Command-line errors


def test_missing_archive(tmp_path, mnt):
    res = run_mpfs("-f", tmp_path / "no-such.mpk", mnt, mnt=mnt, must_not_mount=True)
    assert_one_line_error(res)


def test_missing_mount_point(archive_copies, tmp_path):
    res = run_mpfs("-f", archive_copies / "mlp_seed.mpk", tmp_path / "no-such-dir")
    assert_one_line_error(res)


def test_mount_point_not_empty(archive_copies, mnt):
    (mnt / "precious").write_text("keep me\n")
    res = run_mpfs("-f", archive_copies / "mlp_seed.mpk", mnt, mnt=mnt,
                   must_not_mount=True)
    assert_one_line_error(res)
    assert (mnt / "precious").read_text() == "keep me\n"


def test_no_arguments():
    res = run_mpfs()
    assert res.returncode != 0, res
    assert res.stderr.strip(), f"no message for a missing ARCHIVE; {res}"


# --------------------------------------------------------------------------
# Information


def test_version():
    res = run_mpfs("-V")
    assert res.returncode == 0, res
    assert re.search(r"\d+\.\d+", res.stdout), f"no version number on stdout; {res}"


def test_help():
    res = run_mpfs("-h")
    assert res.returncode == 0, res
    assert "usage" in res.stdout.lower(), f"no usage on stdout; {res}"


# --------------------------------------------------------------------------
# Daemon mode


def processes_naming(path):
    """PIDs of processes whose command line names PATH."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(path).encode() in argv:
                pids.append(int(entry.name))
    return pids


def test_background_mount_and_unmount(archive_copies, mnt):
    res = run_mpfs(archive_copies / "logreg_seed.mpk", mnt, mnt=mnt)
    assert res.returncode == 0, res
    assert is_mounted(mnt), f"not mounted after mpfs returned; {res}"
    try:
        assert (mnt / "class_name").read_text() == '"LogisticRegression"\n'
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
    deadline = time.monotonic() + TIMEOUT
    while processes_naming(mnt) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not processes_naming(mnt), "the daemon did not exit after unmount"


def test_daemon_commits_what_is_left_before_it_exits(archive_copies, mnt):
    """A file moved to a scratch name is removed from the archive at the
    latest when the mount ends: once the daemon has exited after unmount
    (the kernel does not wait for it), the archive holds that change."""
    import msgpack
    import shutil
    archive = mnt.parent / "private.mpk"  # not the session's shared copy
    shutil.copyfile(archive_copies / "logreg_seed.mpk", archive)
    res = run_mpfs(archive, mnt, mnt=mnt)
    assert res.returncode == 0, res
    try:
        os.rename(mnt / "params" / "tol", mnt / "params" / ".tol")
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
    deadline = time.monotonic() + TIMEOUT
    while processes_naming(mnt) and time.monotonic() < deadline:
        time.sleep(0.01)
    params = msgpack.unpackb(archive.read_bytes(), raw=True, strict_map_key=False)[b"params"]
    assert b"tol" not in params


def test_foreground_mount_unmounts_cleanly(archive_copies):
    # mounted() itself asserts exit status 0 and no sanitizer report.
    with mounted(archive_copies / "tfidf_compact.mpk") as point:
        assert (point / "class_name").read_text() == '"TfidfVectorizer"\n'
