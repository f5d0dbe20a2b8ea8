"""Array and sparse-matrix encodings (DESIGN section 2).

Two encodings of a numpy array:

* compact (msgpack-numpy convention): ``{b"nd": True, b"type": "<f8",
  b"kind": b"", b"shape": [..], b"data": <raw C-order bytes>}`` -- keys are
  bin, ``type`` is str, ``kind`` and ``data`` are bin, as msgpack-numpy writes.
* nested: ``a.tolist()``; the exact dtype is kept separately (``dtypes`` map)
  because the nested lists alone only tell bool / int64 / float64.

Decoding never trusts the file: only plain numeric, bool and unicode/bytes
string dtypes are accepted (no object, void/structured, datetime), the byte
count must match the shape exactly, and sparse matrices are fully checked.
"""

import re
import sys

import numpy as np
import scipy.sparse as sp

from .errors import FormatError

# numpy dtype strings accepted in an archive.  No 'O' (object: msgpack-numpy
# pickles those), no 'V' (structured), no 'M'/'m'.
_DTYPE_RE = re.compile(r"^[<>|=]?(b1|[iu][1248]|f[248]|c(8|16)|U[1-9][0-9]{0,5}|S[1-9][0-9]{0,5})$")

# dtype *names* accepted for csr "dtype", numpy scalar types and the "type"
# params (TfidfVectorizer(dtype=np.float64)).
SCALAR_TYPE_NAMES = {
    "bool": np.bool_, "bool_": np.bool_,
    "int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
    "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
    "float16": np.float16, "float32": np.float32, "float64": np.float64,
}

MAX_DIMS = 32


def as_text(value, path, what="string"):
    """A str from a MsgPack str or bin (old raw strings arrive as bytes)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(path, f"expected {what}, got bytes that are not UTF-8") from None
    raise FormatError(path, f"expected {what}, got {type_name(value)}")


def type_name(value):
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (bytes, bytearray)):
        return "bin/str"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


def check_dtype(text, path):
    if isinstance(text, (str, bytes)):
        d = _DTYPE_CACHE.get(text)
        if d is not None:
            return d
        key = text
    else:
        key = None
    text = as_text(text, path, "dtype string")
    if not _DTYPE_RE.match(text):
        raise FormatError(path, f"dtype {text!r} is not allowed (only bool, int, uint, float, complex, str)")
    d = np.dtype(text)
    if key is not None and len(_DTYPE_CACHE) < _DTYPE_CACHE_MAX:
        _DTYPE_CACHE[key] = d
    return d


def _native(a):
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return a


# Map keys seen so far (bytes -> str): the same few dozen names (params,
# n_features_in_, children_left, ...) recur in every model map of a file.
# Bounded: only short keys that decoded cleanly are kept, and it starts over
# when full (so that the terms of one big map cannot crowd out the names).
_KEY_CACHE = {}
_KEY_CACHE_MAX = 4096


def key_text(k, path):
    if type(k) is bytes:
        s = _KEY_CACHE.get(k)
        if s is not None:
            return s
        s = as_text(k, path, "str key")
        if len(k) <= 64:
            if len(_KEY_CACHE) >= _KEY_CACHE_MAX:
                _KEY_CACHE.clear()
            _KEY_CACHE[k] = s
        return s
    return as_text(k, path, "str key")


def is_compact(value):
    """A msgpack-numpy map: has an "nd" key holding a bool and a "type" key.
    (A vocabulary containing the word "nd" is not one.)"""
    if not isinstance(value, dict):
        return False
    nd = value.get(b"nd", value.get("nd"))
    return isinstance(nd, bool) and (b"type" in value or "type" in value)


def is_pickled(value):
    """A msgpack-numpy object array: a compact map with kind 'O', whose data
    is a pickle.  Never unpickled: loading one would run code.  (The kind
    first: most maps have another, and it is the cheaper test.)"""
    if not isinstance(value, dict):
        return False
    kind = value.get(b"kind", value.get("kind"))
    return kind in (b"O", "O") and is_compact(value)


# values that decode to themselves: nil, bools, ints, floats, str
PLAIN = frozenset((type(None), bool, int, float, str))


def plain_scalars(values):
    """values (a sequence) as a list with each bytes item decoded to str,
    when every item is one of PLAIN or UTF-8 bytes (a MsgPack str read
    raw); else None."""
    out = []
    for x in values:
        t = type(x)
        if t is bytes:
            try:
                x = x.decode("utf-8")
            except UnicodeDecodeError:
                return None
        elif t not in PLAIN:
            return None
        out.append(x)
    return out


PICKLED = ("pickled object array (msgpack-numpy writes object arrays as a pickle, "
           "which is never unpickled)")
# the same, for one that is not an attribute of a model (a parameter, an item
# of a list, ...): never dropped
PICKLED_ELSEWHERE = PICKLED + "; load(..., skip_pickled=True) drops one that prediction does not need"


def text_map(value, path, sub=None):
    """A map with str (or bin) keys -> dict with str keys, key order kept.
    It is at path, or at path/sub (joined only for an error)."""
    if type(value) is not dict or (value and is_compact(value)):
        raise FormatError(_sub(path, sub), f"expected map, got {type_name(value)}")
    if not value:
        return {}
    get = _KEY_CACHE.get
    names = list(map(get, value))          # every key seen before: no per-key work
    if None not in names:
        return dict(zip(names, value.values()))   # distinct bytes decode to distinct str
    path = _sub(path, sub)
    out = {}
    for k, v in value.items():
        name = key_text(k, path)
        if name in out:
            raise FormatError(f"{path}/{name}" if path else name, "duplicate key")
        out[name] = v
    return out


def _sub(path, sub):
    return path if sub is None else f"{path}/{sub}" if path else sub


_COMPACT_KEYS = {k: k for k in ("nd", "type", "kind", "shape", "data")}
_COMPACT_KEYS.update({k.encode(): k for k in _COMPACT_KEYS})

# sys.getrefcount of a bin's data that only its map holds, seen from
# _compact_fast (the map, the local name, getrefcount's argument).  An
# array already made from it (a second decode of the same map) holds one
# more: that decode copies, so two arrays never share memory.
_ONLY_THE_MAP = 3

# check_dtype's answers for the dtype strings seen so far (bounded: only
# strings that passed the check are kept, at most _DTYPE_CACHE_MAX of them)
_DTYPE_CACHE = {}
_DTYPE_CACHE_MAX = 512


def _compact_fast(m, copy):
    """decode_compact for the layout mpk and msgpack-numpy write (exactly the
    five bin keys, nd true, kind empty bin, data bin, a dtype already checked,
    a shape of non-negative ints that matches the data): the array, or None
    for anything else (decode_compact then does the full work, and names
    the problem).  Data that mpk's C decoder gave as a bytearray (a long bin
    payload, which nothing else holds) becomes the array's memory, not
    copied: the one array decoded from this map owns it."""
    if len(m) != 5:
        return None
    try:
        nd, t, kind, shape, data = m[b"nd"], m[b"type"], m[b"kind"], m[b"shape"], m[b"data"]
    except KeyError:
        return None
    if nd is not True or type(kind) is not bytes or kind or type(data) not in (bytes, bytearray) \
            or type(shape) is not list or len(shape) > MAX_DIMS or type(t) not in (str, bytes):
        return None
    dtype = _DTYPE_CACHE.get(t)
    if dtype is None:
        try:
            dtype = check_dtype(t, "")      # once per dtype string (then cached)
        except FormatError:
            return None
    if dtype.kind == "U":
        return None
    owned = type(data) is bytearray and sys.getrefcount(data) <= _ONLY_THE_MAP
    count = 1
    for n in shape:
        if type(n) is not int or n < 0:
            return None
        count *= n
    if count * dtype.itemsize != len(data) or (dtype.kind == "b" and _not_bools(data)):
        return None
    a = np.frombuffer(data, dtype=dtype)
    if len(shape) != 1:
        try:
            a = a.reshape(shape)
        except (ValueError, TypeError, MemoryError):
            return None
    if not dtype.isnative:
        return a.astype(dtype.newbyteorder("="))
    if owned:
        return a        # the decoder's buffer for this bin (_cmpk_unpack.c), the array's memory now
    return a.copy() if copy else a


def _not_bools(data):
    """Bytes of a bool array other than 0 and 1 (numpy and compiled code
    disagree on what such a bool is)."""
    return len(data) > 0 and int(np.frombuffer(data, dtype=np.uint8).max()) > 1


def decode_compact(m, path, copy=True):
    """Decode a msgpack-numpy map.  Returns an ndarray (nd true) or a numpy
    scalar (nd false, as msgpack-numpy writes numpy scalars).  With
    copy=False an array may be a read-only view of the MsgPack bin (for
    callers that copy it anyway)."""
    a = _compact_fast(m, copy)
    if a is not None:
        return a
    fields = {}
    for k, v in m.items():
        name = _COMPACT_KEYS.get(k) if isinstance(k, (bytes, str)) else None
        if name is None:
            name = key_text(k, path)
            raise FormatError(f"{path}/{name}", "unexpected key in compact array")
        if name in fields:
            raise FormatError(f"{path}/{name}", "duplicate key in compact array")
        fields[name] = v
    nd = fields.get("nd")
    if not isinstance(nd, bool):
        raise FormatError(f"{path}/nd", "expected bool")
    for req in ("type", "data") + (("shape",) if nd else ()):
        if req not in fields:
            raise FormatError(f"{path}/{req}", "missing from compact array")
    kind = fields.get("kind", b"")
    if kind in (b"O", "O"):
        raise FormatError(path, PICKLED_ELSEWHERE)
    if not isinstance(kind, (bytes, str)) or len(kind) != 0:
        raise FormatError(f"{path}/kind", "only plain dtypes are allowed (kind must be empty; "
                          "structured and object arrays are refused)")
    dtype = check_dtype(fields["type"], f"{path}/type")
    data = fields["data"]
    if not isinstance(data, (bytes, bytearray)):
        raise FormatError(f"{path}/data", f"expected bin, got {type_name(data)}")
    if dtype.kind == "b" and _not_bools(data):
        raise FormatError(f"{path}/data", "a bool holds a byte other than 0 or 1")
    if not nd:
        if len(data) != dtype.itemsize:
            raise FormatError(f"{path}/data", f"scalar of {dtype.str} needs {dtype.itemsize} bytes, got {len(data)}")
        return np.frombuffer(data, dtype=dtype)[0].copy()
    shape = fields["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_DIMS:
        raise FormatError(f"{path}/shape", "expected a list of at most 32 sizes")
    count = 1
    for i, n in enumerate(shape):
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise FormatError(f"{path}/shape/{i}", "expected a non-negative int")
        count *= n
    if count * dtype.itemsize != len(data):
        raise FormatError(f"{path}/data", f"shape {tuple(shape)} of {dtype.str} needs "
                          f"{count * dtype.itemsize} bytes, got {len(data)}")
    try:
        a = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    except (ValueError, TypeError, MemoryError) as e:
        raise FormatError(path, f"bad compact array: {e}") from None
    a = _native(a)
    if a.dtype.kind == "U" and a.size and a.view(np.uint32).max() > 0x10FFFF:
        raise FormatError(f"{path}/data", "invalid unicode code point")
    return a


def _dtype_spec(spec, path):
    """A dtypes entry: "<f8" or {"dtype": "<f8", "shape": [...]}. -> (dtype, shape|None)"""
    if spec is None:
        return None, None
    if isinstance(spec, dict):
        d = s = None
        for k, v in spec.items():
            name = key_text(k, path)
            if name == "dtype":
                d = check_dtype(v, f"{path}/dtype")
            elif name == "shape":
                if not isinstance(v, list) or len(v) > MAX_DIMS or not all(
                        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in v):
                    raise FormatError(f"{path}/shape", "expected a list of non-negative ints")
                s = tuple(v)
            else:
                raise FormatError(f"{path}/{name}", "unexpected key in dtype entry")
        return d, s
    return check_dtype(spec, path), None


def decode_nested(value, path, dtype_spec=None, dtype_path=""):
    """Seed-style nested lists -> ndarray.

    Element dtype follows DESIGN section 2 (bool / int64 / uint64 / float64),
    or unicode for lists of strings; an entry of the ``dtypes`` map, when
    present, gives the exact original dtype (and shape, for empty arrays).
    """
    if isinstance(value, (dict, bytearray)) or value is None:
        raise FormatError(path, f"expected array, got {type_name(value)}")
    if not isinstance(value, (list, bool, int, float, bytes, str)):
        raise FormatError(path, f"expected array, got {type_name(value)}")
    want, want_shape = _dtype_spec(dtype_spec, dtype_path)
    try:
        a = np.array(value)
    except (ValueError, TypeError, OverflowError) as e:
        raise FormatError(path, f"expected array (equal-length nested lists of numbers): {e}") from None
    if a.ndim > MAX_DIMS:
        raise FormatError(path, "too many dimensions")
    if a.dtype.kind == "S":
        try:
            a = np.char.decode(a, "utf-8")
        except UnicodeDecodeError:
            raise FormatError(path, "expected array, got bytes that are not UTF-8") from None
    if a.dtype.kind == "U":
        # np.array() turns [1, "a"] into strings; only all-string lists qualify
        if not all(isinstance(x, (str, bytes)) for x in _flat(value)):
            raise FormatError(path, "expected array, got a list mixing strings and other values")
    elif a.dtype.kind not in "biuf":
        raise FormatError(path, "expected array (equal-length nested lists of numbers, bools or strings)")
    if want is not None:
        if want.kind in "US" and a.dtype.kind != "U" and a.size:
            raise FormatError(path, f"dtypes says {want.str} but the values are not strings")
        if want.kind not in "US" and a.dtype.kind == "U":
            raise FormatError(path, f"dtypes says {want.str} but the values are strings")
        if want.kind == "S" and a.dtype.kind == "U":     # (an empty list is float64: cast below)
            a = np.char.encode(a, "utf-8")
        if want.kind in "biu" and a.dtype.kind in "fc" and a.size:
            raise FormatError(path, f"dtypes says {want.str} but the values are not integers")
        try:
            with np.errstate(all="ignore"):
                b = a.astype(want)
        except (ValueError, TypeError, OverflowError) as e:
            raise FormatError(path, f"values do not fit dtype {want.str}: {e}") from None
        if want.kind in "biu" and a.size and not np.array_equal(b.astype(a.dtype), a):
            raise FormatError(path, f"values do not fit dtype {want.str}")
        a = _native(b)
    if want_shape is not None:
        if a.size != 0 or int(np.prod(want_shape)) != 0:
            if a.shape != want_shape:
                raise FormatError(path, f"dtypes gives shape {want_shape}, values have {a.shape}")
        a = a.reshape(want_shape)
    return a


def _flat(value):
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        else:
            yield v


def decode_array(value, path, dtype_spec=None, dtype_path="", copy=True):
    if isinstance(value, dict) and (b"nd" in value or "nd" in value):  # (meant to be) compact
        a = decode_compact(value, path, copy)
        if not isinstance(a, np.ndarray):
            raise FormatError(path, "expected array, got a numpy scalar")
        return a
    if not isinstance(value, list):
        raise FormatError(path, f"expected array, got {type_name(value)}")
    return decode_nested(value, path, dtype_spec, dtype_path)


def decode_csr(value, path, dtype_spec=None, dtype_path="", fmt="csr"):
    """A csr_matrix map (or, with fmt="csc", the same layout for a csc_matrix)."""
    cname = f"{fmt}_matrix"
    if not isinstance(value, dict) or is_compact(value):
        raise FormatError(path, f"expected {cname} map, got {type_name(value)}")
    fields = {}
    for k, v in value.items():
        name = key_text(k, path)
        if name not in ("shape", "arg1", "dtype", "class_name"):
            raise FormatError(f"{path}/{name}", f"unexpected key in {cname}")
        fields[name] = v
    if "class_name" in fields and as_text(fields["class_name"], f"{path}/class_name") != cname:
        raise FormatError(f"{path}/class_name", f"only {cname} is allowed here")
    for req in ("shape", "arg1"):
        if req not in fields:
            raise FormatError(f"{path}/{req}", f"missing from {cname}")
    shape = fields["shape"]
    if not (isinstance(shape, list) and len(shape) == 2 and all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**62 for n in shape)):
        raise FormatError(f"{path}/shape", "expected [rows, cols] of non-negative ints")
    dt = np.float64
    if "dtype" in fields:
        name = as_text(fields["dtype"], f"{path}/dtype")
        if name not in SCALAR_TYPE_NAMES:
            raise FormatError(f"{path}/dtype", f"dtype {name!r} is not allowed")
        dt = SCALAR_TYPE_NAMES[name]
    arg1 = fields["arg1"]
    if not isinstance(arg1, list) or len(arg1) != 3:
        raise FormatError(f"{path}/arg1", "expected [data, indices, indptr]")
    specs = dtype_spec if isinstance(dtype_spec, list) and len(dtype_spec) == 3 else [None] * 3
    parts = []
    for i, (name, part) in enumerate(zip(("data", "indices", "indptr"), arg1)):
        a = decode_array(part, f"{path}/arg1/{i}", specs[i], f"{dtype_path}/{i}")
        if a.ndim != 1:
            raise FormatError(f"{path}/arg1/{i}", f"{name} must be 1-d")
        if i > 0 and a.size and a.dtype.kind not in "iu":
            raise FormatError(f"{path}/arg1/{i}", f"{name} must be an integer array")
        if i > 0 and a.dtype.kind not in "iu":
            a = a.astype(np.int32)
        parts.append(a)
    data, indices, indptr = parts
    if data.dtype.kind not in "biufc":
        raise FormatError(f"{path}/arg1/0", "data must be numeric")
    if data.dtype != np.dtype(dt):
        data = data.astype(dt)
    try:
        make = sp.csc_matrix if fmt == "csc" else sp.csr_matrix
        m = make((data, indices, indptr), shape=tuple(shape))
        m.check_format(full_check=True)
    except (ValueError, TypeError, OverflowError, IndexError) as e:
        raise FormatError(path, f"invalid {cname}: {e}") from None
    return m


# ---------------------------------------------------------------- encoding

def encode_array(a, mode):
    """ndarray -> (msgpack value, dtype entry or None)."""
    a = np.asarray(a)
    if a.dtype.kind not in "biufcUS" or a.dtype.names is not None:
        raise TypeError(f"cannot store arrays of dtype {a.dtype} (object/structured arrays are not supported)")
    # String arrays are always nested lists (with their dtype in ``dtypes``):
    # mpfs refuses compact string arrays (docs/tree.md section 2).
    if mode == "compact" and a.dtype.kind not in "US":
        c = np.ascontiguousarray(a)
        return ({b"nd": True, b"type": c.dtype.str, b"kind": b"", b"shape": list(c.shape),
                 b"data": c.tobytes()}, None)
    entry = a.dtype.str if a.size else {"dtype": a.dtype.str, "shape": list(a.shape)}
    if a.dtype.kind == "S":
        return np.char.decode(a, "utf-8").tolist(), entry
    return a.tolist(), entry


def encode_csr(m, mode):
    if m.format != "csc":
        m = sp.csr_matrix(m)
    arg1, entries = [], []
    for part in (m.data, m.indices, m.indptr):
        v, e = encode_array(part, mode)
        arg1.append(v)
        entries.append(e)
    value = {"shape": list(m.shape), "arg1": arg1, "dtype": m.dtype.name,
             "class_name": f"{m.format}_matrix"}
    return value, (entries if mode == "nested" else None)
