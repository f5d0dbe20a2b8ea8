#!/usr/bin/python3
"""Converts the MsgPack conformance vectors of the npm package
msgpack-test-suite (1.0.0; its YAML sources in src/*.yaml) into a TSV that
tests/test_conformance.c checks our decoder against.

Usage: vectors.py SRC_DIR [OUT.tsv]    SRC_DIR: node_modules/msgpack-test-suite/src

One line per encoding (a vector lists several encodings of one value):

    NAME <TAB> KIND <TAB> HEX <TAB> VALUE <TAB> JSON

NAME   where it comes from: FILE#ENTRY/ENCODING
KIND   nil, bool, int, float, binary, string, array, map, timestamp, ext.
       A "number" or "bignum" vector is int or float by each encoding's tag
       (0xca/0xcb are floats), since mpfs keeps that distinction.
HEX    the encoding, plain hex
VALUE  nil: -; bool: true|false; int: decimal; float: the 16 hex digits of
       the IEEE-754 double it decodes to; binary, string: hex of the bytes
       (- when empty); array, map: the element count; timestamp: SEC:NSEC;
       ext: TYPE:HEX (- when empty)
JSON   the value as mpfs_json_render writes it (docs/tree.md §1)

A first line "# vectors: N" gives the count. Needs Debian's python3-yaml.
"""
import json
import math
import os
import struct
import sys

try:
    import yaml
except ImportError:
    sys.exit("vectors.py: the yaml module is missing: apt-get install python3-yaml")


def render_string(b):
    """A UTF-8 string as mpfs renders it: '"' '\\' and the named controls
    escaped, other control bytes and DEL as \\u00XX, the rest as is."""
    named = {0x22: b'\\"', 0x5c: b'\\\\', 0x0a: b'\\n', 0x0d: b'\\r',
             0x09: b'\\t', 0x08: b'\\b', 0x0c: b'\\f'}
    out = bytearray(b'"')
    for c in b:
        if c in named:
            out += named[c]
        elif c < 0x20 or c == 0x7f:
            out += b'\\u%04x' % c
        else:
            out.append(c)
    out += b'"'
    return out.decode('utf-8')


def render_bytes(b):
    """Bytes that are not text: one \\u00XX per byte."""
    return '"' + ''.join('\\u%04x' % c for c in b) + '"'


def render_blob(b):
    try:
        b.decode('utf-8')
    except UnicodeDecodeError:
        return render_bytes(b)
    return render_string(b)


def render_float(f):
    if math.isnan(f):
        return 'NaN'
    if math.isinf(f):
        return 'Infinity' if f > 0 else '-Infinity'
    return repr(f)


def render(v):
    """A YAML value (as the vectors hold them in arrays and maps)."""
    if v is None:
        return 'null'
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return render_float(v)
    if isinstance(v, str):
        return render_string(v.encode('utf-8'))
    if isinstance(v, list):
        return '[' + ', '.join(render(x) for x in v) + ']'
    if isinstance(v, dict):
        items = []
        for k, x in v.items():
            key = render(k) if isinstance(k, str) else render_string(render(k).encode())
            items.append(key + ': ' + render(x))
        return '{' + ', '.join(items) + '}'
    raise ValueError('cannot render %r' % (v,))


def unhex(s):
    return bytes.fromhex(s.replace('-', ' '))


def hexor(b):
    return b.hex() if b else '-'


def rows_of(name, entry):
    kinds = [k for k in entry if k != 'msgpack']
    encodings = [unhex(h) for h in entry['msgpack']]
    if not encodings:
        raise ValueError('%s: no encodings' % name)
    for i, enc in enumerate(encodings):
        where = '%s/%d' % (name, i)
        h = enc.hex()
        if 'nil' in kinds:
            yield where, 'nil', h, '-', 'null'
        elif 'bool' in kinds:
            b = entry['bool']
            yield where, 'bool', h, 'true' if b else 'false', 'true' if b else 'false'
        elif 'number' in kinds or 'bignum' in kinds:
            if enc[0] in (0xca, 0xcb):
                f = float(entry['number'])
                if enc[0] == 0xca and struct.unpack('>f', struct.pack('>f', f))[0] != f:
                    raise ValueError('%s: %r is no float32' % (where, f))
                bits = struct.unpack('<Q', struct.pack('<d', f))[0]
                yield where, 'float', h, '%016x' % bits, render_float(f)
            else:
                n = int(entry['bignum']) if 'bignum' in entry else entry['number']
                if not isinstance(n, int) or isinstance(n, bool):
                    raise ValueError('%s: %r is no integer' % (where, n))
                yield where, 'int', h, str(n), str(n)
        elif 'binary' in kinds:
            b = unhex(entry['binary'])
            yield where, 'binary', h, hexor(b), render_blob(b)
        elif 'string' in kinds:
            b = entry['string'].encode('utf-8')
            yield where, 'string', h, hexor(b), render_string(b)
        elif 'array' in kinds:
            v = entry['array']
            yield where, 'array', h, str(len(v)), render(v)
        elif 'map' in kinds:
            v = entry['map']
            yield where, 'map', h, str(len(v)), render(v)
        elif 'timestamp' in kinds:
            sec, nsec = entry['timestamp']
            payload = enc[2:] if enc[0] in (0xd6, 0xd7) else enc[3:]
            yield where, 'timestamp', h, '%d:%d' % (sec, nsec), render_bytes(payload)
        elif 'ext' in kinds:
            t, data = entry['ext']
            b = unhex(data)
            yield where, 'ext', h, '%d:%s' % (t, hexor(b)), render_bytes(b)
        else:
            raise ValueError('%s: unknown kind %s' % (name, kinds))


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    src = argv[1]
    files = sorted(f for f in os.listdir(src) if f.endswith('.yaml'))
    if not files:
        sys.exit('vectors.py: no *.yaml in %s' % src)
    rows = []
    for f in files:
        with open(os.path.join(src, f), encoding='utf-8') as fh:
            entries = yaml.safe_load(fh) or []
        for j, entry in enumerate(entries):
            rows.extend(rows_of('%s#%d' % (f, j), entry))
    for r in rows:
        if any('\t' in x or '\n' in x or x == '' for x in r):
            raise ValueError('unprintable row %r' % (r,))
    text = '# vectors: %d\n' % len(rows) + ''.join('\t'.join(r) + '\n' for r in rows)
    if len(argv) == 3:
        with open(argv[2], 'w', encoding='utf-8') as out:
            out.write(text)
    else:
        sys.stdout.write(text)


if __name__ == '__main__':
    main(sys.argv)
