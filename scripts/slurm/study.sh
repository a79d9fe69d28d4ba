#!/bin/bash
# A study as a job graph: production pretraining, then an array of its jobs (in parallel, one
# GPU each), then the report; each waits for the one before (afterok). The same study.json as
# `python scripts/study.py CONFIG --out DIR [...]` in one process.
#   scripts/slurm/study.sh CONFIG --out DIR [--config.KEY=VALUE ...]
# SBATCH_ARGS: options passed to every sbatch it calls, e.g. for a CPU partition
#   SBATCH_ARGS="--gpus-per-task=0 --cpus-per-task=1 --mem=3G" (they override the #SBATCH lines).
# Each stage is resumable: resubmitting the graph reuses the production models and every
# finished job, and resumes an unfinished one from its checkpoint.
set -euo pipefail
USAGE="usage: scripts/slurm/study.sh CONFIG --out DIR [--config.KEY=VALUE ...]"
CONFIG=${1:?${USAGE}}
shift
OUT=""
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=${2:?${USAGE}}; shift 2 ;;
    --out=*) OUT=${1#--out=}; shift ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[ -n "${OUT}" ] || { echo "[study] error: ${USAGE}" >&2; exit 2; }
read -r -a EXTRA <<< "${SBATCH_ARGS:-}"
# The plan, here on the submitting host: a config refusal stops before anything is submitted.
JOBS=$(JAX_PLATFORMS=cpu .venv/bin/python scripts/study.py --config "${CONFIG}" --out "${OUT}" \
  --list_jobs "${ARGS[@]}")
N=$(wc -l <<< "${JOBS}")
COMMON=("${CONFIG}" --out "${OUT}" "${ARGS[@]}")
PRETRAIN=$(sbatch --parsable "${EXTRA[@]}" --job-name=gtesim-study-pretrain \
  scripts/slurm/study.sbatch pretrain "${COMMON[@]}")
ARRAY=$(sbatch --parsable "${EXTRA[@]}" --job-name=gtesim-study-jobs --array=0-$((N - 1)) \
  --dependency=afterok:"${PRETRAIN}" scripts/slurm/study.sbatch job "${COMMON[@]}")
REPORT=$(sbatch --parsable "${EXTRA[@]}" --dependency=afterok:"${ARRAY}" \
  scripts/slurm/study_report.sbatch "${COMMON[@]}")
echo "pretrain ${PRETRAIN}; jobs ${ARRAY} (${N}: $(tr '\n' ' ' <<< "${JOBS}"| sed 's/ $//')); report ${REPORT}"
echo "the report will be ${OUT}/report.md"
