"""What a run writes: result.json, the steps/metrics Parquet tables and the figure."""

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gtesim import environments
from gtesim import logs
from gtesim import writing
from gtesim.data import dataset
from gtesim.designs import Worlds
from gtesim.driver import figures
from gtesim.driver import history as history_lib
from gtesim.stats import descriptive

log = logs.get_logger("result")


def dataset_info(config, overview) -> dict:
  """The dataset facts result.json repeats: counts, label rates/means, fingerprint."""
  keys = ["n_users", "n_videos", "n_interactions", "env_density", "n_pretrain_interactions",
          *dataset.label_stat_keys(config), "fingerprint"]
  return {k: overview[k] for k in keys}


def point_results(config, history, worlds: Worlds) -> list:
  """result.json's block of every sweep point (the design's: truth or estimate)."""
  labels = list(config.labels)
  return [worlds.design.layout.point_result(labels, history, worlds, s, config)
          for s in range(len(worlds.points))]


def _finite_mean(values):
  """Mean over repetitions of the finite values; None (JSON null) if there are none."""
  mean = float(descriptive.finite_mean(values))
  return mean if math.isfinite(mean) else None


_UNDEFINED_BECAUSE = {"auc": "AUC needs both classes among the evaluated rows",
                     "rel_error": "the relative error needs rows with a positive label"}


def undefined_metrics(history, worlds: Worlds) -> dict:
  """{world-arm: {split/metric(@0): why and in how many repetitions}} for the model metrics
  undefined (NaN) in some repetition; model_metrics averages the defined ones (null: none)."""
  out = {}
  for w, a, point, name in worlds.groups():
    key = name + worlds.point_name(point)
    for split in history_lib.SPLITS:
      for metric, v in history.evals[split].items():
        for suffix, values in (("", v[-1][:, w, a]), ("@0", v[0][:, w, a])):
          defined = int(np.isfinite(values).sum())
          if defined < values.size:
            kind = metric.rsplit("/", 1)[-1]
            why = _UNDEFINED_BECAUSE.get(kind, "no evaluated rows")
            out.setdefault(key, {})[f"{split}/{metric}{suffix}"] = (
                f"defined in {defined} of {values.size} repetitions ({why}); the mean is over "
                "those" + ("" if defined else ", so null"))
  return out


def model_metrics(history, worlds: Worlds) -> dict:
  """Validation and train-side metrics per world-arm: right after pretraining (`@0`) and at
  the end, mean over repetitions; then the design's own per-step metrics (weighting: G on new
  items) of the last validation interval."""
  out = {}
  for w, a, point, name in worlds.groups():
    key = name + worlds.point_name(point)
    for split in history_lib.SPLITS:
      for metric, v in history.evals[split].items():
        out.setdefault(key, {})[f"{split}/{metric}"] = _finite_mean(v[-1][:, w, a])
        out[key][f"{split}/{metric}@0"] = _finite_mean(v[0][:, w, a])
  design = worlds.design
  if design.reporting.step_metrics:
    g = history_lib.design_metrics_per_eval(history)  # {metric: [E, B, W]}
    for s in range(len(worlds.points)):
      out[design.reporting.step_metrics_world + worlds.point_name(s)] = {
          f"new/{m}": _finite_mean(g[m][-1][:, s])
          for m in design.reporting.step_metrics}
  return out


def write_table(path, columns: dict) -> None:
  """Writes equal-length numpy columns as Parquet, atomically."""
  with writing.atomic_path(path) as tmp:
    pq.write_table(pa.table({k: np.asarray(v) for k, v in columns.items()}), tmp)


def write_run(config, dataset_info, pretrain_report, history, worlds: Worlds, rep_indices,
              workdir, timing) -> dict:
  """Writes steps.parquet, metrics.parquet, result.json and the figure, in that order;
  returns the result."""
  labels = list(config.labels)
  result = {"mode": config.mode, "repetitions": config.repetitions,
            "rep_offset": config.rep_offset, "seed": config.seed,
            "n_steps": config.sim.n_steps, "assignment": config.experiment.assignment,
            "dataset": dataset_info, "pretrain": pretrain_report,
            "experiment_rows_per_world": config.sim.n_steps * config.sim.batch_size,
            "environment": {"kind": config.sim.environment, "outcome": config.sim.outcome,
                            "retrieval": config.sim.retrieval}}
  points = point_results(config, history, worlds)
  for point in points:  # What the effect is of: outcome draws or their expectations.
    for entry in point["gte"].values():
      entry["outcome"] = config.sim.outcome
  if len(points) == 1:
    result.update(points[0])
  else:
    result["points"] = points
  s = history.steps
  for field, key in (("recommendations", s.n_recs), ("exhausted_users", s.n_exhausted),
                     ("short_users", s.n_short)):
    totals = key.astype(np.int64).sum(0)  # [B, W, A]
    result[field] = {name + worlds.point_name(q): totals[:, w, a].tolist()
                     for w, a, q, name in worlds.groups()}
  _warn_short(config, result)
  result["metrics_final_and_at_step_0"] = model_metrics(history, worlds)
  undefined = undefined_metrics(history, worlds)
  if undefined:
    result["metrics_undefined"] = undefined
    first = next(iter(undefined.values()))
    log.warning("%d model metric(s) undefined (NaN) in some repetitions, e.g. %s %s; "
                "result.json's metrics_undefined lists them and why.",
                sum(map(len, undefined.values())), *next(iter(first.items())))
  result["timing"] = {k: v for k, v in timing.items() if v is not None}
  result = writing.jsonable(result)
  step_cols, metric_cols = history_lib.to_tables(history, worlds, labels, rep_indices)
  write_table(workdir / "steps.parquet", step_cols)
  write_table(workdir / "metrics.parquet", metric_cols)
  writing.write_json(workdir / "result.json", result)  # Before the figure: a failure to
  # draw or write it loses no result.
  for point in points if "points" in result else [result]:
    for name in point["gte"]:
      worlds.design.layout.log_point(log, name, "points" in result, point, config)
  first = np.isin(metric_cols["point"], [0, -1])
  figures.figure(workdir / "figure", {k: np.asarray(v)[first] for k, v in metric_cols.items()},
                 figures.panels(config), figures.headline(config, result))
  return result


def _warn_short(config, result) -> None:
  """A warning when sampled users had no candidate (exhausted) or fewer than n_candidate."""
  exhausted = sum(map(sum, result["exhausted_users"].values()))
  short = sum(map(sum, result["short_users"].values()))
  total = sum(map(sum, result["recommendations"].values())) + exhausted
  if short:
    fix = environments.get(config).short_advice(config)
    log.warning("%s of %s sampled users (all worlds and repetitions) had fewer than "
                "sim.n_candidate = %d candidates, %s of them none (exhausted, no "
                "recommendation); result.json's short_users and exhausted_users count them per "
                "world: %s.", f"{short:,}", f"{total:,}", config.sim.n_candidate,
                f"{exhausted:,}", fix)
