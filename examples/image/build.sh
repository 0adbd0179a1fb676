#!/usr/bin/env bash
# Builds localhost/trainyard-python:3 without a registry: this Debian/Ubuntu host's own python3
# (whatever its minor version: 3.11 on Debian 12, 3.12 on Ubuntu 24.04) with its standard
# library and the shared libraries it links, plus busybox for /bin/sh and core utilities. The
# tag names no minor version, so pipelines that use it run on every such host. Usage: examples/image/build.sh [docker|podman|path-to-cli]
# Skips the build when the image exists and this script, common.sh, python and busybox are unchanged.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

cli=$(pick_cli "${1:-}")
host_python=${TRAINYARD_HOST_PYTHON:-/usr/bin/python3}
[ -x "$host_python" ] || die "$host_python is missing: apt-get install python3 busybox-static"
need_busybox
command -v ldd >/dev/null 2>&1 || die "ldd is missing: apt-get install libc-bin"

python=$(readlink -f "$host_python")
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
stdlib=/usr/lib/python$version
[ -d "$stdlib" ] || die "$stdlib is missing: apt-get install python3 busybox-static"
image=${TRAINYARD_PYTHON_IMAGE:-localhost/trainyard-python:3}

lock_builds
hash=$(build_hash "$here/build.sh" "$here/common.sh" "$python" "$busybox")
if image_current "$cli" "$image" "$hash"; then
  echo "$image is up to date"
  exit 0
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/trainyard-python-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
lay_out_busybox "$root"

# The interpreter, named as Debian names it.
cp "$python" "$root/usr/bin/python$version"
ln -s "python$version" "$root/usr/bin/python3"
ln -s python3 "$root/usr/bin/python"
# The standard library, less the 25 MB static libpython used only to build extensions.
tar -C / -cf - --exclude="usr/lib/python$version/config-*" --exclude='usr/lib/python*/test' \
  "usr/lib/python$version" "etc/python$version" 2>/dev/null | tar -C "$root" -xf -

# Every shared library the interpreter and its extension modules load, at the path ldd found it.
libs=$( { ldd "$python"; ldd "$stdlib"/lib-dynload/*.so; } 2>/dev/null |
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u)
for lib in $libs; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

import_root "$cli" "$root" "$image" "$hash" /usr/local/bin:/usr/bin:/bin /workspace

# shellcheck disable=SC2046
"$cli" run --rm $(run_flags "$cli") "$image" \
  python3 -c 'import json, csv, math, random, statistics, hashlib, sqlite3, ssl, zlib, bz2, lzma, ctypes' ||
  die "$image was built but python3 does not run in it"
echo "built $image"
