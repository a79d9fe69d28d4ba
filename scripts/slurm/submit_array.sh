#!/bin/bash
# Submits an array of TASKS jobs of REPS_PER_TASK repetitions each, then the merge after them.
#   BASE=results/study1 TASKS=4 REPS_PER_TASK=25 scripts/slurm/submit_array.sh CONFIG [...]
# SBATCH_ARGS: options passed to every sbatch it calls, e.g. for a CPU partition
#   SBATCH_ARGS="--gpus-per-task=0 --cpus-per-task=1 --mem=3G" (they override the #SBATCH lines).
set -euo pipefail
: "${BASE:?}" "${TASKS:?}" "${REPS_PER_TASK:?}"
export BASE REPS_PER_TASK
read -r -a EXTRA <<< "${SBATCH_ARGS:-}"
ARRAY=$(sbatch --parsable "${EXTRA[@]}" --array=0-$((TASKS - 1)) scripts/slurm/array.sbatch "$@")
MERGE=$(sbatch --parsable "${EXTRA[@]}" --dependency=afterok:"${ARRAY}" scripts/slurm/merge.sbatch)
echo "array job ${ARRAY}; merge job ${MERGE}; merged result will be in ${BASE}/merged"
