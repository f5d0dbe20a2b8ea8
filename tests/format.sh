#!/bin/sh
# Fails when a C file differs from what .clang-format makes of it.
cd "$1" || exit 1
command -v clang-format >/dev/null || { echo "clang-format not installed: skipped"; exit 77; }
clang-format --dry-run -Werror codec/*.[ch] fs/*.[ch] mount/*.[ch] tool/*.[ch] tests/*.[ch] python/mpk/*.[ch] || {
	echo "format: run clang-format -i on the files above"; exit 1; }
echo "format: ok"
