#!/bin/sh
# Installs what the runner agent needs on first boot: Node.js (only when the host has no
# Node >= 20) and the trainyard agent package (activities/ec2/agentpackage.ts), fetched from
# the artifact store with this host's own credentials (the instance profile; the AWS CLI
# finds them) and refused unless its SHA-256 is the one in the user data. ExecStartPre of
# trainyard-agent.service, so a restart re-checks the marker instead of reinstalling.
set -eu
lib=/var/lib/trainyard
opt=/opt/trainyard
sum="$TRAINYARD_AGENT_PACKAGE_SHA256"
pkg="$TRAINYARD_AGENT_PACKAGE"
mkdir -p "$lib" "$opt"
marker="$lib/installed-$sum"
[ -f "$marker" ] && [ -x "$opt/agent/bin/trainyard" ] && exit 0

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

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case "$pkg" in
  s3://*)
    aws s3 cp --only-show-errors --region "$TRAINYARD_REGION" "$pkg" "$tmp/agent.tar.gz" ;;
  https://*)
    curl -fsSL --retry 5 -o "$tmp/agent.tar.gz" "$pkg" ;;
  *)
    echo "trainyard: TRAINYARD_AGENT_PACKAGE must be an s3:// or https:// URL, got $pkg" >&2; exit 1 ;;
esac
if ! echo "$sum  $tmp/agent.tar.gz" | sha256sum -c - >/dev/null 2>&1; then
  echo "trainyard: the agent package at $pkg does not have SHA-256 $sum (got $(sha256sum "$tmp/agent.tar.gz" | cut -c1-64)); not installing it" >&2
  exit 1
fi
tar -xzf "$tmp/agent.tar.gz" -C "$tmp"
[ -x "$tmp/trainyard-agent/bin/trainyard" ] || { echo "trainyard: $pkg is not a trainyard agent package" >&2; exit 1; }
# One folder per package digest; `agent` points at the one in use.
rm -rf "$opt/agent-$sum"
mv "$tmp/trainyard-agent" "$opt/agent-$sum"
rm -f "$opt/agent"
ln -s "agent-$sum" "$opt/agent"
touch "$marker"
echo "trainyard: installed agent package sha256:$sum ($(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$opt/agent/package.json"))"
