#!/bin/sh
# Every module of the mpk package is in meson.build's install list: a file
# left out installs a package that fails on import (the .deb, `ninja
# install`), which only the packaging stage of .ci/run would notice.
root=${1:-.}
missing=0
for f in "$root"/python/mpk/*.py; do
	name="python/mpk/$(basename "$f")"
	if ! grep -q "'$name'" "$root/meson.build"; then
		echo "install_list: $name is not installed (add it to install_data in meson.build)"
		missing=1
	fi
done
exit $missing
