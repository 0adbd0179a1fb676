#!/usr/bin/env bash
# Sends a GitHub webhook by hand, signed as GitHub signs it: HMAC-SHA256 of the body with the
# App's webhook secret in X-Hub-Signature-256. Prints the answer and exits 0 on a 2xx.
#
#   GITHUB_WEBHOOK_SECRET=… deploy/local/deliver.sh SERVE_URL EVENT BODY_FILE [DELIVERY_ID]
#
# EVENT is X-GitHub-Event (push, issue_comment, …); DELIVERY_ID (X-GitHub-Delivery) defaults to
# a new UUID; send the same one again to see a redelivery answered as a duplicate.
set -euo pipefail
if [ $# -lt 3 ] || [ -z "${GITHUB_WEBHOOK_SECRET:-}" ]; then
  echo "usage: GITHUB_WEBHOOK_SECRET=… $0 SERVE_URL EVENT BODY_FILE [DELIVERY_ID]" >&2; exit 2
fi
url=$1 event=$2 body=$3 delivery=${4:-$(cat /proc/sys/kernel/random/uuid)}
# Signed by node, which reads the secret from the environment: never on a command line, where ps shows it.
sig=$(node -e 'const c = require("node:crypto"), f = require("node:fs");
process.stdout.write(c.createHmac("sha256", process.env.GITHUB_WEBHOOK_SECRET).update(f.readFileSync(process.argv[1])).digest("hex"))' "$body")
curl -sS --fail-with-body -X POST "$url/api/github/webhooks" -H 'content-type: application/json' \
  -H "x-github-event: $event" -H "x-github-delivery: $delivery" -H "x-hub-signature-256: sha256=$sig" \
  -H 'user-agent: GitHub-Hookshot/deliver.sh' --data-binary "@$body"
echo
