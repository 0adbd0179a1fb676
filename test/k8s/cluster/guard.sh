#!/usr/bin/env bash
# Holds the test cluster for one test run: brings it up, then waits until the test runner
# (pid $1) is gone or this guard is told to stop (SIGTERM/SIGINT), and always brings it down
# (cluster.sh down restores what the kubelet changed on the host). It runs in its own session,
# so a killed or interrupted test runner still gets the cluster torn down.
#   guard.sh PARENT_PID READY_FILE
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
parent=$1 ready=$2
stop=0
# One cluster per machine (fixed ports, one bridge): a second test run waits for the first.
lockdir=${K8S_DIR:-$HOME/.cache/trainyard-k8s}
mkdir -p "$lockdir"
exec 8>"$lockdir/guard.lock"
flock 8
trap 'stop=1' TERM INT HUP
teardown() { bash "$here/cluster.sh" down >/dev/null 2>&1; rm -f "$ready"; }
bash "$here/cluster.sh" down >/dev/null 2>&1 # leftovers of a run that could not clean up
if ! bash "$here/cluster.sh" up > "$ready.log" 2>&1; then
  echo "failed" > "$ready"
  teardown
  echo "failed" > "$ready"
  exit 1
fi
echo "up" > "$ready"
while [ "$stop" = 0 ] && kill -0 "$parent" 2>/dev/null; do sleep 1; done
teardown
