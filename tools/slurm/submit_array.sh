#!/usr/bin/env bash
# Submit the ablation grid of PRESET as a SLURM array (one GPU run per task, at most MAX_PARALLEL at once), then the
# fusion-and-report job that starts when every task has ended:
#   tools/slurm/submit_array.sh [PRESET] [MAX_PARALLEL]       (defaults: ravdess, 8)
# Extra sbatch options (partition, account, ...) go in SBATCH_ARGS, e.g. SBATCH_ARGS="--partition=gpu --account=lab".
set -euo pipefail
cd "$(dirname "$0")/../.."
PRESET=${1:-ravdess}; MAX=${2:-8}
VENV=${VENV:-.venv}
# the runs that train (the decision-level V+A runs only fuse two others and are left to the report job)
train=$("$VENV/bin/gcsa_fer" ablate --preset "$PRESET" --list | awk -F'\t' '$3 == "" {print $1}' | paste -sd, -)
[ -n "$train" ] || { echo "no runs to train in preset $PRESET" >&2; exit 1; }
n=$(echo "$train" | tr ',' '\n' | wc -l)
array=$(sbatch --parsable ${SBATCH_ARGS:-} --array="$train%$MAX" tools/slurm/ablation-array.sbatch "$PRESET")
report=$(sbatch --parsable ${SBATCH_ARGS:-} --dependency=afterany:"$array" tools/slurm/ablation-report.sbatch "$PRESET")
echo "submitted $n runs of preset $PRESET as array job $array (at most $MAX at once); report job $report runs after it"
