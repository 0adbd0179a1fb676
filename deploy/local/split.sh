#!/usr/bin/env bash
# Trainyard as a service on one machine, every part a process of its own, the way
# docs/deploying.md (*On one machine, process by process*) starts it by hand: a Temporal dev
# server on a db file, moto as the S3 store, the tests' fake GitHub (test/githost), two
# `trainyard serve` replicas with TRAINYARD_WORKERS=none, one `trainyard worker --no-host` and
# one `trainyard agent`. It prints where everything is and how to send a webhook, then waits.
# Ctrl-C or SIGTERM stops the Trainyard processes with SIGTERM, then the rest, and removes its
# folder; when one process exits on its own, it says which and stops the others.
#
#   deploy/local/split.sh             # ports 13000-13009 (TRAINYARD_SPLIT_BASE_PORT=N: N..N+9; auto: free ports)
#
# Started with `&` from another script, a shell ignores SIGINT and cannot trap it: stop it
# with SIGTERM then.
#
# Needs what setup.sh installs: node, temporal, moto_server, podman, openssl, curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
DIR=$(mktemp -d "${TMPDIR:-/tmp}/trainyard-split-XXXXXX")
base=${TRAINYARD_SPLIT_BASE_PORT:-13000}
if [ "$base" = auto ]; then
  # Ten free loopback ports, held open together so that none is handed out twice.
  mapfile -t P < <(node -e 'const n=require("net");const s=[];let k=10;for(let i=0;i<10;i++){const v=n.createServer();s.push(v);v.listen(0,"127.0.0.1",()=>{if(--k===0){for(const x of s)console.log(x.address().port);for(const x of s)x.close();}});}')
else
  mapfile -t P < <(seq "$base" $((base + 9)))
fi
SERVE0=${P[0]} SERVE1=${P[1]} WORKER_HEALTH=${P[2]} AGENT_HEALTH=${P[3]} GITHUB=${P[4]} MOTO=${P[5]}
TEMPORAL=${P[6]} TEMPORAL_HTTP=${P[7]} TEMPORAL_METRICS=${P[8]}

infra=() trainyard=()
started() { echo "$2" >"$DIR/$1.pid"; }
# setsid: a terminal's Ctrl-C reaches this script alone, which stops the others in order.
start_infra() { local name=$1; shift; setsid "$@" >"$DIR/$name.log" 2>&1 & infra+=($!); started "$name" $!; }
# start_trainyard NAME [VAR=VALUE...] -- trainyard arguments
start_trainyard() {
  local name=$1 vars=(); shift
  while [ "$1" != -- ]; do vars+=("$1"); shift; done; shift
  env "${vars[@]}" setsid node "$REPO/bin/trainyard.js" "$@" >"$DIR/$name.log" 2>&1 & trainyard+=($!); started "$name" $!
}

stopping=0
stop() {
  [ "$stopping" = 1 ] && return; stopping=1
  trap - INT TERM
  echo "stopping: SIGTERM to serve, worker and agent, then to Temporal, moto and the fake GitHub" >&2
  for p in "${trainyard[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${trainyard[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in "${infra[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${infra[@]}"; do wait "$p" 2>/dev/null || true; done
  # The fake GitHub's verdict: every request it got fit GitHub's OpenAPI description, or which did not.
  grep -h -A50 -E '^(fake GitHub stopped|requests that do not fit)' "$DIR/github.log" >&2 || true
  rm -rf "$DIR"
  echo "stopped; removed $DIR" >&2
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() { # what, seconds, command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "split.sh: $what not ready within ${secs} s; its log:" >&2; tail -20 "$DIR/$what.log" >&2 || true; exit 1
}

start_infra temporal temporal server start-dev --headless --ip 127.0.0.1 --port "$TEMPORAL" --http-port "$TEMPORAL_HTTP" \
  --metrics-port "$TEMPORAL_METRICS" --db-filename "$DIR/temporal.db" --log-level error
start_infra moto moto_server -H 127.0.0.1 -p "$MOTO"
start_infra github node --import tsx test/githost/fake-github-server.ts --out "$DIR/github" --port "$GITHUB"
wait_for temporal 90 temporal operator cluster health --address "127.0.0.1:$TEMPORAL"
wait_for moto 60 curl -fsS "http://127.0.0.1:$MOTO/moto-api/"
wait_for github 90 test -s "$DIR/github/github.env"
curl -fsS -X PUT "http://127.0.0.1:$MOTO/trainyard" >/dev/null

# One environment for every process (docs/deploying.md: every process needs the same
# Temporal, store, GitHub App and link secret).
ENV_FILE=$DIR/trainyard.env
{
  echo "TEMPORAL_ADDRESS=127.0.0.1:$TEMPORAL"
  echo "TRAINYARD_STORE=s3://trainyard/store"
  echo "AWS_ENDPOINT_URL_S3=http://127.0.0.1:$MOTO"
  echo "AWS_REGION=us-east-1"
  echo "AWS_ACCESS_KEY_ID=test"
  echo "AWS_SECRET_ACCESS_KEY=test"
  echo "TRAINYARD_PUBLIC_URL=http://127.0.0.1:$SERVE0"
  echo "TRAINYARD_LINK_SECRET=$(openssl rand -hex 32)"
  # Node 20: the AWS SDK's notice that its releases after January 2027 need Node 22 would break the JSON logs.
  echo "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true"
  cat "$DIR/github/github.env"
} >"$ENV_FILE"
set -a; . "$ENV_FILE"; set +a

node bin/trainyard.js setup-temporal
node bin/trainyard.js doctor

start_trainyard serve-0 TRAINYARD_WORKERS=none TRAINYARD_PORT="$SERVE0" TRAINYARD_BIND=127.0.0.1 TRAINYARD_WORK_DIR="$DIR/work/serve-0" -- serve
start_trainyard serve-1 TRAINYARD_WORKERS=none TRAINYARD_PORT="$SERVE1" TRAINYARD_BIND=127.0.0.1 TRAINYARD_WORK_DIR="$DIR/work/serve-1" -- serve
start_trainyard worker TRAINYARD_HEALTH_PORT="$WORKER_HEALTH" TRAINYARD_HEALTH_BIND=127.0.0.1 TRAINYARD_WORK_DIR="$DIR/work/worker" -- worker --no-host
start_trainyard agent TRAINYARD_HEALTH_PORT="$AGENT_HEALTH" TRAINYARD_HEALTH_BIND=127.0.0.1 TRAINYARD_WORK_DIR="$DIR/work/agent" -- agent
for x in serve-0:$SERVE0 serve-1:$SERVE1 worker:$WORKER_HEALTH agent:$AGENT_HEALTH; do
  wait_for "${x%%:*}" 300 curl -fsS "http://127.0.0.1:${x#*:}/healthz"
done

cat <<EOF
split topology ready in $DIR
  serve replicas  http://127.0.0.1:$SERVE0  http://127.0.0.1:$SERVE1   (/healthz, /metrics, /api/github/webhooks, /runs/)
  worker, agent   http://127.0.0.1:$WORKER_HEALTH  http://127.0.0.1:$AGENT_HEALTH   (/healthz, /metrics)
  Temporal        127.0.0.1:$TEMPORAL    fake GitHub $GITHUB_API_URL    moto S3 http://127.0.0.1:$MOTO
  env file: $ENV_FILE
  logs: $DIR/*.log
In another shell:
  set -a; . $ENV_FILE; set +a
  deploy/local/deliver.sh http://127.0.0.1:$SERVE0 push $DIR/github/push.json
  deploy/local/deliver.sh http://127.0.0.1:$SERVE1 issue_comment $DIR/github/comment.json
  node bin/trainyard.js runs
Ctrl-C stops everything.
EOF

# Until a signal, or until one process exits on its own.
set +e
wait -n "${infra[@]}" "${trainyard[@]}"
code=$?
for f in "$DIR"/*.pid; do
  p=$(cat "$f"); kill -0 "$p" 2>/dev/null || { n=$(basename "$f" .pid); echo "split.sh: $n exited ($code); its log:" >&2; tail -20 "$DIR/$n.log" >&2; }
done
exit 1
