"""pytest fixtures for the end-to-end suite; the machinery is in harness.py.

Run from the repository root with Debian's Python:

    /usr/bin/python3 -m pytest -q tests/e2e
"""

import os
import shutil

import pytest

from harness import FIXTURES, GOOD_ARCHIVES, MPFS_BIN, load_expect, mounted


@pytest.fixture(scope="session", autouse=True)
def _require_fuse_and_binary():
    # Session scope, so that it runs before the session-scoped mounts.
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is absent: FUSE end-to-end tests cannot run")
    if not (MPFS_BIN.is_file() and os.access(MPFS_BIN, os.X_OK)):
        pytest.fail(f"mpfs binary not found or not executable at {MPFS_BIN} "
                    "(build it first, or set MPFS_BIN)", pytrace=False)
    if not FIXTURES.is_dir():
        pytest.fail(f"fixture folder {FIXTURES} is missing (set MPFS_FIXTURES)",
                    pytrace=False)


@pytest.fixture(scope="session")
def archive_copies(tmp_path_factory):
    """Private copies of every fixture archive: the shared files are never
    the mount source, so nothing can write to them."""
    folder = tmp_path_factory.mktemp("archives")
    for src in list(FIXTURES.glob("*.mpk")) + list(FIXTURES.glob("peers/*.mpk")):
        dest = folder / src.relative_to(FIXTURES)
        dest.parent.mkdir(exist_ok=True)
        shutil.copyfile(src, dest)
    return folder


class Model:
    """One fixture archive, mounted."""

    def __init__(self, name, archive, mnt):
        self.name = name          # e.g. "mlp_seed"
        self.archive = archive    # the private copy that is mounted
        self.mnt = mnt            # mount point (Path)
        self.expect = load_expect(name)


def _mount_model(archive_copies, name, *opts):
    archive = archive_copies / f"{name}.mpk"
    original = (FIXTURES / f"{name}.mpk").read_bytes()
    with mounted(archive, *opts) as mnt:
        yield Model(name, archive, mnt)
    assert archive.read_bytes() == original, \
        f"{name}.mpk changed on disk although nothing was written"


@pytest.fixture(scope="session", params=GOOD_ARCHIVES)
def model(request, archive_copies):
    """Each valid fixture archive, mounted with default options (one mount
    per archive for the whole session)."""
    yield from _mount_model(archive_copies, request.param)


@pytest.fixture(scope="session", params=GOOD_ARCHIVES)
def raw_model(request, archive_copies):
    """Each valid fixture archive, mounted with -o raw."""
    yield from _mount_model(archive_copies, request.param, "-o", "raw")
