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

# tar the root fs into the CLI as IMAGE, labelled with HASH; drops the image it replaces.
import_root() {
  local cli=$1 root=$2 image=$3 hash=$4 path=$5 workdir=$6 old errors
  old=$("$cli" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  errors=$(mktemp "${TMPDIR:-/tmp}/trainyard-import.XXXXXX")
  # Progress chatter goes to the log; it is shown only when the import fails.
  if ! tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . |
    "$cli" import \
      --change "ENV PATH=$path" \
      --change "WORKDIR $workdir" \
      --change "LABEL trainyard.build-hash=$hash" \
      - "$image" >/dev/null 2>"$errors"; then
    cat "$errors" >&2
    rm -f "$errors"
    die "$cli import of $image failed"
  fi
  rm -f "$errors"
  if [ -n "$old" ]; then "$cli" rmi "$old" >/dev/null 2>&1 || true; fi
}
