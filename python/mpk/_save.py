"""Saving: a fitted estimator as a model archive (mpk.save, mpk.dumps), the
counterpart of _model.py's loading.  Hand-written specs (_specs.py) and
helpers (_helpers.py) first, the generic layout (_generic.py) for every
other allow-listed class."""

import os
import tempfile

import msgpack
import numpy as np
from sklearn.base import BaseEstimator

from . import _arrays as A
from . import _generic as G
from . import _model as M
from . import _registry as R
from . import _schema
from ._arrays import SCALAR_TYPE_NAMES
from ._helpers import HELPERS
from ._specs import BY_CLASS


def _py_scalar(v):
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _enc_plain(v, path):
    v = _py_scalar(v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_enc_plain(x, M._join(path, i)) for i, x in enumerate(v)]
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            k = _py_scalar(k)
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"{path}: map keys must be str or int, got {type(k).__name__}")
            out[k] = _enc_plain(x, M._join(path, k))
        return out
    raise TypeError(f"{path}: cannot store a value of type {type(v).__name__}")


class _Writer:
    def __init__(self, mode):
        self.mode = mode

    def model(self, est, path=""):
        spec = BY_CLASS.get(type(est))
        if spec is None:
            return self.generic(est, path)
        state = vars(est)
        unfitted = not any(a.name in state for a in spec.attrs.values() if a.name != "n_features_in_")
        if path and unfitted and spec.name != "Pipeline":
            # an estimator given as a parameter (Bagging's estimator, ...): params only
            types, dtypes = {}, {}
            params = {name: self.param(spec, name, v, types, dtypes, M._join(M._join(path, "params"), name))
                      for name, v in est.get_params(deep=False).items()}
            m = {"class_name": spec.name, "types": types, "params": params, "xtra": {}}
            if dtypes:
                m["dtypes"] = dtypes
            return m
        for attr in spec.attrs.values():
            if attr.required and attr.name not in state:
                raise ValueError(f"{path or 'estimator'}: {spec.name} is not fitted "
                                 f"(no {attr.name})")
        if spec.name == "TfidfVectorizer" and "_tfidf" not in state:
            raise ValueError(f"{path or 'estimator'}: TfidfVectorizer is not fitted")
        types, dtypes = {}, {}
        params = {}
        for name, v in est.get_params(deep=False).items():
            params[name] = self.param(spec, name, v, types, dtypes, M._join(M._join(path, "params"), name))
        xtra, weights = {}, {}
        for attr in spec.attrs.values():
            if not attr.save or attr.name not in state:
                continue
            section = weights if attr.section == "weights" else xtra
            section[attr.name] = self.attr(attr, state[attr.name], types, dtypes,
                                           M._join(M._join(path, attr.section), attr.name))
        m = {"class_name": spec.name, "types": types, "params": params, "xtra": xtra}
        if spec.has_weights:
            m["weights"] = weights
        if spec.name == "TfidfVectorizer":
            m["transformer"] = self.model(est._tfidf, M._join(path, "transformer"))
        if spec.name == "MLPClassifier":
            lb = est._label_binarizer
            v, e = A.encode_array(lb.classes_, "nested")
            m["label_binarizer_classes_"] = v
            dtypes["label_binarizer_classes_"] = e
            if lb.y_type_ not in ("binary", "multiclass"):
                m["label_binarizer_y_type_"] = lb.y_type_
        if dtypes:
            m["dtypes"] = dtypes
        return m

    def generic(self, obj, path):
        cls = type(obj)
        cname = cls.__name__
        if cname in HELPERS and R.resolve(R.HELPER_MODULES, cname) is cls:
            return HELPERS[cname][0](self, obj, path)
        known = cname in R.CLASS_MODULES and R.resolve(R.CLASS_MODULES, cname) is cls
        if not known or (M.LEARN is None and cname not in _schema.SCHEMA):
            raise TypeError(f"{path or 'estimator'}: {cls.__module__}.{cname} is not supported by mpk")
        if not path and cname not in R.STATELESS and hasattr(obj, "_get_tags") \
                and obj._get_tags().get("requires_fit", True):
            from sklearn.utils.validation import check_is_fitted
            check_is_fitted(obj)
        schema = _schema.SCHEMA.get(cname, {})
        plain = cname in G.PLAIN
        params = {} if plain else obj.get_params(deep=False)
        skip = M._skip(cname)
        o = G.ModelOut(self, cname, path)
        if M.LEARN is not None:
            M.LEARN.setdefault(cname, {})
        for n in sorted(params):
            o.put("params", n, params[n])
        for n, v in vars(obj).items():
            if n in params:
                continue
            k = G.kind_of(v)
            if M.LEARN is not None:
                M.LEARN.setdefault(cname, {}).setdefault(n, set()).add(k)
            if n in skip:
                continue
            if M.LEARN is None and (n not in schema or k not in schema[n]):
                raise TypeError(f"{M._join(path, n) if path else n}: {cname} attribute {n!r} "
                                f"holding {G.KIND_NAMES[k]} is not supported by mpk")
            o.put("weights" if G.is_weight(v) else "xtra", n, v)
        return o.done()

    def array(self, a, name, dtypes):
        v, e = A.encode_array(a, self.mode)
        if e is not None:
            dtypes[name] = e
        return v

    def param(self, spec, name, v, types, dtypes, path):
        if spec.name == "Pipeline" and name == "steps":
            out = []
            for i, (sname, step) in enumerate(v):
                if step is None or (isinstance(step, str) and step == "passthrough"):
                    out.append([sname, step])
                else:
                    out.append([sname, self.model(step, M._join(M._join(path, i), 1))])
            return out
        if isinstance(v, BaseEstimator):
            raise TypeError(f"{path}: estimator-valued parameters are only supported in Pipeline.steps")
        if isinstance(v, np.ndarray):
            types[name] = "ndarray"
            return self.array(v, name, dtypes)
        if isinstance(v, type):
            try:
                t = np.dtype(v).name
            except TypeError:
                t = None
            if t not in SCALAR_TYPE_NAMES:
                raise TypeError(f"{path}: cannot store type {v!r}")
            types[name] = "type"
            return t
        if isinstance(v, (np.integer, np.floating, np.bool_)):
            types[name] = np.dtype(type(v)).name
            return _py_scalar(v)
        if isinstance(v, tuple):
            types[name] = "tuple"
        if callable(v):
            raise TypeError(f"{path}: callables cannot be stored ({v!r})")
        return _enc_plain(v, path)

    def attr(self, attr, v, types, dtypes, path):
        kind, name = attr.kind, attr.name
        if v is None:
            if kind.startswith("opt_"):
                return None
            raise ValueError(f"{path}: is None")
        if kind in ("array", "labels", "opt_array") or (
                kind in ("array_or_num", "int_or_array") and isinstance(v, np.ndarray)):
            if attr.section == "xtra":
                types[name] = "ndarray"
            return self.array(v, name, dtypes)
        if kind == "array_list":
            out, entries = [], []
            for a in v:
                x, e = A.encode_array(a, self.mode)
                out.append(x)
                entries.append(e)
            if self.mode == "nested":
                dtypes[name] = entries
            return out
        if kind in ("int", "float", "opt_float", "array_or_num", "int_or_array"):
            if isinstance(v, (np.integer, np.floating)):
                types[name] = np.dtype(type(v)).name
            return _py_scalar(v)
        if kind == "bool":
            return bool(v)
        if kind == "str":
            return str(v)
        if kind == "vocab":
            return {str(k): int(i) for k, i in v.items()}
        if kind == "csr":
            types[name] = "csr_matrix"
            val, e = A.encode_csr(v, self.mode)
            if e is not None:
                dtypes[name] = e
            return val
        if kind == "str_objarray":
            return [str(s) for s in v]
        raise AssertionError(kind)


def dumps(estimator, arrays="compact"):
    """Encode a fitted estimator as archive bytes."""
    if arrays not in ("compact", "nested"):
        raise ValueError("arrays must be 'compact' or 'nested'")
    m = _Writer(arrays).model(estimator)
    return msgpack.packb(m, use_bin_type=True)


def save(estimator, path, arrays="compact"):
    """Write a fitted estimator to ``path`` as one MsgPack model map.

    ``arrays="compact"`` stores arrays as msgpack-numpy maps (raw bytes);
    ``arrays="nested"`` as nested lists (``a.tolist()``), with the exact
    dtypes kept in the model's ``dtypes`` map.  The file is replaced
    atomically (temporary file + fsync + rename)."""
    data = dumps(estimator, arrays)
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".mpk-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m
