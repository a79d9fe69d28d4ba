"""The Brennan–Holtz replication study: their comparisons under the four designs, the p and
cluster-shuffle sweeps, the A/A runs, and the four rankers' all-one-ranker worlds.

  python scripts/replication_study.py --config configs/replication.py \
      --out experiments/replication-brennan-holtz [--runs 1000] [--sweep_runs 200]

Resumable: each row's result (rows/<name>.json) and each all-one-ranker world's per-run
take-ups (worlds/<name>.npz) are written atomically when done and reused by a rerun with the
same settings (study.json holds them; a rerun with other settings is refused). table.csv,
worlds.csv and report.md are rewritten from whatever rows exist.
"""

import json
import pathlib
import time

from absl import flags
from ml_collections import config_flags

from gtesim import cli
from gtesim import provenance
from gtesim import writing
from gtesim.driver import choice_world
from gtesim.driver import parallel
from gtesim.errors import InputError
from gtesim.study import replication_report
from gtesim.study.replication import GAMMAS, RANKERS, Worlds, plan, row_config, write_tables

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
_OUT = flags.DEFINE_string("out", "experiments/replication-brennan-holtz", "Study folder.")
_RUNS = flags.DEFINE_integer("runs", 1000, "B of the headline rows and the worlds.")
_SWEEP_RUNS = flags.DEFINE_integer("sweep_runs", 200, "B of the sweeps and the A/A rows.")
_PARTS = flags.DEFINE_list("parts", ["headline", "p_sweep", "shuffle_sweep", "shuffle_each",
                                     "aa"],
                           "The parts of the plan to run (a subset: a partial study).")
flags.mark_flags_as_required(["config"])

def main(argv):
  del argv
  out = pathlib.Path(_OUT.value)
  base = _CONFIG.value
  parallel.split_cpu(base.replication.cpu_devices)
  choice_world.check_config(base)
  settings = {"runs": _RUNS.value, "sweep_runs": _SWEEP_RUNS.value,
              "config": json.loads(base.to_json())}
  study = out / "study.json"
  if study.exists():
    before = json.loads(study.read_text())["settings"]
    if before != settings:
      raise InputError(f"{study} holds a study with other settings; use another --out or "
                       "remove that folder.")
  else:
    out.mkdir(parents=True, exist_ok=True)
    writing.write_json(study, {"settings": settings, "commit": provenance.package_commit()})
  rows = [row for row in plan(_RUNS.value, _SWEEP_RUNS.value) if row[1] in _PARTS.value]
  worlds = Worlds(out / "worlds", base, _RUNS.value)
  needed = {(r["gamma_pref"], a) for _, _, r in rows for a in (r["algo1"], r["algo2"])}
  if "headline" in _PARTS.value:  # The four rankers' worlds at every gamma.
    needed |= {(g, a) for g in GAMMAS for a in RANKERS}
  for g, algo in sorted(needed):
    for paired in (True, False):
      start = time.time()
      worlds.get(g, algo, paired)
      print(f"[study] world g={g:g} {algo} {'paired' if paired else 'independent'}: "
            f"{time.time() - start:.0f} s", flush=True)
  (out / "rows").mkdir(exist_ok=True)
  for i, (name, part, r) in enumerate(rows):
    path = out / "rows" / f"{name}.json"
    if path.exists():
      continue
    start = time.time()
    config = row_config(base, r)
    try:
      result = choice_world.replicate(config, log=lambda *_: None,
                                      take_ups=worlds.for_row(r["gamma_pref"], r["runs"]))
    except InputError as err:
      result = {**r, "refused": str(err)}
    result["part"] = part
    result["row_seconds"] = time.time() - start
    writing.write_json(path, writing.jsonable(result))
    print(f"[study] {i + 1}/{len(rows)} {name}: {result['row_seconds']:.0f} s"
          + (f" refused: {result['refused']}" if "refused" in result else
             f" bias {result['bias_pct']:.1f}%"), flush=True)
    write_tables(out, rows, worlds)
  write_tables(out, rows, worlds)
  replication_report.write_report(out, rows, json.loads(study.read_text())["commit"],
                                  provenance.package_commit())


if __name__ == "__main__":
  cli.run(main, tag="study", resume="run the same command again to resume")
