#!/bin/bash
# Submits an array of TASKS jobs of REPS_PER_TASK repetitions each, then the merge after them.
#   BASE=results/study1 TASKS=4 REPS_PER_TASK=25 scripts/slurm/submit_array.sh CONFIG [...]
set -euo pipefail
: "${BASE:?}" "${TASKS:?}" "${REPS_PER_TASK:?}"
export BASE REPS_PER_TASK
ARRAY=$(sbatch --parsable --array=0-$((TASKS - 1)) scripts/slurm/array.sbatch "$@")
sbatch --dependency=afterok:"${ARRAY}" scripts/slurm/merge.sbatch
echo "array job ${ARRAY}; merged result will be in ${BASE}/merged"
