"""mpfs-tool, the companion that needs no FUSE, against the real mount:
unpack gives the mount's files, bytes, sizes and xattrs for every good
fixture; unpack + apply round trips; edits made with the tool read back
through the mount; every subcommand works where /dev/fuse does not exist;
and git diffs a model through `mpfs-tool show` as its textconv."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness import FIXTURES, GOOD_ARCHIVES, MPFS_BIN, fail_on, mounted, tree_differences

TOOL = Path(os.environ.get("MPFS_TOOL_BIN") or MPFS_BIN.parent / "mpfs-tool")


def tool(*args, check=True, **kw):
    res = subprocess.run([str(TOOL), *map(str, args)], capture_output=True, timeout=60, **kw)
    if check and res.returncode != 0:
        pytest.fail(f"mpfs-tool {' '.join(map(str, args))} exited {res.returncode}: "
                    f"{res.stderr.decode()}", pytrace=False)
    return res


def xattrs(path):
    try:
        return {n: os.getxattr(path, n) for n in os.listxattr(path) if n.startswith("user.mpfs.")}
    except OSError:
        return None


def test_unpack_is_the_mounted_tree(model, tmp_path):
    out = tmp_path / "u"
    tool("unpack", FIXTURES / f"{model.name}.mpk", out)
    problems = tree_differences(model.mnt, out)
    xattrs_supported = xattrs(out) is not None
    for top, dirs, files in os.walk(model.mnt):
        for name in dirs + files:
            m = Path(top) / name
            u = out / m.relative_to(model.mnt)
            if not u.exists():
                continue
            if m.stat().st_size != u.stat().st_size and name in files:
                problems.append(f"{u}: size {u.stat().st_size}, mount {m.stat().st_size}")
            if xattrs_supported and xattrs(m) != xattrs(u):
                problems.append(f"{u}: xattrs {xattrs(u)}, mount {xattrs(m)}")
    fail_on(problems, f"unpack of {model.name} against its mount")


@pytest.mark.parametrize("name", GOOD_ARCHIVES)
def test_apply_round_trips(name, tmp_path):
    archive = tmp_path / "m.mpk"
    shutil.copyfile(FIXTURES / f"{name}.mpk", archive)
    before = archive.read_bytes()
    ino = archive.stat().st_ino
    tool("unpack", archive, tmp_path / "u")
    tool("apply", tmp_path / "u", archive)
    assert archive.read_bytes() == before and archive.stat().st_ino == ino, \
        "an apply without changes must not touch the archive"
    # Pack gives an archive that shows the same tree (encodings may differ),
    # but for bins: a new file cannot make one (docs/writing.md), so raw
    # bytes come back as a string.
    tool("pack", tmp_path / "u", tmp_path / "p.mpk")
    tool("unpack", tmp_path / "p.mpk", tmp_path / "p")
    fail_on([p for p in tree_differences(tmp_path / "u", tmp_path / "p")
             if is_text(tmp_path / "u" / p.split(":")[0])], f"pack of {name}")


def is_text(path):
    try:
        data = path.read_bytes()
        data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return data.endswith(b"\n") and data.count(b"\n") == 1


def test_edits_with_the_tool_read_back_through_the_mount(tmp_path):
    archive = tmp_path / "m.mpk"
    shutil.copyfile(FIXTURES / "mlp_seed.mpk", archive)
    u = tmp_path / "u"
    tool("unpack", archive, u)
    (u / "params" / "alpha").write_text("0.5\n")
    w = np.load(u / "weights" / "coefs_" / "0.npy")
    np.save(u / "weights" / "coefs_" / "0.npy", w * 2)
    (u / "xtra" / "note").write_text("hello\n")
    tool("apply", u, archive)
    tool("set", archive, "params/max_iter", "77")
    with mounted(archive) as mnt:
        assert (mnt / "params" / "alpha").read_text() == "0.5\n"
        assert (mnt / "params" / "max_iter").read_text() == "77\n"
        assert (mnt / "xtra" / "note").read_text() == '"hello"\n'
        assert np.array_equal(np.load(mnt / "weights" / "coefs_" / "0.npy"), w * 2)
        # The mount's encoding is kept.
        assert os.getxattr(mnt / "weights" / "coefs_" / "0.npy", "user.mpfs.encoding") == b"nested"


def test_a_bad_file_refuses_the_whole_apply(tmp_path):
    archive = tmp_path / "m.mpk"
    shutil.copyfile(FIXTURES / "logreg_compact.mpk", archive)
    before = archive.read_bytes()
    tool("unpack", archive, tmp_path / "u")
    (tmp_path / "u" / "params" / "C").write_text("2\n")
    (tmp_path / "u" / "params" / "max_iter").write_text("lots\n")
    res = tool("apply", tmp_path / "u", archive, check=False)
    assert res.returncode == 1
    assert b"params/max_iter" in res.stderr and b"nothing applied" in res.stderr
    assert archive.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.mpk", "u"]


NO_FUSE = """
set -e
mount -t tmpfs tmpfs /dev
mknod -m 666 /dev/null c 1 3
test ! -e /dev/fuse
"""


def test_every_fixture_without_fuse(tmp_path):
    """In a mount namespace whose /dev has no fuse (as in a container), the
    tool inspects, edits and diffs every good fixture; mpfs itself cannot
    mount there."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to hide /dev/fuse")
    assert b"libfuse" not in subprocess.run(["ldd", str(TOOL)], capture_output=True).stdout
    script = [NO_FUSE]
    for fixture in GOOD_ARCHIVES:
        name = fixture.replace("/", "_")  # peers/NAME
        a = tmp_path / f"{name}.mpk"
        shutil.copyfile(FIXTURES / f"{fixture}.mpk", a)
        script += [
            f"{TOOL} check {a} >/dev/null",
            f"{TOOL} ls -l {a} >/dev/null",
            f"{TOOL} show {a} > {tmp_path}/{name}.show",
            f"{TOOL} cat {a} class_name >/dev/null",
            f"{TOOL} unpack {a} {tmp_path}/{name}.d",
            f"{TOOL} mkdir {a} xtra_tool",
            f"{TOOL} set {a} xtra_tool/tag '\"v2\"'",
            f"! {TOOL} diff {FIXTURES}/{fixture}.mpk {a} > {tmp_path}/{name}.diff",
        ]
    script.append(f"mkdir {tmp_path}/mnt; ! {MPFS_BIN} {a} {tmp_path}/mnt 2> {tmp_path}/mpfs.err")
    res = subprocess.run(["unshare", "-m", "sh", "-c", "\n".join(script)],
                         capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode()
    assert "no FUSE available" in (tmp_path / "mpfs.err").read_text()
    for name in (f.replace("/", "_") for f in GOOD_ARCHIVES):
        assert (tmp_path / f"{name}.diff").read_text() == "xtra_tool/tag: only in " \
            f"{tmp_path}/{name}.mpk\n" or "xtra_tool/: only in" in (tmp_path / f"{name}.diff").read_text()
        assert "class_name = " in (tmp_path / f"{name}.show").read_text()


def git(repo, *args):
    res = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout.decode()


def test_git_diff_of_a_model(tmp_path):
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.org")
    git(repo, "config", "user.name", "t")
    (repo / ".gitattributes").write_text("*.mpk diff=mpk\n")
    git(repo, "config", "diff.mpk.textconv", f"{TOOL} show")
    shutil.copyfile(FIXTURES / "logreg_seed.mpk", repo / "model.mpk")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "model")
    with mounted(repo / "model.mpk") as mnt:
        (mnt / "params" / "C").write_text("2\n")
        coef = np.load(mnt / "weights" / "coef_.npy")
        coef[0, 1] += 0.5
        np.save(mnt / "weights" / "coef_.npy", coef)
    git(repo, "commit", "-qam", "C = 2, one weight")
    diff = git(repo, "diff", "HEAD~1")
    assert "Binary files" not in diff
    lines = diff.splitlines()
    assert "-params/C = 0.5" in lines and "+params/C = 2.0" in lines, diff
    assert any(l.startswith("-weights/coef_.npy: <f8 (1,6) hash ") for l in lines), diff
    assert any(l.startswith("+weights/coef_.npy: <f8 (1,6) hash ") for l in lines), diff
    # Nothing else changed.
    assert len([l for l in lines if l[:1] in "+-" and l[:3] not in ("+++", "---")]) == 4, diff
    assert "+params/C = 2.0" in git(repo, "log", "-p", "-1")
