"""The Brennan–Holtz replication study's plan and tables (scripts/replication_study.py runs
it): their comparisons under the four designs at p = 0.5, the p and cluster-shuffle sweeps,
the A/A rows, and the four rankers' all-one-ranker worlds (worlds/*.npz, computed once per
(gamma, ranker, paired) and shared by every row)."""

import csv
import io
import json
import math
import pathlib

import numpy as np

from gtesim import writing
from gtesim.driver import choice_world

GAMMAS = (1.0, 10.0)
PAIRS = (("item_cf", "user_cf"), ("item_cf", "random"), ("user_cf", "random"))
DESIGNS = ("naive", "data_diverted", "codiverted", "cluster")
RANKERS = ("item_cf", "user_cf", "random", "oracle")
P_SWEEP = (0.1, 0.3, 0.5, 0.7, 0.9)
SHUFFLES = (0.0, 0.2, 0.4)
COLUMNS = ("gamma_pref", "algo1", "algo2", "design", "p", "shuffle", "realised_p", "B",
           "truth_independent", "truth_paired", "truth_paired_se", "mean_estimate",
           "estimate_se", "bias_pct", "bias_pct_ci_low", "bias_pct_ci_high")


def plan(runs: int, sweep_runs: int) -> list:
  """Every row: (name, part, settings)."""
  rows = []
  for g in GAMMAS:
    for a1, a2 in PAIRS:
      for d in DESIGNS:
        rows.append(("headline", dict(gamma_pref=g, algo1=a1, algo2=a2, design=d, p=0.5,
                                      shuffle=0.0, runs=runs)))
  for p in P_SWEEP:
    for d in DESIGNS:
      rows.append(("p_sweep", dict(gamma_pref=10.0, algo1="item_cf", algo2="user_cf", design=d,
                                   p=p, shuffle=0.0, runs=sweep_runs)))
  for s in SHUFFLES:
    rows.append(("shuffle_sweep", dict(gamma_pref=10.0, algo1="item_cf", algo2="user_cf",
                                       design="cluster", p=0.5, shuffle=s, runs=sweep_runs)))
  for s in SHUFFLES[1:]:  # The page's other reading of the shuffle (not in table.csv).
    rows.append(("shuffle_each", dict(gamma_pref=10.0, algo1="item_cf", algo2="user_cf",
                                      design="cluster", p=0.5, shuffle=s, runs=sweep_runs,
                                      shuffle_reading="each")))
  for d in DESIGNS:
    rows.append(("aa", dict(gamma_pref=10.0, algo1="item_cf", algo2="item_cf", design=d, p=0.5,
                            shuffle=0.0, runs=sweep_runs)))
  return [(f"{part}-g{r['gamma_pref']:g}-{r['algo1']}-{r['algo2']}-{r['design']}-p{r['p']:g}"
           f"-s{r['shuffle']:g}-B{r['runs']}", part, {"shuffle_reading": "share", **r})
          for part, r in rows]


def row_config(base, settings):
  config = base.copy_and_resolve_references()
  config.choice.gamma_pref = settings["gamma_pref"]
  for key in ("algo1", "algo2", "design", "p", "shuffle", "shuffle_reading", "runs"):
    config.replication[key] = settings[key]
  return config


class Worlds:
  """The all-one-ranker worlds' per-run take-ups, computed once per (gamma, ranker, paired)
  with B = --runs and saved; a row with a smaller B takes the first B paired runs (run b is
  a function of its seeds alone) and every independent run."""

  def __init__(self, folder: pathlib.Path, base, runs: int):
    self.folder, self.base, self.runs = folder, base, runs
    folder.mkdir(parents=True, exist_ok=True)

  def path(self, gamma, algo, paired):
    return self.folder / f"g{gamma:g}-{algo}-{'paired' if paired else 'independent'}.npz"

  def get(self, gamma, algo, paired):
    path = self.path(gamma, algo, paired)
    if not path.exists():
      config = row_config(self.base, dict(gamma_pref=gamma, algo1=algo, algo2=algo,
                                          design="naive", p=0.5, shuffle=0.0,
                                          shuffle_reading="share", runs=self.runs))
      take, seconds = choice_world.global_take_ups(config, algo, paired)
      buf = io.BytesIO()
      np.savez(buf, take=take, seconds=seconds)
      with writing.atomic_path(path) as tmp:
        pathlib.Path(tmp).write_bytes(buf.getvalue())
    data = np.load(path)
    return data["take"], float(data["seconds"])

  def for_row(self, gamma, runs):
    def take_ups(algo, paired):
      take, seconds = self.get(gamma, algo, paired)
      return (take[:runs] if paired else take), seconds
    return take_ups


def _fmt(v):
  if v is None:
    return ""
  if isinstance(v, float):
    return "" if math.isnan(v) else f"{v:.6g}"
  return str(v)


def write_tables(out: pathlib.Path, rows: list, worlds: Worlds) -> None:
  done = [(name, part, json.loads((out / "rows" / f"{name}.json").read_text()))
          for name, part, _ in rows if (out / "rows" / f"{name}.json").exists()]
  table = io.StringIO()
  w = csv.writer(table, lineterminator="\n")
  w.writerow(COLUMNS)
  for name, part, r in done:
    if part in ("aa", "shuffle_each") or "refused" in r:  # table.csv: the issue's rows.
      continue
    w.writerow([_fmt(r["B"] if c == "B" else r[c]) for c in COLUMNS])
  with writing.atomic_path(out / "table.csv") as tmp:
    pathlib.Path(tmp).write_text(table.getvalue())
  lines = ["gamma_pref,algo,kind,B,take_up,take_up_se,seconds"]
  for g in GAMMAS:
    for algo in RANKERS:
      for paired in (True, False):
        if worlds.path(g, algo, paired).exists():
          take, seconds = worlds.get(g, algo, paired)
          lines.append(f"{g:g},{algo},{'paired' if paired else 'independent'},{len(take)},"
                       f"{take.mean():.6g},{take.std(ddof=1) / np.sqrt(len(take)):.6g},"
                       f"{seconds:.1f}")
  with writing.atomic_path(out / "worlds.csv") as tmp:
    pathlib.Path(tmp).write_text("\n".join(lines) + "\n")
  writing.write_json(out / "rows.json", writing.jsonable(
      {name: {k: v for k, v in r.items() if k != "per_run"} for name, _, r in done}))


