#!/bin/sh
# Asks IMDSv2 for a spot interruption notice every few seconds. On a notice it records it
# where the agent and an operator can see it (a file, the journal, and a tag on this
# instance that the control plane reads into the lineage), then exits.
set -u
imds="${TRAINYARD_IMDS_ENDPOINT:-http://169.254.169.254}"
state="${TRAINYARD_STATE_DIR:-/run/trainyard}"
every="${TRAINYARD_SPOT_POLL_SECONDS:-5}"
mkdir -p "$state"
token=""
token_at=0

while :; do
  now=$(date +%s)
  if [ -z "$token" ] || [ $((now - token_at)) -gt 18000 ]; then
    token=$(curl -sS -m 2 -f -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' "$imds/latest/api/token" 2>/dev/null || true)
    token_at=$now
  fi
  if [ -n "$token" ]; then
    code=$(curl -sS -m 2 -o "$state/notice.tmp" -w '%{http_code}' -H "X-aws-ec2-metadata-token: $token" \
      "$imds/latest/meta-data/spot/instance-action" 2>/dev/null || echo 000)
    case "$code" in
      200)
        mv "$state/notice.tmp" "$state/interruption.json"
        # {"action": "terminate", "time": "2017-09-18T08:22:00Z"}; keep only safe characters.
        action=$(sed -n 's/.*"action"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$state/interruption.json" | tr -cd 'A-Za-z-')
        at=$(sed -n 's/.*"time"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$state/interruption.json" | tr -cd '0-9A-Za-z:.-')
        msg="spot interruption notice: ${action:-unknown} at ${at:-unknown}"
        echo "trainyard: $msg"
        logger -t trainyard "$msg" 2>/dev/null || true
        if command -v aws >/dev/null 2>&1; then
          id=$(curl -sS -m 2 -f -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/instance-id" 2>/dev/null | tr -cd 'a-z0-9-')
          [ -n "$id" ] && aws ec2 create-tags --region "${TRAINYARD_REGION:-us-east-1}" --resources "$id" \
            --tags "Key=trainyard:interruption,Value=${action:-unknown}@${at:-unknown}" || true
        fi
        exit 0
        ;;
      401) token="" ;;
    esac
  fi
  sleep "$every"
done
