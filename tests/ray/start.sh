#!/usr/bin/env bash
# Start a local Ray head (Jobs REST API on 127.0.0.1:8265) with two fake GPUs, for the Ray
# backend's tests. Installs `ray[default]` into a venv (${SOPHON_RAY_ENV:-/opt/sophon-ray}) on
# first use. Idempotent. Prints the environment the tests read (SOPHON_RAY_URL).
set -euo pipefail
# The head keeps the directory it starts in: never one that may be deleted (a checkout).
cd /
env_dir=${SOPHON_RAY_ENV:-/opt/sophon-ray}
url=http://127.0.0.1:8265
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0

if ! curl -sf "$url/api/version" >/dev/null 2>&1; then
  if [ ! -x "$env_dir/bin/ray" ]; then
    python3 -m venv "$env_dir"
    "$env_dir/bin/pip" install --quiet --disable-pip-version-check "ray[default]==2.60.0"
  fi
  "$env_dir/bin/ray" start --head --num-cpus=2 --num-gpus=2 --node-ip-address=127.0.0.1 \
    --dashboard-host=127.0.0.1 --dashboard-port=8265 --disable-usage-stats >/dev/null
  for _ in $(seq 1 100); do
    curl -sf "$url/api/version" >/dev/null 2>&1 && break
    sleep 0.2
  done
fi
echo "SOPHON_RAY_URL=$url"
