"""Concurrency stress (issue 7): writers, readers, renamers and `cat`s on
the same and neighbouring files while commits happen.

- writers write whole JSON values (lists tagged with the writer and a
  sequence number, padded with spaces to a fixed length per key): on keys
  of their own in several pieces (pwrite, sometimes fsync), on shared keys
  in one write() at offset 0, so that any interleaving of whole writes
  leaves one writer's whole value;
- renamers move the keys r0 and r1 away and back, while their writers write
  to them through descriptors opened before the rename;
- readers and `cat` processes read everything, and the values nobody
  writes must always read the same;
- a checker decodes the archive on disk while all this runs.

Afterwards (and in every snapshot the checker took) every value is one that
some writer wrote completely; a key only one writer writes holds that
writer's last acknowledged value; a shared key holds the last value of one
of its writers. Runs MPFS_STRESS_SECONDS seconds (default 30).
"""

import errno
import json
import os
import random
import subprocess
import threading
import time

import msgpack
import numpy as np

from harness import mounted
from trouble import Call, decode, hung

SECONDS = float(os.environ.get("MPFS_STRESS_SECONDS", 30))
WRITERS = 3
WIDTH = 240  # bytes of every value written, padding included


def render(value):
    text = json.dumps(value)
    assert len(text) < WIDTH
    return (text + " " * (WIDTH - 1 - len(text)) + "\n").encode()


def test_stress_concurrent_writers_readers_renamers(tmp_path):
    seed = int(os.environ.get("MPFS_STRESS_SEED", random.randrange(2**32)))
    shared = ["s0", "s1"]
    own = {w: [f"p{2 * w}", f"p{2 * w + 1}"] + ([f"r{w}"] if w < 2 else [])
           for w in range(WRITERS)}
    renamed = ["r0", "r1"]
    constants = {f"c{i}": [i, "constant", i * 1.5] for i in range(4)}
    written_keys = shared + [k for keys in own.values() for k in keys]
    initial = {k: [-1, -1] for k in written_keys}
    weight = np.random.RandomState(seed % 2**31).rand(256 * 1024)   # 2 MB
    obj = {"class_name": "Stress", "types": {},
           "params": {**initial, **constants},
           "xtra": {f"n{i}": i for i in range(50)},
           "weights": {"w": {"nd": True, "type": "<f8", "kind": b"",
                             "shape": [weight.size], "data": weight.tobytes()}}}
    folder = tmp_path / "archive"
    folder.mkdir()
    archive = folder / "m.mpk"
    archive.write_bytes(msgpack.packb(obj, use_bin_type=True))

    attempted = {k: {json.dumps(v)} for k, v in initial.items()}  # any value ever written
    last_attempt = {k: {} for k in written_keys}    # key -> {writer: last value written}
    last_ack = {k: {} for k in written_keys}        # key -> {writer: last value acknowledged}
    problems = []
    stop = threading.Event()
    counts = {"writes": 0, "reads": 0, "cats": 0, "renames": 0, "snapshots": 0}
    lock = threading.Lock()

    def problem(text):
        with lock:
            if len(problems) < 40 and text not in problems:
                problems.append(text)

    with mounted(archive) as mnt:
        par = mnt / "params"

        def writer(w):
            rng = random.Random(seed + w)
            seq = 0
            keys = own[w] + shared
            while not stop.is_set():
                key = rng.choice(keys)
                seq += 1
                value = [w, seq, key] + list(range(rng.randrange(20)))
                data = render(value)
                try:
                    fd = os.open(par / key, os.O_WRONLY | os.O_TRUNC)
                except OSError as e:
                    if not (e.errno == errno.ENOENT and key in renamed):
                        problem(f"writer {w}: open {key}: {e!r}")
                    continue
                with lock:
                    attempted[key].add(json.dumps(value))
                    last_attempt[key][w] = value
                try:
                    if key in shared:
                        os.pwrite(fd, data, 0)
                    else:       # in pieces, with readers and renames in between
                        cut1 = rng.randrange(1, WIDTH // 2)
                        cut2 = rng.randrange(cut1, WIDTH)
                        for a, b in ((0, cut1), (cut1, cut2), (cut2, WIDTH)):
                            os.pwrite(fd, data[a:b], a)
                            if rng.random() < 0.3:
                                time.sleep(0.001)
                        if rng.random() < 0.2:
                            os.fsync(fd)
                except OSError as e:
                    problem(f"writer {w}: write/fsync {key} <- {value}: {e!r}")
                    os.close(fd)
                    continue
                try:
                    os.close(fd)
                except OSError as e:
                    problem(f"writer {w}: close {key} <- {value}: {e!r}")
                    continue
                with lock:
                    last_ack[key][w] = value
                    counts["writes"] += 1

        def renamer(key):
            rng = random.Random(seed ^ hash(key))
            while not stop.is_set():
                try:
                    os.rename(par / key, par / f"{key}_away")
                except OSError as e:
                    problem(f"rename {key} away: {e!r}")
                    return
                time.sleep(rng.random() * 0.005)
                try:
                    os.rename(par / f"{key}_away", par / key)
                except OSError as e:
                    problem(f"rename {key} back: {e!r}")
                    return
                with lock:
                    counts["renames"] += 1
                time.sleep(rng.random() * 0.01)

        def reader(r):
            rng = random.Random(seed + 100 + r)
            names = written_keys + list(constants)
            while not stop.is_set():
                key = rng.choice(names)
                try:
                    with open(par / key, "rb") as f:
                        data = f.read()
                except OSError as e:
                    if not (e.errno == errno.ENOENT and key in renamed):
                        problem(f"reader: {key}: {e!r}")
                    continue
                if key in constants and json.loads(data) != constants[key]:
                    problem(f"reader: constant {key} read {data[:100]!r}")
                if rng.random() < 0.05:
                    got = np.load(mnt / "weights" / "w.npy")
                    if not np.array_equal(got, weight):
                        problem("reader: weights/w.npy read differently")
                with lock:
                    counts["reads"] += 1

        # The cats come from a shell started before any writer opens: a fork
        # while writers' descriptors are open would close their copies at
        # exec, flushes of the writers' own.
        shell = subprocess.Popen(
            ["sh", "-c", 'while read f; do cat $f 2>&1 >/dev/null; echo "done"; done'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            bufsize=1)

        def catter():
            rng = random.Random(seed + 200)
            names = written_keys + list(constants)
            while not stop.is_set():
                batch = [str(par / rng.choice(names)) for _ in range(4)]
                shell.stdin.write(" ".join(batch) + "\n")
                while True:
                    line = shell.stdout.readline()
                    if not line or line == "done\n":
                        break
                    if not ("No such file" in line and any(f"/{k}:" in line for k in renamed)):
                        problem(f"cat of {' '.join(batch)} failed: {line.strip()}")
                with lock:
                    counts["cats"] += 1

        def checker():
            while not stop.is_set():
                time.sleep(0.2)
                try:
                    snap = decode(archive)["params"]
                except BaseException as e:  # noqa: BLE001 - pytest.fail raises
                    problem(f"snapshot: {e}")
                    continue
                # After the snapshot: what it holds was attempted before it.
                with lock:
                    allowed = {k: set(v) for k, v in attempted.items()}
                for key in written_keys:
                    value = snap.get(key, snap.get(f"{key}_away"))
                    if value is None:
                        problem(f"snapshot: {key} missing: {list(snap)}")
                    elif json.dumps(value) not in allowed[key]:
                        problem(f"snapshot: {key} holds {value!r}, which no writer wrote")
                for key, value in constants.items():
                    if snap.get(key) != value:
                        problem(f"snapshot: constant {key} is {snap.get(key)!r}")
                with lock:
                    counts["snapshots"] += 1

        workers = ([Call(writer, w, name=f"writer {w}") for w in range(WRITERS)]
                   + [Call(renamer, k, name=f"renamer {k}") for k in renamed]
                   + [Call(reader, r, name=f"reader {r}") for r in range(2)]
                   + [Call(catter, name="cat"), Call(checker, name="checker")])
        stop.wait(SECONDS)
        stop.set()
        try:
            for call in workers:
                if not call.finished(60):
                    hung(mnt, f"{call.name} (stress, seed {seed})", 60)
                call.outcome()
        finally:
            shell.stdin.close()
            try:
                shell.wait(timeout=30)
            except subprocess.TimeoutExpired:
                shell.kill()
                shell.wait()
        names = set(os.listdir(par))

    final = decode(archive)["params"]
    summary = f"seed {seed} (MPFS_STRESS_SEED to replay), {counts}"
    assert counts["writes"] > 0 and counts["renames"] > 0, summary
    bad = []
    if sorted(n for n in names if n.endswith("_away")):
        bad.append(f"left renamed away: {sorted(names)}")
    for key in written_keys:
        got = final.get(key)
        if json.dumps(got) not in attempted[key]:
            bad.append(f"{key}: {got!r} is no value any writer wrote (torn or mixed)")
        elif key in shared:
            allowed = [v for v in last_attempt[key].values()]
            if allowed and got not in allowed:
                bad.append(f"{key}: {got!r} is not the last value of any writer "
                           f"(last values: {allowed})")
        else:
            ack = list(last_ack[key].values())
            if ack and got != ack[0]:
                bad.append(f"{key}: holds {got!r}, the last acknowledged write was {ack[0]!r}")
    for key, value in constants.items():
        if final.get(key) != value:
            bad.append(f"constant {key}: {final.get(key)!r}")
    assert not (problems or bad), (
        f"{summary}:\n  during the run:\n    " + "\n    ".join(problems or ["nothing"])
        + "\n  in the archive afterwards:\n    " + "\n    ".join(bad or ["as expected"]))
