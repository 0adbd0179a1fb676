#!/bin/sh
# Installs what the runner agent needs on first boot: Node.js (only when the AMI has no
# Node >= 20) and the trainyard package. ExecStartPre of trainyard-agent.service, so a
# restart re-checks the marker instead of reinstalling.
set -eu
lib=/var/lib/trainyard
mkdir -p "$lib"
marker="$lib/installed-$(printf '%s' "$TRAINYARD_AGENT_PACKAGE" | sha256sum | cut -c1-16)"
[ -f "$marker" ] && exit 0

node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'
}
if ! node_ok; then
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "trainyard: no Node.js build for $(uname -m)" >&2; exit 1 ;;
  esac
  v="$TRAINYARD_NODE_VERSION"
  f="node-$v-linux-$arch.tar.xz"
  tmp=$(mktemp -d)
  curl -fsSL --retry 5 -o "$tmp/$f" "https://nodejs.org/dist/$v/$f"
  curl -fsSL --retry 5 -o "$tmp/SHASUMS256.txt" "https://nodejs.org/dist/$v/SHASUMS256.txt"
  (cd "$tmp" && grep "  $f\$" SHASUMS256.txt | sha256sum -c -)
  mkdir -p /opt/node
  tar -xJf "$tmp/$f" -C /opt/node --strip-components=1
  rm -rf "$tmp"
fi

pkg="$TRAINYARD_AGENT_PACKAGE"
case "$pkg" in
  # A private build in the store bucket, read with the instance profile.
  s3://*) aws s3 cp --only-show-errors "$pkg" "$lib/trainyard.tgz"; pkg="$lib/trainyard.tgz" ;;
esac
npm install --global --no-fund --no-audit "$pkg"
touch "$marker"
