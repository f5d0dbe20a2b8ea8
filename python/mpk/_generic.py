"""The generic codec: any allow-listed estimator (or helper object) as a
seed-style model map ``{class_name, types, params, xtra, weights[, dtypes]}``.

Values are stored as plain MsgPack data; what plain data cannot say is in the
model's ``types`` map, under the attribute's name, as a *tag*:

  (absent)           plain data: nil, bool, int, float, str, list, map; a map
                     with a ``class_name`` key is a nested model map
  "ndarray"          an array (compact map or nested lists; in nested mode the
                     exact dtype is in ``dtypes`` under the same name)
  "tuple"            a tuple of plain values
  "float64", ...     a numpy scalar of that type
  "type"             a numpy scalar type (``dtype=np.float64``), by name
  "dtype"            a numpy dtype instance, as its dtype string ("<f8")
  "slice"            [start, stop, step]
  "function"         an allow-listed function, by name ("f_classif")
  "csr_matrix", "csc_matrix"   a sparse matrix (DESIGN section 2 layout)
  ["list", [t0, t1, ...]]      a list whose items need tags
  ["tuple", [t0, t1, ...]]     the same for a tuple
  ["dict", {key: tag}]         a map whose values need tags (or that must not
                               be read as a model map)
  ["ndarray", DTYPE_ENTRY]     an array inside a container, nested mode
  ["csr_matrix", [e, e, e]]    a sparse matrix inside a container, nested mode
  ["object_array", SHAPE, [tags] | nil]
                     a numpy object array, stored as nested lists of SHAPE
                     whose elements are plain values, models or tagged values

Nothing in a tag is ever imported or called: tags select one of the decoders
below, and "function"/"class_name" values are keys into fixed tables.
"""

import threading
import types as _pytypes
import warnings

import numpy as np
import scipy.sparse as sp

from . import _arrays as A
from . import _forest as F
from . import _predictors as P
from . import _registry as R
from ._arrays import SCALAR_TYPE_NAMES, as_text, key_text, type_name
from .errors import FormatError

MAX_VALUE_DEPTH = 64

# class names whose objects are not estimators: no params, rebuilt as
# cls.__new__(cls) plus their attributes
PLAIN = {"_CalibratedClassifier", "_BisectingTree", "BinomialDeviance", "ExponentialLoss",
         "HuberLossFunction", "LeastAbsoluteError", "LeastSquaresError", "MultinomialDeviance",
         "QuantileLossFunction"}


def join(path, name):
    return f"{path}/{name}" if path else str(name)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ----------------------------------------------------------------- kinds

def kind_of(v):
    """Coarse kind of a Python value, for the per-class attribute schema."""
    k = _EXACT_KINDS.get(type(v))       # the plain types, at once
    if k is not None:
        return k
    if v is None:
        return "z"
    if isinstance(v, (bool, np.bool_)):
        return "b"
    if isinstance(v, (int, float, np.integer, np.floating)):
        return "n"
    if isinstance(v, (str, np.str_)):
        return "s"
    if isinstance(v, np.ndarray):
        return "o" if v.dtype.kind == "O" else "a"
    if sp.issparse(v):
        return "x"
    if type(v) in (list, tuple):
        return "l"
    if type(v) is dict:
        return "d"
    if isinstance(v, (type, np.dtype, slice, _pytypes.FunctionType, _pytypes.BuiltinFunctionType)):
        return "t"
    return "m"


# kind_of's answer for values of exactly these types (what its tests give them)
_EXACT_KINDS = {type(None): "z", bool: "b", int: "n", float: "n", str: "s", list: "l", tuple: "l", dict: "d"}

KIND_NAMES = {"z": "nil", "b": "bool", "n": "number", "s": "str", "a": "array", "o": "object array",
              "x": "sparse matrix", "l": "list", "d": "map", "t": "type/function", "m": "model"}


# ----------------------------------------------------------------- encoding

_FUNC_NAMES = None


def _function_name(f):
    global _FUNC_NAMES
    if _FUNC_NAMES is None:
        _FUNC_NAMES = {id(R.resolve(R.FUNCTION_MODULES, n)): n for n in R.FUNCTION_MODULES}
    return _FUNC_NAMES.get(id(f))


def _py_key(k, path):
    if isinstance(k, (np.integer,)) and not isinstance(k, np.bool_):
        k = int(k)
    elif isinstance(k, np.str_):
        k = str(k)
    if isinstance(k, bool) or not isinstance(k, (str, int)):
        raise TypeError(f"{path}: map keys must be str or int, got {type(k).__name__}")
    return k


def enc(w, v, path, top=False):
    """Python value -> (msgpack value, tag, dtype entry for a top-level array)."""
    if v is None or isinstance(v, (bool, str)) and type(v) in (bool, str):
        return v, None, None
    if type(v) is int:
        if not -2**63 <= v < 2**64:
            raise TypeError(f"{path}: integer {v} does not fit 64 bits")
        return v, None, None
    if type(v) is float:
        return v, None, None
    if isinstance(v, np.generic):
        if isinstance(v, (np.bool_, np.integer, np.floating)):
            name = np.dtype(type(v)).name
            if name not in SCALAR_TYPE_NAMES:
                raise TypeError(f"{path}: cannot store a numpy {name} scalar")
            return v.item(), name, None
        if isinstance(v, np.str_):
            return str(v), None, None
        raise TypeError(f"{path}: cannot store a numpy {type(v).__name__} scalar")
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "O":
            return _enc_objarray(w, v, path)
        val, entry = A.encode_array(v, w.mode)
        if top:
            return val, "ndarray", entry
        return val, ("ndarray" if entry is None else ["ndarray", entry]), None
    if sp.issparse(v):
        if v.format not in ("csr", "csc"):
            raise TypeError(f"{path}: cannot store a {v.format} sparse matrix")
        val, entries = A.encode_csr(v, w.mode)
        tag = f"{v.format}_matrix"
        if top:
            return val, tag, entries
        return val, (tag if entries is None else [tag, entries]), None
    if type(v) in (list, tuple):
        vals, tags = [], []
        for i, x in enumerate(v):
            xv, xt, _ = enc(w, x, join(path, i))
            vals.append(xv)
            tags.append(xt)
        kind = "tuple" if type(v) is tuple else "list"
        if all(t is None for t in tags):
            return vals, ("tuple" if kind == "tuple" else None), None
        return vals, [kind, tags], None
    if type(v) is dict:
        out, tags = {}, {}
        for k, x in v.items():
            k = _py_key(k, path)
            xv, xt, _ = enc(w, x, join(path, k))
            out[k] = xv
            if xt is not None:
                tags[k] = xt
        if tags or "class_name" in out:
            return out, ["dict", tags], None
        return out, None, None
    if isinstance(v, type):
        try:
            t = np.dtype(v).name
        except TypeError:
            t = None
        if t not in SCALAR_TYPE_NAMES or SCALAR_TYPE_NAMES[t] is not v:
            raise TypeError(f"{path}: cannot store type {v!r}")
        return t, "type", None
    if isinstance(v, np.dtype):
        A.check_dtype(v.str, path)
        return v.str, "dtype", None
    if type(v) is slice:
        for x in (v.start, v.stop, v.step):
            if x is not None and not _is_int(x):
                raise TypeError(f"{path}: cannot store slice {v!r}")
        return [v.start, v.stop, v.step], "slice", None
    if isinstance(v, (_pytypes.FunctionType, _pytypes.BuiltinFunctionType, _pytypes.MethodType)) \
            or type(v).__name__ in ("ufunc", "functools.partial", "partial"):
        name = _function_name(v)
        if name is None:
            raise TypeError(f"{path}: callables cannot be stored ({v!r})")
        return name, "function", None
    if callable(v) and not hasattr(v, "__dict__"):
        raise TypeError(f"{path}: callables cannot be stored ({v!r})")
    return w.model(v, path), None, None


def _enc_objarray(w, a, path):
    flat, tags = [], []
    for i, x in enumerate(a.ravel()):
        if type(x) in (list, tuple):
            raise TypeError(f"{path}: object arrays holding lists are not supported")
        xv, xt, _ = enc(w, x, join(path, i))
        flat.append(xv)
        tags.append(xt)
    shape = list(a.shape)

    def nest(lo, dims):
        if not dims:
            return flat[lo]
        step = int(np.prod(dims[1:], dtype=object)) if len(dims) > 1 else 1
        return [nest(lo + i * step, dims[1:]) for i in range(dims[0])]

    val = nest(0, shape) if a.size or not shape else _empty_nest(shape)
    return val, ["object_array", shape, tags if any(t is not None for t in tags) else None], None


def _empty_nest(shape):
    if not shape or shape[0] == 0:
        return []
    return [_empty_nest(shape[1:]) for _ in range(shape[0])]


def is_weight(v):
    """Which section an attribute goes to: learned arrays and nested models
    under ``weights``, the rest under ``xtra``."""
    k = kind_of(v)
    if k == "a":
        return v.dtype.kind in "fc"
    if k in ("x", "m"):
        return True
    if k in ("l", "o"):
        items = v.ravel() if k == "o" else v
        return any(kind_of(x) in ("a", "m", "x", "l", "o") and (kind_of(x) != "l" or is_weight(x))
                   for x in items)
    if k == "d":
        return any(kind_of(x) in ("m", "a") for x in v.values())
    return False


# ----------------------------------------------------------------- decoding

def _tag_text(tag, path):
    return as_text(tag, path, "type tag")


def dec(d, val, tag, dentry, path, depth, dpath=""):
    """msgpack value + tag -> Python value.  ``d(map, path, depth)``
    builds nested model maps."""
    if depth > MAX_VALUE_DEPTH:
        raise FormatError(path, "nested too deeply")
    if tag is None:
        return _dec_plain(d, val, path, depth)
    if isinstance(tag, (str, bytes)):
        t = _tag_text(tag, path)
        if t == "ndarray":
            a = A.decode_array(val, path, dentry, dpath)
            if a.dtype.kind not in "biufcUS":
                raise FormatError(path, f"arrays of dtype {a.dtype} are not allowed")
            return a
        if t in ("tuple", "list"):
            val = F.plain(val)
            if not isinstance(val, list):
                raise FormatError(path, f"expected list ({t}), got {type_name(val)}")
            items = _scalars(val, depth + 1)
            if items is None:
                items = [_dec_plain(d, x, join(path, i), depth + 1) for i, x in enumerate(val)]
            return tuple(items) if t == "tuple" else items
        if t == "dict":
            return _dec_dict(d, val, {}, path, depth)
        if t == "type":
            s = as_text(val, path, "dtype name")
            if s not in SCALAR_TYPE_NAMES:
                raise FormatError(path, f"type {s!r} is not allowed")
            return SCALAR_TYPE_NAMES[s]
        if t == "dtype":
            return A.check_dtype(val, path)
        if t == "slice":
            if not (isinstance(val, list) and len(val) == 3 and all(x is None or _is_int(x) for x in val)):
                raise FormatError(path, "expected [start, stop, step] of ints or nil")
            return slice(*val)
        if t == "function":
            name = as_text(val, path, "function name")
            if name not in R.FUNCTION_MODULES:
                raise FormatError(path, f"function {name!r} is not on the allow-list")
            return R.resolve(R.FUNCTION_MODULES, name)
        if t in ("csr_matrix", "csc_matrix"):
            return _dec_sparse(val, t, dentry, path, dpath)
        if t in SCALAR_TYPE_NAMES:
            return scalar(val, t, path)
        raise FormatError(path, f"unknown type tag {t!r}")
    if isinstance(tag, list) and tag:
        head = _tag_text(tag[0], join(path, "(tag)"))
        if head == "ndarray" and len(tag) == 2:
            return dec(d, val, "ndarray", tag[1], path, depth, join(path, "(tag)/1"))
        if head in ("csr_matrix", "csc_matrix") and len(tag) == 2:
            return _dec_sparse(val, head, tag[1], path, join(path, "(tag)/1"))
        if head in ("list", "tuple") and len(tag) == 2:
            val = F.plain(val)
            if not isinstance(val, list) or not isinstance(tag[1], list) or len(tag[1]) != len(val):
                raise FormatError(path, "expected a list matching its type tags")
            items = [dec(d, x, t, None, join(path, i), depth + 1) for i, (x, t) in enumerate(zip(val, tag[1]))]
            return tuple(items) if head == "tuple" else items
        if head == "dict" and len(tag) == 2:
            if not isinstance(tag[1], dict):
                raise FormatError(path, "bad dict type tag")
            return _dec_dict(d, val, tag[1], path, depth)
        if head == "object_array" and len(tag) == 3:
            return _dec_objarray(d, val, tag[1], tag[2], path, depth)
    raise FormatError(path, f"unknown type tag {tag!r}"[:200])


def scalar(val, tname, path):
    t = SCALAR_TYPE_NAMES[tname]
    kind = np.dtype(t).kind
    if A.is_compact(val):
        v = A.decode_compact(val, path)
        if isinstance(v, np.ndarray) or v.dtype != np.dtype(t):
            raise FormatError(path, f"expected a {tname} scalar")
        return v
    if kind == "b":
        if not isinstance(val, bool):
            raise FormatError(path, f"expected bool, got {type_name(val)}")
        return t(val)
    if kind == "f":
        if not _is_num(val):
            raise FormatError(path, f"expected float, got {type_name(val)}")
    elif not _is_int(val):
        raise FormatError(path, f"expected int, got {type_name(val)}")
    try:
        if kind in "iu":
            out = t(val)                        # no floating-point state: out of range is caught below
        else:
            with np.errstate(all="ignore"):     # a float past float32's range: inf, as numpy casts
                out = t(val)
    except OverflowError:
        raise FormatError(path, f"value does not fit {tname}") from None
    if kind in "iu" and int(out) != val:
        raise FormatError(path, f"value does not fit {tname}")
    return out


# untagged values that _dec_plain returns as they are (its first case)
AS_IS = A.PLAIN


def _scalars(val, depth):
    """The items of val as _dec_plain decodes them (at depth), when every
    one is nil, a bool, an int, a float or a str (UTF-8 bytes): a list
    made without a path for each; else None."""
    return None if depth > MAX_VALUE_DEPTH else A.plain_scalars(val)


def _dec_plain(d, val, path, depth):
    if depth > MAX_VALUE_DEPTH:
        raise FormatError(path, "nested too deeply")
    if val is None or isinstance(val, (bool, int, float, str)):
        return val
    if isinstance(val, (bytes, bytearray)):
        return as_text(val, path)
    if type(val) is F.Batch and type(val.items[0]) is list:    # rows of predictors (_predictors.py), or of trees
        got = P.build_rows(val, lambda x, i, j: _dec_plain(d, x, join(join(path, i), j), depth + 2)) \
            if depth < MAX_VALUE_DEPTH else None
        if got is not None:
            return got
        val = [F.item_at(val, i, join(path, i)) for i in range(len(val))]     # then as any list
    if type(val) is F.Batch:        # a forest's trees, decoded in lockstep (_forest.py)
        return F.build_list(val, [join(path, i) for i in range(len(val))],
                            lambda x, p: _dec_plain(d, x, p, depth + 1))
    if isinstance(val, list):
        if len(val) > 1 and F.is_tree_map(val[0]):     # a forest's trees: batched
            return F.build_list(val, [join(path, i) for i in range(len(val))],
                                lambda x, p: _dec_plain(d, x, p, depth + 1))
        if depth < MAX_VALUE_DEPTH and P.is_predictor_lists(val):   # HistGradientBoosting's: batched
            return P.build_lists(val, lambda x, i, j: _dec_plain(d, x, join(join(path, i), j), depth + 2))
        return [_dec_plain(d, x, join(path, i), depth + 1) for i, x in enumerate(val)]
    if isinstance(val, dict):
        if A.is_compact(val) and val.get(b"nd", val.get("nd")) is False:
            v = A.decode_compact(val, path)  # a numpy scalar (msgpack-numpy)
            if isinstance(v, np.ndarray):
                raise FormatError(path, "expected a number, got array")
            return v
        if A.is_compact(val):
            if A.is_pickled(val):
                raise FormatError(path, A.PICKLED_ELSEWHERE)
            raise FormatError(path, "unexpected array (types does not name it ndarray)")
        if "class_name" in val or b"class_name" in val:
            return d(val, path, depth + 1)
        return _dec_dict(d, val, {}, path, depth)
    if type(val) is F.Ready:        # built already (the first tree's Tree: _forest.build_list)
        return val.value
    raise FormatError(path, f"unsupported value of type {type_name(val)}")


def _key(k, path):
    if _is_int(k):
        return k
    return key_text(k, path)


def _dec_dict(d, val, tags, path, depth):
    if not isinstance(val, dict) or A.is_compact(val):
        raise FormatError(path, f"expected map, got {type_name(val)}")
    tmap = {}
    for k, t in tags.items():
        tmap[_key(k, join(path, "(tag)"))] = t
    out = {}
    for k, x in val.items():
        key = _key(k, path)
        if key in out:
            raise FormatError(join(path, key), "duplicate key")
        out[key] = dec(d, x, tmap.pop(key, None), None, join(path, key), depth + 1)
    if tmap:
        raise FormatError(path, f"type tag for missing key {next(iter(tmap))!r}")
    return out


def _dec_sparse(val, t, dentry, path, dpath):
    m = A.decode_csr(val, path, dentry, dpath, fmt=t[:3])
    return m


def _dec_objarray(d, val, shape, tags, path, depth):
    if not isinstance(shape, list) or len(shape) > A.MAX_DIMS or not all(
            _is_int(n) and n >= 0 for n in shape):
        raise FormatError(join(path, "(shape)"), "expected a list of non-negative ints")
    if type(val) is F.Batch and type(val.layout) is F.TreeRows and tags is None and len(shape) == 2 \
            and shape[0] == len(val):       # a boosting ensemble's trees, in lockstep row by row
        trees = F.row_trees(val, shape[1])
        if trees is not None:
            items = F.build_list(trees, [join(join(path, i), j) for i in range(shape[0]) for j in range(shape[1])],
                                 lambda x, p: dec(d, x, None, None, p, depth + 1))
            return _objarray_of(items, shape, path)
    val = F.plain(val)
    flat = []

    def walk(v, dims, p):
        if not dims:
            flat.append((v, p))
            return
        if not isinstance(v, list) or len(v) != dims[0]:
            raise FormatError(p, f"expected a list of {dims[0]} items (object array of shape {tuple(shape)})")
        for i, x in enumerate(v):
            walk(x, dims[1:], join(p, i))

    if 0 in shape:
        def empty(v, dims, p):      # walks the file's lists, never the declared sizes
            if not isinstance(v, list) or len(v) != dims[0]:
                raise FormatError(p, f"expected the empty nested lists of shape {tuple(shape)}")
            if dims[0]:
                for i, x in enumerate(v):
                    empty(x, dims[1:], join(p, i))
        empty(val, shape, path)
    else:
        walk(val, shape, path)
    if tags is not None and (not isinstance(tags, list) or len(tags) != len(flat)):
        raise FormatError(path, "object array tags do not match its items")
    if tags is None and len(flat) > 1 and F.is_tree_map(flat[0][0]):   # boosting's trees: batched
        items = F.build_list([v for v, _ in flat], [p for _, p in flat],
                             lambda x, p: dec(d, x, None, None, p, depth + 1))
    else:
        items = [dec(d, v, None if tags is None else tags[i], None, p, depth + 1) for i, (v, p) in enumerate(flat)]
    return _objarray_of(items, shape, path)


def _objarray_of(items, shape, path):
    try:
        a = np.empty(tuple(shape), dtype=object)
    except (ValueError, MemoryError, OverflowError) as e:
        raise FormatError(path, f"bad object array shape: {e}") from None
    if a.size != len(items):
        raise FormatError(path, "object array shape does not match its items")
    for i, x in enumerate(items):
        a.flat[i] = x
    return a


# ----------------------------------------------------------------- model maps

MODEL_KEYS = ("class_name", "types", "params", "xtra", "weights", "dtypes")


class ModelOut:
    """Collects one model map while saving."""

    def __init__(self, w, cname, path):
        self.w, self.cname, self.path = w, cname, path
        self.types, self.dtypes = {}, {}
        self.params, self.xtra, self.weights = {}, {}, {}

    def put(self, section, name, v):
        val, tag, de = enc(self.w, v, join(self.path, f"{section}/{name}"), top=True)
        if tag is not None:
            self.types[name] = tag
        if de is not None:
            self.dtypes[name] = de
        getattr(self, section)[name] = val

    def done(self, weights=None):
        # types/dtypes in section order, so that a loaded model (whose
        # attributes come back xtra first, then weights) re-encodes the same
        order = list(self.params) + list(self.xtra) + list(self.weights)
        self.types = {k: self.types[k] for k in order if k in self.types}
        self.dtypes = {k: self.dtypes[k] for k in order if k in self.dtypes}
        m = {"class_name": self.cname, "types": self.types, "params": self.params, "xtra": self.xtra}
        if self.weights or weights:
            m["weights"] = self.weights
        if self.dtypes:
            m["dtypes"] = self.dtypes
        return m


text_map = A.text_map

# The options of the loads() call running in this thread (skip_pickled,
# unknown_params): per thread, so that a load with skip_pickled=True never
# relaxes another thread's load.
OPTIONS = threading.local()

# Fitted attributes that predict/transform never read: a pickled one can be
# dropped (load(..., skip_pickled=True)).
NOT_FOR_PREDICTION = frozenset({
    "feature_names_in_", "n_iter_", "loss_curve_", "validation_scores_",
    "best_validation_score_", "best_loss_", "stop_words_",
})


def drop_pickled(section, path, sub=None):
    """The attributes of a model's xtra or weights map (a str-keyed dict):
    a pickled object array (msgpack-numpy writes object arrays as a pickle)
    is never unpickled: it is a FormatError naming it, or, with
    load(..., skip_pickled=True) and an attribute prediction does not need
    (NOT_FOR_PREDICTION), dropped from section with a warning naming it."""
    for name in [n for n, v in section.items() if type(v) is dict and A.is_pickled(v)]:
        p = join(join(path, sub) if sub else path, name)
        if getattr(OPTIONS, "skip_pickled", False) and name in NOT_FOR_PREDICTION:
            warnings.warn(f"{p}: {A.PICKLED}; dropped (prediction does not need it)", UserWarning,
                          stacklevel=2)
            del section[name]
            continue
        why = "load(..., skip_pickled=True) drops it" if name in NOT_FOR_PREDICTION else "prediction needs it"
        raise FormatError(p, f"{A.PICKLED}; {why}")


class ModelIn:
    """One model map being loaded: its sections, decoded on demand."""

    def __init__(self, build, fields, path, depth):
        self.build, self.path, self.depth = build, path, depth
        self.cname = fields["class_name"]
        for k in fields:
            if k not in MODEL_KEYS:
                raise FormatError(join(path, k), f"unexpected top-level key for {self.cname}")
        self.types = text_map(fields["types"], path, "types") if "types" in fields else {}
        self.dtypes = text_map(fields["dtypes"], path, "dtypes") if "dtypes" in fields else {}
        self.sections = {}
        for s in ("params", "xtra", "weights"):
            self.sections[s] = text_map(fields[s], path, s) if s in fields else {}
        drop_pickled(self.sections["xtra"], path, "xtra")
        drop_pickled(self.sections["weights"], path, "weights")

    def names(self, section):
        return list(self.sections[section])

    def attr_names(self):
        """(section, name) of every fitted attribute; a name in both is refused."""
        seen = {}
        for s in ("xtra", "weights"):
            for n in self.sections[s]:
                if n in seen:
                    raise FormatError(join(self.path, f"{s}/{n}"), "attribute given twice")
                seen[n] = s
        return seen

    def has(self, section, name):
        return name in self.sections[section]

    def get(self, section, name, required=True, default=None):
        values = self.sections[section]
        if name in values:
            v = values[name]
            tag = self.types.get(name)
            if tag is None:
                if type(v) in AS_IS:        # what dec() would return it as, unchanged
                    return v
                if type(v) is bytes:        # a str (as dec() decodes it, when it is UTF-8)
                    try:
                        return v.decode("utf-8")
                    except UnicodeDecodeError:
                        pass
            return dec(self.build, v, tag, self.dtypes.get(name), join(self.path, f"{section}/{name}"),
                       self.depth, join(self.path, f"dtypes/{name}"))
        if required:
            raise FormatError(join(self.path, f"{section}/{name}"), "missing")
        return default

    def only(self, allowed):
        """Refuse any key of any section that is not in allowed[section]."""
        for s, names in self.sections.items():
            for n in names:
                if n not in allowed.get(s, ()):
                    raise FormatError(join(self.path, f"{s}/{n}"), f"{n!r} is not allowed in {self.cname}")
