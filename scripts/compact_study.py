"""A committed study's per-repetition table, recomputed and (with --prune) compacted.

  python scripts/compact_study.py STUDY_DIR [STUDY_DIR ...] [--prune]

Writes STUDY_DIR/per_rep.parquet from the runs' result.json files (where they are still
there), recomputes every truth and design cell of study.json from it (gtesim/study/compact.py)
and prints how many values agree; --prune then removes each run's bulk (result.json, Parquet
tables, figures; config.json stays) and writes compact.json. It refuses, removing nothing,
when any value disagrees.
"""

from absl import flags

from gtesim import cli
from gtesim import logs
from gtesim import provenance
from gtesim.errors import InputError
from gtesim.study import compact

_PRUNE = flags.DEFINE_bool("prune", False, "Remove the runs' bulk once every value agrees.")


def main(argv):
  logs.setup()
  log = logs.get_logger("compact")
  if len(argv) < 2:
    raise InputError("name at least one study folder.")
  for folder in argv[1:]:
    if _PRUNE.value:
      manifest = compact.prune(folder, provenance.package_commit())
      log.info("%s: %d values recomputed from %s, 0 differences; %d files removed (%s)",
               folder, manifest["values_recomputed"], compact.TABLE, manifest["removed"],
               compact.MANIFEST)
      continue
    if not (compact.pathlib.Path(folder) / "runs").exists():
      raise InputError(f"{folder}: no runs/ folder: not a study.")
    has_runs = any((compact.pathlib.Path(folder) / "runs").glob("*/result.json"))
    if has_runs:
      compact.write_table(folder)
    check = compact.recompute(folder)
    log.info("%s: %d values recomputed from %s, %d differences%s", folder, check.n,
             compact.TABLE, len(check.mismatches),
             "".join(f"\n  {p}: study.json {a!r}, recomputed {b!r}"
                     for p, a, b in check.mismatches[:20]))
    if check.mismatches:
      raise InputError(f"{folder}: {len(check.mismatches)} values differ.")


if __name__ == "__main__":
  cli.run(main, tag="compact")
