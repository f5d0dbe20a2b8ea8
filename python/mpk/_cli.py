"""The mpk command line (``python3 -m mpk``).

    python3 -m mpk info FILE            class, params, array shapes (no model built)
    python3 -m mpk check FILE...        load and validate; exit 0, or 1 with the error
    python3 -m mpk convert MODEL.pkl OUT.mpk
                                        a pickle you trust -> an mpk archive

``info`` only walks the decoded MsgPack map: it imports no estimator, builds
nothing and never unpickles (a msgpack-numpy pickled object array is shown as
such).  ``check`` runs ``mpk.load``, i.e. every check loading does.
``convert`` unpickles its input, which runs whatever code the pickle holds:
use it only on pickles you made or trust.
"""

import argparse
import os
import sys

import msgpack

from . import _arrays as A

MAX_DEPTH = 200        # info's own bound on nesting (hostile archives)
SHORT = 72             # a plain value whose repr is at most this long is shown as is
LIMIT = 10             # items shown of a longer list or map (--all: every item)

PICKLE_WARNING = """\
mpk convert: WARNING: loading a pickle RUNS ANY CODE IT CONTAINS.
mpk convert: Convert only a pickle you made yourself or got from someone you
mpk convert: trust.  The .mpk it writes is safe to load; the pickle is not."""


# ----------------------------------------------------------------------
# info: a walk over the decoded MsgPack data
# ----------------------------------------------------------------------

def _text(v):
    """A MsgPack str/bin (keys, class names, tags) as printable text."""
    if isinstance(v, (bytes, bytearray)):
        try:
            v = bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            return repr(bytes(v))
    if isinstance(v, str):
        return v if v.isprintable() and "/" not in v and v not in ("", ".", "..") else repr(v)
    return repr(v)


def _get(m, name):
    if not isinstance(m, dict):
        return None
    v = m.get(name.encode())
    return m.get(name) if v is None else v


def _scalar_repr(v):
    if isinstance(v, (bytes, bytearray)):
        try:
            return repr(bytes(v).decode("utf-8"))
        except UnicodeDecodeError:
            return f"<{len(v)} bytes>"
    return repr(v)


def _is_scalar(v):
    return v is None or isinstance(v, (bool, int, float, str, bytes, bytearray))


def _nested_shape(v, depth=0):
    """(shape, kinds) of a rectangular nested list of scalars, else None."""
    if depth > A.MAX_DIMS:
        return None
    if not isinstance(v, list):
        return ((), {type(v).__name__}) if _is_scalar(v) and v is not None else None
    if not v:
        return (0,), set()
    first = _nested_shape(v[0], depth + 1)
    if first is None:
        return None
    kinds = set(first[1])
    for item in v[1:]:
        s = _nested_shape(item, depth + 1)
        if s is None or s[0] != first[0]:
            return None
        kinds |= s[1]
    return (len(v),) + first[0], kinds


_KIND = {"bool": "bool", "int": "int", "float": "float", "str": "str", "bytes": "str", "bytearray": "str"}


def _shape_text(shape):
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _compact_text(v):
    if A.is_pickled(v):
        return "pickled object array (never unpickled; mpk.load refuses it)"
    t = _get(v, "type")
    nd = _get(v, "nd")
    shape = _get(v, "shape")
    data = _get(v, "data")
    size = f", {len(data):,} bytes" if isinstance(data, (bytes, bytearray)) else ""
    if nd is False:
        return f"numpy scalar {_text(t)}"
    if isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
        return f"array {_text(t)} {_shape_text(shape)}{size} (compact)"
    return f"array {_text(t)} shape {shape!r}{size} (compact, malformed shape)"


def _dtype_hint(dtypes, name):
    d = _get(dtypes, name) if name is not None else None
    if isinstance(d, (str, bytes, bytearray)):
        return _text(d)
    return None


def _value_lines(v, indent, depth, hint=None):
    """Lines describing a value (the first one is appended to its label)."""
    pad = "  " * indent
    if depth > MAX_DEPTH:
        return ["... (nested too deeply)"]
    if isinstance(v, dict):
        if A.is_compact(v):
            return [_compact_text(v)]
        if _get(v, "class_name") is not None:
            return [f"model {_text(_get(v, 'class_name'))}"] + _model_lines(v, indent + 1, depth + 1)
        if _get(v, "class_name") is None and isinstance(_get(v, "arg1"), list) and _get(v, "shape") is not None:
            return [f"sparse {_text(_get(v, 'class_name') or 'csr_matrix')} shape {_get(v, 'shape')!r}"]
        if not v:
            return ["{}"]
        r = _flat_repr(v)
        if r is not None:
            return [r]
        lines = [f"map of {len(v)}"]
        for n, (k, item) in enumerate(v.items()):
            if _limit(lines, n, len(v), pad):
                break
            sub = _value_lines(item, indent + 1, depth + 1)
            lines.append(f"{pad}  {_text(k)}: {sub[0]}")
            lines.extend(sub[1:])
        return lines
    if isinstance(v, list):
        r = _flat_repr(v)
        if r is not None:
            return [r]
        ns = _nested_shape(v)
        if ns is not None:
            kinds = "/".join(sorted({_KIND.get(k, k) for k in ns[1]})) or "empty"
            return [f"array {hint or kinds} {_shape_text(ns[0])} (nested lists)"]
        lines = [f"list of {len(v)}"]
        for i, item in enumerate(v):
            if _limit(lines, i, len(v), pad):
                break
            sub = _value_lines(item, indent + 1, depth + 1,
                               hint[i] if isinstance(hint, list) and i < len(hint) else None)
            lines.append(f"{pad}  {i}: {sub[0]}")
            lines.extend(sub[1:])
        return lines
    return [_scalar_repr(v)]


def _limit(lines, n, total, pad):
    if LIMIT is None or n < LIMIT:
        return False
    lines.append(f"{pad}  ... {total - n} more (--all shows them)")
    return True


def _flat_repr(v):
    """Short plain containers (params such as [256, 128]) are shown as is."""
    if isinstance(v, list) and all(_is_scalar(x) for x in v):
        r = "[" + ", ".join(_scalar_repr(x) for x in v) + "]"
    elif isinstance(v, dict) and all(_is_scalar(x) and _is_scalar(k) for k, x in v.items()) \
            and not A.is_compact(v):
        r = "{" + ", ".join(f"{_scalar_repr(k)}: {_scalar_repr(x)}" for k, x in v.items()) + "}"
    else:
        return None
    return r if len(r) <= SHORT else None


def _model_lines(m, indent, depth):
    pad = "  " * indent
    types = _get(m, "types") or {}
    dtypes = _get(m, "dtypes") or {}
    lines = []
    for section in ("params", "xtra", "weights"):
        sec = _get(m, section)
        if sec is None:
            continue
        if not isinstance(sec, dict):
            lines.append(f"{pad}{section}: {_scalar_repr(sec) if _is_scalar(sec) else type(sec).__name__} (not a map)")
            continue
        lines.append(f"{pad}{section}:" + ("" if sec else " (none)"))
        for k, v in sec.items():
            tag = _get(types, _text(k)) if isinstance(types, dict) else None
            hint = _dtype_hint(dtypes, _text(k))
            if hint is None:
                d = _get(dtypes, _text(k))
                hint = [(_text(x) if isinstance(x, (str, bytes)) else None) for x in d] \
                    if isinstance(d, list) else None
            sub = _value_lines(v, indent + 1, depth + 1, hint)
            note = f"  [{_text(tag)}]" if isinstance(tag, (str, bytes)) \
                and not sub[0].startswith(("array", "model")) else ""
            lines.append(f"{pad}  {_text(k)}: {sub[0]}{note}")
            lines.extend(sub[1:])
    for k, v in m.items():
        name = _text(k)
        if name in ("class_name", "types", "params", "xtra", "weights", "dtypes"):
            continue
        sub = _value_lines(v, indent + 1, depth + 1)
        lines.append(f"{pad}{name}: {sub[0]}")
        lines.extend(sub[1:])
    return lines


def info_lines(data):
    """The description of archive bytes, as lines (raises ValueError for
    bytes that are not one MsgPack model map)."""
    try:
        obj = msgpack.unpackb(data, raw=True, strict_map_key=False, use_list=True)
    except msgpack.ExtraData:
        raise ValueError("bytes after the end of the archive") from None
    except (ValueError, TypeError, msgpack.exceptions.UnpackException, RecursionError) as e:
        raise ValueError(f"not a valid MsgPack archive ({str(e) or type(e).__name__})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a model map at the top level, got {A.type_name(obj)}")
    mode = "nested" if _get(obj, "dtypes") is not None else None
    lines = [f"class {_text(_get(obj, 'class_name'))}" if _get(obj, "class_name") is not None
             else "class (none: not a model map)"]
    lines += _model_lines(obj, 0, 0)
    if mode:
        lines.append("(arrays written as nested lists; exact dtypes under dtypes)")
    return lines


def cmd_info(args):
    global LIMIT
    if args.all:
        LIMIT = None
    status = 0
    for path in args.files:
        try:
            with open(path, "rb") as f:
                data = f.read()
            lines = info_lines(data)
        except RecursionError:
            print(f"mpk info: {path}: nested too deeply", file=sys.stderr)
            status = 1
            continue
        except (OSError, ValueError) as e:
            print(f"mpk info: {path}: {e}", file=sys.stderr)
            status = 1
            continue
        if len(args.files) > 1:
            print(f"== {path}")
        print(f"{path}: {len(data):,} bytes")
        print("\n".join(lines))
    return status


# ----------------------------------------------------------------------
# check, convert
# ----------------------------------------------------------------------

def cmd_check(args):
    import warnings
    from . import load
    from .errors import FormatError
    status = 0
    for path in args.files:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = load(path, unknown_params=args.unknown_params, skip_pickled=args.skip_pickled)
            for w in caught:
                print(f"mpk check: {path}: warning: {w.message}", file=sys.stderr)
        except FormatError as e:
            print(f"mpk check: {path}: {e}", file=sys.stderr)
            status = 1
            continue
        except OSError as e:
            print(f"mpk check: {path}: {e.strerror or e}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}: ok, {type(model).__name__}")
    return status


def cmd_convert(args):
    import pickle
    from . import load, save
    print(PICKLE_WARNING, file=sys.stderr)
    try:
        if args.input.endswith((".joblib", ".jl")):
            import joblib
            est = joblib.load(args.input)
        else:
            with open(args.input, "rb") as f:
                est = pickle.load(f)
    except OSError as e:
        print(f"mpk convert: {args.input}: {e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:  # whatever the pickle raises
        print(f"mpk convert: {args.input}: cannot unpickle: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    try:
        save(est, args.output, arrays=args.arrays)
    except (TypeError, ValueError) as e:
        print(f"mpk convert: {args.input}: cannot save {type(est).__name__}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"mpk convert: {args.output}: {e.strerror or e}", file=sys.stderr)
        return 1
    load(args.output)  # what was written loads back
    print(f"{args.output}: {type(est).__name__}, {os.path.getsize(args.output):,} bytes "
          f"(from {args.input}, {os.path.getsize(args.input):,} bytes)")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m mpk",
                                 description="Inspect, check and convert mpk model archives.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="class, params and array shapes, without building the model")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--all", action="store_true", help=f"show every item of long lists and maps "
                   f"(default: the first {LIMIT})")
    p.set_defaults(fn=cmd_info)
    p = sub.add_parser("check", help="load and validate; exit 0, or 1 with the error on stderr")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--unknown-params", choices=("error", "drop"), default="error",
                   help="as mpk.load(unknown_params=...)")
    p.add_argument("--skip-pickled", action="store_true", help="as mpk.load(skip_pickled=True)")
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("convert", help="a pickle you trust -> an mpk archive (unpickling runs code!)")
    p.add_argument("input", metavar="MODEL.pkl")
    p.add_argument("output", metavar="OUT.mpk")
    p.add_argument("--arrays", choices=("compact", "nested"), default="compact")
    p.set_defaults(fn=cmd_convert)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except BrokenPipeError:  # mpk info ... | head
        sys.stderr.close()
        return 0
