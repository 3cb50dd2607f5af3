#!/usr/bin/env bash
# The GPU check on a machine without a registry (the device tool's GPU machine): install the wheels that
# `make gpu-check-prep` downloaded and carried along (.gpu-wheels/) into /tmp/site, put them and this tree on the
# Python path, and run tools/gpu_check.py. Its results go to OUT/<device>/ (OUT: $OUT, the device tool's folder that
# comes back, else results/gpu), with the log beside them.
#
#   bash tools/gpu_run.sh [gpu_check.py options]
set -uo pipefail
cd "$(dirname "$0")/.."
wheels=${GPU_WHEELS:-.gpu-wheels}; site=${GPU_SITE:-/tmp/site}; out=${OUT:-results/gpu}
if ! ls "$wheels"/*.whl > /dev/null 2>&1; then
  echo "gpu_run: no wheels in $wheels/: run 'make gpu-check-prep' on a machine with PyPI and carry $wheels along"; exit 2
fi
python3 -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$site" "$wheels"/*.whl || { echo "gpu_run: installing the wheels from $wheels failed"; exit 2; }
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PATH="$site/bin:$PATH" PYTHONUNBUFFERED=1
mkdir -p "$out"
python3 tools/gpu_check.py --out "$out" "$@" 2>&1 | tee "$out/gpu_check.log"
exit "${PIPESTATUS[0]}"
