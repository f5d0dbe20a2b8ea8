"""Model map -> estimator (DESIGN section 2): loading, with every check; saving is _save.py."""

import contextlib
import functools
import types as _pytypes
import warnings

import msgpack
import numpy as np
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from . import _arrays as A
from . import _checks
from . import _forest as F
from . import _generic as G
from . import _registry as R
from . import _schema
from . import _unpack
from ._arrays import SCALAR_TYPE_NAMES, as_text, key_text, type_name
from ._helpers import HELPERS, tree_exact
from ._specs import BY_NAME, TYPE_NAMES
from .errors import FormatError

MAX_MODEL_DEPTH = 64    # models inside models (and containers) inside ...
MAX_PLAIN_DEPTH = 32    # nesting of plain params data

# Set by the schema generator (python/gen_mpk_schema.py) to a dict: then the
# generic codec accepts every class of _registry.CLASS_MODULES and records
# the attribute kinds it sees instead of checking them.
LEARN = None
MODEL_KEYS = ("class_name", "types", "params", "xtra", "weights", "dtypes")


def _join(path, name):
    return f"{path}/{name}" if path else str(name)


# ======================================================================
# loading
# ======================================================================

def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _plain(value, path, depth=0):
    """Plain data: nil, bool, int, float, str, list, map (str or int keys)."""
    if depth > MAX_PLAIN_DEPTH:
        raise FormatError(path, "nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return as_text(value, path)
    if isinstance(value, list):
        return [_plain(v, _join(path, i), depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if A.is_compact(value) and not _compact_nd(value):  # a numpy scalar (msgpack-numpy)
            return _numpy_scalar(value, path, None, "biufc")
        if A.is_compact(value):
            if A.is_pickled(value):
                raise FormatError(path, A.PICKLED_ELSEWHERE)
            raise FormatError(path, "unexpected array (types does not name it ndarray)")
        out = {}
        for k, v in value.items():
            if _is_int(k):
                key = k
            else:
                key = key_text(k, path)
            out[key] = _plain(v, _join(path, key), depth + 1)
        return out
    raise FormatError(path, f"unsupported value of type {type_name(value)}")


def _numpy_scalar(value, path, tname, kinds):
    """A number, optionally typed by the types map ("float64") or stored as a
    msgpack-numpy scalar ({nd: false, ...})."""
    if A.is_compact(value):
        v = A.decode_compact(value, path)
        if isinstance(v, np.ndarray):
            raise FormatError(path, "expected a number, got array")
        if v.dtype.kind not in kinds:
            raise FormatError(path, f"expected a number, got {v.dtype}")
        return v
    if "f" in kinds:
        ok = _is_num(value)
    else:
        ok = _is_int(value)
    if not ok:
        raise FormatError(path, f"expected {'float' if 'f' in kinds else 'int'}, got {type_name(value)}")
    if tname in SCALAR_TYPE_NAMES:
        t = SCALAR_TYPE_NAMES[tname]
        if np.dtype(t).kind not in kinds:
            raise FormatError(path, f"types says {tname} for a value that must be "
                              f"{'a float' if 'f' in kinds else 'an int'}")
        try:
            return t(value)
        except OverflowError:
            raise FormatError(path, f"value does not fit {tname}") from None
    if tname not in (None, "int", "float"):
        raise FormatError(path, f"types says {tname!r} for a number")
    return float(value) if "f" in kinds and not _is_int(value) else value


def _decode_attr(attr, value, path, tname, dspec, dpath):
    kind = attr.kind
    if kind in ("array", "labels"):
        a = A.decode_array(value, path, dspec, dpath)
        allowed = "biuf" if kind == "array" else "biufUS"
        if a.dtype.kind not in allowed:
            raise FormatError(path, f"arrays of dtype {a.dtype} are not allowed here")
        return a
    if kind == "opt_array":
        return None if value is None else _decode_attr_kind("array", attr, value, path, tname, dspec, dpath)
    if kind == "array_or_num":
        if isinstance(value, list) or (A.is_compact(value) and _compact_nd(value)):
            return _decode_attr_kind("array", attr, value, path, tname, dspec, dpath)
        return _numpy_scalar(value, path, tname, "fiu")
    if kind == "int_or_array":
        if isinstance(value, list) or (A.is_compact(value) and _compact_nd(value)):
            return _decode_attr_kind("array", attr, value, path, tname, dspec, dpath)
        return _numpy_scalar(value, path, tname, "iu")
    if kind == "array_list":
        if not isinstance(value, list):
            raise FormatError(path, f"expected list of arrays, got {type_name(value)}")
        specs = dspec if isinstance(dspec, list) and len(dspec) == len(value) else [None] * len(value)
        out = []
        for i, v in enumerate(value):
            a = A.decode_array(v, _join(path, i), specs[i], _join(dpath, i))
            if a.dtype.kind not in "biuf":
                raise FormatError(_join(path, i), f"arrays of dtype {a.dtype} are not allowed here")
            out.append(a)
        return out
    if kind == "int":
        return _numpy_scalar(value, path, tname, "iu")
    if kind == "float":
        return _numpy_scalar(value, path, tname, "fiu")
    if kind == "opt_float":
        return None if value is None else _numpy_scalar(value, path, tname, "fiu")
    if kind == "bool":
        if not isinstance(value, bool):
            raise FormatError(path, f"expected bool, got {type_name(value)}")
        return value
    if kind == "str":
        s = as_text(value, path)
        if attr.choices and s not in attr.choices:
            raise FormatError(path, f"{s!r} is not one of {', '.join(attr.choices)}")
        return s
    if kind in ("float_list", "opt_float_list"):
        if value is None and kind == "opt_float_list":
            return None
        if not isinstance(value, list):
            raise FormatError(path, f"expected list of numbers, got {type_name(value)}")
        for i, v in enumerate(value):
            if not _is_num(v):
                raise FormatError(_join(path, i), f"expected number, got {type_name(v)}")
        return [float(v) for v in value]
    if kind == "vocab":
        if not isinstance(value, dict):
            raise FormatError(path, f"expected map of str to int, got {type_name(value)}")
        if any(value is v for v in getattr(G.OPTIONS, "vocabularies", ())):
            return value                    # checked by the C decoder (str keys, a permutation)
        vocab = _fast_vocab(value)
        if vocab is None:       # slow path, for the precise error message
            vocab = {}
            for k, v in value.items():
                term = key_text(k, path)
                if not _is_int(v):
                    raise FormatError(_join(path, term), f"expected int, got {type_name(v)}")
                if term in vocab:
                    raise FormatError(_join(path, term), "duplicate term")
                vocab[term] = v
        idx = vocab.values()
        n = len(vocab)
        if n and (min(idx) < 0 or max(idx) >= n or len(set(idx)) != n):
            raise FormatError(path, f"indices must be a permutation of 0..{n - 1}")
        return vocab
    if kind == "csr":
        return A.decode_csr(value, path, dspec, dpath)
    if kind == "str_objarray":
        if not isinstance(value, list):
            raise FormatError(path, f"expected list of str, got {type_name(value)}")
        return np.array([as_text(v, _join(path, i)) for i, v in enumerate(value)], dtype=object)
    raise AssertionError(kind)


def _fast_vocab(value):
    """map of str/bin -> int, decoded in bulk; None if anything is off."""
    vals = value.values()
    if vals and set(map(type, vals)) != {int}:
        return None
    if set(map(type, value)) == {str}:
        return value
    try:
        keys = list(map(bytes.decode, value))      # old raw / bin keys (raw=True)
    except (UnicodeDecodeError, TypeError):
        return None
    vocab = dict(zip(keys, vals))
    return vocab if len(vocab) == len(vals) else None


def _decode_attr_kind(kind, attr, *args):
    from ._specs import Attr
    return _decode_attr(Attr(attr.name, kind), *args)


def _compact_nd(value):
    nd = value.get(b"nd", value.get("nd"))
    return nd is not False


_text_map = A.text_map


class ParamDefaultWarning(UserWarning):
    """A parameter missing from the archive got the installed class's default."""


def _unknown_param(p, name, cname):
    if getattr(G.OPTIONS, "unknown_params", "error") == "drop":
        warnings.warn(f"{p}: {name!r} is not a parameter of the installed {cname}; dropped", UserWarning,
                      stacklevel=4)
        return
    raise FormatError(p, f"{name!r} is not a parameter of {cname} "
                      f"(load(..., unknown_params='drop') drops it)")


def _missing_params(allowed, given, path, cname):
    for name in sorted(frozenset(allowed).difference(given)):
        warnings.warn(f"{_join(path, 'params/' + name)}: not in the archive (written by another "
                      f"scikit-learn?); {cname}'s default is used", ParamDefaultWarning, stacklevel=4)


_PARAM_NAMES = {}


def _param_names(cls):
    """The constructor's parameter names (a frozenset), looked up once per
    class (inspect.signature is slow)."""
    names = _PARAM_NAMES.get(cls)
    if names is None:
        if hasattr(cls, "_get_param_names"):
            names = cls._get_param_names()
        else:
            import inspect
            sig = inspect.signature(cls.__init__)
            names = [p.name for p in sig.parameters.values()
                     if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        names = _PARAM_NAMES[cls] = frozenset(names)
    return names


# (class, name, type, value) of the parameter values scikit-learn's own
# validation (est._validate_params()) has accepted in this process (a NaN
# as _NAN: each decoded NaN is another object, equal to none, so that a
# model with missing_values=nan was validated afresh at every load).
# validate_parameter_constraints checks each parameter on its own against the
# class's fixed _parameter_constraints, so an immutable value (None, bool,
# int, float, str, a flat tuple or list of those -- HistGradientBoosting's
# categorical_features=[3]: a key holds its items, not the list --, a numpy scalar such as Lars's
# eps=np.float64(2.2e-16), a numpy scalar type such as np.float64, a function
# or a ufunc -- only the allow-listed ones load, one object each: SelectKBest's
# score_func; its type is part of the key, so 1, 1.0 and True stay apart)
# that passed once passes again: a model whose every parameter is in here
# skips the call.  Anything else is validated.
_VALID_PARAMS = set()
_VALID_PARAMS_MAX = 8192
_SCALARS = (type(None), bool, int, float, str)
_SCALAR_TYPES = frozenset(SCALAR_TYPE_NAMES.values())    # dtype=np.float64 and the like


_NAN = object()         # a NaN in a key: NaNs are equal to nothing, but all validate alike

# The parameter sets, whole, of a class that passed (a key of their names,
# types and values, when every value is a plain scalar or a numpy scalar,
# as _param_key keys them one by one): one lookup, where a key per
# parameter was 5-8 us of a forest's load for its four estimators.  A NaN
# makes a key equal to no other, so such a set goes the per-parameter way.
_VALID_SETS = set()
_SET_TYPES = frozenset(_SCALARS) | _SCALAR_TYPES


def _params_key(cls, params):
    types = tuple(map(type, params.values()))
    if not _SET_TYPES.issuperset(types):
        return None
    return cls, tuple(params), types, tuple(params.values())


def _param_key(cls, name, v):
    t = type(v)
    if t in _SCALARS:
        return (cls, name, t, _NAN if v != v else v)
    if (t is tuple or t is list) and all(type(x) in _SCALARS for x in v):     # (a list's items as they are now)
        return (cls, name, t, tuple(map(type, v)), tuple(_NAN if x != x else x for x in v))
    if t in _SCALAR_TYPES:      # a numpy scalar
        return (cls, name, t, _NAN if v != v else v)
    if (t is type and v in _SCALAR_TYPES) or t in _FUNCTIONS:
        return (cls, name, t, v)
    return None


_FUNCTIONS = (_pytypes.FunctionType, _pytypes.BuiltinFunctionType, np.ufunc)


def _validate_params(est, cls, params, path, complete):
    """scikit-learn's parameter validation of est, built as cls(**params);
    complete: params names every parameter of cls (nothing defaulted)."""
    if not hasattr(cls, "_parameter_constraints") or not hasattr(est, "_validate_params"):
        return
    keys = whole = None
    if complete:
        whole = _params_key(cls, params)
        if whole is not None and whole in _VALID_SETS:
            return
        keys = [_param_key(cls, n, v) for n, v in params.items()]
        if None in keys:
            keys = None
        elif _VALID_PARAMS.issuperset(keys):
            _valid_set(whole)
            return
        # a parameter holding an estimator, a RandomState, an array: each
        # checked on its own, as scikit-learn does, with the class's
        # constraint objects made once (scikit-learn's own call makes them
        # all again and inspects the class's signature: 0.1-0.3 ms a
        # meta-estimator); only a refusal goes to it, for its message
        if check_param_values(cls, {n: (v,) for n, v in params.items()}):
            _valid_set(whole)
            return
    try:
        est._validate_params()
    except (TypeError, ValueError) as e:
        raise FormatError(_join(path, "params"), str(e)) from None
    if keys:
        if len(_VALID_PARAMS) + len(keys) > _VALID_PARAMS_MAX:
            _VALID_PARAMS.clear()
        _VALID_PARAMS.update(keys)
    _valid_set(whole)


def _valid_set(key):
    """Remember a parameter set that passed (its _params_key, or None)."""
    if key is not None and all(v == v for v in key[-1]):      # (no NaN: it would never match)
        if len(_VALID_SETS) >= _VALID_PARAMS_MAX:
            _VALID_SETS.clear()
        _VALID_SETS.add(key)


_NO_VALIDATION = object()
_CONSTRAINTS = {}       # (class, parameter) -> its scikit-learn constraint objects


def check_param_values(cls, values):
    """values: {parameter: [value, ...]}.  True when every value passes
    scikit-learn's constraints for its parameter, checked as
    validate_parameter_constraints checks one parameter (the value is valid
    when one of the constraints is satisfied; "no_validation" or no entry:
    anything is), with the class's constraints made once, and the values
    already accepted (_VALID_PARAMS) skipped."""
    constraints = getattr(cls, "_parameter_constraints", None)
    if constraints is None:
        return True
    new = []
    for name, vals in values.items():
        made = _CONSTRAINTS.get((cls, name))
        if made is None:
            from sklearn.utils._param_validation import make_constraint
            if name not in constraints or constraints[name] == "no_validation":
                made = _NO_VALIDATION
            else:
                made = tuple(make_constraint(c) for c in constraints[name])
            _CONSTRAINTS[(cls, name)] = made
        if made is _NO_VALIDATION:
            continue
        for v in vals:
            key = _param_key(cls, name, v)
            if key is not None and key in _VALID_PARAMS:
                continue
            if not any(c.is_satisfied_by(v) for c in made):
                return False
            if key is not None:
                new.append(key)
    if len(_VALID_PARAMS) + len(new) > _VALID_PARAMS_MAX:
        _VALID_PARAMS.clear()
    _VALID_PARAMS.update(new)
    return True


def _decode_params(spec, raw, types, dtypes, path, depth):
    cls = spec.cls
    allowed = _param_names(cls)
    params = {}
    raw = _text_map(raw, _join(path, "params"))
    _missing_params(allowed, raw, path, spec.name)
    special = spec.name == "Pipeline"
    for name, value in raw.items():
        if type(value) in G.AS_IS and name in allowed and not special and name not in types:
            params[name] = value        # what _plain gives such a value back as, unchanged
            continue
        p = _join(_join(path, "params"), name)
        if name not in allowed:
            _unknown_param(p, name, spec.name)
            continue
        t = types.get(name)
        if spec.name == "Pipeline" and name == "steps":
            params[name] = _decode_steps(value, p, depth)
        elif spec.name == "Pipeline" and name == "memory":
            if value is not None:
                raise FormatError(p, "only memory=None is allowed (no caching directories)")
            params[name] = None
        elif t == "ndarray":
            params[name] = A.decode_array(value, p, dtypes.get(name), _join(_join(path, "dtypes"), name))
        elif t == "tuple":
            if not isinstance(value, list):
                raise FormatError(p, f"expected list (tuple), got {type_name(value)}")
            params[name] = tuple(_plain(value, p))
        elif t == "type":
            s = as_text(value, p, "dtype name")
            if s not in SCALAR_TYPE_NAMES:
                raise FormatError(p, f"type {s!r} is not allowed")
            params[name] = SCALAR_TYPE_NAMES[s]
        elif t in SCALAR_TYPE_NAMES:
            kind = np.dtype(SCALAR_TYPE_NAMES[t]).kind
            if kind == "b":
                if not isinstance(value, bool):
                    raise FormatError(p, f"expected bool, got {type_name(value)}")
                params[name] = np.bool_(value)
            else:
                params[name] = _numpy_scalar(value, p, t, "fiu" if kind == "f" else "iu")
        else:
            params[name] = _plain(value, p)
    try:
        est = cls(**params)
    except (TypeError, ValueError) as e:
        raise FormatError(_join(path, "params"), f"rejected by {spec.name}: {e}") from None
    _validate_params(est, cls, params, path, len(params) == len(allowed))
    return est


def _decode_steps(value, path, depth):
    if not isinstance(value, list) or not value:
        raise FormatError(path, "expected a non-empty list of [name, model] pairs")
    steps, names = [], set()
    for i, item in enumerate(value):
        p = _join(path, i)
        if not isinstance(item, list) or len(item) != 2:
            raise FormatError(p, "expected [name, model]")
        name = as_text(item[0], _join(p, 0), "step name")
        if name in names or "__" in name or not name:
            raise FormatError(_join(p, 0), f"bad or duplicate step name {name!r}")
        names.add(name)
        model = item[1]
        if model is None:
            est = None
        elif isinstance(model, (bytes, str)) and as_text(model, _join(p, 1)) == "passthrough":
            est = "passthrough"
        else:
            est = _build(model, _join(p, 1), depth + 1)
        steps.append((name, est))
    return steps


def _build(m, path, depth):
    """Model map -> fitted estimator.  Everything is checked before the
    estimator is assembled; an error anywhere raises FormatError."""
    if depth > MAX_MODEL_DEPTH:
        raise FormatError(path, "models nested too deeply")
    fields = _text_map(m, path or "")
    if "class_name" not in fields:
        raise FormatError(_join(path, "class_name"), "missing (not a model map)")
    cname = as_text(fields["class_name"], _join(path, "class_name"))
    spec = BY_NAME.get(cname)
    if spec is None:
        if cname in HELPERS or cname in _schema.SCHEMA or (LEARN is not None and cname in R.CLASS_MODULES):
            twins = getattr(G.OPTIONS, "twins", None)
            est = _twin(twins, m) if twins else None
            if est is None:
                fields["class_name"] = cname
                est = _build_generic(cname, fields, path, depth)
                if twins is not None:
                    _remember(twins, m, fields, est)
            return est
        raise FormatError(_join(path, "class_name"), f"class {cname!r} is not on the allow-list")
    for k in fields:
        if k not in MODEL_KEYS and k not in spec.extra_keys:
            raise FormatError(_join(path, k), f"unexpected top-level key for {cname}")

    types = {}
    if "types" in fields:
        tp = _join(path, "types")
        for k, v in _text_map(fields["types"], tp).items():
            t = as_text(v, _join(tp, k), "type name")
            if t not in TYPE_NAMES and t not in SCALAR_TYPE_NAMES:
                raise FormatError(_join(tp, k), f"unknown type name {t!r}")
            types[k] = t
    dtypes = _text_map(fields["dtypes"], _join(path, "dtypes")) if "dtypes" in fields else {}
    dpath = _join(path, "dtypes")

    est = _decode_params(spec, fields.get("params", {}), types, dtypes, path, depth)

    values = {}
    for section in ("xtra", "weights"):
        if section not in fields:
            continue
        sp_ = _join(path, section)
        attrs = _text_map(fields[section], sp_)
        G.drop_pickled(attrs, sp_)
        for name, value in attrs.items():
            p = _join(sp_, name)
            attr = spec.attrs.get(name)
            if attr is None:
                raise FormatError(p, f"{name!r} is not an allowed attribute of {cname}")
            if name in values:
                raise FormatError(p, "attribute given twice")
            values[name] = _decode_attr(attr, value, p, types.get(name), dtypes.get(name),
                                        _join(dpath, name))
    if not values and spec.name != "Pipeline" and not any(k in fields for k in spec.extra_keys):
        return est              # an unfitted estimator (a parameter of a meta-estimator)
    for attr in spec.attrs.values():
        if attr.required and attr.name not in values:
            raise FormatError(_join(path, f"{attr.section}/{attr.name}"), "missing")
    _check(spec, values, path)

    extras = {}
    if cname == "MLPClassifier":
        extras["_label_binarizer"] = _label_binarizer(fields, values, dtypes, path)
    elif cname == "TfidfVectorizer":
        tp = _join(path, "transformer")
        if "transformer" not in fields:
            raise FormatError(tp, "missing")
        t = _build(fields["transformer"], tp, depth + 1)
        if type(t).__name__ != "TfidfTransformer":
            raise FormatError(_join(tp, "class_name"), "expected TfidfTransformer")
        diag = getattr(t, "_idf_diag", None)
        if diag is not None and diag.shape[0] != len(values["vocabulary_"]):
            raise FormatError(_join(tp, "xtra/_idf_diag"),
                              f"size {diag.shape[0]} does not match the vocabulary ({len(values['vocabulary_'])})")
        extras["_tfidf"] = t
    elif cname == "TfidfTransformer":
        d = values.get("_idf_diag")
        if est.use_idf and d is None:
            raise FormatError(_join(path, "xtra/_idf_diag"), "missing (use_idf is true)")
        if d is not None and d.shape[0] != d.shape[1]:
            raise FormatError(_join(path, "xtra/_idf_diag"), "must be square")
    elif cname == "KMeans":
        extras["_n_threads"] = _openmp_effective_n_threads()
        extras.setdefault("_n_features_out", values["cluster_centers_"].shape[0])

    # all checked: assemble
    for name, v in values.items():
        setattr(est, name, v)
    for name, v in extras.items():
        if name == "_n_features_out" and name in values:
            continue
        setattr(est, name, v)
    return est


# Unfitted estimators built so far in this load, (map, estimator): a
# forest's estimator and _estimator are one object in the fitted model,
# two identical maps in the archive, and every ensemble's are.  A later map
# identical to one of them (_unpack.identical: the same MsgPack) is built
# as a copy of its estimator, which holds nothing but its parameters, all
# immutable: what building it again would give (15 us a tree class).
_TWINS_MAX = 8


def _twin(twins, m):
    for prev, est in twins:
        if len(prev) == len(m) and _unpack.identical(prev, m):
            new = type(est).__new__(type(est))
            new.__dict__.update(est.__dict__)
            return new
    return None


def _remember(twins, m, fields, est):
    """Keep est, built from the map m (fields: its top keys as text), for
    _twin when it is an unfitted estimator whose map names every
    parameter and no other (so building it gave no warning) and whose
    state is plain scalars."""
    if fields.get("xtra") or fields.get("weights") or len(twins) >= _TWINS_MAX \
            or fields.keys() - _UNFITTED_KEYS or not hasattr(est, "get_params"):
        return
    if not all(type(v) in _SCALARS for v in vars(est).values()):
        return
    given, names = fields.get("params"), _param_names(type(est))
    if type(given) is dict and len(given) == len(names) and set(key_text(k, "") for k in given) == names:
        twins.append((m, est))


_UNFITTED_KEYS = frozenset(("class_name", "types", "params", "xtra", "weights"))


@functools.lru_cache(maxsize=None)
def _skip(cname):
    """The attributes of cname that are never stored (a frozenset, made
    once per class)."""
    return frozenset(R.SKIP["*"]) | frozenset(R.SKIP.get(cname, ()))


def _build_generic(cname, fields, path, depth):
    if cname == "Tree":
        t = tree_exact(fields)      # as mpk writes it: built without the per-value decoding
        if t is not None:
            return t
    mi = G.ModelIn(_build, fields, path, depth)
    if cname in HELPERS:
        return HELPERS[cname][1](mi)
    cls = R.resolve(R.CLASS_MODULES, cname)
    schema = _schema.SCHEMA.get(cname, {}) if LEARN is None else {}
    plain = cname in G.PLAIN
    pnames = frozenset() if plain else _param_names(cls)
    params = {}
    if not plain:
        _missing_params(pnames, mi.names("params"), path, cname)
    types = mi.types
    for n, v in mi.sections["params"].items():
        if n not in pnames:
            _unknown_param(_join(path, f"params/{n}"), n, cname)
            continue
        # an untagged plain value as mi.get gives it back, without the call
        params[n] = v if type(v) in G.AS_IS and n not in types else mi.get("params", n)
    skip = _skip(cname) if LEARN is None else ()
    attrs = {}
    for n, section in mi.attr_names().items():
        if LEARN is None and (n not in schema or n in skip or n in pnames):
            raise FormatError(_join(path, f"{section}/{n}"), f"{n!r} is not an allowed attribute of {cname}")
        v = mi.get(section, n)
        k = G.kind_of(v)
        if LEARN is None and k not in schema[n]:
            raise FormatError(_join(path, f"{section}/{n}"),
                              f"expected {' or '.join(G.KIND_NAMES[c] for c in schema[n])}, got {G.KIND_NAMES[k]}")
        attrs[n] = v
    if plain:
        est = cls.__new__(cls)
    else:
        try:
            est = cls(**params)
        except (TypeError, ValueError) as e:
            raise FormatError(_join(path, "params"), f"rejected by {cname}: {e}") from None
        _validate_params(est, cls, params, path, len(params) == len(pnames))
    _checks.check(cname, est, attrs, path)
    est.__dict__.update(attrs)
    _checks.post(cname, est, path, schema)
    return est


def _label_binarizer(fields, values, dtypes, path):
    p = _join(path, "label_binarizer_classes_")
    if "label_binarizer_classes_" in fields:
        from ._specs import Attr
        classes = _decode_attr(Attr("label_binarizer_classes_", "labels"), fields["label_binarizer_classes_"],
                               p, None, dtypes.get("label_binarizer_classes_"),
                               _join(_join(path, "dtypes"), "label_binarizer_classes_"))
    else:
        classes = values["classes_"]
    if classes.ndim != 1:
        raise FormatError(p, "classes must be 1-d")
    ytype = "multiclass" if len(classes) > 2 else "binary"
    if "label_binarizer_y_type_" in fields:
        pt = _join(path, "label_binarizer_y_type_")
        ytype = as_text(fields["label_binarizer_y_type_"], pt)
        if ytype not in ("binary", "multiclass", "multilabel-indicator"):
            raise FormatError(pt, f"unknown target type {ytype!r}")
    n_out = values["n_outputs_"]
    want = len(classes) if (ytype != "binary" or len(classes) > 2) else 1
    if n_out != want:
        raise FormatError(_join(path, "xtra/n_outputs_"), f"{n_out} does not match {len(classes)} classes")
    lb = LabelBinarizer()
    lb.classes_ = classes
    lb.y_type_ = ytype
    lb.sparse_input_ = False
    return lb


def _check(spec, values, path):
    """Cheap consistency checks, so that a loaded model can predict."""
    def at(name):
        return _join(path, f"{spec.attrs[name].section}/{name}")

    nf = values.get("n_features_in_")
    if nf is not None and spec.features:
        name, axis = spec.features
        a = values.get(name)
        if isinstance(a, list):
            a = a[0] if a else None
        if isinstance(a, np.ndarray):
            if a.ndim == 0 or a.shape[axis] != nf:
                raise FormatError(at(name), f"shape {a.shape} does not match n_features_in_={nf}")
    if "coefs_" in spec.attrs:
        coefs, ints = values["coefs_"], values["intercepts_"]
        if len(coefs) != len(ints) or len(coefs) != values["n_layers_"] - 1 or not coefs:
            raise FormatError(at("coefs_"), "coefs_, intercepts_ and n_layers_ disagree")
        prev = None
        for i, (c, b) in enumerate(zip(coefs, ints)):
            if c.ndim != 2 or (prev is not None and c.shape[0] != prev):
                raise FormatError(_join(at("coefs_"), i), f"shape {c.shape} does not follow the previous layer")
            if b.shape != (c.shape[1],):
                raise FormatError(_join(at("intercepts_"), i), f"shape {b.shape} does not match coefs_ {c.shape}")
            prev = c.shape[1]
        if prev != values["n_outputs_"]:
            raise FormatError(at("n_outputs_"), f"{values['n_outputs_']} does not match the last layer ({prev})")
    if "classes_" in values and "coef_" in values:
        k, c = values["classes_"], values["coef_"]
        if k.ndim != 1 or len(k) < 2:
            raise FormatError(at("classes_"), "a classifier needs at least two classes")
        rows = c.shape[0] if c.ndim == 2 else -1
        if rows != (1 if len(k) == 2 else len(k)):
            raise FormatError(at("coef_"), f"shape {c.shape} does not match {len(k)} classes")
    if "coef_" in values and "intercept_" in values and isinstance(values["intercept_"], np.ndarray):
        c, b = values["coef_"], values["intercept_"]
        rows = c.shape[0] if c.ndim == 2 else 1
        if c.ndim not in (1, 2) or b.ndim > 1 or (b.ndim == 1 and c.ndim == 2 and b.shape[0] != rows):
            raise FormatError(at("intercept_"), f"shape {b.shape} does not match coef_ {c.shape}")


def loads(data, where="", unknown_params="error", skip_pickled=False):
    """Decode archive bytes to a fitted estimator.

    A parameter the archive lacks gets the installed class's default, with a
    ParamDefaultWarning naming it; one the installed class does not know is a
    FormatError, or is dropped with a warning when unknown_params="drop".

    A pickled object array (msgpack-numpy writes object arrays, such as the
    feature_names_in_ of a model fitted on a DataFrame, as a pickle) is never
    unpickled: it is a FormatError naming it; with skip_pickled=True one
    that prediction does not need (NOT_FOR_PREDICTION) is dropped with a
    UserWarning naming it instead."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("loads() needs bytes")
    with _options(unknown_params, skip_pickled):
        return _from(_unpack.unpack, data, where)


@contextlib.contextmanager
def _options(unknown_params, skip_pickled):
    """A load's options, for this thread (see _generic.OPTIONS)."""
    if unknown_params not in ("error", "drop"):
        raise ValueError("unknown_params must be 'error' or 'drop'")
    opts = G.OPTIONS
    saved = getattr(opts, "unknown_params", "error"), getattr(opts, "skip_pickled", False)
    opts.unknown_params, opts.skip_pickled = unknown_params, bool(skip_pickled)
    try:
        yield
    finally:
        opts.unknown_params, opts.skip_pickled = saved


# Fitted attributes whose pickled form load(..., skip_pickled=True) drops
# (kept here under its old name; the check is _generic.drop_pickled, run on
# every model's xtra and weights maps while they are decoded).
NOT_FOR_PREDICTION = G.NOT_FOR_PREDICTION


def _from(decode, source, where):
    """The estimator from decode(source): _unpack.unpack of bytes or
    unpack_file of a file."""
    # lists under estimators_ decoded in lockstep with their first tree
    # (_forest.py), unless the tests switched the batch off
    lockstep = (F.LOCK_KEYS, F.lockstep_hook(_unpack.rereader(source))) if F._ENABLED[0] else None
    try:
        obj, _, vocabularies, more = decode(source, lockstep)
    except (ValueError, TypeError, msgpack.exceptions.UnpackException, RecursionError) as e:
        raise FormatError("", f"{where}not a valid MsgPack archive ({str(e) or type(e).__name__})") from None
    if more:
        raise FormatError("", f"{where}bytes after the end of the archive")
    if not isinstance(obj, dict):
        raise FormatError("", f"{where}expected a model map at the top level, got {type_name(obj)}")
    opts = G.OPTIONS
    saved = getattr(opts, "vocabularies", ()), getattr(opts, "twins", None)
    opts.vocabularies = vocabularies        # alive in obj while it is built: identity is safe
    opts.twins = [] if F._ENABLED[0] else None     # (off where the tests compare with the generic way)
    try:
        return _build(obj, "", 0)
    except RecursionError:
        raise FormatError("", f"{where}nested too deeply") from None
    finally:
        opts.vocabularies, opts.twins = saved


def load(path, unknown_params="error", skip_pickled=False):
    """Read a model archive and return the fitted estimator.

    Raises FormatError (a ValueError) naming the place inside the archive for
    anything that is not a valid archive of an allow-listed class, pickled
    object arrays included; skip_pickled=True drops those prediction does
    not need, with a warning (see loads)."""
    with open(path, "rb") as f, _options(unknown_params, skip_pickled):
        return _from(_unpack.unpack_file, f, "")    # read in pieces by the C decoder, never whole
