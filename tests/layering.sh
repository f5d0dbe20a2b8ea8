#!/bin/sh
# Fails when a layer includes what it may not see: only codec/ may include
# msgpack-c, only mount/ libfuse3, and fs/ and codec/ never include mount/.
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
[ $bad = 0 ] && echo "layering: ok"
exit $bad
