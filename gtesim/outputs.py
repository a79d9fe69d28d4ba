"""What a run writes: result.json, the steps/metrics Parquet tables, the six-panel figure."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gtesim import designs
from gtesim import estimators
from gtesim import history as history_lib
from gtesim import io
from gtesim import logs
from gtesim import metrics_np

log = logs.get_logger("result")

DATASET_KEYS = ("n_users", "n_videos", "n_interactions", "click_rate", "mean_play_time_ms",
                "fingerprint")
GROUP_LABELS = {"GT": "GT (treatment)", "GC": "GC (control)", "T": "treatment arm",
                "C": "control arm", "G": "G on new items"}


def jsonable(obj):
  """obj with NaN/inf floats as None (JSON null) and numpy scalars as Python numbers."""
  if isinstance(obj, dict):
    return {k: jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [jsonable(v) for v in obj]
  if isinstance(obj, np.ndarray):
    return jsonable(obj.tolist())
  if isinstance(obj, (float, np.floating)):
    return float(obj) if math.isfinite(obj) else None
  if isinstance(obj, np.integer):
    return int(obj)
  return obj


def _std(x):
  x = x[np.isfinite(x)]
  return float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")


def summary(per_rep, **extra) -> dict:
  """per_rep with its mean, sample sd and standard error over repetitions."""
  per_rep = np.asarray(per_rep, np.float64)
  finite = per_rep[np.isfinite(per_rep)]
  mean = float(finite.mean()) if len(finite) == len(per_rep) and len(finite) else float("nan")
  sd = _std(per_rep)
  return {"per_rep": per_rep.tolist(), "mean": mean, "std": sd,
          "se": sd / np.sqrt(len(per_rep)), **extra}


def point_name(worlds: designs.Worlds, point: int) -> str:
  """A sweep point's label: "" when the run has one point."""
  if len(worlds.points) == 1 or point < 0:
    return ""
  p, gap = worlds.points[point]
  return f"[gap={gap:g}]" if worlds.mode == "global" else f"[p={p:g},gap={gap:g}]"


def global_point(labels, history, worlds: designs.Worlds, point: int) -> dict:
  """GT at a point's alpha gap, GC, and the true GTE per label (per recommendation)."""
  s = history.steps
  gt_w, gc_w = point, worlds.n_worlds - 1
  means = estimators.world_means(s.outcome_sum[:, :, :, 0], s.n_recs[:, :, :, 0])  # [B, W, L]
  totals = s.outcome_sum[:, :, :, 0].astype(np.float64).sum(0)
  out = {"p_treatment": None, "alpha_gap": worlds.points[point][1], "gte": {}, "gt": {},
         "gc": {}}
  for l, name in enumerate(labels):
    gte = means[:, gt_w, l] - means[:, gc_w, l]
    with np.errstate(invalid="ignore", divide="ignore"):
      pct = np.where(means[:, gc_w, l] != 0, 100 * gte / means[:, gc_w, l], np.nan)
    extra = {"total_per_rep": (totals[:, gt_w, l] - totals[:, gc_w, l]).tolist(),
             "pct_per_rep": pct.tolist(),
             "pct_mean": float(pct.mean()) if np.isfinite(pct).all() else None}
    if not np.isfinite(pct).all():
      extra["pct_note"] = ("undefined (null) where GC's mean outcome is 0: no percentage of "
                           "zero")
    out["gte"][name] = summary(gte, **extra)
    out["gt"][name] = summary(means[:, gt_w, l], total_per_rep=totals[:, gt_w, l].tolist())
    out["gc"][name] = summary(means[:, gc_w, l], total_per_rep=totals[:, gc_w, l].tolist())
  return out


def ab_point(labels, history, worlds: designs.Worlds, point: int, n_blocks: int) -> dict:
  """The naive estimate of one point with its standard errors and 95% CIs per method."""
  s = history.steps
  user_var = history.evals["user_var"][-1][:, point] if "user_var" in history.evals else None
  e = estimators.ab_estimate(s.outcome_sum[:, :, point], s.outcome_sq[:, :, point],
                             s.n_recs[:, :, point], user_var, n_blocks, estimators.LEVEL)
  p, gap = worlds.points[point]
  out = {"p_treatment": p, "alpha_gap": gap, "gte": {}, "arms": {"T": {}, "C": {}}}
  for l, name in enumerate(labels):
    out["gte"][name] = summary(
        e["estimate"][:, l],
        se_per_rep={m: e["se"][m][:, l].tolist() for m in estimators.METHODS},
        ci95_per_rep={m: e["ci"][m][:, l].tolist() for m in estimators.METHODS})
    out["arms"]["T"][name] = summary(e["arm_mean"][:, 0, l])
    out["arms"]["C"][name] = summary(e["arm_mean"][:, 1, l])
  return out


def point_results(config, history, worlds: designs.Worlds) -> list:
  labels = list(config.labels)
  if worlds.mode == "global":
    return [global_point(labels, history, worlds, s) for s in range(len(worlds.points))]
  return [ab_point(labels, history, worlds, s, config.estimator.batch_blocks)
          for s in range(len(worlds.points))]


def _finite_mean(values):
  """Mean over repetitions of the finite values; None (JSON null) if there are none."""
  mean = float(metrics_np.finite_mean(values))
  return mean if math.isfinite(mean) else None


def model_metrics(history, worlds: designs.Worlds) -> dict:
  """Validation and train-side metrics per world-arm: right after pretraining (`@0`) and at
  the end, mean over repetitions."""
  out = {}
  for w, a, point, name in worlds.groups():
    key = name + point_name(worlds, point)
    for split in history_lib.SPLITS:
      for metric, v in history.evals[split].items():
        out.setdefault(key, {})[f"{split}/{metric}"] = _finite_mean(v[-1][:, w, a])
        out[key][f"{split}/{metric}@0"] = _finite_mean(v[0][:, w, a])
  if worlds.mode == "weighting":
    g = history_lib.weight_model_per_eval(history)[-1]  # [B, W, 3]
    for s in range(len(worlds.points)):
      out["G" + point_name(worlds, s)] = {
          f"new/weight/{m}": _finite_mean(g[:, s, i])
          for i, m in enumerate(history_lib.WEIGHT_METRICS)}
  return out


def write_table(path, columns: dict) -> None:
  """Writes equal-length numpy columns as Parquet, atomically."""
  with io.atomic_path(path) as tmp:
    pq.write_table(pa.table({k: np.asarray(v) for k, v in columns.items()}), tmp)


def write_run(config, dataset_info, pretrain_report, history, worlds: designs.Worlds,
              rep_indices, workdir, timing) -> dict:
  """Writes result.json, steps.parquet, metrics.parquet and the figure; returns the result."""
  labels = list(config.labels)
  result = {"mode": config.mode, "repetitions": config.repetitions,
            "rep_offset": config.rep_offset, "seed": config.seed,
            "n_steps": config.sim.n_steps, "assignment": config.experiment.assignment,
            "dataset": dataset_info, "pretrain": pretrain_report,
            "experiment_rows_per_world": config.sim.n_steps * config.sim.batch_size}
  points = point_results(config, history, worlds)
  if len(points) == 1:
    result.update(points[0])
  else:
    result["points"] = points
  s = history.steps
  for field, key in (("recommendations", s.n_recs), ("exhausted_users", s.n_exhausted),
                     ("short_users", s.n_short)):
    totals = key.astype(np.int64).sum(0)  # [B, W, A]
    result[field] = {name + point_name(worlds, q): totals[:, w, a].tolist()
                     for w, a, q, name in worlds.groups()}
  result["metrics_final_and_at_step_0"] = model_metrics(history, worlds)
  result["timing"] = {k: v for k, v in timing.items() if v is not None}
  result = jsonable(result)
  step_cols, metric_cols = history_lib.to_tables(history, worlds, labels, rep_indices)
  write_table(workdir / "steps.parquet", step_cols)
  write_table(workdir / "metrics.parquet", metric_cols)
  first = np.isin(metric_cols["point"], [0, -1])
  figure(workdir / "figure", {k: np.asarray(v)[first] for k, v in metric_cols.items()})
  io.write_json(workdir / "result.json", result)
  _log_result(config, result, points)
  return result


def _log_result(config, result, points):
  for point in points if "points" in result else [result]:
    where = ""
    if "points" in result:
      where = (f" at gap {point['alpha_gap']:g}" if config.mode == "global" else
               f" at p={point['p_treatment']:g}, gap {point['alpha_gap']:g}")
    for name, g in point["gte"].items():
      if config.mode == "global":
        log.info("%s%s: GT %s, GC %s, GTE %s +- %s (sd %s over %d repetitions, %s%%)", name,
                 where, _g(point["gt"][name]["mean"], 6), _g(point["gc"][name]["mean"], 6),
                 _g(g["mean"], 6), _g(g["se"]), _g(g["std"]), config.repetitions,
                 _g(g["pct_mean"], 4))
      else:
        half = {m: _finite_mean(v) for m, v in g["se_per_rep"].items()}
        log.info("%s%s: %s estimate %s (sd %s over %d repetitions; mean 95%% CI half-width "
                 "%s)", name, where, config.mode, _g(g["mean"], 6), _g(g["std"]),
                 config.repetitions, ", ".join(
                     f"{m} {_g(None if v is None else 1.96 * v)}" for m, v in half.items()))


def _g(x, digits=2) -> str:
  """A number for a log line; "undefined" for None/NaN (e.g. an sd over one repetition)."""
  return "undefined" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


_PANELS = (("click AUC", "click/auc"), ("click loss", "click/loss"),
           ("play-time relative error (non-zero play)", "play_time/rel_error"),
           ("play-time loss", "play_time/loss"),
           ("weight-model AUC and accuracy", ("weight/auc", "weight/accuracy")),
           ("weight-model loss", "weight/loss"))


def figure(path_stem, metrics_table: dict) -> None:
  """The six-panel figure (PNG and SVG): mean over repetitions, band = +-1 sd.

  Args:
    path_stem: output path without suffix.
    metrics_table: columns step, world, split and one per metric (rows per rep); a metric is
      drawn for every (world, split) where it has values.
  """
  fig, axes = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
  steps = np.asarray(metrics_table["step"])
  worlds = np.asarray(metrics_table["world"])
  split = np.asarray(metrics_table["split"])
  for ax, (title, keys) in zip(axes.T.ravel(), _PANELS):
    keys = (keys,) if isinstance(keys, str) else keys
    drawn = False
    for key in keys:
      if key not in metrics_table:
        continue
      values = np.asarray(metrics_table[key], np.float64)
      for world, label in GROUP_LABELS.items():
        for part, style in (("train", "--"), ("val", "-"), ("new", "-")):
          rows = (worlds == world) & (split == part) & ~np.isnan(values)
          if not rows.any():
            continue
          xs = np.unique(steps[rows])
          per = [values[rows & (steps == x)] for x in xs]
          mean = np.array([np.nanmean(p) for p in per])
          sd = np.array([np.nanstd(p) for p in per])
          name = key.split("/")[-1]
          text = label if part == "new" else f"{label} {part}"
          line, = ax.plot(xs, mean, style,
                          label=text + (f": {name}" if len(keys) > 1 else ""))
          ax.fill_between(xs, mean - sd, mean + sd, color=line.get_color(), alpha=0.15)
          drawn = True
    ax.set_title(title)
    ax.set_xlabel("step")
    if drawn:
      ax.legend(fontsize=7)
    else:
      ax.text(0.5, 0.5, "no weight model in this mode", ha="center", va="center",
              transform=ax.transAxes, color="gray")
  save_figure(fig, path_stem)


def save_figure(fig, stem) -> None:
  """Writes a matplotlib figure as PNG and SVG, atomically, and closes it."""
  for suffix in (".png", ".svg"):
    with io.atomic_path(f"{stem}{suffix}") as tmp:
      fig.savefig(tmp, format=suffix[1:], dpi=110)
  plt.close(fig)
