#!/bin/sh
# Starts the runner agent (the package install-agent.sh put in /opt/trainyard/agent) on
# this host's own task queue. A Temporal API key, when one is
# needed, is read here from SSM with the instance profile: user data carries no secrets.
set -eu
if [ -n "${TRAINYARD_TEMPORAL_API_KEY_SSM:-}" ]; then
  TEMPORAL_API_KEY=$(aws ssm get-parameter --region "$TRAINYARD_REGION" --with-decryption \
    --name "$TRAINYARD_TEMPORAL_API_KEY_SSM" --query Parameter.Value --output text)
  export TEMPORAL_API_KEY
fi
exec /opt/trainyard/agent/bin/trainyard agent --queue "$TRAINYARD_AGENT_QUEUE"
