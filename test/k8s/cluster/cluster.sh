#!/usr/bin/env bash
# Trainyard's copy of the shared recipe (k8s-local-cluster), used by the test setup
# (test/setup/k8s.ts) and setup.sh; changes: `up` makes the pod bridge first (so a test server
# can listen on its address, which pods reach; the host's loopback is not theirs), `bridge-ip`.
#
# A real one-node Kubernetes (v1.34) on this machine kind, from the package registries only:
# kube-apiserver, kube-controller-manager, kube-scheduler and kubelet built from the Go module
# proxy; etcd-server and containerd from Debian; Debian's runc and CNI plugins. Pods really run
# (locally built images, imagePullPolicy Never/IfNotPresent); logs stream through the API.
#
#   cluster.sh build   # once per machine: ~5-6 min on 2 cores, ~1.9 GB peak, 336 MB of binaries
#   cluster.sh up      # ~5 s to a Ready node; ~590 MiB for the six processes
#   cluster.sh load IMAGE...  # copy podman images into the cluster's containerd
#   cluster.sh down    # stops everything and undoes what kubelet changed on the host
#
# Everything lives under $K8S_DIR (default ~/.cache/trainyard-k8s). KUBECONFIG=$K8S_DIR/kubeconfig.
# Verified once on this machine kind (Debian 12, cgroup v1, no CAP_SYS_RESOURCE): a Job with a
# nvidia.com/gpu limit (node capacity patched), nodeSelector and toleration ran, logs followed,
# deleting the Job killed the process. Not available here: real GPUs, registry pulls, several
# nodes, cluster DNS / Services (no kube-proxy). The kubelet changes host state (sysctls,
# iptables KUBE-FIREWALL, cgroups, a bridge): `down` restores it; always run it in teardown.
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.34.4}
D=${K8S_DIR:-$HOME/.cache/trainyard-k8s}
export KUBECONFIG=$D/kubeconfig
export PATH=$PATH:$D/bin # a kubectl built below when the machine has none
mkdir -p "$D"/{bin,logs,run,deb,root,pki/serving,cni/net.d,containerd,kubelet,img}

build() {
  [ -x "$D/bin/kubelet" ] && { echo "binaries present in $D/bin"; return; }
  command -v go >/dev/null || { echo "needs go" >&2; exit 1; }
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}; local staging="v0.${K8S_VERSION#v1.}"
  local B=$D/kbuild; mkdir -p "$B"; cd "$B"
  export GOPATH=$D/gopath GOCACHE=$D/gocache GOFLAGS=-mod=mod CGO_ENABLED=0
  # k8s.io/kubernetes replaces its staging modules with ./staging paths, which `go install`
  # refuses; a wrapper module pins each of them to its published v0.x instead.
  printf 'module kbuild\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes %s\n' "$K8S_VERSION" > go.mod
  go mod download -json "k8s.io/kubernetes@$K8S_VERSION" > dl.json
  local modfile; modfile=$(python3 -c 'import json,sys;print(json.load(open("dl.json"))["GoMod"])')
  { echo 'replace ('; grep -oE 'k8s.io/[a-z0-9-]+ => ./staging' "$modfile" | awk -v v="$staging" '{print "\t"$1" => "$1" "v}'; echo ')'; } >> go.mod
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do go get "k8s.io/kubernetes/cmd/$c@$K8S_VERSION"; done
  local LD="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitTreeState=clean"
  local cmds="kube-apiserver kube-controller-manager kube-scheduler kubelet"
  command -v kubectl >/dev/null || cmds="$cmds kubectl"
  for c in $cmds; do
    go build -trimpath -ldflags "$LD" -o "$D/bin/$c" "k8s.io/kubernetes/cmd/$c"
  done
  # etcd and containerd from Debian, unpacked (no service is installed or started)
  cd "$D/deb"; apt-get download etcd-server containerd >/dev/null 2>&1 || { apt-get update -qq && apt-get download etcd-server containerd >/dev/null; }
  for f in "$D"/deb/*.deb; do dpkg -x "$f" "$D/root"; done
  echo "built into $D/bin"
}

configs() {
  # service-account keys and a static admin token
  [ -f "$D/pki/sa.key" ] || { openssl genrsa -out "$D/pki/sa.key" 2048 2>/dev/null; openssl rsa -in "$D/pki/sa.key" -pubout -out "$D/pki/sa.pub" 2>/dev/null; }
  echo 'local-admin-token,admin,admin,system:masters' > "$D/pki/tokens.csv"
  cat > "$D/kubeconfig" <<K
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:16443", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: local-admin-token}}]
contexts: [{name: local, context: {cluster: local, user: admin}}]
current-context: local
K
  cat > "$D/containerd/config.toml" <<T
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$D/run/containerd.sock"
[ttrpc]
  address = "$D/run/containerd-ttrpc.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/k8s-local/pause:1"
  enable_cdi = false
  # required here: the VM lacks CAP_SYS_RESOURCE, and without this every sandbox fails with
  # "can't get final child's PID from pipe: EOF" (oom_score_adj: Permission denied)
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
T
  cat > "$D/cni/net.d/10-local.conflist" <<C
{"cniVersion": "1.0.0", "name": "k8slocal", "plugins": [
  {"type": "bridge", "bridge": "k8slocal0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.77.0/24"}]], "dataDir": "$D/cni/ipam"}},
  {"type": "loopback"}]}
C
  # node named localhost + apiserver preferring Hostname: logs traffic stays on loopback
  # (a loopback --node-ip is refused; the auto-detected eth0 address is not reachable)
  cat > "$D/kubelet/config.yaml" <<Y
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 16250
readOnlyPort: 0
healthzPort: 16248
containerRuntimeEndpoint: unix://$D/run/containerd.sock
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
cgroupsPerQOS: true
enforceNodeAllocatable: []
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
serializeImagePulls: false
maxPods: 20
registerNode: true
resolvConf: /etc/resolv.conf
Y
}

pause_image() {
  podman image exists localhost/k8s-local/pause:1 && return
  local s=$D/img/pause; mkdir -p "$s/rootfs"; cd "$s"
  cat > main.go <<'G'
package main

import (
	"os"
	"os/signal"
	"syscall"
)

// block until SIGINT/SIGTERM; reap children
func main() {
	c := make(chan os.Signal, 4)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range c {
		if s == syscall.SIGCHLD {
			for {
				var ws syscall.WaitStatus
				if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
G
  printf 'module pause\n\ngo 1.21\n' > go.mod
  CGO_ENABLED=0 go build -o rootfs/pause .
  tar -C rootfs -cf pause.tar .
  podman import --change 'ENTRYPOINT ["/pause"]' pause.tar localhost/k8s-local/pause:1 >/dev/null
}

ctr_() { "$D/root/usr/bin/ctr" -a "$D/run/containerd.sock" -n k8s.io "$@"; }
bg() { local n=$1; shift; (setsid "$@" > "$D/logs/$n.log" 2>&1 & echo $! > "$D/run/$n.pid"); }
load() { podman save --format docker-archive "$1" | ctr_ images import - >/dev/null; }

BRIDGE=k8slocal0
BRIDGE_IP=10.244.77.1

# The CNI bridge, made before the first pod so that servers for the pods can listen on it.
bridge() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr show dev "$BRIDGE" | grep -q "inet $BRIDGE_IP/" || ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

up() {
  [ -x "$D/bin/kubelet" ] || { echo "run: $0 build" >&2; exit 1; }
  configs; pause_image; bridge
  sysctl -a 2>/dev/null | grep -E '^(vm.overcommit_memory|vm.panic_on_oom|kernel.panic|kernel.panic_on_oops) ' > "$D/sysctl.before" || true
  bg etcd "$D/root/usr/bin/etcd" --name local --data-dir "$D/etcd-data" --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 --initial-cluster local=http://127.0.0.1:23800
  bg apiserver "$D/bin/kube-apiserver" --etcd-servers=http://127.0.0.1:23790 --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port=16443 \
    --cert-dir="$D/pki/serving" --token-auth-file="$D/pki/tokens.csv" --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$D/pki/sa.pub" --service-account-signing-key-file="$D/pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/24 --allow-privileged=true --disable-admission-plugins=ServiceAccount \
    --kubelet-preferred-address-types=Hostname --profiling=false --v=1
  PATH=$D/root/usr/bin:$PATH bg containerd "$D/root/usr/bin/containerd" --config "$D/containerd/config.toml"
  until kubectl get --raw /readyz >/dev/null 2>&1; do sleep 0.2; done
  bg kcm "$D/bin/kube-controller-manager" --kubeconfig="$KUBECONFIG" --authentication-kubeconfig="$KUBECONFIG" --authorization-kubeconfig="$KUBECONFIG" \
    --bind-address=127.0.0.1 --secure-port=16257 --leader-elect=false --service-account-private-key-file="$D/pki/sa.key" \
    --root-ca-file="$D/pki/serving/apiserver.crt" --controllers='*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route' --v=1
  bg sched "$D/bin/kube-scheduler" --kubeconfig="$KUBECONFIG" --authentication-kubeconfig="$KUBECONFIG" --authorization-kubeconfig="$KUBECONFIG" \
    --bind-address=127.0.0.1 --secure-port=16259 --leader-elect=false --v=1
  until ctr_ version >/dev/null 2>&1; do sleep 0.2; done
  load localhost/k8s-local/pause:1
  bg kubelet "$D/bin/kubelet" --config="$D/kubelet/config.yaml" --kubeconfig="$KUBECONFIG" --root-dir="$D/kubelet/root" --cert-dir="$D/kubelet/pki" --hostname-override=localhost --v=1
  until kubectl get node localhost 2>/dev/null | grep -q ' Ready'; do sleep 0.2; done
  until kubectl get sa default >/dev/null 2>&1; do sleep 0.2; done
  echo "up: KUBECONFIG=$KUBECONFIG (node localhost Ready)"
}

down() {
  set +e +o pipefail
  if kubectl get --raw /readyz >/dev/null 2>&1; then
    kubectl delete jobs --all -A --wait=false >/dev/null 2>&1 || true
    kubectl delete pods --all -A --grace-period=1 --wait=false >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do [ -z "$(ctr_ tasks ls -q 2>/dev/null)" ] && break; sleep 1; done
  fi
  stop() { [ -f "$D/run/$1.pid" ] && kill "$(cat "$D/run/$1.pid")" 2>/dev/null; rm -f "$D/run/$1.pid"; }
  stop kwok; stop kubelet; sleep 1
  for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$t"; done; sleep 1
  for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$t"; done
  for s in kcm sched apiserver containerd etcd; do stop $s; done; sleep 2
  mount | awk '{print $3}' | grep "^$D\|/run/netns/cni-" | sort -r | xargs -r -n1 umount -l
  ls /var/run/netns 2>/dev/null | grep '^cni-' | xargs -r -I{} ip netns delete {}
  for c in /sys/fs/cgroup/*/kubepods; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  ip link del k8slocal0 2>/dev/null || true
  for t in "" "6"; do
    ip${t}tables -D INPUT -j KUBE-FIREWALL 2>/dev/null; ip${t}tables -D OUTPUT -j KUBE-FIREWALL 2>/dev/null
    for ch in KUBE-FIREWALL KUBE-KUBELET-CANARY; do ip${t}tables -F $ch 2>/dev/null; ip${t}tables -X $ch 2>/dev/null; done
    for tb in mangle nat; do for ch in KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do ip${t}tables -t $tb -F $ch 2>/dev/null; ip${t}tables -t $tb -X $ch 2>/dev/null; done; done
  done
  [ -f "$D/sysctl.before" ] && sysctl -q -p "$D/sysctl.before"
  rm -rf "$D/etcd-data" "$D/containerd/root" "$D/containerd/state" "$D/kubelet/root" "$D/cni/ipam"
  echo down
}

case "${1:-}" in
  build) build ;;
  up) up ;;
  down) down ;;
  load) shift; for i in "$@"; do load "$i"; done ;;
  bridge-ip) echo "$BRIDGE_IP" ;;
  *) echo "usage: $0 build|up|down|load IMAGE...|bridge-ip" >&2; exit 2 ;;
esac
