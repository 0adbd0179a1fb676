#!/bin/sh
# Last resort against a GPU host that bills forever: when no step container has run for
# the idle deadline (the run that owns the host lost track of it, the agent never started,
# the control plane is gone), power off. InstanceInitiatedShutdownBehavior=terminate turns
# that into a termination. The run's own pool and the reaper normally act long before.
set -u
state="${TRAINYARD_STATE_DIR:-/run/trainyard}"
idle="${TRAINYARD_IDLE_POWEROFF_SECONDS:-1800}"
every="${TRAINYARD_IDLE_POLL_SECONDS:-30}"
cli="${TRAINYARD_CONTAINER_CLI:-docker}"
off="${TRAINYARD_POWEROFF_COMMAND:-/sbin/poweroff}"
mkdir -p "$state"
last=$(date +%s)

while :; do
  now=$(date +%s)
  # Every step container carries the trainyard.exec label.
  if [ -n "$("$cli" ps -q --filter label=trainyard.exec 2>/dev/null | head -n 1)" ]; then
    last=$now
  fi
  echo "$last" > "$state/last-busy"
  if [ $((now - last)) -ge "$idle" ]; then
    msg="no step container for ${idle}s: powering off"
    echo "trainyard: $msg"
    logger -t trainyard "$msg" 2>/dev/null || true
    "$off"
    exit 0
  fi
  sleep "$every"
done
