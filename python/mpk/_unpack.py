"""MsgPack decoding for mpk.load.

unpack(data) -> (object, bytes used, vocabularies, more): the object is what
``msgpack.unpackb(data, raw=True, strict_map_key=False, use_list=True)``
returns (str and bin both as bytes), decoded by mpk's C part (_cmpk.c)
where it is built, else by python3-msgpack.  The C decoder also returns
the keys of a map stored under ``vocabulary_`` as str where they are valid
UTF-8 (the rest of mpk takes both), which spares a 100k-term vocabulary a
second dict, and checks those that are vocabularies while it decodes them.
It also gives a bin payload of 64 KiB or more (not a map key) as a
bytearray, which _arrays takes over as the array's own memory instead of
copying it (as pickle's protocol 5 does with its buffers).
``MPK_PURE=1`` in the environment makes mpk use python3-msgpack even where
the C part is built (the tests run both).

With the C part a load also passes ``lockstep``: the lists of trees under
``estimators_`` are decoded in lockstep with their first tree, each later
tree built as it is read (_forest.py, _cmpk_unpack.c), and a tree that
must be decoded again after all is read again from the input (rereader).
"""

import os

import msgpack

_cmpk = None
if not os.environ.get("MPK_PURE"):
    try:
        from . import _cmpk
    except ImportError:
        pass

# Whether the C decoder is in use.
ACCELERATED = _cmpk is not None

TEXT_MAPS = frozenset((b"vocabulary_",))

# The node tables of many trees: checked, then laid out one by one; or None
# (_forest.py then does it with numpy).
tree_columns = _cmpk.tree_columns if _cmpk is not None else None
tree_fill = _cmpk.tree_fill if _cmpk is not None else None
# A later tree of an ensemble built as it is decoded (_forest.tree_maker).
TreeMaker = _cmpk.TreeMaker if _cmpk is not None else None
# Many maps' compact arrays checked at once (_predictors.py), or None.
compact_columns = _cmpk.compact_columns if _cmpk is not None else None
predictor_links = _cmpk.predictor_links if _cmpk is not None else None
# A decoded value's values at a pattern's holes, in the pattern's order
# (_forest.caps_of), or None.
holes = _cmpk.holes if _cmpk is not None else None


def _ext(code, data):
    """An ext value as msgpack.unpackb gives it (timestamp=0)."""
    if code == -1:
        return msgpack.Timestamp.from_bytes(data)
    return msgpack.ExtType(code, data)


def unpack(data, lockstep=None):
    """(object, bytes used, vocabularies, more) of the first MsgPack object
    in data: vocabularies lists the maps under vocabulary_ already checked
    to be ones (str keys, the ints 0..n-1 each once), by the C decoder while
    decoding (none without it); more, whether bytes follow the object.
    lockstep: see the module's text (the C decoder only).
    Raises ValueError or TypeError (an unhashable map key) on bad input."""
    if _cmpk is not None:
        return _cmpk.unpack(data, TEXT_MAPS, _ext, lockstep)
    try:
        return msgpack.unpackb(data, raw=True, strict_map_key=False, use_list=True), len(data), [], False
    except msgpack.ExtraData as e:
        return e.unpacked, len(data) - len(e.extra), [], True


def unpack_file(f, lockstep=None):
    """unpack of a file's bytes.  The C decoder reads the file in pieces,
    and long payloads straight into their bytes objects: the whole file is
    never in memory at once."""
    if _cmpk is not None:
        return _cmpk.unpack_fd(f.fileno(), TEXT_MAPS, _ext, lockstep)
    return unpack(f.read())


def rereader(source):
    """reread(start, end) for a Batch (_forest.py): source's bytes between
    the offsets the decoder gave (source: bytes, or a file unpack_file read
    from its start), decoded again without lockstep; a ValueError when they
    are not exactly one object (the file changed under the load)."""
    if hasattr(source, "fileno"):
        fd = source.fileno()

        def get(a, b):
            return os.pread(fd, b - a, a)
    else:
        view = memoryview(source)

        def get(a, b):
            return view[a:b]

    def reread(a, b):
        data = get(a, b)
        obj, used, _, more = unpack(data)
        if used != len(data) or len(data) != b - a:
            raise ValueError("not the object it was")
        return obj
    return reread


def identical(a, b):
    """Would decoded values a and b pack to the same MsgPack bytes?  (So 1,
    1.0 and True differ, and -0.0 and 0.0; lists and tuples do not.)"""
    if _cmpk is not None:
        return _cmpk.identical(a, b)
    return _pack(a) == _pack(b)


def _pack(v):
    return msgpack.packb(v, use_bin_type=True)      # a Packer per call: loads may run in threads
