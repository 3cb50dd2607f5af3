#!/usr/bin/env bash
# One call of the device tool, planned to the second (a task's GPU time is about 15 minutes, start-up included):
#   1. the GPU check (tools/gpu_run.sh, --budget CHECK seconds; its results go to OUT/<device>/);
#   2. the paper recipe (preset `ravdess`: 300 epochs, SGD) for the core audio rows of the attention study (issue 32,
#      item 6: Base, matched control, +GCSA) on FOLDS at seed 0, one process a run, all at once, until TOTAL seconds
#      after this script started; a run still going then is stopped (SIGTERM), keeping its last finished epoch's
#      checkpoint, so `gcsa_fer ablate` resumes it on a later GPU.
# It brings back OUT/paper-audio.tar.gz: each run's folder (metrics, history, predictions, checkpoints; not the feature
# cache) and its log, and OUT/session.json (what ran, for how long). On this machine:
#   python tools/gpu_paper_results.py FILES_AT    # the table of the runs (results/attention/gpu-paper/)
#
#   bash tools/gpu_session.sh [TOTAL=510] [CHECK=200] [FOLDS="1 2"]
#   GPU_DRY_RUN=1 bash tools/gpu_session.sh 120 60 1    # the same on this CPU: synthetic preset, tiny (tests this file)
set -uo pipefail
cd "$(dirname "$0")/.."
total=${1:-510}; check=${2:-200}; folds=${3:-1 2}
out=${OUT:-results/gpu}; work=${GPU_WORK:-/tmp/gpu-session}; t0=$(date +%s)
mkdir -p "$out" "$work/paper/logs"
elapsed() { echo $(( $(date +%s) - t0 )); }
if [ -n "${GPU_DRY_RUN:-}" ]; then
  python3 tools/gpu_check.py --dry-run --budget "$check" --out "$out" --work "$work/check" 2>&1 | tee "$out/gpu_check.log"
  preset=synthetic; device=cpu; rows=(+GCSA); mods=v; folds=0; cli=(python3 -m gcsa_fer.cli)
else
  bash tools/gpu_run.sh --budget "$check" --epochs 2 --work "$work/check"
  export PYTHONPATH="${GPU_SITE:-/tmp/site}:$PWD${PYTHONPATH:+:$PYTHONPATH}" PATH="${GPU_SITE:-/tmp/site}/bin:$PATH"
  preset=ravdess; device=cuda; rows=(Base 'matched control' +GCSA); mods=a; cli=(python3 -m gcsa_fer.cli)
fi
check_status=$?
export PYTHONUNBUFFERED=1
# the check's papermill runs built the feature cache of this preset: share it (the cache is keyed by its contents)
[ -d "$work/check/runs/cache" ] && [ ! -e "$work/paper/cache" ] && ln -s "$work/check/runs/cache" "$work/paper/cache"
left=$(( total - $(elapsed) - 20 ))  # 20 s to pack what comes back
pids=(); names=()
[ "$left" -lt 30 ] && { echo "gpu_session: only $left s left after the check: no paper-recipe run"; folds=""; }
for f in $folds; do
  for r in "${rows[@]}"; do
    name="f$f-$(echo "$r" | tr -c 'a-zA-Z0-9\n' '-')"
    fold_args=(); [ "$f" != 0 ] && fold_args=(--folds "$f")
    timeout -s TERM -k 10 "$left" "${cli[@]}" ablate --preset "$preset" --modalities $mods --rows "$r" \
      "${fold_args[@]}" --seeds 0 --device "$device" --out "$work/paper" \
      > "$work/paper/logs/$name.log" 2>&1 &
    pids+=($!); names+=("$name")
  done
done
echo "gpu_session: ${#pids[@]} paper-recipe runs started at $(elapsed) s, stopped at $(( $(elapsed) + left )) s at the latest"
codes=()
for p in "${pids[@]}"; do wait "$p"; codes+=($?); done
python3 - "$work" "$out" "$(elapsed)" "$check_status" "$preset" "$left" "${names[@]}" -- "${codes[@]}" <<'EOF'
import json, sys, datetime
work, out, secs, check, preset, left, *rest = sys.argv[1:]
cut = rest.index('--')
names, codes = rest[:cut], rest[cut + 1:]
info = {'finished': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'), 'seconds': int(secs),
        'gpu_check_exit': int(check), 'preset': preset, 'run_limit_s': int(left),
        'runs': [{'name': n, 'exit': int(c), 'stopped_at_limit': int(c) in (124, 137, 143)} for n, c in zip(names, codes)]}
open(f'{out}/session.json', 'w').write(json.dumps(info, indent=1))
print(json.dumps(info))
EOF
tar czf "$out/paper-audio.tar.gz" -C "$work" --exclude='paper/cache' paper
ls -la "$out"
echo "gpu_session: done in $(elapsed) s"
