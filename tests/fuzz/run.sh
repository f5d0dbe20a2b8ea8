#!/bin/sh
# Fuzzes the archive decoder with libFuzzer (clang), ASan and UBSan:
#   tests/fuzz/run.sh [SECONDS] [archive|json]   (default: 300 s, archive)
# New inputs that widen coverage go to tests/fuzz/corpus; a crash leaves
# crash-* here: copy it into tests/fuzz/corpus so the replay test keeps it.
set -eu
cd "$(dirname "$0")/../.."
out=build-fuzz
mkdir -p "$out"
target=${2:-archive}
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
	codec/decode.c codec/json.c codec/jsonparse.c codec/array.c codec/npy.c \
	codec/model.c codec/strbuf.c codec/encode.c "tests/fuzz/fuzz_$target.c" \
	$(pkg-config --cflags --libs msgpack) -o "$out/fuzz_$target"
seeds=$(mktemp -d)
[ "$target" = archive ] && cp ../shared/fixtures/*.mpk "$seeds"/ 2>/dev/null
corpus=tests/fuzz/corpus
[ "$target" = archive ] || corpus=tests/fuzz/$target-corpus
mkdir -p "$corpus"
"$out/fuzz_$target" -max_total_time="${1:-300}" -max_len=65536 -timeout=10 "$corpus" "$seeds"
rm -rf "$seeds"
