"""A study's per-repetition table (per_rep.parquet), every design cell recomputed from it, and
the runs' bulk pruned once the recomputation agrees.

`per_rep.parquet` (zstd) holds one row per (job, point, estimator, label, quantity, method,
repetition): every A/B estimate, its SE and both CI ends by every method of every estimator,
each arm's mean, and every truth replicate's GT, GC and GTE. With study.json it is what a
referee needs: `recompute` rebuilds each truth from its replicates and every `designs` cell of
study.json (bias, RMSE, coverage, inflation factors, decisions, ...) from the table with the
package's own statistics (study/summary.py), and counts the values that disagree. `prune`
refuses unless none does, then removes each run's result.json, Parquet tables and figures
(each run keeps config.json) and writes compact.json: what was left out and how to regenerate
it. Horizon, production-state and weight-model blocks need the per-step tables: they are not
recomputed here (regenerate the study for them).
"""

import dataclasses
import json
import math
import pathlib
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gtesim import writing
from gtesim.errors import InputError
from gtesim.stats import estimators as estimators_lib
from gtesim.stats.variance import METHODS
from gtesim.study import plan as plan_lib
from gtesim.study import summary as summary_lib

TABLE = "per_rep.parquet"
MANIFEST = "compact.json"
RTOL = 2e-6  # study.json keeps 7 significant digits.
BULK = ("result.json", "steps.parquet", "metrics.parquet", "figure.png", "figure.svg",
        "pretrain.json", "data.json", "encoding.json", "checkpoints",
        "tensorboard")  # What prune removes from each run (files and folders).
_COLUMNS = ("job", "point", "p_treatment", "alpha_gap", "epsilon", "estimator", "label",
            "quantity", "method", "rep", "value")


def _points(result) -> list:
  return result["points"] if "points" in result else [result]


def rows_of_run(job: str, result: dict) -> dict:
  """The table's columns for one run's result.json."""
  cols = {c: [] for c in _COLUMNS}

  def add(point, q, estimator, label, quantity, method, values):
    for b, v in enumerate(values):
      cols["job"].append(job)
      cols["point"].append(point)
      cols["p_treatment"].append(q.get("p_treatment"))
      cols["alpha_gap"].append(q["alpha_gap"])
      cols["epsilon"].append(q.get("epsilon"))
      cols["estimator"].append(estimator)
      cols["label"].append(label)
      cols["quantity"].append(quantity)
      cols["method"].append(method)
      cols["rep"].append(b)
      cols["value"].append(np.nan if v is None else float(v))

  for i, q in enumerate(_points(result)):
    if "gt" in q:  # A global job: a truth replicate.
      for quantity in ("gt", "gc", "gte"):
        for label, v in q[quantity].items():
          add(i, q, "", label, quantity, "", v["per_rep"])
      continue
    blocks = {estimators_lib.DEFAULT: q["gte"], **q.get("estimators", {})}
    for name, by_label in blocks.items():
      for label, v in by_label.items():
        add(i, q, name, label, "estimate", "", v["per_rep"])
        for method, se in v["se_per_rep"].items():
          add(i, q, name, label, "se", method, se)
          ci = np.asarray([[np.nan, np.nan] if c is None else
                           [np.nan if x is None else x for x in c]
                           for c in v["ci95_per_rep"][method]], np.float64).reshape(-1, 2)
          add(i, q, name, label, "ci_low", method, ci[:, 0])
          add(i, q, name, label, "ci_high", method, ci[:, 1])
    for arm, by_label in q["arms"].items():
      for label, v in by_label.items():
        add(i, q, estimators_lib.DEFAULT, label, f"arm_mean_{arm}", "", v["per_rep"])
  return cols


def write_table(study_dir) -> pathlib.Path:
  """per_rep.parquet from every run's result.json (atomically)."""
  study_dir = pathlib.Path(study_dir)
  cols = {c: [] for c in _COLUMNS}
  runs = sorted(p for p in (study_dir / "runs").glob("*/result.json"))
  if not runs:
    raise InputError(f"{study_dir}: no runs/*/result.json to tabulate (a compacted study "
                     f"keeps {TABLE}; regenerate the study to rebuild it).")
  for path in runs:
    for c, v in rows_of_run(path.parent.name, json.loads(path.read_text())).items():
      cols[c] += v
  schema = pa.schema([("job", pa.string()), ("point", pa.int32()),
                      ("p_treatment", pa.float64()), ("alpha_gap", pa.float64()),
                      ("epsilon", pa.float64()), ("estimator", pa.string()),
                      ("label", pa.string()), ("quantity", pa.string()),
                      ("method", pa.string()), ("rep", pa.int32()), ("value", pa.float64())])
  table = pa.table(cols, schema=schema)
  out = study_dir / TABLE
  with writing.atomic_path(out) as tmp:
    pq.write_table(table, tmp, compression="zstd")
  return out


def _groups(table) -> dict:
  """{(job, point, estimator, label, quantity, method): [B] values in repetition order}."""
  keys = ("job", "point", "estimator", "label", "quantity", "method")
  t = table.sort_by([(k, "ascending") for k in keys] + [("rep", "ascending")])
  cols = {k: t.column(k).to_pylist() for k in keys}
  values = t.column("value").to_numpy(zero_copy_only=False)
  out, start = {}, 0
  n = t.num_rows
  for i in range(1, n + 1):
    if i == n or any(cols[k][i] != cols[k][start] for k in keys):
      out[tuple(cols[k][start] for k in keys)] = values[start:i]
      start = i
  return out


def _point_index(table) -> dict:
  """{job: {point: (p, gap, epsilon)}}."""
  t = table.group_by(["job", "point"]).aggregate([("p_treatment", "max"), ("alpha_gap", "max"),
                                                   ("epsilon", "max")])
  out = {}
  for job, point, p, gap, eps in zip(*(t.column(c).to_pylist() for c in (
      "job", "point", "p_treatment_max", "alpha_gap_max", "epsilon_max"))):
    out.setdefault(job, {})[point] = (p, gap, eps)
  return out


@dataclasses.dataclass
class Check:
  """Values compared and the disagreements (path, study.json's value, the recomputed one)."""
  n: int = 0
  mismatches: list = dataclasses.field(default_factory=list)

  def same(self, path, saved, new, elsewhere=()):
    """Compares study.json's `saved` with the recomputed `new`, recursively; keys in
    `elsewhere` are compared by another call (a cell's vs_truth_frozen) or set by the study
    itself (an exploration point's epsilon); any other key missing from `new` disagrees."""
    if isinstance(saved, dict):
      for k, v in saved.items():
        if k in elsewhere:
          continue
        if not isinstance(new, dict) or k not in new:
          self.mismatches.append((f"{path}.{k}", "a value", "not recomputed"))
          continue
        self.same(f"{path}.{k}", v, new[k])
      return
    if isinstance(saved, list):
      if not isinstance(new, list):
        new = list(np.asarray(new, dtype=object).reshape(-1))
      if len(saved) != len(new):
        self.mismatches.append((path, f"length {len(saved)}", f"length {len(new)}"))
        return
      for i, (a, b) in enumerate(zip(saved, new)):
        self.same(f"{path}[{i}]", a, b)
      return
    self.n += 1
    if isinstance(saved, (str, bool)):
      if saved != new:
        self.mismatches.append((path, saved, new))
      return
    new = math.nan if new is None else float(new)
    if saved is None:  # JSON null: NaN or an infinite end (writing.jsonable).
      if math.isfinite(new):
        self.mismatches.append((path, None, new))
    elif not math.isclose(float(saved), new, rel_tol=RTOL, abs_tol=1e-300):
      self.mismatches.append((path, saved, new))


def _replicates(groups, jobs, base: str, gap: float, label: str, index) -> list:
  """Per replicate job of a truth (`base-rK`, then its sweep part `base-sweep-rK`), the
  per-repetition GTE at `gap`."""
  for part in (base, base + plan_lib.SWEEP_SUFFIX):
    names = sorted((j for j in jobs if re.fullmatch(re.escape(part) + r"-r\d+", j)),
                   key=lambda j: int(j.rsplit("-r", 1)[1]))
    out = []
    for name in names:
      points = [i for i, (_, g, _) in index[name].items() if g == gap]
      if points:
        out.append(groups[(name, points[0], "", label, "gte", "")])
    if out:
      return out
  return []


def _truth_blocks(summary) -> dict:
  """{study.json path of a truth block: (its job base name, the block)}."""
  out = {"truth": (plan_lib.TRUTH, summary["truth"])}
  if "truth_frozen" in summary:
    out["truth_frozen"] = (plan_lib.TRUTH_FROZEN, summary["truth_frozen"])
  if "truth_expected" in summary:
    out["truth_expected"] = (plan_lib.TRUTH_EXPECTED, summary["truth_expected"])
  for key, block in summary.get("truth_exploration", {}).items():
    out[f"truth_exploration.{key}"] = (plan_lib.exploration_truth_name(float(key[4:])), block)
  return out


class _Truth:
  """summary.Truth's per_rep and se (what summary.point_stats reads), from study.json."""

  def __init__(self, block):
    self.per_rep, self.se = {}, {}
    for key, by_label in block.items():
      gap = float(key[4:])
      self.per_rep[gap] = {l: np.asarray(v["per_rep"], np.float64) for l, v in by_label.items()}
      self.se[gap] = {l: np.asarray(v["truth_se_per_rep"], np.float64)
                      for l, v in by_label.items()}


def recompute(study_dir, table=None) -> Check:
  """Every truth and design cell of study.json recomputed from per_rep.parquet."""
  study_dir = pathlib.Path(study_dir)
  summary = json.loads((study_dir / "study.json").read_text())
  table = table if table is not None else pq.read_table(study_dir / TABLE)
  groups, index = _groups(table), _point_index(table)
  jobs = set(index)
  check = Check()
  truths = {}
  for path, (base, block) in _truth_blocks(summary).items():
    truth = _Truth(block)
    for key, by_label in block.items():
      gap = float(key[4:])
      for label, v in by_label.items():
        if gap == 0.0:  # Exactly 0: GT is GC.
          check.same(f"{path}.{key}.{label}.per_rep", v["per_rep"],
                     [0.0] * len(v["per_rep"]))
          continue
        reps = _replicates(groups, jobs, base, gap, label, index)
        if not reps:
          check.mismatches.append((f"{path}.{key}.{label}", "a truth", "no replicate rows"))
          continue
        k = np.stack(reps)
        mean = k.mean(0)
        check.same(f"{path}.{key}.{label}.per_rep", v["per_rep"], mean.tolist())
        truth.per_rep[gap][label] = mean  # Full precision (study.json keeps 7 digits).
        if len(reps) > 1:  # K = 1: the replicate's batch-means SE, which no table keeps.
          se = k.std(0, ddof=1) / np.sqrt(len(reps))
          check.same(f"{path}.{key}.{label}.truth_se_per_rep", v["truth_se_per_rep"],
                     se.tolist())
          truth.se[gap][label] = se
    truths[path] = truth
  seed, n_boot = summary["seed"], summary["bootstrap"]
  labels = list(summary["truth"]["gap=1"])
  main_eps = _main_epsilon(study_dir)
  for cell, by_point in summary["designs"].items():
    design, _, est_name = cell.partition(estimators_lib.SEP)
    est_name = est_name or estimators_lib.DEFAULT
    for key, entry in by_point.items():
      parts = dict(part.split("=") for part in key.split(","))
      p, gap = float(parts["p"]), float(parts["gap"])
      eps = float(parts["eps"]) if "eps" in parts else main_eps
      found = [(job, i) for job in (design, design + plan_lib.SWEEP_SUFFIX) if job in index
               for i, (jp, jg, je) in index[job].items()
               if jp == p and jg == gap and (je is None or eps is None or je == eps)]
      if not found:
        check.mismatches.append((f"designs.{cell}.{key}", "a cell", "no rows"))
        continue
      job, point = found[0]
      est = _estimate(groups, job, point, est_name, labels)
      truth = truths[f"truth_exploration.eps={parts['eps']}" if "eps" in parts else "truth"]
      new = summary_lib.point_stats(est, truth, gap, labels, seed, n_boot)
      check.same(f"designs.{cell}.{key}", entry, new, elsewhere=("epsilon", "vs_truth_frozen"))
      if "vs_truth_frozen" in entry:
        frozen = summary_lib.point_stats(est, truths["truth_frozen"], gap, labels, seed, n_boot)
        check.same(f"designs.{cell}.{key}.vs_truth_frozen", entry["vs_truth_frozen"], frozen)
  return check


def _main_epsilon(study_dir):
  for path in sorted((study_dir / "runs").glob("*/config.json")):
    return json.loads(path.read_text())["sim"].get("epsilon", 0.0)
  return None


def cells_at(table, labels, p: float, gap: float, seed: int, n_boot: int) -> tuple:
  """(truth, {cell: {label: summary.point_stats}}) of every (design job, estimator) at one
  point (p, gap) of a per-repetition table (a study's, or several studies' concatenated with
  distinct repetitions): the truth is the mean of the `truth-rK` replicates (K >= 2: its SE is
  their sd / sqrt(K))."""
  groups, index = _groups(table), _point_index(table)
  jobs = set(index)
  truth = _Truth({})
  truth.per_rep[gap], truth.se[gap] = {}, {}
  for label in labels:
    reps = _replicates(groups, jobs, plan_lib.TRUTH, gap, label, index)
    if len(reps) < 2:
      raise InputError(f"the table holds {len(reps)} replicate(s) of the truth at gap {gap:g}; "
                       "the paired statistics need at least 2 (study.truth_replicates).")
    k = np.stack(reps)
    truth.per_rep[gap][label] = k.mean(0)
    truth.se[gap][label] = k.std(0, ddof=1) / np.sqrt(len(reps))
  out = {}
  for job in sorted(jobs):
    for point, (jp, jg, _) in index[job].items():
      if jp != p or jg != gap:
        continue
      names = sorted({k[2] for k in groups if k[0] == job and k[1] == point and k[2]})
      for est_name in names:
        est = _estimate(groups, job, point, est_name, labels)
        out[estimators_lib.cell(job, est_name)] = summary_lib.point_stats(
            est, truth, gap, labels, seed, n_boot)
  return truth, out


def _estimate(groups, job, point, est_name, labels) -> dict:
  """summary's estimate dict ([B, L] arrays) of a job's point from the table."""
  def stack(quantity, method=""):
    return np.stack([groups[(job, point, est_name, l, quantity, method)] for l in labels], -1)
  methods = _ordered(groups, job, point, est_name, labels)
  return {"estimate": stack("estimate"), "se": {m: stack("se", m) for m in methods},
          "ci": {m: np.stack([stack("ci_low", m), stack("ci_high", m)], -1) for m in methods}}


def _ordered(groups, job, point, est_name, labels) -> list:
  """The estimator's SE methods in the order result.json listed them (the table's order is
  sorted; the difference in means keeps variance.METHODS' order)."""
  found = {k[5] for k in groups if k[:4] == (job, point, est_name, labels[0]) and k[4] == "se"}
  return [m for m in METHODS if m in found] + sorted(found - set(METHODS))


def prune(study_dir, commit: str) -> dict:
  """Recomputes, refuses on any disagreement, then removes the runs' bulk (BULK) and the SVG
  copies of the study's own figures (their PNG stays), and writes compact.json (a second
  prune adds to the counts of the first). Returns the manifest."""
  study_dir = pathlib.Path(study_dir)
  if not (study_dir / TABLE).exists():
    write_table(study_dir)
  check = recompute(study_dir)
  if check.mismatches or not check.n:
    first = check.mismatches[:3]
    raise InputError(f"{study_dir}: {len(check.mismatches)} of {check.n} study.json values do "
                     f"not recompute from {TABLE} (first: {first}); nothing removed.")
  removed, kept = [], []
  for run in sorted((study_dir / "runs").iterdir()):
    for name in BULK:
      path = run / name
      if path.is_dir():
        shutil.rmtree(path)
      elif path.exists():
        path.unlink()
      else:
        continue
      removed.append(str(path.relative_to(study_dir)))
    kept += [str(p.relative_to(study_dir)) for p in sorted(run.iterdir())]
  svgs = [p for p in sorted(study_dir.glob("*.svg")) if p.with_suffix(".png").exists()]
  for path in svgs:
    path.unlink()
  summary = json.loads((study_dir / "study.json").read_text())
  before = (json.loads((study_dir / MANIFEST).read_text()) if (study_dir / MANIFEST).exists()
            else {})
  manifest = {
      "table": TABLE, "values_recomputed": check.n, "mismatches": 0, "rtol": RTOL,
      "removed_per_run": list(BULK), "removed": before.get("removed", 0) + len(removed),
      "removed_figure_svgs": sorted({*before.get("removed_figure_svgs", ()),
                                     *(p.name for p in svgs)}),
      "kept_per_run": ["config.json"],
      "not_recomputed_from_the_table": ["horizon", "states", "weight_model", "starvation",
                                        "models", "truth_se_per_rep where K = 1"],
      "compacted_at_package_commit": commit,
      "study_package_commit": summary.get("package_commit"),
      "regenerate": "check out the study's package commit and rerun its command (study.json "
                    "`command`, also in report.md) into an empty folder: every run's "
                    "result.json, Parquet tables and figure come back, and its study.json "
                    "equals this one.",
      "command": summary.get("command")}
  writing.write_json(study_dir / MANIFEST, manifest)
  return manifest
