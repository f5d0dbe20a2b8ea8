#!/bin/sh
# Runs the public MsgPack conformance vectors (npm msgpack-test-suite 1.0.0)
# against our decoder: converts their YAML into a TSV with vectors.py, then
# runs the Criterion binary test_conformance on it.
#
# Usage: run.sh TEST_CONFORMANCE [TSV]
# The vectors are looked for in $MPFS_NODE_MODULES (default: the repo's
# node_modules); Python is $MPFS_PYTHON (default /usr/bin/python3, which
# needs python3-yaml).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
modules=${MPFS_NODE_MODULES:-$repo/node_modules}
src=$modules/msgpack-test-suite/src
python=${MPFS_PYTHON:-/usr/bin/python3}

if [ $# -lt 1 ]; then
	echo "usage: $0 TEST_CONFORMANCE [TSV]" >&2
	exit 2
fi
if [ ! -d "$src" ]; then
	echo "conformance: the MsgPack test vectors are not installed ($src is missing)." >&2
	echo "conformance: run 'npm install --no-save msgpack-test-suite@1.0.0' at the repo root ($repo)," >&2
	echo "conformance: or point MPFS_NODE_MODULES at a node_modules directory that has it." >&2
	exit 1
fi
version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$modules/msgpack-test-suite/package.json")
if [ "$version" != "1.0.0" ]; then
	echo "conformance: msgpack-test-suite $version found, the tests expect 1.0.0" >&2
fi

tsv=${2:-}
cleanup=
if [ -z "$tsv" ]; then
	tsv=$(mktemp)
	cleanup=$tsv
fi
trap 'rm -f $cleanup' EXIT
"$python" "$here/vectors.py" "$src" "$tsv"
echo "conformance: $(head -n 1 "$tsv" | sed 's/^# //') from $src"
MPFS_VECTORS=$tsv "$1" --jobs 1
