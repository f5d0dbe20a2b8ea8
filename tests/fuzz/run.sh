#!/bin/sh
# Fuzzes one target with libFuzzer (clang), ASan and UBSan:
#   tests/fuzz/run.sh [SECONDS] [archive|json|npy]   (default: 300 s, archive)
#   RUNS=10000000 tests/fuzz/run.sh 0 npy           (a number of inputs instead)
# Targets: archive (any bytes as an archive; seeds: tests/fuzz/corpus and the
# shared fixtures), json (any bytes as a text file's content;
# tests/fuzz/json-corpus), npy (any bytes as an array file's content, through
# the nested and compact encoders; tests/fuzz/npy-corpus).
# The corpus is read, not grown: inputs that widen coverage go to
# build-fuzz/TARGET-new. Fold a few in with
#   build-fuzz/fuzz_TARGET -merge=1 CORPUS build-fuzz/TARGET-new
# A crash leaves build-fuzz/crash-*: copy it into the target's corpus so the
# replay test (tests/meson.build) keeps it, then fix it.
# -O2: about three times the executions per second of -O1 under ASan.
set -eu
cd "$(dirname "$0")/../.."
out=build-fuzz
mkdir -p "$out"
target=${2:-archive}
clang -g -O2 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
	codec/decode.c codec/json.c codec/jsonparse.c codec/array.c codec/npy.c \
	codec/model.c codec/strbuf.c codec/encode.c codec/numpy.c "tests/fuzz/fuzz_$target.c" \
	$(pkg-config --cflags --libs msgpack) -o "$out/fuzz_$target"
seeds=$(mktemp -d)
[ "$target" = archive ] && cp ../shared/fixtures/*.mpk "$seeds"/ 2>/dev/null
corpus=tests/fuzz/corpus
[ "$target" = archive ] || corpus=tests/fuzz/$target-corpus
mkdir -p "$out/$target-new"
if [ -n "${RUNS:-}" ]; then limit=-runs=$RUNS; else limit=-max_total_time=${1:-300}; fi
"$out/fuzz_$target" "$limit" -max_len=65536 -timeout=10 -print_final_stats=1 \
	-artifact_prefix="$out/" "$out/$target-new" "$corpus" "$seeds"
rm -rf "$seeds"
