#!/bin/sh
# Fails when a layer includes what it may not see: only codec/ may include
# msgpack-c, only mount/ libfuse3, and fs/ and codec/ never include mount/.
# tool/ (mpfs-tool) works without FUSE: it sees fs/ and codec/ headers only,
# and its build links fs/, never fuse3.
cd "$1" || exit 1
bad=0
check() { # DIR PATTERN WHY
	hits=$(grep -nE "$2" "$1"/*.[ch] 2>/dev/null)
	if [ -n "$hits" ]; then
		echo "layering: $3:"; echo "$hits"; bad=1
	fi
}
check fs '#include *[<"](msgpack|fuse)' 'fs/ must not include msgpack-c or fuse'
check codec '#include *[<"](fuse|fs/|mount/)' 'codec/ must not include fuse, fs/ or mount/'
check fs '#include *"mount/' 'fs/ must not include mount/'
check mount '#include *[<"]msgpack' 'mount/ must not include msgpack-c'
check mount '#include *"codec/' 'mount/ goes through fs/, not codec/'
check tool '#include *[<"](fuse|msgpack|mount/)' 'tool/ must not include fuse, msgpack-c or mount/'
check fs '#include *"tool/' 'fs/ must not include tool/'
check codec '#include *"tool/' 'codec/ must not include tool/'
check mount '#include *"tool/' 'mount/ must not include tool/'
check python/mpk '#include *[<"](fuse|msgpack|codec/|fs/|mount/|tool/)' "mpk's C part stands alone (Python.h only)"
# The build: the tool's targets must not take the fuse dependency.
if awk '/^tool_lib|^mpfs_tool/,/^$/' meson.build | grep -q fuse_dep; then
	echo "layering: meson.build: mpfs-tool must not depend on fuse3"; bad=1
fi
[ $bad = 0 ] && echo "layering: ok"
exit $bad
