#!/bin/sh
# Fuzzes the archive decoder with libFuzzer (clang), ASan and UBSan:
#   tests/fuzz/run.sh [SECONDS]       (default 300)
# New inputs that widen coverage go to tests/fuzz/corpus; a crash leaves
# crash-* here: copy it into tests/fuzz/corpus so the replay test keeps it.
set -eu
cd "$(dirname "$0")/../.."
out=build-fuzz
mkdir -p "$out"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
	codec/decode.c codec/json.c codec/jsonparse.c codec/array.c codec/npy.c \
	codec/model.c codec/strbuf.c codec/encode.c tests/fuzz/fuzz_archive.c \
	$(pkg-config --cflags --libs msgpack) -o "$out/fuzz_archive"
seeds=$(mktemp -d)
cp ../shared/fixtures/*.mpk "$seeds"/ 2>/dev/null || true
"$out/fuzz_archive" -max_total_time="${1:-300}" -max_len=65536 -timeout=10 \
	tests/fuzz/corpus "$seeds"
rm -rf "$seeds"
