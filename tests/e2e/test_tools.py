"""Everyday tools on a mounted archive (DESIGN §3: exact sizes and link
counts so that ls -l, du, find, cp -r, tar and rsync behave)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import fail_on, tree_differences, walk


def run(*cmd, **kwargs):
    return subprocess.run([str(c) for c in cmd], capture_output=True, timeout=30,
                          **kwargs)


def assert_clean(res):
    """Exit 0 and nothing on stderr."""
    assert res.returncode == 0 and not res.stderr, (
        f"{' '.join(map(str, res.args))} exited {res.returncode}; "
        f"stderr:\n{res.stderr.decode(errors='replace')}")


def test_cp_r_copies_everything(model, tmp_path):
    dest = tmp_path / "copy"
    assert_clean(run("cp", "-r", model.mnt, dest))
    fail_on(tree_differences(model.mnt, dest), f"cp -r {model.name}")


def test_tar_archives_everything(model, tmp_path):
    tarball, dest = tmp_path / "m.tar", tmp_path / "untarred"
    # tar warns ("file changed as we read it", "File shrank") when st_size lies.
    assert_clean(run("tar", "cf", tarball, "-C", model.mnt, "."))
    dest.mkdir()
    assert_clean(run("tar", "xf", tarball, "-C", dest))
    fail_on(tree_differences(model.mnt, dest), f"tar {model.name}")


@pytest.mark.skipif(not shutil.which("rsync"), reason="rsync is not installed")
def test_rsync_copies_everything(model, tmp_path):
    dest = tmp_path / "synced"
    assert_clean(run("rsync", "-r", f"{model.mnt}/", f"{dest}/"))
    fail_on(tree_differences(model.mnt, dest), f"rsync {model.name}")


def find_paths(mnt, *args):
    res = run("find", mnt, *args)
    assert_clean(res)
    lines = res.stdout.decode().splitlines()
    return {str(Path(line).relative_to(mnt)) for line in lines} - {"."}


def test_find_lists_the_tree(model):
    dirs, files = walk(model.mnt)
    assert find_paths(model.mnt, "-type", "d") == {str(d) for d in dirs}
    assert find_paths(model.mnt, "-type", "f") == {str(f) for f in files}
    listed = find_paths(model.mnt)
    missing = [rel for rel, want in model.expect.items()
               if want["kind"] != "array" and rel.rstrip("/") not in listed]
    missing += [rel for rel, want in model.expect.items()
                if want["kind"] == "array" and rel not in listed]
    assert not missing, f"find {model.name} does not list {missing}"


def test_du_works(model):
    assert_clean(run("du", "-s", model.mnt))


def test_grep_r_finds_params(model):
    res = run("grep", "-rl", "relu", model.mnt)
    assert res.returncode in (0, 1) and not res.stderr, res
    found = {str(Path(p).relative_to(model.mnt)) for p in res.stdout.decode().splitlines()}
    _, files = walk(model.mnt)
    holding = {str(f) for f in files if b"relu" in (model.mnt / f).read_bytes()}
    assert found == holding
    if model.name.startswith("mlp"):
        assert "params/activation" in found


LS_LINE = re.compile(r"^(?P<mode>\S+)\s+\d+\s+\d+\s+\d+\s+(?P<size>\d+)\s+\d+\s(?P<name>.+)$")


def test_ls_l_sizes_match_content(model):
    res = run("ls", "-lnRa", "--time-style=+%s", "--quoting-style=literal", model.mnt)
    assert_clean(res)
    sizes, folder = {}, None
    for line in res.stdout.decode().splitlines():
        if line.endswith(":") and line.startswith(str(model.mnt)):
            folder = Path(line[:-1]).relative_to(model.mnt)
        elif (m := LS_LINE.match(line)) and m["mode"].startswith("-"):
            sizes[str(folder / m["name"])] = int(m["size"])
    _, files = walk(model.mnt)
    problems = [f"{f}: not listed by ls -lR" for f in files if str(f) not in sizes]
    problems += [f"{f}: ls -l says {sizes[str(f)]} bytes, reading gives "
                 f"{len((model.mnt / f).read_bytes())}"
                 for f in files if str(f) in sizes
                 and sizes[str(f)] != len((model.mnt / f).read_bytes())]
    fail_on(problems, f"ls -lR {model.name}")
