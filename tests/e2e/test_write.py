"""Writing through a mounted archive (DESIGN §4), end to end.

Every test works on a private copy of a fixture archive, edits it through a
real mount with real clients (shell redirections, Python, numpy, dd, sed,
vim, nano, cp, mv, rsync ...), and then decodes the archive independently
with msgpack-python. The check is always the same: the archive must equal
the original with exactly the intended change applied (key order, types and
float bits included), and every part that was not edited must keep its
MsgPack encoding (formats and widths, str vs bin).
"""

import copy
import errno
import json
import math
import os
import random
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest

from harness import (FIXTURES, GOOD_ARCHIVES, MPFS_BIN, TIMEOUT, force_unmount,
                     json_same, mounted, sanitizer_report, walk)

EINVAL = errno.EINVAL


# --------------------------------------------------------------------------
# Decoding and comparing archives


def decode_bytes(data):
    return msgpack.unpackb(data, raw=True, strict_map_key=False)


def decode(path):
    """The archive at PATH, decoded independently of mpfs."""
    return decode_bytes(Path(path).read_bytes())


DELETE = object()


def _parent(tree, path):
    node = tree
    for key in path[:-1]:
        node = node[key]
    return node


def expect_change(before, path, new_value):
    """A copy of BEFORE with the value at PATH (a tuple of keys and list
    indices) replaced by NEW_VALUE; a key new to its map goes at the end;
    NEW_VALUE=DELETE removes the key."""
    after = copy.deepcopy(before)
    parent = _parent(after, path)
    if new_value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(new_value)
    return after


def expect_rename(before, dir_path, old, new):
    """A copy of BEFORE with key OLD of the map at DIR_PATH renamed NEW,
    keeping its position."""
    after = copy.deepcopy(before)
    parent = _parent(after, dir_path + (None,))
    items = [((new if k == old else k), v) for k, v in parent.items()]
    parent.clear()
    parent.update(items)
    return after


def where(path):
    return "/".join(k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)
                    for k in path) or "<root>"


def short(value, limit=120):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def value_differences(got, want, path=()):
    """How decoded GOT differs from WANT: strict types (1 is not 1.0 nor
    True), floats by bits (NaN equals NaN), maps in order."""
    at = where(path)
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{at}: {short(got)} is not a map"]
        problems = []
        gk = [(type(k).__name__, k) for k in got]
        wk = [(type(k).__name__, k) for k in want]
        if gk != wk:
            extra = [k for t, k in gk if (t, k) not in wk]
            missing = [k for t, k in wk if (t, k) not in gk]
            detail = (f"unexpected keys {extra}, missing keys {missing}"
                      if extra or missing else
                      f"keys in order {[k for _, k in gk]}, expected {[k for _, k in wk]}")
            problems.append(f"{at}: {detail}")
        for key in want:
            if key in got:
                problems += value_differences(got[key], want[key], path + (key,))
        return problems
    if isinstance(want, list):
        if not isinstance(got, list):
            return [f"{at}: {short(got)} is not a list"]
        if len(got) != len(want):
            return [f"{at}: list of {len(got)} != expected {len(want)}: "
                    f"{short(got)} vs {short(want)}"]
        problems = []
        for i, (g, w) in enumerate(zip(got, want)):
            problems += value_differences(g, w, path + (i,))
        return problems
    if isinstance(want, float):
        if not isinstance(got, float):
            return [f"{at}: {short(got)} != expected float {want!r}"]
        if math.isnan(want) and math.isnan(got):
            return []
        if struct.pack("<d", got) != struct.pack("<d", want):
            return [f"{at}: {got!r} != expected {want!r}"]
        return []
    if type(got) is not type(want) or got != want:
        return [f"{at}: {short(got)} != expected {short(want)}"]
    return []


# A MsgPack parser that keeps the encoding: node = (kind, format, payload),
# kind "map" (payload: [(key value, key format, node)]), "array" (payload:
# [node]) or "scalar" (payload: the value; str and bin as bytes).

_FIXED = {0xcc: ("uint8", ">B"), 0xcd: ("uint16", ">H"), 0xce: ("uint32", ">I"),
          0xcf: ("uint64", ">Q"), 0xd0: ("int8", ">b"), 0xd1: ("int16", ">h"),
          0xd2: ("int32", ">i"), 0xd3: ("int64", ">q"), 0xca: ("float32", ">f"),
          0xcb: ("float64", ">d")}
_SIZED = {0xd9: ("str8", ">B"), 0xda: ("str16", ">H"), 0xdb: ("str32", ">I"),
          0xc4: ("bin8", ">B"), 0xc5: ("bin16", ">H"), 0xc6: ("bin32", ">I")}
_CONTAINERS = {0xdc: ("array", "array16", ">H"), 0xdd: ("array", "array32", ">I"),
               0xde: ("map", "map16", ">H"), 0xdf: ("map", "map32", ">I")}
_EXT = {0xd4: 1, 0xd5: 2, 0xd6: 4, 0xd7: 8, 0xd8: 16}
_EXT_SIZED = {0xc7: ">B", 0xc8: ">H", 0xc9: ">I"}


def encoding_tree(data):
    pos = 0

    def take(n):
        nonlocal pos
        chunk = data[pos:pos + n]
        if len(chunk) != n:
            raise ValueError(f"truncated at byte {pos}")
        pos += n
        return chunk

    def unpack(fmt):
        return struct.unpack(fmt, take(struct.calcsize(fmt)))[0]

    def items(kind, n):
        if kind == "map":
            out = []
            for _ in range(n):
                key = node()
                out.append((key[2] if key[0] == "scalar" else repr(key), key[1], node()))
            return out
        return [node() for _ in range(n)]

    def node():
        b = take(1)[0]
        if b <= 0x7f:
            return ("scalar", "fixint", b)
        if b >= 0xe0:
            return ("scalar", "negfixint", b - 256)
        if 0x80 <= b <= 0x8f:
            return ("map", "fixmap", items("map", b & 0x0f))
        if 0x90 <= b <= 0x9f:
            return ("array", "fixarray", items("array", b & 0x0f))
        if 0xa0 <= b <= 0xbf:
            return ("scalar", "fixstr", take(b & 0x1f))
        if b == 0xc0:
            return ("scalar", "nil", None)
        if b in (0xc2, 0xc3):
            return ("scalar", "bool", b == 0xc3)
        if b in _FIXED:
            name, fmt = _FIXED[b]
            return ("scalar", name, unpack(fmt))
        if b in _SIZED:
            name, fmt = _SIZED[b]
            return ("scalar", name, take(unpack(fmt)))
        if b in _CONTAINERS:
            kind, name, fmt = _CONTAINERS[b]
            return (kind, name, items(kind, unpack(fmt)))
        if b in _EXT:
            return ("scalar", f"fixext{_EXT[b]}", take(1 + _EXT[b]))
        if b in _EXT_SIZED:
            n = unpack(_EXT_SIZED[b])
            return ("scalar", f"ext{b}", take(1 + n))
        raise ValueError(f"byte {b:#x} at {pos - 1}")

    root = node()
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} bytes after the end")
    return root


def node_at(tree, path):
    for key in path:
        kind, _, payload = tree
        if kind == "map":
            matches = [n for k, _, n in payload if k == key and type(k) is type(key)]
            if not matches:
                raise KeyError(where(path))
            tree = matches[0]
        else:
            tree = payload[key]
    return tree


def _touched(path, changed):
    return any(c[:len(path)] == path for c in changed)


def encoding_differences(a, b, changed, path=()):
    """Where B does not keep A's encoding, outside the CHANGED paths.
    Containers that hold a change may change their header width."""
    if path in changed:
        return []
    at = where(path)
    (ka, fa, pa), (kb, fb, pb) = a, b
    if ka != kb:
        return [f"{at}: {fa} became {fb}"]
    if ka == "scalar" or not _touched(path, changed):
        if fa != fb:
            return [f"{at}: encoded as {fb}, was {fa}"]
    if ka == "scalar":
        return []
    problems = []
    if ka == "array":
        if len(pa) != len(pb):
            return [f"{at}: {len(pa)} elements became {len(pb)}"]
        for i, (x, y) in enumerate(zip(pa, pb)):
            problems += encoding_differences(x, y, changed, path + (i,))
        return problems
    in_b = {(type(k), k): (kf, n) for k, kf, n in pb}
    for key, key_format, sub in pa:
        if path + (key,) in changed:
            continue
        if (type(key), key) not in in_b:
            problems.append(f"{where(path + (key,))}: key lost")
            continue
        other_format, other = in_b[(type(key), key)]
        if other_format != key_format:
            problems.append(f"{where(path + (key,))}: key encoded as "
                            f"{other_format}, was {key_format}")
        problems += encoding_differences(sub, other, changed, path + (key,))
    return problems


def assert_archive(archive, want, before_bytes, changed=()):
    """ARCHIVE decodes to WANT, and keeps BEFORE_BYTES' encoding everywhere
    but at the CHANGED paths."""
    data = Path(archive).read_bytes()
    try:
        got = decode_bytes(data)
    except Exception as e:  # noqa: BLE001 - any decoding failure is the bug
        pytest.fail(f"archive no longer decodes: {e!r}", pytrace=False)
    problems = value_differences(got, want)
    if not problems:
        problems = encoding_differences(encoding_tree(before_bytes),
                                        encoding_tree(data), set(changed))
    if problems:
        pytest.fail(f"{len(problems)} unexpected difference(s) in the archive:\n  "
                    + "\n  ".join(problems[:30]), pytrace=False)
    assert_nothing_beside(archive)
    return data


def assert_only_change(archive, before_bytes, path, new_value):
    """ARCHIVE is BEFORE_BYTES with exactly the value at PATH changed."""
    want = expect_change(decode_bytes(before_bytes), path, new_value)
    return assert_archive(archive, want, before_bytes, {path})


def assert_untouched(archive, before_bytes, what):
    data = Path(archive).read_bytes()
    if data != before_bytes:
        diffs = value_differences(decode_bytes(data), decode_bytes(before_bytes))
        pytest.fail(f"{what}: the archive changed ({len(before_bytes)} -> "
                    f"{len(data)} bytes); decoded differences: {diffs[:10]}",
                    pytrace=False)
    assert_nothing_beside(archive)


# Widths: a number that fits the format it had keeps that format.

_INT_RANGES = {"fixint": (0, 127), "negfixint": (-32, -1), "uint8": (0, 255),
               "uint16": (0, 2**16 - 1), "uint32": (0, 2**32 - 1),
               "uint64": (0, 2**64 - 1), "int8": (-128, 127),
               "int16": (-2**15, 2**15 - 1), "int32": (-2**31, 2**31 - 1),
               "int64": (-2**63, 2**63 - 1)}
_STR_FORMATS = ("fixstr", "str8", "str16", "str32")


def format_problem(old_format, new_format, new_value):
    """Why NEW_FORMAT is wrong for NEW_VALUE replacing a value stored as
    OLD_FORMAT, or None."""
    if isinstance(new_value, bool):
        return None
    if isinstance(new_value, int) and old_format in _INT_RANGES:
        lo, hi = _INT_RANGES[old_format]
        if lo <= new_value <= hi and new_format != old_format:
            return f"{new_value} fits the original {old_format} but is stored as {new_format}"
        if new_format not in _INT_RANGES:
            return f"integer stored as {new_format}"
    if isinstance(new_value, float) and old_format in ("float32", "float64"):
        fits32 = math.isnan(new_value) or \
            struct.unpack("<f", struct.pack("<f", new_value))[0] == new_value
        if (old_format == "float64" or fits32) and new_format != old_format:
            return f"float {new_value!r} stored as {new_format}, was {old_format}"
    if isinstance(new_value, bytes) and old_format in _STR_FORMATS \
            and new_format not in _STR_FORMATS:
        return f"string stored as {new_format}, was {old_format}"
    return None


# --------------------------------------------------------------------------
# Helpers


def private_copy(tmp_path, name):
    """A copy of fixture NAME alone in its own folder, and its bytes."""
    folder = tmp_path / f"archive-{name.replace('/', '-')}"
    folder.mkdir(exist_ok=True)
    archive = folder / f"{Path(name).name}.mpk"
    shutil.copyfile(FIXTURES / f"{name}.mpk", archive)
    return archive, archive.read_bytes()


def assert_nothing_beside(archive):
    """No temporary file of a commit is left beside the archive."""
    others = sorted(p.name for p in Path(archive).parent.iterdir() if p != Path(archive))
    assert not others, f"left beside the archive: {others}"


def sh(command, cwd=None, shell="/bin/sh", env=None):
    res = subprocess.run(command, shell=True, executable=shell, cwd=cwd,
                         capture_output=True, timeout=30, env=env)
    assert res.returncode == 0, (f"{command!r} exited {res.returncode}; stderr: "
                                 f"{res.stderr.decode(errors='replace')}")
    return res


def q(path):
    return shlex.quote(str(path))


def npy_data_offset(path):
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        assert version == (1, 0), version
        np.lib.format.read_array_header_1_0(f)
        return f.tell()


def as_json(value):
    """A decoded value as the text file should show it (bytes as str)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return value


def assert_reads_as(path, value):
    text = Path(path).read_text()
    got = json.loads(text)
    assert text.endswith("\n") and json_same(got, as_json(value)), \
        f"{path} reads {text!r}, expected the JSON of {value!r}"


def close_error(action):
    """Run ACTION; the errno of the OSError it raised, or None."""
    try:
        action()
    except OSError as e:
        return e.errno
    return None


def errname(code):
    return errno.errorcode.get(code, code) if code else "no error"


def wait_for_change(archive, before_bytes, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if archive.read_bytes() != before_bytes:
            return True
        time.sleep(0.02)
    return False


def compact_array(template, arr):
    """The compact map TEMPLATE (its keys, in order) holding ARR."""
    out = {}
    for key in template:
        if key == b"type":
            out[key] = arr.dtype.str.encode()
        elif key == b"shape":
            out[key] = list(arr.shape)
        elif key == b"data":
            out[key] = arr.tobytes()
        else:
            out[key] = copy.deepcopy(template[key])
    return out


def encoded_array(old, arr):
    """ARR as the archive must hold it where OLD was: nested lists for a
    seed-style array, a compact map with the same keys for a compact one."""
    return compact_array(old, arr) if isinstance(old, dict) else arr.tolist()


def seed_leaf_formats(node):
    kind, fmt, payload = node
    if kind == "array":
        return set().union(*(seed_leaf_formats(n) for n in payload)) if payload else set()
    return {fmt}


# --------------------------------------------------------------------------
# Text files


TEXT_EDITS = [
    # fixture, file, how, content, archive path, new value
    ("mlp_seed", "params/max_iter", "sh", "echo 300 > {f}", (b"params", b"max_iter"), 300),
    ("mlp_compact", "params/max_iter", "bash", "echo 300 > {f}", (b"params", b"max_iter"), 300),
    ("mlp_seed", "params/max_iter", "sh", "echo 50 > {f}", (b"params", b"max_iter"), 50),
    ("mlp_seed", "params/activation", "sh", "echo tanh > {f}", (b"params", b"activation"), b"tanh"),
    ("mlp_compact", "params/activation", "bash", "echo tanh > {f}", (b"params", b"activation"), b"tanh"),
    ("mlp_compact", "params/alpha", "sh", "printf 0.5 > {f}", (b"params", b"alpha"), 0.5),
    ("mlp_seed", "params/alpha", "py", "2\n", (b"params", b"alpha"), 2.0),
    ("mlp_seed", "params/random_state", "py", "42\n", (b"params", b"random_state"), 42),
    ("mlp_seed", "params/solver", "py", '"sgd"\n', (b"params", b"solver"), b"sgd"),
    ("mlp_seed", "params/max_fun", "sh", "echo 100 > {f}", (b"params", b"max_fun"), 100),
    ("mlp_compact", "xtra/t_", "py", "300", (b"xtra", b"t_"), 300),
    ("mlp_seed", "params/tol", "sh", "echo NaN > {f}", (b"params", b"tol"), math.nan),
    ("mlp_seed", "params/shuffle", "sh", "echo false > {f}", (b"params", b"shuffle"), False),
    ("mlp_seed", "params/hidden_layer_sizes", "sh", "echo '[32, 16, 8]' > {f}",
     (b"params", b"hidden_layer_sizes"), [32, 16, 8]),
    ("logreg_seed", "params/n_jobs", "sh", "echo 4 > {f}", (b"params", b"n_jobs"), 4),
    ("logreg_compact", "params/class_weight/1", "sh", "echo 4 > {f}",
     (b"params", b"class_weight", 1), 4.0),
    ("edge_values", "params/u64max", "sh", "echo 5 > {f}", (b"params", b"u64max"), 5),
    ("edge_values", "params/i64min", "sh", "echo -1 > {f}", (b"params", b"i64min"), -1),
    ("edge_values", "params/text", "sh", "echo '  hello world  ' > {f}",
     (b"params", b"text"), b"hello world"),
    ("edge_values", "params/nan", "sh", "echo -Infinity > {f}", (b"params", b"nan"), -math.inf),
    ("edge_values", "params/tiny", "py", "1e-300\n", (b"params", b"tiny"), 1e-300),
    ("edge_values", "params/u64max", "sh", "echo -5 > {f}", (b"params", b"u64max"), -5),
    ("edge_values", "params/text", "py", "h\u00e9llo\n", (b"params", b"text"), "héllo".encode()),
    ("edge_values", "params/text", "py", '"a\\u00e9\\n\\"b"\n', (b"params", b"text"), b'a\xc3\xa9\n"b'),
    ("mlp_seed", "params/max_iter", "py", "42\r\n", (b"params", b"max_iter"), 42),
    ("mlp_seed", "class_name", "sh", "echo SGDClassifier > {f}", (b"class_name",), b"SGDClassifier"),
    ("mlp_seed", "params/max_iter", "r+", "45", (b"params", b"max_iter"), 45),
]


@pytest.mark.parametrize(
    "name,rel,how,content,path,value", TEXT_EDITS,
    ids=[f"{e[0]}-{e[1].split('/')[-1]}-{e[2]}-{e[3].strip()}" for e in TEXT_EDITS])
def test_text_edit(tmp_path, name, rel, how, content, path, value):
    archive, before = private_copy(tmp_path, name)
    with mounted(archive) as mnt:
        target = mnt / rel
        if how == "py":
            with open(target, "w") as f:
                f.write(content)
        elif how == "r+":  # overwrite the first bytes in place, no truncation
            with open(target, "r+") as f:
                f.write(content)
        else:
            sh(content.format(f=q(target)), shell="/bin/bash" if how == "bash" else "/bin/sh")
        assert_reads_as(target, value)
    after = assert_only_change(archive, before, path, value)
    old_format = node_at(encoding_tree(before), path)[1]
    new_format = node_at(encoding_tree(after), path)[1]
    problem = format_problem(old_format, new_format, value)
    assert problem is None, f"{where(path)}: {problem}"


@pytest.mark.parametrize("name", ["mlp_seed", "mlp_compact"])
def test_sed_i(tmp_path, name):
    archive, before = private_copy(tmp_path, name)
    with mounted(archive) as mnt:
        sh(f"sed -i 's/relu/tanh/' {q(mnt / 'params' / 'activation')}")
        assert_reads_as(mnt / "params" / "activation", b"tanh")
        leftovers = [n for n in os.listdir(mnt / "params") if n.startswith("sed")]
        assert not leftovers, f"sed's temporary file left behind: {leftovers}"
    after = assert_only_change(archive, before, (b"params", b"activation"), b"tanh")
    assert node_at(encoding_tree(after), (b"params", b"activation"))[1] in _STR_FORMATS


def vim_works(flag):
    res = subprocess.run(["vim", "-u", flag, "-N", "-es", "-c", "qa!"],
                         capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    return res.returncode == 0


@pytest.mark.skipif(not shutil.which("vim"), reason="vim is not installed")
@pytest.mark.parametrize("backupcopy", ["auto", "no", "yes"])
@pytest.mark.parametrize("vimrc", ["NONE", "DEFAULTS"])
@pytest.mark.parametrize("name", ["logreg_seed", "logreg_compact"])
def test_vim(tmp_path, name, vimrc, backupcopy):
    """vim saves in place (backupcopy=auto, yes) or by renaming the file to a
    backup and writing a new one (no): either way the value is replaced in
    place."""
    if not vim_works(vimrc):
        pytest.skip(f"vim -u {vimrc} is not supported")
    archive, before = private_copy(tmp_path, name)
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home))
    env.pop("VIMINIT", None)
    with mounted(archive) as mnt:
        target = mnt / "params" / "max_iter"
        res = subprocess.run(["vim", "-u", vimrc, "-N", "-es",
                              "-c", f"set backupcopy={backupcopy} writebackup",
                              "-c", "%s/100/250/", "-c", "wq", str(target)],
                             capture_output=True, timeout=30, env=env,
                             stdin=subprocess.DEVNULL)
        assert res.returncode == 0, (f"vim exited {res.returncode}: "
                                     f"{res.stdout.decode(errors='replace')}"
                                     f"{res.stderr.decode(errors='replace')}")
        assert_reads_as(target, 250)
        assert sorted(os.listdir(mnt / "params")) == sorted(
            k.decode() for k in decode_bytes(before)[b"params"]), \
            f"vim left files behind: {sorted(os.listdir(mnt / 'params'))}"
    assert_only_change(archive, before, (b"params", b"max_iter"), 250)


def _tmux(sock, *args, check=True):
    res = subprocess.run(["tmux", "-S", str(sock), *args], capture_output=True,
                         timeout=10)
    if check:
        assert res.returncode == 0, f"tmux {args}: {res.stderr.decode(errors='replace')}"
    return res


def _wait_screen(sock, text, seconds=5.0):
    deadline = time.monotonic() + seconds
    screen = ""
    while time.monotonic() < deadline:
        res = _tmux(sock, "capture-pane", "-p", "-t", "t", check=False)
        screen = res.stdout.decode(errors="replace")
        if text in screen:
            return screen
        time.sleep(0.05)
    pytest.fail(f"nano: {text!r} never appeared; screen:\n{screen}", pytrace=False)


@pytest.mark.skipif(not (shutil.which("nano") and shutil.which("tmux")),
                    reason="nano or tmux is not installed")
@pytest.mark.parametrize("name", ["logreg_seed", "logreg_compact"])
def test_nano(tmp_path, name):
    archive, before = private_copy(tmp_path, name)
    home = tmp_path / "home"
    home.mkdir()
    sockdir = Path(tempfile.mkdtemp(prefix="mpfs-tmux-"))
    sock = sockdir / "s"
    env = dict(os.environ, HOME=str(home), TERM="xterm")
    try:
        with mounted(archive) as mnt:
            target = mnt / "params" / "max_iter"
            subprocess.run(["tmux", "-S", str(sock), "-f", "/dev/null", "new-session",
                            "-d", "-s", "t", "-x", "80", "-y", "24",
                            f"nano {q(target)}"], check=True, env=env, timeout=10)
            _wait_screen(sock, "100")
            _tmux(sock, "send-keys", "-t", "t", "C-k")
            _tmux(sock, "send-keys", "-t", "t", "-l", "250")
            _tmux(sock, "send-keys", "-t", "t", "C-o")
            _wait_screen(sock, "File Name to Write")
            _tmux(sock, "send-keys", "-t", "t", "Enter")
            screen = _wait_screen(sock, "Wrote")
            _tmux(sock, "send-keys", "-t", "t", "C-x")
            deadline = time.monotonic() + 5
            while _tmux(sock, "has-session", "-t", "t", check=False).returncode == 0:
                assert time.monotonic() < deadline, f"nano did not exit:\n{screen}"
                time.sleep(0.05)
            assert_reads_as(target, 250)
    finally:
        _tmux(sock, "kill-server", check=False)
        shutil.rmtree(sockdir, ignore_errors=True)
    assert_only_change(archive, before, (b"params", b"max_iter"), 250)


# --------------------------------------------------------------------------
# Array files


@pytest.mark.parametrize("name", ["logreg_seed", "logreg_compact"])
@pytest.mark.parametrize("new", [
    pytest.param(lambda: np.arange(6, dtype="<f8").reshape(1, 6) / 7 - 0.3, id="same-shape"),
    pytest.param(lambda: np.linspace(-1, 1, 6).reshape(2, 3), id="other-shape"),
    pytest.param(lambda: np.arange(-4, 4, dtype="<i8").reshape(2, 4), id="int64"),
    pytest.param(lambda: np.array([0.5, -1.25, 3.0], dtype="<f4"), id="float32"),
])
def test_numpy_save_replaces_array(tmp_path, name, new):
    arr = new()
    archive, before = private_copy(tmp_path, name)
    path = (b"weights", b"coef_")
    old = decode_bytes(before)[b"weights"][b"coef_"]
    with mounted(archive) as mnt:
        target = mnt / "weights" / "coef_.npy"
        np.save(target, arr)
        back = np.load(target)
        assert back.dtype == arr.dtype and back.shape == arr.shape and \
            np.array_equal(back, arr), f"reads back {back!r}, expected {arr!r}"
        assert os.getxattr(target, "user.mpfs.encoding").decode() == \
            ("compact" if isinstance(old, dict) else "nested")
    want = expect_change(decode_bytes(before), path, encoded_array(old, arr))
    changed = {path + (k,) for k in (b"type", b"shape", b"data")} \
        if isinstance(old, dict) else {path}
    after = assert_archive(archive, want, before, changed)
    if not isinstance(old, dict):
        leaves = seed_leaf_formats(node_at(encoding_tree(after), path))
        if arr.dtype.kind == "f":
            want_fmt = "float32" if arr.dtype.itemsize == 4 else "float64"
            assert leaves == {want_fmt}, f"{arr.dtype} elements stored as {leaves}"
        else:
            assert leaves <= set(_INT_RANGES), f"int elements stored as {leaves}"


def test_numpy_save_into_list_of_arrays(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_compact")
    arr = np.full((16, 8), 0.25)
    with mounted(archive) as mnt:
        np.save(mnt / "weights" / "coefs_" / "1.npy", arr)
    path = (b"weights", b"coefs_", 1)
    old = decode_bytes(before)[b"weights"][b"coefs_"][1]
    want = expect_change(decode_bytes(before), path, compact_array(old, arr))
    assert_archive(archive, want, before, {path + (b"data",)})


@pytest.mark.parametrize("name", ["logreg_seed", "logreg_compact"])
def test_memmap_r_plus_changes_one_element(tmp_path, name):
    archive, before = private_copy(tmp_path, name)
    old = decode_bytes(before)[b"weights"][b"coef_"]
    with mounted(archive) as mnt:
        target = mnt / "weights" / "coef_.npy"
        offset = npy_data_offset(target)
        m = np.memmap(target, mode="r+", offset=offset, dtype="<f8", shape=(1, 6))
        m[0, 3] = 7.25
        m.flush()
        del m
        committed_while_mounted = wait_for_change(archive, before)
        assert np.load(target)[0, 3] == 7.25
    arr = (np.array(old, dtype="<f8") if not isinstance(old, dict)
           else np.frombuffer(old[b"data"], dtype="<f8").reshape(1, 6)).copy()
    arr[0, 3] = 7.25
    if isinstance(old, dict):
        want = expect_change(decode_bytes(before), (b"weights", b"coef_", b"data"),
                             arr.tobytes())
        changed = {(b"weights", b"coef_", b"data")}
    else:
        want = expect_change(decode_bytes(before), (b"weights", b"coef_", 0, 3), 7.25)
        changed = {(b"weights", b"coef_", 0, 3)}
    assert_archive(archive, want, before, changed)
    assert committed_while_mounted, \
        "memmap write reached the archive only at unmount, not at release"


@pytest.mark.parametrize("name", ["logreg_seed", "logreg_compact"])
def test_dd_conv_notrunc_changes_first_element(tmp_path, name):
    archive, before = private_copy(tmp_path, name)
    src = tmp_path / "eight"
    src.write_bytes(struct.pack("<d", -1.5))
    old = decode_bytes(before)[b"weights"][b"coef_"]
    with mounted(archive) as mnt:
        target = mnt / "weights" / "coef_.npy"
        offset = npy_data_offset(target)
        sh(f"dd if={q(src)} of={q(target)} bs=1 seek={offset} conv=notrunc status=none")
        assert np.load(target)[0, 0] == -1.5
    if isinstance(old, dict):
        data = struct.pack("<d", -1.5) + old[b"data"][8:]
        path = (b"weights", b"coef_", b"data")
        assert_only_change(archive, before, path, data)
    else:
        assert_only_change(archive, before, (b"weights", b"coef_", 0, 0), -1.5)


@pytest.mark.parametrize("name", ["logreg_seed", "logreg_compact"])
def test_raw_bin_exact_size_write(tmp_path, name):
    archive, before = private_copy(tmp_path, name)
    old = decode_bytes(before)[b"weights"][b"coef_"]
    arr = np.arange(6, dtype="<f8").reshape(1, 6) * 1.5
    with mounted(archive, "-o", "raw") as mnt:
        target = mnt / "weights" / "coef_.bin"
        with open(target, "wb") as f:
            f.write(arr.tobytes())
        assert target.read_bytes() == arr.tobytes()
    want = expect_change(decode_bytes(before), (b"weights", b"coef_"),
                         encoded_array(old, arr))
    changed = {(b"weights", b"coef_", b"data")} if isinstance(old, dict) \
        else {(b"weights", b"coef_")}
    assert_archive(archive, want, before, changed)


@pytest.mark.parametrize("name", ["logreg_seed", "logreg_compact"])
def test_raw_bin_wrong_size_is_refused(tmp_path, name):
    archive, before = private_copy(tmp_path, name)
    with mounted(archive, "-o", "raw") as mnt:
        target = mnt / "weights" / "coef_.bin"
        shown = target.read_bytes()
        assert len(shown) == 48

        def write():
            with open(target, "wb") as f:
                f.write(b"\x01" * 40)
        code = close_error(write)
        assert code == EINVAL, f"40 bytes into a 48-byte .bin: {errname(code)}, expected EINVAL"
        assert target.read_bytes() == shown, "the file does not read back as the archive holds it"
    assert_untouched(archive, before, "refused .bin write")


# --------------------------------------------------------------------------
# Refused edits


def _npy_bytes(arr):
    path = Path(tempfile.mkdtemp(prefix="mpfs-npy-")) / "a.npy"
    np.save(path, arr)
    data = path.read_bytes()
    shutil.rmtree(path.parent)
    return data


REFUSALS = [
    ("mlp_seed", "params/alpha", b"abc\n"),
    ("mlp_compact", "params/alpha", b"abc"),
    ("mlp_compact", "params/max_iter", b"abc\n"),
    ("mlp_seed", "params/max_iter", b"1 2\n"),
    ("logreg_seed", "params/class_weight/0", b"[1,\n"),
    ("logreg_compact", "weights/coef_.npy",
     b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1, 6"
     + b" " * 40 + b"\n" + b"\0" * 48),
    ("logreg_seed", "weights/coef_.npy", b"\x93NUMPX\x01\x00garbage" + b"\0" * 100),
    ("logreg_compact", "weights/coef_.npy", b"hello\n"),
    ("logreg_seed", "weights/coef_.npy", "truncated-data"),
    ("logreg_compact", "weights/coef_.npy", "trailing-data"),
]


@pytest.mark.parametrize("name,rel,content", REFUSALS,
                         ids=[f"{n}-{r.replace('/', '.')}-{i}" for i, (n, r, _) in
                              enumerate(REFUSALS)])
def test_bad_content_is_refused(tmp_path, name, rel, content):
    if content == "truncated-data":
        content = _npy_bytes(np.zeros((1, 6)))[:-8]
    elif content == "trailing-data":
        content = _npy_bytes(np.zeros((1, 6))) + b"\0" * 8
    archive, before = private_copy(tmp_path, name)
    with mounted(archive) as mnt:
        target = mnt / rel
        shown = target.read_bytes()

        def write():
            with open(target, "wb") as f:
                f.write(content)
        code = close_error(write)
        assert code == EINVAL, f"{content[:40]!r} into {rel}: close gave {errname(code)}, expected EINVAL"
        back = target.read_bytes()
        assert back == shown, (f"after the refusal {rel} reads {back[:60]!r}, "
                               f"expected what the archive holds: {shown[:60]!r}")
        assert os.stat(target).st_size == len(shown)
    assert_untouched(archive, before, f"refused write to {rel}")


# --------------------------------------------------------------------------
# New files, directories, renames, removals


def test_cp_json_file_adds_key_at_end(tmp_path):
    for name in ("mlp_seed", "logreg_compact"):
        archive, before = private_copy(tmp_path, name)
        src = tmp_path / "value.json"
        src.write_text('[1, 2.5, "x", null, true]\n')
        with mounted(archive) as mnt:
            sh(f"cp {q(src)} {q(mnt / 'params' / 'newkey')}")
            assert_reads_as(mnt / "params" / "newkey", [1, 2.5, b"x", None, True])
        path = (b"params", b"newkey")
        after = assert_only_change(archive, before, path, [1, 2.5, b"x", None, True])
        params = node_at(encoding_tree(after), (b"params",))[2]
        key_format = [kf for k, kf, _ in params if k == b"newkey"][0]
        assert key_format in _STR_FORMATS, f"new key stored as {key_format}"
        string = node_at(encoding_tree(after), path + (2,))[1]
        assert string in _STR_FORMATS, f"new string stored as {string}"


@pytest.mark.skipif(not shutil.which("rsync"), reason="rsync is not installed")
def test_rsync_a_into_new_directory(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_seed")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_text("1\n")
    (src / "b").write_text('"hello"\n')
    (src / "sub" / "c").write_text("[1, 2]\n")
    with mounted(archive) as mnt:
        os.mkdir(mnt / "xtra" / "newdir")
        res = subprocess.run(["rsync", "-a", f"{src}/", f"{mnt}/xtra/newdir/"],
                             capture_output=True, timeout=30)
        assert res.returncode == 0 and not res.stderr, \
            f"rsync exited {res.returncode}: {res.stderr.decode(errors='replace')}"
        assert sorted(os.listdir(mnt / "xtra" / "newdir")) == ["a", "b", "sub"]
        assert_reads_as(mnt / "xtra" / "newdir" / "sub" / "c", [1, 2])
    got = decode(archive)
    newdir = got[b"xtra"].get(b"newdir")
    assert isinstance(newdir, dict), f"xtra/newdir is {short(newdir)}"
    # rsync creates sub/ and the files from different processes: any order.
    want_dir = {b"a": 1, b"b": b"hello", b"sub": {b"c": [1, 2]}}
    assert value_differences(dict(sorted(newdir.items())), want_dir) == [], \
        f"xtra/newdir holds {newdir!r}"
    want = expect_change(decode_bytes(before), (b"xtra", b"newdir"), newdir)
    assert_archive(archive, want, before, {(b"xtra", b"newdir")})


RENAMES = [
    ("mlp_seed", "params/tol", "params/tolerance"),
    ("logreg_compact", "weights/coef_.npy", "weights/coef2_.npy"),
    ("logreg_seed", "params/class_weight", "params/cw"),
]


@pytest.mark.parametrize("name,old,new", RENAMES)
def test_mv_within_directory_keeps_position(tmp_path, name, old, new):
    archive, before = private_copy(tmp_path, name)
    with mounted(archive) as mnt:
        sh(f"mv {q(mnt / old)} {q(mnt / new)}")
        assert not (mnt / old).exists() and (mnt / new).exists()
    dir_key = old.split("/")[0].encode()
    old_key = Path(old).name.removesuffix(".npy").encode()
    new_key = Path(new).name.removesuffix(".npy").encode()
    want = expect_rename(decode_bytes(before), (dir_key,), old_key, new_key)
    after = assert_archive(archive, want, before,
                           {(dir_key, old_key), (dir_key, new_key)})
    assert node_at(encoding_tree(after), (dir_key, new_key)) == \
        node_at(encoding_tree(before), (dir_key, old_key)), "the moved value was re-encoded"


MOVES = [
    ("mlp_seed", "params/verbose", "xtra/verbose"),
    ("mlp_compact", "params/activation", "xtra/act"),
    ("logreg_seed", "params/class_weight", "xtra/cw"),
]


@pytest.mark.parametrize("name,old,new", MOVES)
def test_mv_across_directories(tmp_path, name, old, new):
    archive, before = private_copy(tmp_path, name)
    with mounted(archive) as mnt:
        sh(f"mv {q(mnt / old)} {q(mnt / new)}")
        assert not (mnt / old).exists() and (mnt / new).exists()
    src = tuple(p.encode() for p in old.split("/"))
    dst = tuple(p.encode() for p in new.split("/"))
    original = decode_bytes(before)
    want = expect_change(expect_change(original, src, DELETE), dst, _parent(original, src)[src[-1]])
    after = assert_archive(archive, want, before, {src, dst})
    assert node_at(encoding_tree(after), dst) == node_at(encoding_tree(before), src), \
        "the moved value was re-encoded"


RMS = [
    ("mlp_seed", "params/verbose"),
    ("logreg_compact", "weights/intercept_.npy"),
    ("edge_values", "blob"),
    ("logreg_seed", "params/class_weight"),
    ("mlp_compact", "xtra"),
]


@pytest.mark.parametrize("name,rel", RMS)
def test_rm_deletes_key(tmp_path, name, rel):
    archive, before = private_copy(tmp_path, name)
    with mounted(archive) as mnt:
        sh(f"rm -r {q(mnt / rel)}")
        assert not (mnt / rel).exists()
    path = tuple(p.removesuffix(".npy").encode() for p in rel.split("/"))
    assert_only_change(archive, before, path, DELETE)


def test_mkdir_adds_empty_map(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_compact")
    with mounted(archive) as mnt:
        os.mkdir(mnt / "xtra" / "d")
        assert os.listdir(mnt / "xtra" / "d") == []
    assert_only_change(archive, before, (b"xtra", b"d"), {})


def test_rmdir_removes_it_again(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_seed")
    with mounted(archive) as mnt:
        os.mkdir(mnt / "xtra" / "d")
        code = close_error(lambda: os.rmdir(mnt / "params"))
        assert code == errno.ENOTEMPTY, f"rmdir of a full directory: {errname(code)}"
        os.rmdir(mnt / "xtra" / "d")
        assert not (mnt / "xtra" / "d").exists()
    assert_archive(archive, decode_bytes(before), before)


# --------------------------------------------------------------------------
# Scratch files


SCRATCH = [".hidden", "max_iter~", "#max_iter#", "x.swp", "x.swx", "x.swpx",
           "x.tmp", "4913", "sedAb12x9", ".max_iter.swp"]


def test_scratch_files_never_reach_the_archive(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_seed")
    with mounted(archive) as mnt:
        params = mnt / "params"
        for name in SCRATCH:
            with open(params / name, "w") as f:
                f.write("5\n")
        (params / "empty_new").touch()  # pending until it holds valid content
        listed = set(os.listdir(params))
        missing = [n for n in SCRATCH + ["empty_new"] if n not in listed]
        assert not missing, f"scratch files not listed while mounted: {missing}"
        wrong = {n: (params / n).read_bytes() for n in SCRATCH
                 if (params / n).read_bytes() != b"5\n"}
        assert not wrong, f"scratch files read back wrong: {wrong}"
        assert os.stat(params / "empty_new").st_size == 0
        os.unlink(params / "x.tmp")
        assert "x.tmp" not in os.listdir(params)
    assert_untouched(archive, before, "scratch files only")


def test_sed_lookalike_with_five_chars_is_a_real_key(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_seed")
    with mounted(archive) as mnt:
        with open(mnt / "params" / "sedAbc12", "w") as f:
            f.write("5\n")
    assert_only_change(archive, before, (b"params", b"sedAbc12"), 5)


def test_rename_scratch_onto_real_name_commits(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_compact")
    with mounted(archive) as mnt:
        params = mnt / "params"
        with open(params / "sedQ1w2E3", "w") as f:
            f.write("77\n")
        os.rename(params / "sedQ1w2E3", params / "max_iter")
        assert_reads_as(params / "max_iter", 77)
        with open(params / ".newkey.tmp", "w") as f:
            f.write('"fresh"\n')
        os.rename(params / ".newkey.tmp", params / "newkey")
        assert_reads_as(params / "newkey", b"fresh")
        assert "sedQ1w2E3" not in os.listdir(params)
    want = expect_change(expect_change(decode_bytes(before), (b"params", b"max_iter"), 77),
                         (b"params", b"newkey"), b"fresh")
    assert_archive(archive, want, before, {(b"params", b"max_iter"), (b"params", b"newkey")})


# --------------------------------------------------------------------------
# Other writers, read-only mounts, no-op sessions, remounting


@pytest.mark.parametrize("how", ["os.replace", "in-place"])
def test_second_writer_is_not_overwritten(tmp_path, how):
    archive, before = private_copy(tmp_path, "mlp_compact")
    marker = b"\xa8max_iter\x1e"          # max_iter: 30 (fixint)
    assert before.count(marker) == 1
    theirs = before.replace(marker, b"\xa8max_iter\x1f")  # their edit: 31
    with mounted(archive) as mnt:
        assert_reads_as(mnt / "params" / "max_iter", 30)
        time.sleep(0.01)  # their file gets a later mtime
        if how == "os.replace":
            other = tmp_path / "other.tmp"
            other.write_bytes(theirs)
            os.replace(other, archive)
        else:
            with open(archive, "r+b") as f:
                f.write(theirs)

        def edit():
            with open(mnt / "params" / "alpha", "w") as f:
                f.write("0.5\n")
        code = close_error(edit)
        assert archive.read_bytes() == theirs, "the other writer's version was overwritten"
        assert code == errno.ESTALE, f"edit after a foreign change: {errname(code)}, expected ESTALE"
    assert archive.read_bytes() == theirs, "the other writer's version was overwritten at unmount"
    assert_nothing_beside(archive)


def test_ro_mount_gives_erofs(tmp_path):
    archive, before = private_copy(tmp_path, "logreg_compact")
    with mounted(archive, "-o", "ro") as mnt:
        target = mnt / "params" / "max_iter"
        attempts = {
            "open w": lambda: open(target, "w").close(),
            "numpy.save": lambda: np.save(mnt / "weights" / "coef_.npy", np.zeros((1, 6))),
            "memmap r+": lambda: np.memmap(mnt / "weights" / "coef_.npy", mode="r+"),
            "mkdir": lambda: os.mkdir(mnt / "xtra" / "d"),
            "cp": lambda: shutil.copyfile(archive, mnt / "params" / "x"),
        }
        wrong = {k: errname(close_error(a)) for k, a in attempts.items()}
        wrong = {k: v for k, v in wrong.items() if v != "EROFS"}
        assert not wrong, f"-o ro: expected EROFS, got {wrong}"
        res = subprocess.run(f"echo 5 > {q(target)}", shell=True, capture_output=True)
        assert res.returncode != 0 and b"Read-only" in res.stderr, res
        assert_reads_as(target, 100)
    assert_untouched(archive, before, "-o ro")


@pytest.mark.parametrize("name", GOOD_ARCHIVES)
def test_reading_everything_changes_nothing(tmp_path, name):
    archive, before = private_copy(tmp_path, name)
    st_before = os.stat(archive)
    with mounted(archive) as mnt:
        dirs, files = walk(mnt)
        for rel in files:
            (mnt / rel).read_bytes()
            for attr in os.listxattr(mnt / rel):
                os.getxattr(mnt / rel, attr)
            if rel.suffix == ".pickle":  # pickled object arrays are never written
                with pytest.raises(PermissionError):
                    open(mnt / rel, "r+b")
                continue
            with open(mnt / rel, "r+b") as f:  # opened for writing, nothing written
                f.read(3)
        for rel in [f for f in files if f.suffix != ".pickle"][:5]:
            mode = stat.S_IMODE(os.stat(mnt / rel).st_mode)
            os.chmod(mnt / rel, mode)
            os.utime(mnt / rel)
            with open(mnt / rel, "r+b") as f:
                os.fsync(f.fileno())
    assert_untouched(archive, before, "reading only")
    st_after = os.stat(archive)
    assert (st_after.st_ino, st_after.st_mtime_ns) == (st_before.st_ino, st_before.st_mtime_ns), \
        "the archive was rewritten although nothing changed"


@pytest.mark.parametrize("name", ["mlp_seed", "mlp_compact"])
def test_many_edits_then_remount(tmp_path, name):
    archive, before = private_copy(tmp_path, name)
    arr = np.linspace(0, 1, 16 * 8).reshape(16, 8)
    src = tmp_path / "v.json"
    src.write_text("[3, 4]\n")
    with mounted(archive) as mnt:
        sh(f"echo 55 > {q(mnt / 'params' / 'max_iter')}")
        sh(f"echo logistic > {q(mnt / 'params' / 'activation')}")
        np.save(mnt / "weights" / "coefs_" / "1.npy", arr)
        os.unlink(mnt / "params" / "verbose")
        os.mkdir(mnt / "xtra" / "newd")
        sh(f"cp {q(src)} {q(mnt / 'params' / 'newkey')}")
        os.rename(mnt / "params" / "tol", mnt / "params" / "tolerance")
    original = decode_bytes(before)
    old = original[b"weights"][b"coefs_"][1]
    want = expect_change(original, (b"params", b"max_iter"), 55)
    want = expect_change(want, (b"params", b"activation"), b"logistic")
    want = expect_change(want, (b"weights", b"coefs_", 1), encoded_array(old, arr))
    want = expect_change(want, (b"params", b"verbose"), DELETE)
    want = expect_change(want, (b"xtra", b"newd"), {})
    want = expect_change(want, (b"params", b"newkey"), [3, 4])
    want = expect_rename(want, (b"params",), b"tol", b"tolerance")
    changed = {(b"params", b"max_iter"), (b"params", b"activation"),
               (b"weights", b"coefs_", 1), (b"params", b"verbose"), (b"xtra", b"newd"),
               (b"params", b"newkey"), (b"params", b"tol"), (b"params", b"tolerance")}
    after = assert_archive(archive, want, before, changed)
    with mounted(archive) as mnt:
        assert_reads_as(mnt / "params" / "max_iter", 55)
        assert_reads_as(mnt / "params" / "activation", b"logistic")
        assert_reads_as(mnt / "params" / "newkey", [3, 4])
        assert_reads_as(mnt / "params" / "tolerance", 0.0001)
        assert not (mnt / "params" / "verbose").exists()
        assert not (mnt / "params" / "tol").exists()
        assert (mnt / "xtra" / "newd").is_dir() and os.listdir(mnt / "xtra" / "newd") == []
        back = np.load(mnt / "weights" / "coefs_" / "1.npy")
        assert back.dtype == np.float64 and np.array_equal(back, arr)
    assert archive.read_bytes() == after, "remounting and reading changed the archive"


# --------------------------------------------------------------------------
# More writing paths: fsync, truncation, appends, bin values, retries, threads


def test_fsync_commits_before_close(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_seed")
    with mounted(archive) as mnt:
        fd = os.open(mnt / "params" / "max_iter", os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"77\n")
            os.fsync(fd)
            at_fsync = decode(archive)[b"params"][b"max_iter"]
        finally:
            os.close(fd)
    assert at_fsync == 77, f"after fsync the archive holds max_iter {at_fsync}"
    assert_only_change(archive, before, (b"params", b"max_iter"), 77)


def test_file_left_empty_keeps_value(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_compact")
    with mounted(archive) as mnt:
        target = mnt / "params" / "max_iter"
        os.truncate(target, 0)
        open(target, "w").close()
        sh(f": > {q(target)}")
        os.truncate(mnt / "weights" / "coefs_" / "2.npy", 0)
        assert_reads_as(target, 30)
        assert np.load(mnt / "weights" / "coefs_" / "2.npy").shape == (8, 3)
    assert_untouched(archive, before, "files truncated to nothing")


def test_append_making_bad_json_is_refused(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_seed")
    with mounted(archive) as mnt:
        target = mnt / "params" / "max_iter"

        def append():
            with open(target, "a") as f:
                f.write("5\n")
        code = close_error(append)
        assert code == EINVAL, f"'30\\n5\\n' into max_iter: {errname(code)}, expected EINVAL"
        sh(f"echo 5 >> {q(target)}")  # bash ignores the close error
        assert target.read_bytes() == b"30\n"
    assert_untouched(archive, before, "appending a second value")


def test_refusal_then_good_edit(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_seed")
    with mounted(archive) as mnt:
        target = mnt / "params" / "alpha"

        def bad():
            with open(target, "w") as f:
                f.write("abc\n")
        assert close_error(bad) == EINVAL
        with open(target, "w") as f:
            f.write("0.25\n")
        assert_reads_as(target, 0.25)
    assert_only_change(archive, before, (b"params", b"alpha"), 0.25)


def test_bin_value_stays_bin(tmp_path):
    archive, before = private_copy(tmp_path, "edge_values")
    with mounted(archive) as mnt:
        (mnt / "blob").write_bytes(b"\x00\xffnew bytes")
        assert (mnt / "blob").read_bytes() == b"\x00\xffnew bytes"
    after = assert_only_change(archive, before, (b"blob",), b"\x00\xffnew bytes")
    fmt = node_at(encoding_tree(after), (b"blob",))[1]
    assert fmt.startswith("bin"), f"a bin value rewritten as {fmt}"


@pytest.mark.parametrize("name", ["logreg_seed", "logreg_compact"])
@pytest.mark.parametrize("new", [
    pytest.param(lambda: np.arange(6.0).reshape(3, 2).T, id="fortran-order"),
    pytest.param(lambda: np.array([["abc"] * 6]), id="unicode"),
    pytest.param(lambda: np.zeros((1, 6), dtype=[("a", "<i4")]), id="structured"),
])
def test_numpy_save_is_stored_or_visibly_refused(tmp_path, name, new):
    """numpy.save writes the data through a dup()ed descriptor and ignores
    the error of its close: a refusal must also reach the final close, or
    numpy.save reports success for data that was thrown away."""
    arr = new()
    archive, before = private_copy(tmp_path, name)
    old = decode_bytes(before)[b"weights"][b"coef_"]
    with mounted(archive) as mnt:
        target = mnt / "weights" / "coef_.npy"
        code = close_error(lambda: np.save(target, arr))
        back = np.load(target)
    if code is None:
        stored = back.dtype == arr.dtype and back.shape == arr.shape and np.array_equal(back, arr)
        assert stored, (f"numpy.save of a {arr.dtype} {arr.shape} array "
                        f"(fortran order: {not arr.flags.c_contiguous}) reported success, "
                        f"but the file reads back a {back.dtype} {back.shape} array and "
                        f"the archive {'changed' if archive.read_bytes() != before else 'is unchanged'}")
        want = expect_change(decode_bytes(before), (b"weights", b"coef_"),
                             encoded_array(old, np.ascontiguousarray(arr)))
        assert value_differences(decode(archive), want) == []
    else:
        assert code == EINVAL, f"numpy.save raised {errname(code)}, expected EINVAL"
        assert_untouched(archive, before, "refused numpy.save")


def test_concurrent_writers_and_reader(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_compact")
    original = decode_bytes(before)
    problems = []
    with mounted(archive) as mnt:
        want_coef = np.load(mnt / "weights" / "coefs_" / "0.npy")
        stop = threading.Event()

        def writer(rel, start):
            for v in range(start, start + 60):
                try:
                    with open(mnt / rel, "w") as f:
                        f.write(f"{v}\n")
                except OSError as e:
                    problems.append(f"{rel} <- {v}: {e!r}")

        def reader():
            while not stop.is_set():
                got = np.load(mnt / "weights" / "coefs_" / "0.npy")
                if not np.array_equal(got, want_coef):
                    problems.append("coefs_/0.npy read differently during commits")
                    return

        threads = [threading.Thread(target=writer, args=("params/max_iter", 1000)),
                   threading.Thread(target=writer, args=("params/random_state", 5000))]
        r = threading.Thread(target=reader)
        r.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        r.join()
    assert not problems, problems[:5]
    want = expect_change(expect_change(original, (b"params", b"max_iter"), 1059),
                         (b"params", b"random_state"), 5059)
    assert_archive(archive, want, before,
                   {(b"params", b"max_iter"), (b"params", b"random_state")})


# --------------------------------------------------------------------------
# Crash safety


def _start_daemon(archive):
    mnt = Path(tempfile.mkdtemp(prefix="mpfs-crash-"))
    errlog = tempfile.TemporaryFile()
    proc = subprocess.Popen([str(MPFS_BIN), "-f", str(archive), str(mnt)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=errlog)
    deadline = time.monotonic() + TIMEOUT
    while not os.path.ismount(mnt):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            errlog.seek(0)
            force_unmount(mnt)
            pytest.fail(f"mpfs did not mount {archive}: "
                        f"{errlog.read().decode(errors='replace')}", pytrace=False)
        time.sleep(0.01)
    return mnt, proc, errlog


def test_kill9_during_commits_leaves_a_valid_archive(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_compact")
    original = decode_bytes(before)
    path = (b"params", b"max_iter")
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    commits, cycles, value, last_ok = 0, 0, 1000, 30
    deadline = time.monotonic() + 40
    while commits < 200:
        assert time.monotonic() < deadline, \
            f"only {commits} commits in {cycles} cycles within 40 s (seed {seed})"
        cycles += 1
        mnt, proc, errlog = _start_daemon(archive)
        kill_after = rng.randint(20, 40)
        done_here = [0]
        stop = threading.Event()

        def killer():
            while done_here[0] < kill_after and not stop.is_set():
                time.sleep(0.0005)
            time.sleep(rng.uniform(0, 0.004))
            proc.send_signal(signal.SIGKILL)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        inflight = None
        try:
            target = os.path.join(mnt, "params", "max_iter")
            while True:
                value += 1
                try:
                    fd = os.open(target, os.O_WRONLY | os.O_TRUNC)
                    try:
                        os.write(fd, b"%d\n" % value)
                    finally:
                        os.close(fd)
                except OSError as e:
                    if proc.poll() is None and e.errno not in (errno.ENOTCONN,
                                                               errno.ECONNABORTED):
                        # the daemon may be dying right now; give it a moment
                        time.sleep(0.05)
                        if proc.poll() is None:
                            stop.set()
                            proc.kill()
                            pytest.fail(f"commit of {value} failed with a live "
                                        f"daemon: {e!r}", pytrace=False)
                    inflight = value
                    break
                last_ok = value
                commits += 1
                done_here[0] += 1
        finally:
            stop.set()
            thread.join()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
            force_unmount(mnt)
            try:
                os.rmdir(mnt)
            except OSError:
                pass
        errlog.seek(0)
        report = sanitizer_report(errlog.read().decode(errors="replace"))
        errlog.close()
        assert report is None, f"sanitizer report before the kill: {report}"
        data = archive.read_bytes()
        try:
            got = decode_bytes(data)
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"cycle {cycles} (seed {seed}): archive broken after kill -9 "
                        f"({len(data)} bytes): {e!r}", pytrace=False)
        allowed = {last_ok, inflight}
        assert got[b"params"][b"max_iter"] in allowed, (
            f"cycle {cycles} (seed {seed}): max_iter {got[b'params'][b'max_iter']}, "
            f"expected the last acknowledged {last_ok} or the one in flight {inflight}")
        problems = value_differences(got, expect_change(original, path, got[b"params"][b"max_iter"]))
        assert not problems, f"cycle {cycles}: {problems}"
    with mounted(archive) as mnt:
        assert_reads_as(mnt / "params" / "max_iter", decode(archive)[b"params"][b"max_iter"])
    # Temporary files of killed commits are removed by the next mount.
    leftovers = sorted(p.name for p in archive.parent.iterdir()
                       if p.name != archive.name)
    assert not leftovers, f"left beside the archive: {leftovers}"
    print(f"{commits} commits over {cycles} kill -9 cycles (seed {seed})")


def test_mount_removes_temporary_files_of_killed_commits(tmp_path):
    archive, before = private_copy(tmp_path, "logreg_seed")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = archive.parent / f".{archive.name}.mpfs-{dead.pid}-abc123"
    live = archive.parent / f".{archive.name}.mpfs-{os.getpid()}-abc123"
    other = archive.parent / ".unrelated.mpfs-1-abc123"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    with mounted(archive):
        pass
    assert not stale.exists(), "a dead mpfs's temporary file was kept"
    assert live.exists(), "a running process's temporary file was removed"
    assert other.exists(), "a file of another archive was removed"
    assert archive.read_bytes() == before


@pytest.mark.parametrize("name", ["mlp_seed", "mlp_compact"])
def test_numpy_save_of_fortran_order_array_is_stored_in_c_order(tmp_path, name):
    archive, _ = private_copy(tmp_path, name)
    rel = "weights/coefs_/0.npy"
    with mounted(archive) as mnt:
        shape = np.load(mnt / rel).shape
        new = np.asfortranarray(np.arange(np.prod(shape), dtype="<f8").reshape(shape) / 7)
        assert not new.flags.c_contiguous
        np.save(mnt / rel, new)
        assert np.array_equal(np.load(mnt / rel), new)
    stored = decode(archive)[b"weights"][b"coefs_"][0]
    if name.endswith("seed"):
        assert stored == new.tolist()
    else:
        assert stored[b"data"] == np.ascontiguousarray(new).tobytes()
        assert list(stored[b"shape"]) == list(shape)
    with mounted(archive) as mnt:
        assert np.array_equal(np.load(mnt / rel), new)


def test_backup_rename_save_keeps_key_in_place(tmp_path):
    """Emacs (and vim with backupcopy=no) save by renaming the file to a
    backup name, writing a new file and removing the backup: the key keeps
    its place in the map."""
    archive, before = private_copy(tmp_path, "logreg_seed")
    with mounted(archive) as mnt:
        f = mnt / "params" / "max_iter"
        os.rename(f, mnt / "params" / "max_iter~")
        assert "max_iter" not in os.listdir(mnt / "params")
        assert decode(archive) == decode_bytes(before), "committed before the new file"
        f.write_text("250\n")
        os.unlink(mnt / "params" / "max_iter~")
        assert f.read_text() == "250\n"
    assert_only_change(archive, before, (b"params", b"max_iter"), 250)


def test_rename_to_scratch_and_back_writes_nothing(tmp_path):
    archive, before = private_copy(tmp_path, "mlp_seed")
    with mounted(archive) as mnt:
        os.rename(mnt / "params" / "alpha", mnt / "params" / ".alpha.bak")
        os.rename(mnt / "params" / ".alpha.bak", mnt / "params" / "alpha")
        assert (mnt / "params" / "alpha").read_text() == "0.0001\n"
    assert archive.read_bytes() == before


def test_file_moved_to_a_scratch_name_is_removed_at_unmount(tmp_path):
    archive, before = private_copy(tmp_path, "logreg_seed")
    with mounted(archive) as mnt:
        os.rename(mnt / "params" / "tol", mnt / "params" / ".tol")
        assert not (mnt / "params" / "tol").exists()
        assert (mnt / "params" / ".tol").read_text() == "0.0001\n"
    want = decode_bytes(before)
    del want[b"params"][b"tol"]
    assert decode(archive) == want


def test_file_moved_to_a_scratch_name_goes_with_the_next_commit(tmp_path):
    archive, before = private_copy(tmp_path, "logreg_seed")
    with mounted(archive) as mnt:
        os.rename(mnt / "params" / "tol", mnt / "params" / "tol.tmp")
        assert decode(archive) == decode_bytes(before), "nothing is written by the rename"
        (mnt / "params" / "max_iter").write_text("7\n")
        want = decode_bytes(before)
        del want[b"params"][b"tol"]
        want[b"params"][b"max_iter"] = 7
        assert decode(archive) == want
        assert (mnt / "params" / "tol.tmp").read_text() == "0.0001\n"
    assert decode(archive) == want


def test_size_and_content_right_after_close(tmp_path):
    """What is read after a commit is the archive's rendering ("1234\\n"),
    never what the writer left in the page cache or in its buffer ("1234"):
    the size and the bytes agree at once, every time."""
    archive, _ = private_copy(tmp_path, "logreg_seed")
    with mounted(archive) as mnt:
        p = mnt / "params" / "max_iter"
        for v in range(1000, 1200):
            with open(p, "w") as f:
                f.write(str(v))
            size = os.stat(p).st_size
            data = p.read_text()
            assert (size, data) == (len(data), f"{v}\n"), f"after writing {v}"
    assert decode(archive)[b"params"][b"max_iter"] == 1199


def test_archive_truncated_in_place_gives_errors_not_a_crash(tmp_path):
    """Someone cuts the archive short in place while it is mounted: what
    lies beyond the new end cannot be read (EIO), edits are refused
    (ESTALE), the daemon lives on and unmounts cleanly."""
    archive, before = private_copy(tmp_path, "mlp_compact")
    with mounted(archive) as mnt:
        assert (mnt / "params" / "alpha").read_text() == "0.0001\n"  # made before the cut
        with open(archive, "r+b") as f:
            f.truncate(100)
        # Not yet read, so not cached: the archive must be read, and is gone.
        for rel in ("weights/coefs_/0.npy", "weights/coefs_/2.npy", "xtra/loss_curve_"):
            with pytest.raises(OSError) as err:
                (mnt / rel).read_bytes()
            assert err.value.errno == errno.EIO, f"{rel}: {err.value!r}"
        with pytest.raises(OSError) as err:
            with open(mnt / "params" / "alpha", "w") as f:
                f.write("0.5\n")
        assert err.value.errno == errno.ESTALE
        assert "class_name" in os.listdir(mnt)  # still serving
    assert archive.stat().st_size == 100  # mpfs wrote nothing


def test_big_endian_array_raw_is_little_endian(tmp_path):
    """-o raw shows raw little-endian C-order bytes (DESIGN §3), also for a
    compact array stored big-endian; writing them back keeps it big-endian."""
    arr = (np.arange(6).reshape(2, 3) / 3).astype(">f8")
    archive = tmp_path / "be.mpk"
    archive.write_bytes(msgpack.packb({
        "class_name": "BE", "weights": {"w": {
            "nd": True, "type": ">f8", "kind": b"", "shape": [2, 3], "data": arr.tobytes()}}},
        use_bin_type=True))
    with mounted(archive) as mnt:
        back = np.load(mnt / "weights" / "w.npy")
        assert back.dtype == np.dtype(">f8") and np.array_equal(back, arr)
    with mounted(archive, "-o", "raw") as mnt:
        f = mnt / "weights" / "w.bin"
        assert f.read_bytes() == arr.astype("<f8").tobytes()
        assert os.getxattr(f, "user.mpfs.dtype") == b"<f8"
        f.write_bytes((arr * 2).astype("<f8").tobytes())
    w = decode(archive)[b"weights"][b"w"]
    assert w[b"type"] == b">f8"
    assert w[b"data"] == (arr * 2).astype(">f8").tobytes()
